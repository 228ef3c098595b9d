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


def _answer_pending(learner, pool, tmp_path):
    """Label the pending round from the pool's true labels, as an annotator would, and import it."""
    pending = json.loads((learner.dir / "state.json").read_text())["pending"]
    rows = [json.loads(line) for line in (learner.dir / pending["files"][0]).read_text().splitlines()]
    names = pool.features["label"].names
    for row in rows:
        row["label"] = names[pool[row["svp_pool_index"]]["label"]]
    path = tmp_path / f"round_{pending['round']}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return learner.import_labels(path)


def test_pushing_an_unfinished_human_run_describes_only_committed_rounds(ag_small, tmp_path, caplog):
    """Regression (issue 14): the card of a human-oracle run pushed while a query awaited labels described rounds that
    never happened ("a margin strategy chose the next rows" when only the random initial set was labeled) and did not
    say the run was unfinished. The upload holds the committed rounds; the card says what is missing."""
    import logging
    import shutil

    pool = ag_small.select(range(200))
    config = svp_hf.ActiveLearningConfig(
        proxy="tfidf", strategy="margin", initial=20, budgets=[40, 60], batch_size=None,
        label_names=pool.features["label"].names,
    )  # fmt: skip
    out = tmp_path / "al"
    learner = svp_hf.ActiveLearner(pool.remove_columns("label"), out, config, oracle="human")
    learner.run()
    with pytest.raises(svp_hf.ConfigError, match="no labeled rows yet: round 0 waits for labels; fill"):
        prepare_upload(out, tmp_path / "hub0")

    _answer_pending(learner, pool, tmp_path)
    learner.run()  # round 1 is queried and waits for labels
    with caplog.at_level(logging.WARNING, logger="svp_hf"):
        hub = prepare_upload(out, tmp_path / "hub1")
    assert "is an unfinished active-learning run" in caplog.text
    card = (hub / "README.md").read_text()
    assert "**This active-learning run is unfinished**: 20 rows of the 60 its schedule plans" in card
    assert "the query of round 1 (20 rows) awaits labels and is not in the data" in card
    assert "round 0 only, the initial set chosen by **random**; the **margin** strategy" in card
    assert "Active learning: " not in card and "retrained" not in card  # no round of margin selection happened
    assert "| strategy | `random` |" in card and "| budget | [40, 60], unfinished (20 rows) |" in card
    tags = front_matter(card)["tags"]
    assert "strategy:random" in tags and "strategy:margin" not in tags and "proxy:tfidf" not in tags
    record = json.loads((hub / "selection_config.json").read_text())
    assert record["finished"] is False and record["pending_round"] == {"round": 1, "queried": 20}
    assert record["rounds"] == len(record["active_learning_rounds"]) == 1 and record["planned_labeled"] == 60
    assert record["config"]["strategy"] == "margin"  # the run's settings stay as they are, to resume it
    assert datasets.load_dataset(str(hub), split="train", cache_dir=str(tmp_path / "c1")).num_rows == 20
    shutil.copytree(out / "labeled", tmp_path / "labeled_round0")

    _answer_pending(learner, pool, tmp_path)
    learner.run()  # round 2 waits
    card = (prepare_upload(out, tmp_path / "hub2") / "README.md").read_text()
    assert "40 rows of the 60 its schedule plans (budgets [40, 60]) are labeled, in 2 committed round(s)" in card
    assert "then 1 round(s) in which a **tfidf** proxy was retrained" in card and "the query of round 2" in card
    assert "strategy:margin" in front_matter(card)["tags"]

    # labeled/ older than state.json (a run stopped between the two writes): refused, not carded as 2 rounds
    shutil.rmtree(out / "labeled")
    shutil.copytree(tmp_path / "labeled_round0", out / "labeled")
    with pytest.raises(svp_hf.ConfigError, match="holds 20 rows, but the 2 rounds committed in state.json labeled 40"):
        prepare_upload(out, tmp_path / "stale")
    with pytest.raises(svp_hf.LabelError, match="round 2 is waiting for labels"):
        learner.run()  # a rerun rebuilds labeled/ first, then says what it waits for
    assert datasets.load_from_disk(str(out / "labeled")).num_rows == 40

    _answer_pending(learner, pool, tmp_path)
    learner.run()
    card = (prepare_upload(out, tmp_path / "hub3") / "README.md").read_text()
    assert "Active learning: 3 rounds" in card and "unfinished" not in card
    assert json.loads((tmp_path / "hub3" / "selection_config.json").read_text())["finished"] is True

    # a simulated run stopped early (--max-rounds) has no pending query: the card says it was stopped
    sim = svp_hf.ActiveLearner(pool, tmp_path / "sim", svp_hf.ActiveLearningConfig(
        proxy="tfidf", strategy="margin", initial=20, budgets=[40, 60], batch_size=None))  # fmt: skip
    sim.run(max_rounds=2)
    card = (prepare_upload(tmp_path / "sim", tmp_path / "hub_sim") / "README.md").read_text()
    assert "40 rows of the 60" in card and "the run was stopped before its schedule ended" in card


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
