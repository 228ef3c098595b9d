import os

import datasets
import numpy as np
import pytest

from svp_hf import (
    BudgetError,
    ColumnNotFoundError,
    ColumnTypeError,
    DatasetNotFoundError,
    DatasetTypeError,
    LabelError,
    PoolExhaustedError,
    SplitNotFoundError,
    TextClassificationTask,
    load_pool,
    resolve_budget,
)
from svp_hf.data import empty_text_mask, ensure_dataset


# -- loading --------------------------------------------------------------------------------------------------
def test_load_local_parquet_folder_with_split_names_and_slicing(ag_news_path):
    train = load_pool(ag_news_path, "train[:100]")
    assert train.num_rows == 100
    assert train.features["label"].names == ["World", "Sports", "Business", "Sci/Tech"]
    assert load_pool(ag_news_path, "test").num_rows == 7600
    assert load_pool(ag_news_path, "test[10%:20%]").num_rows == 760


def test_unknown_split_names_the_available_ones(ag_news_path):
    with pytest.raises(SplitNotFoundError, match="validation.*train.*test|validation.*test.*train"):
        load_pool(ag_news_path, "validation")


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no such file or directory"):
        load_pool(tmp_path / "nope", "train")
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        load_pool("./does/not/exist", "train")


def test_hub_id_offline_is_a_clear_error():
    with pytest.raises(DatasetNotFoundError, match="Hugging Face Hub"):
        load_pool("someone/surely-not-a-dataset-xyz", "train")


_LOAD_SRC = "import svp_hf; print(svp_hf.load_pool('src', 'test[:3]')['text'])"


def test_a_name_that_is_not_here_never_loads_another_folders_cached_rows(tmp_path):
    """Regression (issue 14, item 9): offline, ``load_pool("src")`` run where no ``src/`` exists returned the rows of
    an earlier run on a different local folder also named ``src`` (the datasets cache files both under that name).
    A cache entry counts as the Hub's only when it is stored under a commit hash, as Hub datasets are."""
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "cache"), "HF_DATASETS_OFFLINE": "1"}

    def load_src(cwd):
        return subprocess.run([sys.executable, "-c", _LOAD_SRC], cwd=cwd, env=env, capture_output=True, text=True)

    (tmp_path / "a" / "src").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    datasets.Dataset.from_dict({"text": ["x", "y", "z"], "label": [0, 1, 0]}).to_parquet(
        str(tmp_path / "a" / "src" / "test.parquet")
    )
    here = load_src(tmp_path / "a")
    assert here.returncode == 0 and "['x', 'y', 'z']" in here.stdout, here.stderr
    there = load_src(tmp_path / "b")
    assert there.returncode != 0 and "['x'" not in there.stdout
    assert "DatasetNotFoundError" in there.stderr and "made from a local folder elsewhere" in there.stderr

    # the same entry stored the way the Hub's are (under a 40-hex commit hash) is used offline, as datasets intends
    (entry,) = [p for p in (tmp_path / "cache" / "src" / "default" / "0.0.0").iterdir() if p.is_dir()]
    shutil.move(str(entry), str(entry.with_name("a" * 40)))
    hub = load_src(tmp_path / "b")
    assert hub.returncode == 0 and "['x', 'y', 'z']" in hub.stdout, hub.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_load_folder_of_csv_jsonl_parquet(tmp_path, fmt):
    ds = datasets.Dataset.from_dict({"text": ["a b", "c d", "e f"], "label": ["x", "y", "x"]})
    writer = {"csv": ds.to_csv, "jsonl": ds.to_json, "parquet": ds.to_parquet}[fmt]
    writer(str(tmp_path / f"train.{fmt}"))
    writer(str(tmp_path / f"test.{fmt}"))
    assert load_pool(tmp_path, "train[:2]").num_rows == 2
    assert load_pool(tmp_path / f"test.{fmt}", "train").num_rows == 3  # a single file is one split


def test_load_save_to_disk_dataset_and_datasetdict(tmp_path):
    ds = datasets.Dataset.from_dict({"text": [f"t{i}" for i in range(10)], "label": [i % 2 for i in range(10)]})
    ds.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": ds, "test": ds.select(range(4))}).save_to_disk(str(tmp_path / "dict"))
    assert load_pool(tmp_path / "one", "train[2:5]")["text"] == ["t2", "t3", "t4"]
    assert load_pool(tmp_path / "dict", "test").num_rows == 4
    assert load_pool(tmp_path / "dict", "train[:50%]").num_rows == 5
    with pytest.raises(SplitNotFoundError, match="available splits: train, test"):
        load_pool(tmp_path / "dict", "validation")


def test_datasetdict_where_a_dataset_belongs_names_the_fix():
    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["a"]}), "test": datasets.Dataset.from_dict({"text": ["b"]})}
    )
    with pytest.raises(DatasetTypeError, match=r"splits \['train', 'test'\]; did you mean pool\['train'\]\?"):
        ensure_dataset(dd)
    with pytest.raises(DatasetTypeError, match="from_pandas"):
        ensure_dataset(dd["train"].to_pandas())


# -- columns and labels ---------------------------------------------------------------------------------------
def test_missing_columns_list_what_exists():
    ds = datasets.Dataset.from_dict({"sentence": ["a", "b"], "y": [0, 1]})
    with pytest.raises(ColumnNotFoundError, match="text column 'text' not found.*sentence, y.*--text-column"):
        TextClassificationTask.from_dataset(ds)
    with pytest.raises(ColumnNotFoundError, match="label column 'label' not found.*--label-column"):
        TextClassificationTask.from_dataset(ds, text_column="sentence")
    task = TextClassificationTask.from_dataset(ds, "sentence", "y")
    assert task.label_names == ("0", "1")


