"""Publishing a selection on the Hugging Face Hub: the rows as Parquet, a dataset card and ``selection_config.json``.

    svp-hf push out/ag_news_entropy some-user/agnews-svp                  # upload
    svp-hf push out/ag_news_entropy some-user/agnews-svp --local-dir hub  # write the upload, upload nothing

The upload is one folder: ``data/train-NNNNN-of-NNNNN.parquet`` (the selected rows with their provenance columns),
``README.md`` (the dataset card, whose ``configs`` metadata points the Hub's loader and viewer at the data files),
``selection_config.json`` and, for a selection, ``svp_pool_scores.npy``. ``--local-dir`` writes exactly that folder.

An active-learning folder can be pushed before its run ends (a human oracle's query awaiting labels, or a run stopped
early): the upload holds the committed rounds only, and the card says plainly that the run is unfinished, how far it
got and what it waits for (``selection_config.json``: ``finished``, ``planned_labeled``, ``pending_round``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .data import resolve_budget
from .errors import ConfigError, HubError
from .io import atomic_directory, check_output_path, scratch_dir, write_json_atomic

logger = logging.getLogger(__name__)

DATA_FILES = "data/train-*"
MAX_SHARD_BYTES = 500 << 20  # the Hub's recommended Parquet file size is a few hundred MB


def load_publishable(source) -> tuple[Any, dict[str, Any], np.ndarray | None]:
    """``(dataset, selection record, pool scores or None)`` from a `SelectionResult`, a selection folder
    (``svp-hf select`` / ``coreset``) or an active-learning folder (``svp-hf active-learn``)."""
    import datasets

    from .selection import CONFIG_FILE, SCORES_FILE, SelectionResult

    if isinstance(source, SelectionResult):
        return source.dataset, source.selection_config(), source.scores
    folder = Path(source)
    if (folder / CONFIG_FILE).is_file():
        scores = np.load(folder / SCORES_FILE) if (folder / SCORES_FILE).is_file() else None
        return datasets.load_from_disk(str(folder)), json.loads((folder / CONFIG_FILE).read_text()), scores
    if (folder / "state.json").is_file():  # (after the check above: save_to_disk writes a state.json too)
        state = json.loads((folder / "state.json").read_text())
        record = _active_record(state)
        pending = state.get("pending")
        if not (folder / "labeled").is_dir():
            if pending and not state.get("records"):
                raise ConfigError(
                    f"{folder} has no labeled rows yet: round {pending['round']} waits for labels; fill "
                    f"{folder / pending['files'][1]} and import it (svp-hf active-learn ... --labels FILE), then push"
                )
            raise ConfigError(f"{folder} is an active-learning folder without labeled/ rows yet; run a round first")
        labeled = datasets.load_from_disk(str(folder / "labeled"))
        if labeled.num_rows != record["num_selected"]:  # stopped between its commit point and rebuilding labeled/
            raise ConfigError(
                f"{folder / 'labeled'} holds {labeled.num_rows} rows, but the {record['rounds']} rounds committed in "
                f"state.json labeled {record['num_selected']}; rerun svp-hf active-learn on {folder} (it rebuilds "
                "labeled/ first), then push"
            )
        if not record["finished"]:
            logger.warning("%s is an unfinished active-learning run: %s", folder, _progress(record))
        return labeled, record, None
    raise ConfigError(
        f"{folder} is neither a selection folder (with {CONFIG_FILE}, from svp-hf select / coreset) nor an "
        "active-learning folder (with state.json)"
    )


def _active_record(state: dict[str, Any]) -> dict[str, Any]:
    """A selection record (the keys of ``selection_config.json`` the card reads) for an active-learning run."""
    records = state.get("records") or []
    config = dict(state.get("config") or {})
    last = records[-1] if records else {}
    timings: dict[str, float] = {}
    for r in records:
        for k, v in (r.get("timings_s") or {}).items():
            timings[k] = round(timings.get(k, 0.0) + float(v), 6)
    if timings:
        timings["total"] = round(sum(timings.values()), 6)
    evaluated = [r for r in records if "proxy_eval_accuracy" in r]
    labeled = last.get("labeled_after", 0)
    try:
        planned = resolve_budget(config["budgets"][-1], int(state["pool_size"]))
    except (KeyError, IndexError, TypeError, ValueError):  # an odd state.json: judged by the final proxy alone
        planned = None
    pending = state.get("pending")
    finished = not pending and ("final_proxy" in last if planned is None else labeled >= planned)
    return {
        "svp_hf_version": state.get("svp_hf_version"),
        "mode": "active_learning",
        "command": state.get("command"),
        "source": state.get("source") or {},
        "pool_size": state.get("pool_size"),
        "num_selected": last.get("labeled_after", 0),
        "config": {**config, "budget": config.get("budgets")},
        "proxy_used": True,
        "rounds": len(records),
        "proxy_eval_accuracy": evaluated[-1]["proxy_eval_accuracy"] if evaluated else None,
        "class_counts": {"labeled": last.get("class_counts", {})} if last.get("class_counts") else None,
        "timings_s": timings,
        "active_learning_rounds": records,  # committed rounds only: a pending query's rows are not in the data
        "finished": finished,
        "planned_labeled": planned,
        "pending_round": {"round": pending["round"], "queried": (pending.get("record") or {}).get("queried")}
        if pending
        else None,
    }


def _progress(record: dict[str, Any]) -> str:
    """Where an unfinished active-learning run stands, in one sentence."""
    planned = record.get("planned_labeled")
    text = f"{record['num_selected']} rows"
    if planned:
        text += f" of the {planned} its schedule plans (budgets {record['config'].get('budgets')})"
    text += f" are labeled, in {record['rounds']} committed round(s)"
    pending = record.get("pending_round")
    if pending:
        queried = f" ({pending['queried']} rows)" if pending.get("queried") is not None else ""
        return f"{text}; the query of round {pending['round']}{queried} awaits labels and is not in the data"
    return f"{text}; the run was stopped before its schedule ended (svp-hf active-learn on the same folder resumes it)"


def _unfinished_card(record: dict[str, Any]) -> str:
    """The card of an unfinished active-learning run: it describes the committed rounds only and says that the run is
    unfinished (the template's sentence on active learning assumes a finished run)."""
    from .cards import render_dataset_card

    cfg = record.get("config") or {}
    rounds = record.get("active_learning_rounds") or []
    initial = (rounds[0].get("strategy") if rounds else None) or cfg.get("initial_strategy") or "random"
    shown = dict(record)
    shown["config"] = {**cfg, "budget": f"{cfg.get('budgets')}, unfinished"}
    if len(rounds) <= 1:  # only the initial set: the strategy and proxy of the schedule chose none of these rows
        shown["config"]["strategy"] = initial
        shown["proxy_used"] = initial != "random"  # typiclust / kcenters read the proxy's label-free embeddings
        how = (
            f"round 0 only, the initial set chosen by **{initial}**; the **{cfg.get('strategy')}** strategy on a "
            f"**{cfg.get('proxy')}** proxy has chosen none of these rows yet"
        )
    else:
        how = (
            f"round 0, the initial set chosen by **{initial}**, then {len(rounds) - 1} round(s) in which a "
            f"**{cfg.get('proxy')}** proxy was retrained from scratch on the labeled rows and the "
            f"**{cfg.get('strategy')}** strategy chose the next rows to label"
        )
    note = f"**This active-learning run is unfinished**: {_progress(record)}. Committed so far: {how}."
    lines = render_dataset_card(shown, data_files=DATA_FILES).split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith("Active learning: ")), None)
    if at is not None:
        lines[at] = note
    else:  # another template: the note goes before the settings
        at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
        lines[at:at] = [note, ""]
    return "\n".join(lines)


