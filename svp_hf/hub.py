"""Publishing a selection on the Hugging Face Hub: the rows as Parquet, a dataset card and ``selection_config.json``.

    svp-hf push out/ag_news_entropy some-user/agnews-svp                  # upload
    svp-hf push out/ag_news_entropy some-user/agnews-svp --local-dir hub  # write the upload, upload nothing

The upload is one folder: ``data/train-NNNNN-of-NNNNN.parquet`` (the selected rows with their provenance columns),
``README.md`` (the dataset card, whose ``configs`` metadata points the Hub's loader and viewer at the data files),
``selection_config.json`` and, for a selection, ``svp_pool_scores.npy``. ``--local-dir`` writes exactly that folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, HubError
from .io import atomic_directory, write_json_atomic

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
        if not (folder / "labeled").is_dir():
            raise ConfigError(f"{folder} is an active-learning folder without labeled/ rows yet; run a round first")
        return datasets.load_from_disk(str(folder / "labeled")), _active_record(state), None
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
        "active_learning_rounds": records,
    }


def prepare_upload(source, out_dir: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the folder that `push_to_hub` uploads (atomically) and return its path."""
    from .cards import render_dataset_card

    dataset, record, scores = load_publishable(source)
    num_shards = max(1, math.ceil(_nbytes(dataset) / MAX_SHARD_BYTES))
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        (tmp / "data").mkdir()
        for i in range(num_shards):
            shard = dataset.shard(num_shards, i, contiguous=True) if num_shards > 1 else dataset
            shard.to_parquet(str(tmp / "data" / f"train-{i:05d}-of-{num_shards:05d}.parquet"))
        write_json_atomic(tmp / "selection_config.json", record)
        if scores is not None:
            np.save(tmp / "svp_pool_scores.npy", scores)
        (tmp / "README.md").write_text(render_dataset_card(record, data_files=DATA_FILES))
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

    with tempfile.TemporaryDirectory(prefix="svp_push_") as tmp:
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
