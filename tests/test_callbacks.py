"""The callbacks in a plain Trainer (a tiny BERT from a config on real AG News rows), in one and two processes,
and the precomputed proxy that prunes with what they recorded."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import tiny_trainer  # noqa: E402

import svp_hf  # noqa: E402
from svp_hf.callbacks import (  # noqa: E402
    ForgettingEventsCallback,
    SelectionProvenanceCallback,
    add_selection_to_model_card,
)
from svp_hf.strategies import forgetting_counts  # noqa: E402


@pytest.fixture(scope="module")
def trained(ag_news_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    trainer, enc = tiny_trainer.run(ag_news_path, out, lambda ds: [ForgettingEventsCallback(ds)])
    return out, trainer, enc


def test_forgetting_events_are_recorded_per_row_by_index(trained):
    out, trainer, enc = trained
    record = np.load(out / "forgetting_events.npz")
    assert record["predictions"].shape == (3, 240) and record["probs"].shape == (240, 4)
    np.testing.assert_array_equal(record["index"], enc[:]["svp_pool_index"])  # rows by their stable index
    np.testing.assert_array_equal(record["labels"], enc[:]["labels"])
    np.testing.assert_array_equal(record["counts"], forgetting_counts(record["predictions"], record["labels"]))
    # the last epoch's record is what the trained model predicts (eval mode, no dropout)
    np.testing.assert_array_equal(record["predictions"][-1], tiny_trainer.predict_all(trainer.model, enc))
    np.testing.assert_allclose(record["probs"].sum(1), 1.0, atol=1e-5)


def test_coreset_prunes_with_the_recorded_run(trained, ag_news_path, tmp_path):
    out, _, _ = trained
    rows = tiny_trainer.data(ag_news_path)  # the training rows, with their svp_pool_index
    kept = svp_hf.coreset(rows, keep=100, proxy="precomputed", strategy="forgetting_events",
                          proxy_kwargs={"path": str(out)})  # fmt: skip
    record = np.load(out / "forgetting_events.npz")
    by_index = dict(zip(record["index"].tolist(), record["counts"].tolist()))
    scores = [by_index[i] for i in rows.select(kept.indices)[:]["svp_pool_index"]]
    assert kept.dataset[:]["svp_score"] == pytest.approx(scores)
    assert min(scores) >= np.sort(record["counts"])[::-1][99]  # the 100 most forgotten rows (ties at random)
    # the CLI path, on the original pool: rows matched by position == svp_pool_index
    pool_dir = tmp_path / "pool"
    rows.save_to_disk(str(pool_dir))
    done = subprocess.run([sys.executable, "-m", "svp_hf", "coreset", "--dataset", str(pool_dir), "--proxy",
                           "precomputed", "--proxy-kwargs", json.dumps({"path": str(out), "index_column":
                           "svp_pool_index"}), "--strategy", "forgetting_events", "--keep", "100", "--output-dir",
                           str(tmp_path / "kept")], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    other = rows.select(range(10)).remove_columns(["svp_pool_index"]).add_column("svp_pool_index", range(5000, 5010))
    with pytest.raises(svp_hf.ProxyError, match="10 of 10 rows .* were not in the recorded run"):
        svp_hf.coreset(other, keep=5, proxy="precomputed", strategy="forgetting_events",
                       proxy_kwargs={"path": str(out)})  # fmt: skip


def test_forgetting_callback_needs_a_stable_index(ag_news_path):
    rows = tiny_trainer.data(ag_news_path).rename_column("label", "labels")
    with pytest.raises(svp_hf.ColumnNotFoundError, match="add_column"):
        ForgettingEventsCallback(rows.remove_columns(["svp_pool_index"]))
    with pytest.raises(svp_hf.ConfigError, match="repeats values"):
        ForgettingEventsCallback(rows.remove_columns(["svp_pool_index"]).add_column("svp_pool_index", [0] * 240))


@pytest.mark.slow  # ~25 s; recipes' smoke test runs the callback under two processes too
def test_forgetting_events_under_two_processes(ag_news_path, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29621",
         str(SCRIPTS / "tiny_trainer.py"), str(ag_news_path), str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["world_size"] == 2
    record = np.load(tmp_path / "forgetting_events.npz")
    np.testing.assert_array_equal(record["index"], check["index"])  # every row once, in dataset order
    # each process predicted its shard; gathered in row order they are the final model's predictions on every row
    np.testing.assert_array_equal(record["predictions"][-1], check["final_predictions"])


def test_selection_provenance_goes_into_the_model_card(ag_small, tmp_path):
    result = svp_hf.select(ag_small, proxy="tfidf", strategy="margin", budget=50, seed=0)
    result.source = {"dataset": "ag_news", "split": "train"}
    sel = result.save_to_disk(tmp_path / "sel")
    run = tmp_path / "run"
    run.mkdir()
    (run / "README.md").write_text("---\nlicense: apache-2.0\ntags:\n- mine\n---\n\n# My model\n\nMy notes.\n")
    callback = SelectionProvenanceCallback(sel, dataset_repo_id="me/agnews-margin")

    class Args:
        output_dir = str(run)

    class State:
        is_world_process_zero = True

    callback.on_train_end(Args(), State(), None)
    add_selection_to_model_card(run, sel, "me/agnews-margin")  # again: idempotent
    from huggingface_hub import ModelCard

    card = ModelCard.load(run / "README.md")
    assert card.data.tags == ["mine", "svp-hf", "strategy:margin", "proxy:tfidf"]
    assert card.data.datasets == ["me/agnews-margin"] and card.data.license == "apache-2.0"
    assert "My notes." in card.text and card.text.count("## Training data selection") == 1
    assert "Trained on 50 of 1200 rows of `ag_news`" in card.text and "**margin** strategy" in card.text
    assert json.loads((run / "selection_config.json").read_text())["num_selected"] == 50