def test_text_column_of_numbers_is_a_type_error():
    ds = datasets.Dataset.from_dict({"text": [1, 2], "label": [0, 1]})
    with pytest.raises(ColumnTypeError, match="not strings"):
        TextClassificationTask.from_dataset(ds)


def test_class_label_keeps_ids_and_names(ag_small):
    task = TextClassificationTask.from_dataset(ag_small)
    assert task.label_names == ("World", "Sports", "Business", "Sci/Tech")
    np.testing.assert_array_equal(task.encode_labels(ag_small), np.array(ag_small["label"]))


def test_string_labels_map_sorted_and_empty_means_unlabeled():
    ds = datasets.Dataset.from_dict({"text": list("abcde"), "label": ["spam", "ham", None, "spam", ""]})
    task = TextClassificationTask.from_dataset(ds)
    assert task.label_names == ("ham", "spam")
    assert task.encode_labels(ds).tolist() == [1, 0, -1, 1, -1]
    with pytest.raises(LabelError, match="2 of 5 training rows have no label"):
        task.labels_for_training(ds)
    other = datasets.Dataset.from_dict({"text": ["x"], "label": ["eggs"]})
    with pytest.raises(LabelError, match="not classes of this task"):
        task.encode_labels(other)


def test_integer_labels_with_gaps_and_floats_from_pandas():
    ds = datasets.Dataset.from_dict({"text": list("abcd"), "label": [5, 2, 5, 9]})
    task = TextClassificationTask.from_dataset(ds)
    assert task.label_names == ("2", "5", "9")
    assert task.encode_labels(ds).tolist() == [1, 0, 1, 2]
    floats = datasets.Dataset.from_dict({"text": list("abc"), "label": [1.0, float("nan"), 0.0]})
    task = TextClassificationTask.from_dataset(floats)
    assert task.encode_labels(floats).tolist() == [1, -1, 0]
    with pytest.raises(LabelError, match="non-integer"):
        TextClassificationTask.from_dataset(datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0.5, 1.0]}))
    with pytest.raises(LabelError, match="negative"):
        TextClassificationTask.from_dataset(datasets.Dataset.from_dict({"text": ["a", "b"], "label": [-1, 1]}))


def test_single_class_is_rejected():
    with pytest.raises(LabelError, match="at least 2"):
        TextClassificationTask.from_dataset(datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "x"]}))


def test_task_round_trips_through_dict():
    ds = datasets.Dataset.from_dict({"text": list("abc"), "label": ["b", "a", "c"]})
    task = TextClassificationTask.from_dataset(ds)
    assert TextClassificationTask.from_dict(task.to_dict()) == task


def test_empty_text_mask_counts_none_empty_and_whitespace():
    ds = datasets.Dataset.from_dict({"text": ["ok", None, "", "  \n\t", "fine"]})
    assert empty_text_mask(ds, "text").tolist() == [False, True, True, True, False]


def test_texts_of_only_invisible_characters_count_as_empty(caplog):
    """Regression (issue 14): a text of zero-width characters or exotic spaces shows nothing but counted as a text."""
    import logging

    from svp_hf import select

    blank = ["\u200b", "\u200c\u200d", "\ufeff", "\u2060", "\u00a0\u3000", " \u200b\t\ufeff\n", "\u00ad", "\u2028"]
    visible = ["a\u200b", "\u00a0x", "\ufeffhello", "日本", "é", "\u200dok"]
    ds = datasets.Dataset.from_dict({"text": blank + visible})
    assert empty_text_mask(ds, "text").tolist() == [True] * len(blank) + [False] * len(visible)
    # the same handling as an empty text: never selected, never trained on, counted
    texts = [f"document number {i} about topic {i % 3}" for i in range(30)] + blank
    pool = datasets.Dataset.from_dict({"text": texts, "label": [i % 3 for i in range(len(texts))]})
    with caplog.at_level(logging.WARNING, logger="svp_hf"):
        result = select(pool, proxy="tfidf", strategy="entropy", budget=30, proxy_kwargs={"self_check": False})
    assert f"{len(blank)} of {len(texts)} rows have no text" in caplog.text
    assert result.num_empty_text == len(blank) and sorted(result.indices.tolist()) == list(range(30))


# -- budgets --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "budget, expected",
    [(0.1, 1518), ("0.1", 1518), ("10%", 1518), (300, 300), ("300", 300), (1.0, 15183), (1, 1), (15183, 15183)],
)
def test_resolve_budget(budget, expected):
    assert resolve_budget(budget, 15183) == expected


def test_resolve_budget_rounds_half_up():
    assert resolve_budget(0.5, 3) == 2
    assert resolve_budget(0.25, 10) == 3


@pytest.mark.parametrize(
    "budget, match",
    [
        (0, "must be positive"),
        (0.0, "must be positive"),
        (-3, "must be positive"),
        (2.0, "fraction above 1.*pass the integer 2"),
        (1.5, "fraction above 1"),
        (20000, "more than the pool holds \\(15183 rows\\)"),
        (1e-6, "rounds to 0 rows"),
        ("ten", "not a number"),
        (True, "fraction in \\(0, 1\\] or a row count"),
        (float("nan"), "must be positive"),
    ],
)
def test_bad_budgets(budget, match):
    with pytest.raises(BudgetError, match=match):
        resolve_budget(budget, 15183)


def test_budget_beyond_unlabeled_rows_is_pool_exhausted():
    with pytest.raises(PoolExhaustedError, match="120 rows requested, 80 selectable rows left"):
        resolve_budget(120, 200, available=80)
