"""Publishing selections: everything but the network is tested offline; the real upload is marked `hub`."""

import json
import os
import subprocess
import sys

import datasets
import numpy as np
import pytest
import yaml
from huggingface_hub import DatasetCard, DatasetCardData

import svp_hf
from svp_hf.hub import prepare_upload, push_to_hub


def svp(*args, env=None):
    return subprocess.run([sys.executable, "-m", "svp_hf", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def selection_dir(ag_news_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("sel") / "selected"
    done = svp("select", "--dataset", ag_news_path, "--split", "train[:1500]", "--proxy", "tfidf", "--strategy",
               "margin", "--budget", "150", "--seed", "0", "--output-dir", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_push_local_dir_writes_exactly_the_upload(selection_dir, tmp_path):
    hub = tmp_path / "hub"
    done = svp("push", selection_dir, "some-user/agnews-svp", "--local-dir", hub)
    assert done.returncode == 0, done.stderr
    assert "nothing uploaded" in done.stdout
    files = sorted(str(p.relative_to(hub)) for p in hub.rglob("*") if p.is_file())
    assert files == ["README.md", "data/train-00000-of-00001.parquet", "selection_config.json", "svp_pool_scores.npy"]

    card_text = (hub / "README.md").read_text()
    card = DatasetCard(card_text)  # huggingface_hub parses the YAML front matter into DatasetCardData
    assert isinstance(card.data, DatasetCardData)
    meta = card.data.to_dict()
    assert {"svp-hf", "strategy:margin", "proxy:tfidf"} <= set(meta["tags"])
    assert meta["task_categories"] == ["text-classification"] and meta["size_categories"] == ["n<1K"]
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "data/train-*"}]
    assert front_matter(card_text) == meta  # plain YAML too
    for expected in ("150** of the **1500** rows", "| proxy | `tfidf`", "## Timings", "| proxy_fit |",
                     "## Classes before and after selection", "| World |", "svp-hf select --dataset",
                     "@inproceedings{coleman2020selection"):  # fmt: skip
        assert expected in card_text, expected
    assert "None" not in card_text

    # the Hub's loader reads the card's `configs`: the uploaded rows are the selection, in order
    uploaded = datasets.load_dataset(str(hub), split="train", cache_dir=str(tmp_path / "cache"))
    local = datasets.load_from_disk(str(selection_dir))
    assert uploaded[:]["svp_pool_index"] == local[:]["svp_pool_index"]
    assert uploaded.features["label"] == local.features["label"]  # ClassLabel names kept
    assert json.loads((hub / "selection_config.json").read_text()) == json.loads(
        (selection_dir / "selection_config.json").read_text()
    )
    np.testing.assert_array_equal(np.load(hub / "svp_pool_scores.npy"), np.load(selection_dir / "svp_pool_scores.npy"))


def test_push_uploads_the_same_folder_it_would_write(selection_dir, tmp_path, monkeypatch):
    """The upload path, with the Hub client recorded instead of reached (no network here)."""
    import huggingface_hub

    calls = []

    class RecordingApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_folder(self, *, repo_id, folder_path, repo_type, **kwargs):
            from pathlib import Path

            folder = Path(folder_path)
            calls.append(("upload", repo_id, repo_type, {str(p.relative_to(folder)): p.read_bytes()
                                                         for p in folder.rglob("*") if p.is_file()}))  # fmt: skip

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.setattr(huggingface_hub.DatasetCard, "validate", lambda self, repo_type=None: calls.append("valid"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    url = push_to_hub(selection_dir, "some-user/agnews-svp", private=True)
    assert url == "https://huggingface.co/datasets/some-user/agnews-svp"
    created = ("create_repo", "some-user/agnews-svp", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls[0] == "valid" and calls[1] == created
    _, repo_id, repo_type, uploaded = calls[2]
    local = prepare_upload(selection_dir, tmp_path / "local")
    written = {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()}
    assert repo_type == "dataset" and uploaded.keys() == written.keys()
    assert (
        uploaded["README.md"] == written["README.md"]
        and uploaded["selection_config.json"] == written["selection_config.json"]
    )


def test_bad_repo_ids_and_offline_uploads_fail_before_any_work(ag_news_path, tmp_path, selection_dir):
    done = svp("push", selection_dir, "bad//id", "--local-dir", tmp_path / "x")
    assert done.returncode == 1 and "invalid repository id" in done.stderr and not (tmp_path / "x").exists()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = svp("select", "--dataset", ag_news_path, "--split", "train[:300]", "--proxy", "tfidf", "--strategy",
               "entropy", "--budget", "30", "--output-dir", tmp_path / "out", "--push-to-hub", "u/r",
               env=env)  # fmt: skip
    assert done.returncode == 1 and "HF_HUB_OFFLINE is set" in done.stderr and "--local-dir" in done.stderr
    assert not (tmp_path / "out").exists()  # refused before selecting anything
    done = svp("push", tmp_path, "u/r", "--local-dir", tmp_path / "y")
    assert done.returncode == 1 and "neither a selection folder" in done.stderr


def test_selection_result_push_to_hub_local_dir_and_active_learning_folder(ag_small, tmp_path):
    result = svp_hf.select(ag_small, proxy="tfidf", strategy="entropy", budget=60, seed=0)
    out = result.push_to_hub("u/agnews-entropy", local_dir=tmp_path / "hub")
    assert (tmp_path / "hub" / "README.md").exists() and out == str(tmp_path / "hub")
    assert "strategy:entropy" in DatasetCard.load(tmp_path / "hub" / "README.md").data.tags

    learner = svp_hf.ActiveLearner(
        ag_small, tmp_path / "al",
        svp_hf.ActiveLearningConfig(proxy="tfidf", strategy="margin", initial=40, budgets=[80, 120]),
        eval_dataset=ag_small.select(range(1000, 1200)),
    )  # fmt: skip
    learner.run()
    hub = prepare_upload(tmp_path / "al", tmp_path / "al_hub")
    card = (hub / "README.md").read_text()
    assert "Active learning: 3 rounds" in card and "| proxy accuracy |" in card and "| labeled |" in card
    assert {"svp-hf", "strategy:margin", "proxy:tfidf"} <= set(DatasetCard(card).data.tags)
    assert datasets.load_dataset(str(hub), split="train", cache_dir=str(tmp_path / "cache")).num_rows == 120


@pytest.mark.hub
def test_card_passes_the_hubs_validator(selection_dir, tmp_path):
    """Needs the network: the Hub's own /api/validate-yaml check."""
    hub = prepare_upload(selection_dir, tmp_path / "hub")
    DatasetCard((hub / "README.md").read_text()).validate(repo_type="dataset")


@pytest.mark.hub
@pytest.mark.skipif(not os.environ.get("SVP_HF_TEST_REPO"), reason="set SVP_HF_TEST_REPO=user/repo and HF_TOKEN")
def test_real_upload(selection_dir):
    url = push_to_hub(selection_dir, os.environ["SVP_HF_TEST_REPO"], private=True)
    loaded = datasets.load_dataset(os.environ["SVP_HF_TEST_REPO"], split="train")
    assert url.endswith(os.environ["SVP_HF_TEST_REPO"]) and loaded.num_rows == 150


def test_example_cards_in_model_cards_parse():
    from pathlib import Path

    from huggingface_hub import ModelCard

    folder = Path(__file__).resolve().parents[1] / "model_cards"
    hub = DatasetCard.load(folder / "dataset_card_ag_news_entropy_hub.md")
    assert {"svp-hf", "strategy:entropy", "proxy:fasttext"} <= set(hub.data.tags) and hub.data.configs
    model = ModelCard.load(folder / "model_card_selection_provenance.md")
    assert "strategy:forgetting_events" in model.data.tags and model.data.datasets
