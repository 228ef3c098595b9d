"""Images through the same interface: the image task, the timm proxy through select / coreset / active-learn, and
timm targets trained with the Trainer, on small slices of the real CIFAR-10 in ../shared/data/cifar10."""

import json

import numpy as np
import pytest

from svp_hf import ActiveLearner, ActiveLearningConfig, Proxy, build_proxy, select
from svp_hf.cli import main
from svp_hf.data import ClassificationTask, ImageClassificationTask, TextClassificationTask, task_from_dataset
from svp_hf.errors import ColumnNotFoundError, ColumnTypeError, ConfigError
from svp_hf.vision import channel_stats, random_crop_flip, warmup_cosine

TINY = {"model_name": "test_resnet", "epochs": 1, "batch_size": 32}


def test_image_task_shares_the_label_mapping_and_round_trips(cifar_small):
    task = task_from_dataset(cifar_small, image_column="image")
    assert isinstance(task, ImageClassificationTask) and task.modality == "image" and task.input_column == "image"
    assert task.label_names[:3] == ("airplane", "automobile", "bird") and task.num_labels == 10
    np.testing.assert_array_equal(task.encode_labels(cifar_small), np.array(cifar_small["label"]))
    assert ClassificationTask.from_dict(task.to_dict()) == task
    oracle = task.with_label_column("svp_oracle_label")
    assert isinstance(oracle, ImageClassificationTask) and oracle.label_column == "svp_oracle_label"
    assert not task.empty_input_mask(cifar_small).any()
    # text tasks keep the saved layout they always had (no "modality" key)
    text = TextClassificationTask(("a", "b"))
    assert "modality" not in text.to_dict() and ClassificationTask.from_dict(text.to_dict()) == text


def test_image_pools_get_errors_that_name_the_fix(cifar_small, ag_small, tmp_path):
    from svp_hf.training import train_target

    with pytest.raises(ConfigError, match="timm/resnet18 is an image network: pass the image column"):
        train_target(cifar_small, "timm/resnet18", tmp_path / "t")
    with pytest.raises(ColumnNotFoundError, match="pass --image-column image"):
        train_target(cifar_small, "vdcnn-9", tmp_path / "t")
    with pytest.raises(ConfigError, match="timm proxy reads images: pass the image column"):
        select(cifar_small, proxy="timm", strategy="entropy", budget=10)
    with pytest.raises(ColumnNotFoundError, match="holds images in column 'image': pass --image-column image"):
        select(cifar_small, strategy="random", budget=10)
    with pytest.raises(ColumnTypeError, match="not images.*Image column.*: image"):
        select(cifar_small, proxy="timm", strategy="entropy", budget=10, image_column="label")
    with pytest.raises(ConfigError, match="fasttext proxy reads text, not images; image proxies: timm"):
        select(cifar_small, proxy="fasttext", strategy="entropy", budget=10, image_column="image")
    with pytest.raises(ConfigError, match="timm proxy reads images"):
        select(ag_small, proxy="timm", strategy="entropy", budget=10)
    with pytest.raises(ColumnTypeError, match="it holds images: pass --image-column image"):
        TextClassificationTask.from_dataset(cifar_small, text_column="image")
    # random selection trains no proxy: the default proxy name does not get in the way
    result = select(cifar_small, strategy="random", budget=5, image_column="image")
    assert len(set(result.indices.tolist())) == 5


