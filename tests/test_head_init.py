"""The linear-probe start of a classifier's output layer (svp_hf.head_init)."""

import numpy as np
import pytest
import torch

from svp_hf.head_init import PROBE_BELOW_ROWS_SEEN, init_head_by_probe, output_layer, probe_rows, resolve_head_init


def _tiny_bert(num_labels: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=num_labels)  # fmt: skip
    return BertForSequenceClassification(config).eval()


def _rows(classes: list[int], per_class: int = 12, seed: int = 0):
    """Token rows whose class decides which ids they draw from (ids 8c..8c+7): separable features even for a
    randomly initialised encoder."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(classes, per_class)
    ids = np.stack([rng.integers(8 * c, 8 * c + 8, size=6) for c in labels])
    return torch.as_tensor(ids), labels


def _logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy()


def _batches(ids, size=10):
    return ({"input_ids": ids[i : i + size], "attention_mask": torch.ones_like(ids[i : i + size])}
            for i in range(0, len(ids), size))  # fmt: skip


def test_probe_sets_a_head_that_separates_the_classes_and_leaves_absent_ones_out():
    model = _tiny_bert(num_labels=5)
    ids, labels = _rows([0, 1, 3, 4])  # class 2 has no row
    before = (_logits(model, ids).argmax(1) == labels).mean()
    result = init_head_by_probe(model, _batches(ids), labels, num_labels=5)
    logits = _logits(model, ids)
    assert result is not None and (result.rows, result.classes) == (48, 4)
    assert (logits.argmax(1) == labels).mean() >= 0.9 > before
    assert result.train_accuracy == pytest.approx((logits.argmax(1) == labels).mean())  # folded back exactly
    assert not model.classifier.weight[2].any()  # the absent class: no weight, a bias below every other class
    assert model.classifier.bias[2] < model.classifier.bias[[0, 1, 3, 4]].min()
    assert (logits.argmax(1) != 2).all()
    assert not model.training  # the mode it was in


def test_binary_probe_splits_its_one_logit_between_the_two_classes():
    model = _tiny_bert(num_labels=2).train()
    ids, labels = _rows([0, 1])
    result = init_head_by_probe(model, _batches(ids), labels, num_labels=2)
    logits = _logits(model, ids)
    assert result.train_accuracy >= 0.9 and (logits.argmax(1) == labels).mean() == result.train_accuracy
    np.testing.assert_allclose(logits[:, 0], -logits[:, 1], atol=1e-5)
    assert model.training  # restored


def test_one_class_or_no_linear_head_leaves_the_layer_alone(monkeypatch):
    import svp_hf.head_init

    warned = []
    monkeypatch.setattr(svp_hf.head_init.logger, "warning", lambda msg, *args: warned.append(msg % args))
    model = _tiny_bert(num_labels=3)
    weight = model.classifier.weight.detach().clone()
    ids, labels = _rows([1])
    assert init_head_by_probe(model, _batches(ids), labels, num_labels=3) is None
    assert torch.equal(model.classifier.weight, weight) and "fewer than two classes" in warned[0]
    assert output_layer(torch.nn.Sequential(torch.nn.Linear(4, 7)), num_labels=3) is None


def test_output_layer_finds_the_logit_projection_of_common_heads():
    from transformers import RobertaConfig, RobertaForSequenceClassification

    bert = _tiny_bert(num_labels=3)
    assert output_layer(bert, 3) is bert.classifier
    config = RobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, num_labels=3)  # fmt: skip
    roberta = RobertaForSequenceClassification(config)
    assert output_layer(roberta, 3) is roberta.classifier.out_proj  # after the head's own dense + tanh


def test_probe_rows_are_all_rows_or_a_seeded_sorted_sample():
    assert probe_rows(5, seed=0).tolist() == [0, 1, 2, 3, 4]
    sample = probe_rows(1000, seed=3, max_rows=100)
    assert len(sample) == 100 == len(set(sample.tolist())) and (np.diff(sample) > 0).all()
    assert np.array_equal(sample, probe_rows(1000, seed=3, max_rows=100))
    assert not np.array_equal(sample, probe_rows(1000, seed=4, max_rows=100))


def test_auto_probes_a_pretrained_head_only_when_the_fine_tune_is_short_for_its_classes():
    from svp_hf.errors import ConfigError

    short, long = PROBE_BELOW_ROWS_SEEN - 1, PROBE_BELOW_ROWS_SEEN
    assert resolve_head_init(None, pretrained=True, rows_seen_per_class=short) == "probe"
    assert resolve_head_init("auto", pretrained=True, rows_seen_per_class=long) == "random"
    assert resolve_head_init("auto", pretrained=False, rows_seen_per_class=1) == "random"  # nothing learned to probe
    assert resolve_head_init("probe", pretrained=False, rows_seen_per_class=long) == "probe"  # asked for: done
    assert resolve_head_init("random", pretrained=True, rows_seen_per_class=1) == "random"
    with pytest.raises(ConfigError, match="head_init must be one of auto, probe, random"):
        resolve_head_init("zeros", pretrained=True, rows_seen_per_class=1)