def prepare_upload(source, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the folder that `push_to_hub` uploads (atomically) and return its path."""
    from .cards import render_dataset_card

    dataset, record, scores = load_publishable(source)
    num_shards = max(1, math.ceil(_nbytes(dataset) / MAX_SHARD_BYTES))
    out_dir = check_output_path(out_dir, overwrite=overwrite, inputs=[source, dataset])
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        (tmp / "data").mkdir()
        for i in range(num_shards):
            shard = dataset.shard(num_shards, i, contiguous=True) if num_shards > 1 else dataset
            shard.to_parquet(str(tmp / "data" / f"train-{i:05d}-of-{num_shards:05d}.parquet"))
        write_json_atomic(tmp / "selection_config.json", record)
        if scores is not None:
            np.save(tmp / "svp_pool_scores.npy", scores)
        unfinished = record.get("mode") == "active_learning" and record.get("finished") is False
        card = _unfinished_card(record) if unfinished else render_dataset_card(record, data_files=DATA_FILES)
        (tmp / "README.md").write_text(card)
    return out_dir


def push_to_hub(
    source,
    repo_id: str,
    *,
    local_dir: str | os.PathLike | None = None,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str | None = None,
    overwrite: bool = False,
) -> str:
    """Upload a selection (a `SelectionResult` or a saved folder) to the dataset repository ``repo_id``.

    With ``local_dir`` nothing is uploaded: the exact upload is written there instead. Returns the repository URL
    (or the local folder). The card is checked by the Hub's validator before the upload; under several processes
    only the main one uploads.
    """
    from .distributed import current

    check_repo_id(repo_id, upload=local_dir is None)
    dist = current()
    if dist is not None:
        out = dist.on_main(lambda: _push(source, repo_id, local_dir, private, token, revision, commit_message,
                                         overwrite), f"pushing to {repo_id}")  # fmt: skip
        return out if out is not None else f"https://huggingface.co/datasets/{repo_id}"
    return _push(source, repo_id, local_dir, private, token, revision, commit_message, overwrite)


def check_repo_id(repo_id: str, upload: bool = True) -> None:
    """Fail early (before any selection work) on a malformed repository id, or on an upload in offline mode."""
    from huggingface_hub import constants
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ConfigError(f"invalid repository id {repo_id!r}: {err}; expected 'user-or-org/name'") from None
    if "/" not in repo_id:
        raise ConfigError(f"repository id {repo_id!r} needs a namespace: 'user-or-org/{repo_id}'")
    if upload and constants.HF_HUB_OFFLINE:
        raise HubError(f"HF_HUB_OFFLINE is set, so nothing can be uploaded to {repo_id}; unset it, or use "
                       "svp-hf push DIR REPO_ID --local-dir OUT to write what would be uploaded")  # fmt: skip


def _push(source, repo_id, local_dir, private, token, revision, commit_message, overwrite) -> str:
    if local_dir is not None:
        return str(prepare_upload(source, local_dir, overwrite=overwrite))
    from huggingface_hub import DatasetCard, HfApi

    with scratch_dir("svp_push_") as tmp:
        folder = prepare_upload(source, Path(tmp) / "upload")
        try:
            DatasetCard((folder / "README.md").read_text()).validate(repo_type="dataset")
        except ValueError as err:
            raise HubError(f"the Hub rejected the dataset card: {err}") from err
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            info = api.upload_folder(
                repo_id=repo_id, folder_path=str(folder), repo_type="dataset", revision=revision,
                commit_message=commit_message or "Upload a selection made with svp-hf",
            )  # fmt: skip
        except Exception as err:  # network, authentication, permissions: one clear line
            raise HubError(f"upload to {repo_id} failed: {type(err).__name__}: {str(err).splitlines()[0]}") from err
    logger.info("uploaded to %s", info)
    return f"https://huggingface.co/datasets/{repo_id}"


def _nbytes(dataset) -> int:
    try:
        return int(dataset.data.nbytes)
    except Exception:
        return 0