def test_random_crop_flip_matches_a_loop_reference():
    import torch

    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(x, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and out.dtype == torch.uint8
    g = torch.Generator().manual_seed(3)  # replay the same draws
    dy, dx = torch.randint(0, 3, (6,), generator=g), torch.randint(0, 3, (6,), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    for i in range(6):
        crop = padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8]
        torch.testing.assert_close(out[i], crop.flip(-1) if flip[i] else crop)
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1) and warmup_cosine(100, 10, 100) == pytest.approx(0.0)
    mean, std = channel_stats(x.numpy())
    np.testing.assert_allclose(mean, (x.numpy() / 255.0).mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(std, (x.numpy() / 255.0).std(axis=(0, 2, 3)), atol=1e-5)


def test_timm_proxy_scores_eval_views_and_reloads_as_a_checkpoint(cifar_small, torch_one_thread, tmp_path):
    import torch

    train = cifar_small.select(range(200))
    proxy = build_proxy("timm", seed=0, **TINY).fit(train)
    pool = cifar_small.select(range(200, 260))
    out = proxy.score(pool, probs=True, embeddings=True, batch_size=25)  # one pass for both, Arrow batches of 25
    np.testing.assert_allclose(out.probs, proxy.predict_proba(pool), atol=1e-6)  # eval mode: no augmentation
    np.testing.assert_allclose(out.embeddings, proxy.embed(pool), atol=1e-5)
    assert out.embeddings.shape == (60, proxy.model.num_features)
    proxy.save(tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "model.safetensors",
        "proxy_config.json",
        "timm_proxy.json",
    ]  # no pickle
    assert isinstance(Proxy.load(tmp_path / "p").task, ImageClassificationTask)
    # a saved proxy (or a trained target folder) is a checkpoint to start from
    warm = build_proxy("timm", checkpoint=str(tmp_path / "p"), **TINY)
    warm.task = proxy.task
    model = warm._create_model(10)
    warm._load_checkpoint(model)
    for (name, a), b in zip(model.state_dict().items(), proxy.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    with pytest.raises(ConfigError, match="not a .safetensors file"):
        build_proxy("timm", checkpoint=str(tmp_path / "nope.pt"), **TINY).fit(train)
    with pytest.raises(ConfigError, match="timm has no model 'resnet_nope'"):
        build_proxy("timm", model_name="resnet_nope").fit(train)


def _run(args):
    assert main(args) == 0


def test_select_coreset_and_active_learning_on_cifar(cifar_path, torch_one_thread, tmp_path):
    common = ["--dataset", str(cifar_path), "--split", "train[:300]", "--image-column", "image"]
    kwargs = ["--proxy", "timm", "--proxy-kwargs", json.dumps(TINY)]
    import datasets

    for strategy in ("entropy", "kcenters", "margin"):
        out = tmp_path / strategy
        _run(["select", *common, *kwargs, "--strategy", strategy, "--budget", "0.1", "--output-dir", str(out)])
        selected = datasets.load_from_disk(str(out))
        assert selected.num_rows == 30 and len(set(selected["svp_pool_index"])) == 30
        assert {"image", "label", "svp_pool_index", "svp_score", "svp_rank"} <= set(selected.column_names)
        config = json.loads((out / "selection_config.json").read_text())
        assert config["config"]["image_column"] == "image" and config["config"]["proxy"] == "timm"
        assert "task_categories:\n- image-classification" in (out / "README.md").read_text()

    out = tmp_path / "coreset"
    _run(["coreset", *common, *kwargs, "--strategy", "forgetting_events", "--keep", "0.5", "--output-dir", str(out)])
    kept = datasets.load_from_disk(str(out))
    assert kept.num_rows == 150 and len(set(kept["svp_pool_index"])) == 150

    out = tmp_path / "al"
    al = ["--initial", "30", "--budgets", "60,90", "--batch-size", "none", "--strategy", "least_confidence"]
    _run(["active-learn", *common, *kwargs, *al, "--output-dir", str(out)])
    labeled = datasets.load_from_disk(str(out / "labeled"))
    assert labeled.num_rows == 90 and len(set(labeled["svp_pool_index"])) == 90
    rounds = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [r["labeled_after"] for r in rounds] == [30, 60, 90] and rounds[1]["timings_s"]["proxy_fit"] > 0


def test_human_oracle_gets_png_files(cifar_small, tmp_path):
    pool = cifar_small.select(range(100)).remove_columns("label")
    config = ActiveLearningConfig(
        proxy="timm", strategy="entropy", initial=5, budgets=[10], image_column="image",
        label_names=["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    )  # fmt: skip
    learner = ActiveLearner(pool, tmp_path / "al", config, oracle="human")
    learner.run()
    pending = tmp_path / "al" / "pending"
    rows = [json.loads(line) for line in (pending / "round_0000.jsonl").read_text().splitlines()]
    assert len(rows) == 5
    from PIL import Image

    for row in rows:
        assert Image.open(pending / row["image"]).size == (32, 32)
        row["label"] = "cat"
    filled = tmp_path / "filled.jsonl"
    filled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = learner.import_labels(filled)
    assert len(state.indices) == 5 and not (pending / "round_0000_images").exists()


def test_train_timm_target_reloads_with_the_auto_classes(cifar_small, torch_one_thread, tmp_path):
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from svp_hf.training import train_target

    train, test = cifar_small.select(range(200)), cifar_small.select(range(1100, 1200))
    metrics = train_target(
        train, "timm/test_resnet", tmp_path / "target", eval_dataset=test, image_column="image", image_size=28,
        training_args={"num_train_epochs": 1, "per_device_train_batch_size": 50, "seed": 0},
    )  # fmt: skip
    assert 0 <= metrics["eval_accuracy"] <= 1 and metrics["train_global_step"] == 4
    out = tmp_path / "target"
    card = (out / "README.md").read_text()
    assert "pipeline_tag: image-classification" in card and "timm/test_resnet" in card
    assert not (out / "training_args.bin").exists()
    model = AutoModelForImageClassification.from_pretrained(str(out)).eval()
    processor = AutoImageProcessor.from_pretrained(str(out))
    assert model.config.id2label[3] == "cat" and model.config.architecture == "test_resnet"
    images = test.select(range(20))["image"]
    with torch.inference_mode():
        logits = model(**processor(list(images), return_tensors="pt")).logits
    # the saved eval transform (resize to 28, centre crop) is the one training used
    from svp_hf.vision import normalise, to_uint8

    mean, std = channel_stats(to_uint8(list(train["image"]), 28))
    with torch.inference_mode():
        direct = model(pixel_values=normalise(to_uint8(list(images), 28), mean, std)).logits
    torch.testing.assert_close(logits, direct, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_done_when_select_then_train_resnet18_beats_chance(cifar_path, tmp_path):
    """The issue's acceptance commands at full size: entropy selection of 200 of 2,000 CIFAR-10 test rows with a
    resnet18 proxy (1 epoch), then resnet18 trained on them, evaluated on 1,000 train rows it never saw."""
    sel = tmp_path / "sel"
    _run([
        "select", "--dataset", str(cifar_path), "--split", "test[:2000]", "--image-column", "image",
        "--proxy", "timm", "--proxy-kwargs", '{"model_name": "resnet18", "epochs": 1}', "--strategy", "entropy",
        "--budget", "0.1", "--output-dir", str(sel),
    ])  # fmt: skip
    _run([
        "train", "--dataset", str(sel), "--image-column", "image", "--model", "timm/resnet18",
        "--eval-dataset", str(cifar_path), "--eval-split", "train[:1000]", "--output-dir", str(tmp_path / "t"),
        "--num_train_epochs", "30", "--per_device_train_batch_size", "32", "--eval_strategy", "no",
    ])  # fmt: skip
    accuracy = json.loads((tmp_path / "t" / "eval_results.json").read_text())["eval_accuracy"]
    assert accuracy > 0.13, accuracy  # chance is 0.10 (std 0.0095 on 1,000 rows); the recorded run reached 0.198


@pytest.mark.parametrize("depth,params", [(20, 0.27e6), (56, 0.86e6), (110, 1.7e6), (164, 1.7e6)])
def test_cifar_preact_resnets_are_timm_models_of_the_published_sizes(depth, params, torch_one_thread):
    import torch

    from svp_hf.vision import import_timm

    timm = import_timm()
    model = timm.create_model(f"cifar_preact_resnet{depth}", num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(params, rel=0.03)  # He et al. 2016, Table 3
    if depth in (56, 110):
        return  # the same blocks as ResNet-20: one forward of each block type is enough
    x = torch.randn(2, 3, 32, 32)
    features = model.forward_features(x)
    assert features.shape[2:] == (8, 8)  # full resolution in the first stage, unlike ImageNet ResNets (1x1 here)
    pooled = model.forward_head(features, pre_logits=True)
    assert pooled.shape == (2, model.num_features) and model(x).shape == (2, 10)
    torch.testing.assert_close(model.get_classifier()(pooled), model(x))


def test_cifar_resnet_target_round_trips_through_transformers(tmp_path, torch_one_thread):
    import torch
    from transformers import AutoModelForImageClassification

    from svp_hf.vision import build_timm_target

    model = build_timm_target("cifar_preact_resnet20", ("a", "b", "c"), [0.5] * 3, [0.25] * 3, (32, 32), seed=0)
    model.save_pretrained(str(tmp_path / "m"))
    again = AutoModelForImageClassification.from_pretrained(str(tmp_path / "m")).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(again(pixel_values=x).logits, model.eval()(pixel_values=x).logits)


def test_rows_without_an_image_are_never_selected(cifar_small):
    import datasets

    pool = cifar_small.select(range(60)).cast_column("image", datasets.Image(decode=False))
    pool = pool.map(lambda row, i: {"image": None if i in (3, 7) else row["image"]}, with_indices=True)
    pool = pool.cast_column("image", datasets.Image())
    result = select(pool, strategy="random", budget=58, image_column="image")
    assert sorted(result.indices.tolist()) == [i for i in range(60) if i not in (3, 7)]
    assert result.num_empty_text == 2


def test_image_size_is_timms_resize_and_centre_crop():
    from PIL import Image

    from svp_hf.vision import import_timm, to_uint8

    timm = import_timm()
    rng = np.random.default_rng(0)
    for shape in ((32, 48, 3), (50, 30, 3)):
        img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8))
        reference = timm.data.create_transform(
            input_size=(3, 20, 20), crop_pct=1.0, interpolation="bilinear", mean=(0, 0, 0), std=(1, 1, 1)
        )(img)
        np.testing.assert_allclose(to_uint8([img], 20)[0] / 255.0, reference.numpy(), atol=1e-6)
