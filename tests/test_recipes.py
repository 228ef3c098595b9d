"""Every recipe end to end with tiny settings on two real CPU processes, launched the documented way
(`accelerate launch --config_file recipes/accelerate/cpu_2_processes.yaml ...`). Slow: minutes on 2 cores."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_TARGET = ["--max-length", "128", "--training-args", '{"num_train_epochs": 1, "per_device_train_batch_size": 32}']
CASES = {
    "ag_news_fasttext_vdcnn29_active": ["--split", "train[:800]", "--eval-split", "test[:100]", "--initial", "40",
                                        "--budgets", "80,120", *TINY_TARGET],
    "ag_news_fasttext_vdcnn29_coreset": ["--split", "train[:600]", "--eval-split", "test[:100]", *TINY_TARGET],
    "sst2_transformer_bert_active": ["--split", "train[:600]", "--eval-split", "validation[:100]", "--initial", "30",
                                     "--budgets", "60", "--training-args", '{"num_train_epochs": 1}'],
    "amazon_polarity_fasttext_vdcnn29_active": ["--split", "train[:2000]", "--eval-split", "test[:200]",
                                                "--initial", "100", "--budgets", "200", *TINY_TARGET],
}  # fmt: skip


def launch(script: str, args: list[str], port: int, tmp_path: Path):
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(REPO / "recipes/accelerate/cpu_2_processes.yaml"), "--main_process_port", str(port),
           str(REPO / "recipes" / script), *args, "--output-dir", str(tmp_path / "out")]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((tmp_path / "out" / "summary.json").read_text()), done


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,port",
    [
        ("ag_news_fasttext_vdcnn29_active", 29641),
        ("ag_news_fasttext_vdcnn29_coreset", 29642),
        ("sst2_transformer_bert_active", 29643),
        pytest.param("amazon_polarity_fasttext_vdcnn29_active", 29644, marks=pytest.mark.hub),
    ],
)
def test_select_and_train_recipe(name, port, tmp_path, ag_news_path):
    import svp_hf

    config = REPO / "recipes/configs" / f"{name}.yaml"
    if "transformer" in name and "transformer" not in svp_hf.PROXIES.names():
        pytest.skip("the transformer proxy is not in this tree yet")
    summary, done = launch("select_and_train.py", ["--config", str(config), *CASES[name]], port, tmp_path)
    assert summary["processes"] == 2 and 0 <= summary["target_eval_accuracy"] <= 1
    assert summary["selection_seconds"] > 0 and summary["selected_rows"] in (60, 120, 200, 300)
    assert done.stdout.count('"target_eval_accuracy"') == 1  # one report, from the main process
    card = (tmp_path / "out" / "target" / "README.md").read_text()
    assert "strategy" in card and (tmp_path / "out" / "target" / "model.safetensors").exists()


@pytest.mark.slow
def test_forgetting_pruning_recipe(tmp_path, ag_news_path):
    args = ["--config", str(REPO / "recipes/configs/forgetting_pruning.yaml"), "--train-split", "train[:400]",
            "--eval-split", "test[:200]", "--epochs", "2"]  # fmt: skip
    summary, done = launch("forgetting_pruning.py", args, 29645, tmp_path)
    assert summary["kept_rows"] == 200 and summary["train_rows"] == 400
    assert (tmp_path / "out" / "full" / "forgetting_events.npz").exists()
    card = (tmp_path / "out" / "pruned" / "README.md").read_text()
    assert "strategy:forgetting_events" in card and "## Training data selection" in card
