"""Active learning via proxy: rounds of (fit the proxy on the labeled rows, score the rest, query a batch, get its
labels), with the whole state on disk after every round so that a run can be stopped at any moment and resumed.

Output folder layout (DIR):

- ``state.json``: the commit point: the config, the completed rounds (sizes, timings, metrics) and which state file
  holds the labeled rows. Replaced atomically as the last write of a round, so a run killed at any moment resumes
  from the last completed round, with nothing lost and no row labeled twice.
- ``state/round_NNNN.npz``: labeled pool indices, their label ids and the round each was labeled in.
- ``scores/round_NNNN.npy``: the strategy's score of every pool row in that round.
- ``labeled/``: the labeled rows (``datasets.load_from_disk``) with ``svp_pool_index`` and ``svp_round``; derived
  from the state, rebuilt on resume if a run stopped before writing it.
- ``rounds.jsonl``: one line per completed round; also derived from ``state.json``.
- ``pending/round_NNNN.{jsonl,csv}``: with the human oracle, the batch waiting for labels.

Who labels a query is the oracle's business (`svp_hf.oracles`); this module keeps the rounds and the state.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import SelectionConfig
from .data import (
    ClassificationTask,
    ImageClassificationTask,
    TextClassificationTask,
    check_budget,
    check_input_column,
    ensure_dataset,
    iter_text_batches,
    resolve_budget,
    task_from_dataset,
)
from .errors import BudgetError, ConfigError, LabelError, OutputExistsError
from .io import atomic_directory, atomic_file, check_output_path, write_json_atomic
from .oracles import ORACLES, LabelsPending, build_oracle
from .proxies import Proxy, ProxyOutputs, build_proxy
from .proxies.features import texts_digest
from .selection import _with_oracle_labels, select
from .strategies import Strategy, build_strategy

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
ROUNDS_FILE = "rounds.jsonl"
STATE_VERSION = 1


@dataclass
class ActiveLearningConfig:
    """Settings of an active-learning run.

    Args:
        proxy, strategy, proxy_kwargs, strategy_kwargs, text_column, label_column, image_column, seed: as in
            `SelectionConfig` (``image_column`` for image pools, with an image proxy such as ``timm``). The defaults,
            ``hybrid`` (TF-IDF beside a frozen pretrained encoder, a linear SVM) with ``cluster_margin`` (uncertain
            rows spread over the embedding space), were measured against small-text on four pools (BENCHMARKS.md,
            "Against small-text").
        initial (`float` or `int`, defaults to `0.02`): the random initial labeled set, a fraction of the pool or a
            count (the paper: 2%).
        budgets (list of `float` or `int`, defaults to the paper's ``[0.1, 0.2, 0.3, 0.4, 0.5]``): the labeled-set
            sizes to grow to, increasing.
        batch_size (`float`, `int`, `"auto"` or `None`, defaults to `"auto"`): the most rows one query may add; a
            budget step is then reached in several queries, the proxy retrained before each. ``"auto"``: queries no
            larger than the initial set. ``None``: one query per budget step, the paper's schedule. Measured on AG
            News (BENCHMARKS.md, "Cold start"): after a 2% random start, one uncertainty query up to 10% is worse
            than random selection for the TF-IDF proxy (83-84% vs 85%), while queries of at most 2% beat random
            at every budget for both proxies, at 3-5x the selection time.
        stratified (`bool`, defaults to `False`): draw the initial set with the pool's class proportions (needs the
            label column; simulation only).
        label_names (list of `str`, *optional*): the classes, when the pool has no label column (human labeling).
        initial_strategy (`str`, defaults to `"random"`): how the first labeled set is drawn. ``"random"``, or a
            strategy that needs only embeddings (``"typiclust"``, ``"kcenters"``) run on the proxy's label-free
            embeddings of the pool (``tfidf``: an SVD of its TF-IDF; ``embedding``: the encoder's), so the first
            labels cover the pool's dense regions instead of falling where chance puts them.
    """

    proxy: str | Proxy = "hybrid"
    strategy: str | Strategy = "cluster_margin"
    initial: float | int | str = 0.02
    budgets: list[float | int] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5])
    batch_size: float | int | str | None = "auto"
    seed: int = 0
    text_column: str = "text"
    label_column: str = "label"
    image_column: str | None = None
    proxy_kwargs: dict[str, Any] = field(default_factory=dict)
    strategy_kwargs: dict[str, Any] = field(default_factory=dict)
    stratified: bool = False
    label_names: list[str] | None = None
    initial_strategy: str = "random"

    def __post_init__(self):
        self.initial = check_budget(self.initial)
        if isinstance(self.budgets, (str, int, float)):
            self.budgets = [b for b in str(self.budgets).split(",") if b.strip()]
        if not self.budgets:
            raise ConfigError("budgets must name at least one labeled-set size, e.g. [0.1, 0.2]")
        self.budgets = [check_budget(b) for b in self.budgets]
        if isinstance(self.batch_size, str) and self.batch_size.strip().lower() in ("auto", "none"):
            self.batch_size = None if self.batch_size.strip().lower() == "none" else "auto"
        elif self.batch_size is not None:
            self.batch_size = check_budget(self.batch_size)
        # validates proxy / strategy names and kwargs types the same way select() does
        self.selection_config(budget=1)
        initial = build_strategy(self.initial_strategy)
        if initial.name != "random" and set(initial.requires) != {"embeddings"}:
            raise ConfigError(
                f"initial_strategy {self.initial_strategy!r} needs labels; use random or a strategy that reads only "
                "embeddings (typiclust, kcenters)"
            )
        if initial.name != "random" and self.stratified:
            raise ConfigError("stratified draws the initial set at random by class; drop it or initial_strategy")

    def selection_config(self, **overrides: Any) -> SelectionConfig:
        return SelectionConfig(
            **{
                "proxy": self.proxy,
                "strategy": self.strategy,
                "seed": self.seed,
                "text_column": self.text_column,
                "label_column": self.label_column,
                "image_column": self.image_column,
                "proxy_kwargs": self.proxy_kwargs,
                "strategy_kwargs": self.strategy_kwargs,
                **overrides,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["proxy"] = self.proxy if isinstance(self.proxy, str) else self.proxy.name
        out["strategy"] = self.strategy if isinstance(self.strategy, str) else self.strategy.name
        return out


def plan_rounds(config: ActiveLearningConfig, pool_size: int) -> list[tuple[int, int]]:
    """``(target labeled size, query size)`` for every round; round 0 is the random initial set."""
    n0 = resolve_budget(config.initial, pool_size)
    targets = [resolve_budget(b, pool_size) for b in config.budgets]
    previous = n0
    for t in targets:
        if t <= previous:
            raise BudgetError(
                f"budgets must grow: {t} rows is not more than the {previous} rows labeled before it "
                f"(initial {n0}, budgets {targets})"
            )
        previous = t
    if config.batch_size == "auto":
        step = n0
    else:
        step = resolve_budget(config.batch_size, pool_size) if config.batch_size is not None else None
    plan = [(n0, n0)]
    size = n0
    for target in targets:
        while size < target:
            batch = target - size if step is None else min(step, target - size)
            size += batch
            plan.append((target, batch))
    return plan


def round_seed(seed: int, round_index: int) -> int:
    """A per-round seed that depends only on the run's seed and the round (never on process history)."""
    return int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0] % (2**31))


