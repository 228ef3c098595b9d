"""Macro-averaged F1 over classes, as an `evaluate` metric module shipped with svp-hf."""

import datasets
import evaluate
from sklearn.metrics import f1_score


class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="F1 score per class, averaged with equal weight per class (macro).",
            citation="",
            inputs_description="predictions, references: lists of integer class ids of the same length.",
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, labels=None):
        return {"macro_f1": float(f1_score(references, predictions, labels=labels, average="macro", zero_division=0))}