@dataclass
class ActiveLearningState:
    """The labeled rows after the last completed round."""

    indices: np.ndarray  # pool rows, in the order they were labeled
    labels: np.ndarray  # label ids
    rounds: np.ndarray  # the round each row was labeled in
    records: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> ActiveLearningState:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32), [])

    @property
    def completed_rounds(self) -> int:
        return len(self.records)


class ActiveLearner:
    """Runs (or resumes) an active-learning loop whose state lives in ``output_dir``.

    Example:
        ```python
        >>> learner = ActiveLearner(pool, "out/al", ActiveLearningConfig(proxy="fasttext", strategy="margin"))
        >>> state = learner.run()                      # simulation: labels come from the label column
        >>> datasets.load_from_disk("out/al/labeled")
        ```

    With ``oracle="human"`` each query is written to ``pending/`` and `run` returns; call `import_labels` with the
    filled file (or rerun the CLI with ``--labels FILE``) to continue.
    """

    def __init__(
        self,
        pool,
        output_dir: str | os.PathLike,
        config: ActiveLearningConfig,
        *,
        oracle: str = "simulate",
        eval_dataset=None,
        source: dict[str, Any] | None = None,
        oracle_options: dict[str, Any] | None = None,
    ):
        self.pool = ensure_dataset(pool)
        self.source = source or {}
        inputs = [self.pool, eval_dataset, self.source.get("dataset")]
        self.dir = check_output_path(output_dir, inputs=inputs, resumable=True)  # a rerun continues in it
        self.config = config
        if oracle not in ORACLES:
            raise ConfigError(f"oracle must be one of {', '.join(repr(n) for n in ORACLES)}, got {oracle!r}")
        self.oracle = oracle
        self.eval_dataset = eval_dataset
        self._fingerprint: str | None = None
        self.waiting: str | None = None  # set by `run` when the oracle's pending round is not fully answered yet
        check_input_column(self.pool, config.text_column, config.image_column)
        self.task = self._task()
        self.labeler = build_oracle(oracle, self.pool, self.task, self.dir, **(oracle_options or {}))
        self.plan = plan_rounds(config, self.pool.num_rows)

    # -- setup ----------------------------------------------------------------------------------------------
    def _task(self) -> ClassificationTask:
        c = self.config
        if c.label_column in self.pool.column_names:
            task = task_from_dataset(self.pool, c.text_column, c.label_column, c.image_column)
            if c.label_names and list(c.label_names) != list(task.label_names):
                raise ConfigError(
                    f"label_names {c.label_names} differ from the pool's classes {list(task.label_names)}"
                )
            return task
        if self.oracle == "simulate":
            raise ConfigError(
                f"simulated labeling reads labels from column {c.label_column!r}, which the pool lacks; "
                "pass --label-column, or use the human oracle with --label-names"
            )
        if not c.label_names or len(c.label_names) < 2:
            raise ConfigError("the pool has no label column: give the classes with label_names (--label-names a,b)")
        names = tuple(str(n) for n in c.label_names)
        if c.image_column:
            return ImageClassificationTask(names, c.image_column, c.label_column, "str", names)
        return TextClassificationTask(names, c.text_column, c.label_column, "str", names)

    def load_state(self) -> ActiveLearningState:
        """The state on disk (checked against this run's config), or an empty one for a new run."""
        state_file = self.dir / STATE_FILE
        if not state_file.exists():
            if self.dir.exists() and any(self.dir.iterdir()):
                raise OutputExistsError(
                    f"{self.dir} exists and is not an active-learning folder (no {STATE_FILE}); choose another"
                )
            return ActiveLearningState.empty()
        saved = json.loads(state_file.read_text())
        self._check_resume(saved)
        if not saved["records"]:
            return ActiveLearningState.empty()
        with np.load(self.dir / saved["state_file"]) as arrays:
            return ActiveLearningState(arrays["indices"], arrays["labels"], arrays["rounds"], saved["records"])

    def _check_resume(self, saved: dict[str, Any]) -> None:
        old, new = saved["config"], json.loads(json.dumps(self.config.to_dict()))
        old.setdefault("initial_strategy", "random")  # runs from before the setting existed
        differ = sorted(k for k in set(old) | set(new) if k != "budgets" and old.get(k) != new.get(k))
        if old["budgets"] != new["budgets"][: len(old["budgets"])]:
            differ.append("budgets (only extending the schedule is allowed)")
        if differ:
            detail = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" if k in old else k for k in differ)
            raise ConfigError(f"{self.dir} holds a run with other settings ({detail}); use a new --output-dir")
        if saved["pool_size"] != self.pool.num_rows:
            raise ConfigError(
                f"{self.dir} was made from a pool of {saved['pool_size']} rows, this pool has {self.pool.num_rows}"
            )
        recorded = saved.get("pool_fingerprint")  # absent in runs from before it was recorded
        if recorded is not None and recorded != self.pool_fingerprint():
            was = saved.get("source") or {}
            where = f" ({was.get('dataset')} split {was.get('split')})" if was.get("dataset") else ""
            now = (
                f" ({self.source.get('dataset')} split {self.source.get('split')})"
                if self.source.get("dataset")
                else ""
            )
            raise ConfigError(
                f"{self.dir} was made from another pool{where} than this one{now}: the same number of rows, but other "
                "inputs or labels, so resuming would attach its labels to other rows; use a new --output-dir"
            )

    def pool_fingerprint(self) -> str:
        """A hash of the pool's inputs (texts, or images) and label ids, in order: what a resumed run must match."""
        if self._fingerprint is None:
            import hashlib

            h = hashlib.blake2b(digest_size=16)
            if self.task.modality == "text":
                # the data itself, not what a proxy reads of it (max_words)
                batches = iter_text_batches(self.pool, self.task.input_column)
                h.update(texts_digest([t for b in batches for t in b.to_pylist()]).encode())
            else:
                for batch in self.pool.with_format("arrow").iter(batch_size=1024):
                    for item in batch.column(self.task.input_column).to_pylist():
                        h.update(
                            repr(sorted(item.items())).encode() if isinstance(item, dict) else repr(item).encode()
                        )
            if self.config.label_column in self.pool.column_names:
                h.update(np.ascontiguousarray(self.task.encode_labels(self.pool), dtype=np.int64).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self, max_rounds: int | None = None, *, accept_partial: bool = False) -> ActiveLearningState:
        """Run rounds until the schedule ends (or ``max_rounds`` more rounds, or a human oracle must answer).

        An oracle that fetches answers itself (Label Studio) first collects the pending round; if people have not
        finished it, the run returns with the round still pending (``accept_partial``: commit what is answered)."""
        if max_rounds is not None and (
            isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1
        ):
            raise ConfigError(f"max_rounds must be a positive number of rounds, got {max_rounds!r}")
        state = self.load_state()
        self.labeler.prepare()  # a server that is not there, or refuses the key, fails before any work or write
        self._write_derived(state)
        pending = self._pending()
        if pending is not None and self.labeler.collects_itself:
            try:
                state = self.import_labels(None, accept_partial=accept_partial)
            except LabelsPending as waiting:
                self.waiting = str(waiting)  # what the CLI tells the user
                return state
            pending = None
        if pending is not None:
            raise LabelError(
                f"round {pending['round']} is waiting for labels: fill {self.dir / pending['files'][1]} and run again "
                "with --labels FILE (import_labels in Python)"
            )
        done = 0
        while state.completed_rounds < len(self.plan) and (max_rounds is None or done < max_rounds):
            query = self._query(state)
            if not self.labeler.answers_now:
                _on_main(lambda q=query: self._hand_over(q), "writing the pending round")
                logger.info(
                    "round %d: %d rows to label in %s; fill the label column and rerun with --labels FILE",
                    query["round"], len(query["indices"]), self.dir / "pending",
                )  # fmt: skip
                return state
            state = self._commit(state, query, self.labeler.ask(query))
            done += 1
        if state.completed_rounds >= len(self.plan):
            state = self._finish(state)
            _on_main(lambda: plot_learning_curve(state.records, self.dir / "learning_curve.png"), "plotting")
        return state

    def _finish(self, state: ActiveLearningState) -> ActiveLearningState:
        """Once the schedule is done: the proxy fitted on the final labeled set, its self-check and (with an eval
        split) its accuracy, added to the last round's record as ``final_proxy`` (once; a rerun keeps it)."""
        last = state.records[-1]
        if "final_proxy" in last:
            return state
        proxy = self.fit_proxy(state)
        final = {"labeled": int(len(state.indices)), **proxy_report(proxy)}
        if self.eval_dataset is not None:
            final["proxy_eval_accuracy"] = self.evaluate(proxy)
        records = [*state.records[:-1], {**last, "final_proxy": final}]
        new = ActiveLearningState(state.indices, state.labels, state.rounds, records)
        saved = json.loads((self.dir / STATE_FILE).read_text())

        def write():
            write_json_atomic(self.dir / STATE_FILE, self._state_document(saved["state_file"], records, pending=None))
            self._write_derived(new)

        _on_main(write, "recording the final proxy")
        return new

    def _query(self, state: ActiveLearningState) -> dict[str, Any]:
        r = state.completed_rounds
        target, batch = self.plan[r]
        seed = round_seed(self.config.seed, r)
        t0 = time.perf_counter()
        if r == 0:
            result = None
            if self.config.stratified:
                indices = self._stratified_initial(batch, seed)
            elif self.config.initial_strategy != "random":
                indices = self._label_free_initial(batch, seed)
            else:
                indices = select(
                    self.pool,
                    self.config.selection_config(strategy="random", strategy_kwargs={}, budget=batch, seed=seed),
                ).indices
            scores = np.full(self.pool.num_rows, np.nan, dtype=np.float32)
            timings = {"proxy_fit": 0.0, "proxy_score": 0.0, "strategy": time.perf_counter() - t0}
        else:
            result = select(
                self.pool,
                self.config.selection_config(budget=batch, seed=seed),
                labeled_indices=state.indices,
                labels=state.labels,
                task=self.task,
            )
            indices, scores, timings = result.indices, result.scores, dict(result.timings)
        record = {
            "round": r,
            "target": target,
            "queried": int(len(indices)),
            "labeled_before": int(len(state.indices)),
            "labeled_after": int(len(state.indices) + len(indices)),
            "strategy": self.config.initial_strategy if r == 0 else (self.config.to_dict()["strategy"]),
            "seed": seed,
            "timings_s": {k: round(float(v), 6) for k, v in timings.items() if k != "total"},
        }
        if result is not None and result.proxy is not None:
            record.update(proxy_report(result.proxy))
        probs = None
        if result is not None and result.proxy is not None and not self.labeler.answers_now:
            # the proxy's guess for each queried row: what annotation tools show people as a pre-annotation
            probs = result.proxy.predict_proba(self.pool.select(indices))
        if result is not None and self.eval_dataset is not None:
            # random selection trains no proxy; one is trained here for the report only (not timed as selection)
            proxy = result.proxy if result.proxy is not None else self.fit_proxy(state)
            record["proxy_eval_accuracy"] = self.evaluate(proxy)
        query = {"round": r, "indices": np.asarray(indices, dtype=np.int64), "scores": scores, "record": record}
        query["proxy"] = self.config.to_dict()["proxy"] if result is not None else None
        return query if probs is None else {**query, "probs": probs}

    def _label_free_initial(self, n: int, seed: int) -> np.ndarray:
        """The first labeled set by ``initial_strategy`` on the proxy's label-free embeddings of the pool."""
        c = self.config
        proxy = build_proxy(c.proxy, seed=seed, **c.proxy_kwargs)
        embeddings = proxy.label_free_embeddings(self.pool, self.task)
        outputs = ProxyOutputs(num_rows=self.pool.num_rows, embeddings=embeddings)
        exclude = self.task.empty_input_mask(self.pool)
        return build_strategy(c.initial_strategy).select(outputs, n, exclude=exclude, seed=seed).indices

    def _stratified_initial(self, n: int, seed: int) -> np.ndarray:
        ids = self.task.encode_labels(self.pool)
        if (ids < 0).any():
            raise LabelError("a stratified initial set needs every pool row labeled")
        rng = np.random.default_rng(seed)
        counts = np.bincount(ids, minlength=self.task.num_labels)
        quota = np.floor(counts / counts.sum() * n).astype(int)
        leftover = np.argsort(-(counts / counts.sum() * n - quota), kind="stable")[: n - quota.sum()]
        quota[leftover] += 1
        picks = [rng.choice(np.flatnonzero(ids == c), size=q, replace=False) for c, q in enumerate(quota) if q]
        return rng.permutation(np.concatenate(picks)).astype(np.int64)

    def fit_proxy(self, state: ActiveLearningState | None = None) -> Proxy:
        """A proxy trained on the labeled rows of ``state`` (default: the state on disk), e.g. to score new data."""
        state = self.load_state() if state is None else state
        if not len(state.indices):
            raise LabelError("no labeled rows yet")
        c = self.config.selection_config(budget=1)
        proxy = build_proxy(c.proxy, seed=c.seed, **c.proxy_kwargs)
        train, task = _with_oracle_labels(self.pool.select(state.indices), state.labels, self.task)
        return proxy.fit(train, task, unlabeled=self.pool)

    def evaluate(self, proxy: Proxy, dataset=None) -> float:
        """Accuracy of ``proxy`` on ``dataset`` (default: the eval dataset) over its labeled rows."""
        dataset = self.eval_dataset if dataset is None else dataset
        ids = self.task.encode_labels(dataset)
        keep = ids >= 0
        probs = proxy.predict_proba(dataset)
        return round(float((probs.argmax(1)[keep] == ids[keep]).mean()), 6)

    # -- state on disk --------------------------------------------------------------------------------------
    def _commit(self, state: ActiveLearningState, query: dict[str, Any], labels: np.ndarray) -> ActiveLearningState:
        r = query["round"]
        new = ActiveLearningState(
            indices=np.concatenate([state.indices, query["indices"]]),
            labels=np.concatenate([state.labels, labels.astype(np.int64)]),
            rounds=np.concatenate([state.rounds, np.full(len(query["indices"]), r, np.int32)]),
            records=[*state.records, {**query["record"], "class_counts": self._class_counts(state, labels)}],
        )
        name = f"round_{r:04d}"

        def write():
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_file(self.dir / "state" / f"{name}.npz") as tmp:
                np.savez(tmp, indices=new.indices, labels=new.labels, rounds=new.rounds)
            with atomic_file(self.dir / "scores" / f"{name}.npy") as tmp:
                np.save(tmp, query["scores"])
            write_json_atomic(
                self.dir / STATE_FILE, self._state_document(f"state/{name}.npz", new.records, pending=None)
            )  # the commit point: everything below is derived from it
            self._write_derived(new)
            for stale in (self.dir / "pending").glob(f"{name}.*"):
                stale.unlink()
            shutil.rmtree(self.dir / "pending" / f"{name}_images", ignore_errors=True)

        _on_main(write, f"committing round {r}")
        return new

    def _state_document(self, state_file: str | None, records: list, pending: dict | None) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "svp_hf_version": __version__,
            "config": self.config.to_dict(),
            "source": self.source,
            "pool_size": self.pool.num_rows,
            "pool_fingerprint": self.pool_fingerprint(),
            "label_names": list(self.task.label_names),
            "state_file": state_file,
            "records": records,
            "pending": pending,
        }

    def _class_counts(self, state: ActiveLearningState, labels: np.ndarray) -> dict[str, int]:
        all_labels = np.concatenate([state.labels, labels])
        counts = np.bincount(all_labels, minlength=self.task.num_labels)
        return {name: int(c) for name, c in zip(self.task.label_names, counts)}

    def _write_derived(self, state: ActiveLearningState) -> None:
        _on_main(lambda: self._write_derived_files(state), f"writing {self.dir}")

    def _write_derived_files(self, state: ActiveLearningState) -> None:
        if not state.records:
            return
        lines = "".join(json.dumps(r) + "\n" for r in state.records)
        rounds_file = self.dir / ROUNDS_FILE
        if not rounds_file.exists() or rounds_file.read_text() != lines:
            with atomic_file(rounds_file) as tmp:
                tmp.write_text(lines)
        labeled_dir = self.dir / "labeled"
        info = labeled_dir / "svp_state.json"
        if info.exists() and json.loads(info.read_text()).get("rounds") == state.completed_rounds:
            return
        with atomic_directory(labeled_dir, overwrite=True) as tmp:
            self.labeled_dataset(state).save_to_disk(str(tmp))
            (tmp / "svp_state.json").write_text(json.dumps({"rounds": state.completed_rounds}))

    def labeled_dataset(self, state: ActiveLearningState):
        """The labeled rows with their (oracle) labels, ``svp_pool_index`` and ``svp_round``."""
        import datasets

        ds = self.pool.select(state.indices)
        c = self.config
        if c.label_column in ds.column_names:
            ds = ds.remove_columns(c.label_column)
        feature = datasets.ClassLabel(names=list(self.task.label_names))
        ds = ds.add_column(c.label_column, state.labels.tolist(), feature=feature)
        ds = ds.add_column("svp_pool_index", state.indices.astype(np.int64))
        return ds.add_column("svp_round", state.rounds.astype(np.int32))

    # -- queries that people answer later -------------------------------------------------------------------
    def _hand_over(self, query: dict[str, Any]) -> None:
        """Give the query to the oracle, then record it as pending: the rows and scores in ``pending/`` and the round
        in ``state.json`` (written last, so a run killed before it asks the same query again)."""
        r = query["round"]
        if not (self.dir / STATE_FILE).exists():  # first the folder becomes this run's: a run killed while the oracle
            self.dir.mkdir(parents=True, exist_ok=True)  # writes its files resumes here instead of refusing it
            write_json_atomic(self.dir / STATE_FILE, self._state_document(None, [], pending=None))
        self.labeler.ask(query)
        with atomic_file(self.dir / "pending" / f"round_{r:04d}.npz") as tmp:
            extra = {"probs": query["probs"]} if "probs" in query else {}
            np.savez(tmp, indices=query["indices"], scores=query["scores"], **extra)
        saved = json.loads((self.dir / STATE_FILE).read_text()) if (self.dir / STATE_FILE).exists() else {}
        pending = {"round": r, "files": self.labeler.pending_files(r), "record": query["record"]}
        document = self._state_document(saved.get("state_file"), saved.get("records", []), pending)
        write_json_atomic(self.dir / STATE_FILE, document)

    def _pending(self) -> dict[str, Any] | None:
        state_file = self.dir / STATE_FILE
        if not state_file.exists():
            return None
        return json.loads(state_file.read_text()).get("pending")

    def import_labels(self, path: str | os.PathLike | None, *, accept_partial: bool = False) -> ActiveLearningState:
        """Import the answer to the pending round and commit the round: a filled label file
        (`svp_hf.oracles.read_label_file` says what is accepted) or a Label Studio JSON export
        (`svp_hf.labelstudio.read_export`). Any problem raises `LabelError` and leaves the state unchanged.

        With ``accept_partial`` a round that people answered only in part commits the answered rows; the others go
        back to the pool (later queries may pick them again), so the labeled set stays that many rows below the
        round's target. The round's record counts them (``answered``, ``returned_to_pool``)."""
        state = self.load_state()
        pending = self._pending()
        if pending is None:
            raise LabelError(f"{self.dir} has no round waiting for labels")
        r = pending["round"]
        with np.load(self.dir / "pending" / f"round_{r:04d}.npz") as arrays:
            indices, scores = arrays["indices"], arrays["scores"]
        got = self.labeler.collect(path, r, indices, accept_partial=accept_partial)
        answered = got.labels >= 0
        record = {**pending["record"], **got.notes}
        if not answered.all():
            record.update(
                answered=int(answered.sum()),
                returned_to_pool=int((~answered).sum()),
                labeled_after=int(len(state.indices) + answered.sum()),
            )
        query = {"round": r, "indices": indices[answered], "scores": scores, "record": record}
        return self._commit(state, query, got.labels[answered])


def proxy_report(proxy: Proxy) -> dict[str, Any]:
    """What a round records about its fitted proxy: the self-check and, when tuned, the settings chosen."""
    out: dict[str, Any] = {}
    if proxy.self_check is not None:
        out["proxy_self_check"] = proxy.self_check
    if proxy.tuning is not None:
        out["proxy_tuned"] = proxy.tuning.get("chosen", {})
    chosen = getattr(proxy, "chosen", None)
    if chosen is not None:  # --proxy auto: the proxy it picked
        out["proxy_chosen"] = chosen
    return out


def _on_main(fn, what: str):
    """Run a disk write once: on the main process when several run (`select` inside works across them), else here."""
    from .distributed import current

    dist = current()
    return fn() if dist is None else dist.on_main(fn, what)


def plot_learning_curve(records: list[dict[str, Any]], path: Path) -> Path | None:
    """Proxy accuracy (when an eval split was given) and selection time per round, as a PNG. Skipped with a log
    line when matplotlib is not installed; a plotting failure never stops a run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed; no learning curve plotted (pip install matplotlib)")
        return None
    try:
        sizes = [r["labeled_before"] for r in records[1:]]
        accuracy = [r.get("proxy_eval_accuracy") for r in records[1:]]
        times = [sum(r["timings_s"].values()) for r in records]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        if any(a is not None for a in accuracy):
            axes[0].plot(sizes, accuracy, marker="o")
            axes[0].set_ylabel("proxy accuracy (eval split)")
        else:
            axes[0].text(0.5, 0.5, "no --eval-split given", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_xlabel("labeled rows the proxy trained on")
        axes[0].set_title("learning curve")
        axes[1].bar([r["round"] for r in records], times)
        axes[1].set_xlabel("round")
        axes[1].set_ylabel("selection time (s): fit + score + rank")
        axes[1].set_title("selection time per round")
        fig.tight_layout()
        with atomic_file(path) as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)
        return path
    except Exception as err:  # a plot must never cost the user a finished run
        logger.warning("could not plot the learning curve: %s", err)
        return None
