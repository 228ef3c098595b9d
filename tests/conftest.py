"""Offline by construction: no test may reach the Hugging Face Hub. Real data comes from ../shared/data."""

import copy
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# cached pool features (tfidf / embedding proxies) go to a folder of this test session, never to ~/.cache
os.environ["SVP_HF_CACHE"] = tempfile.mkdtemp(prefix="svp_hf_test_cache_")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SVP_SHARED_DATA", REPO.parent / "shared" / "data"))
AG_NEWS = SHARED_DATA / "ag_news"
CIFAR10 = SHARED_DATA / "cifar10"


def pytest_collection_modifyitems(config, items):
    # pyproject's `timeout` (pytest-timeout) stops a hung test in the default run; slow tests may run for long
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(3600))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found (set SVP_SHARED_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def ag_news_path() -> Path:
    return _require(AG_NEWS)


@pytest.fixture(scope="session")
def banking77_path() -> Path:
    return _require(SHARED_DATA / "banking77")


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty disk cache and an empty in-memory cache of the proxies' pool features."""
    from svp_hf.proxies import features

    monkeypatch.setenv("SVP_HF_CACHE", str(tmp_path / "cache"))
    features.clear_memory_cache()
    yield tmp_path / "cache"
    features.clear_memory_cache()


@pytest.fixture(scope="session")
def _ag_train(ag_news_path):
    from svp_hf.data import load_pool

    return load_pool(ag_news_path, "train")


@pytest.fixture(scope="session")
def _ag_test(ag_news_path):
    from svp_hf.data import load_pool

    return load_pool(ag_news_path, "test")


@pytest.fixture
def ag_train(_ag_train):
    """The real AG News train split (15,183 rows); a fresh copy per test."""
    return copy.deepcopy(_ag_train)


@pytest.fixture
def ag_small(_ag_train):
    """The first 1,200 rows of the AG News train split."""
    return _ag_train.select(range(1200))


@pytest.fixture
def ag_test(_ag_test):
    return copy.deepcopy(_ag_test)


@pytest.fixture(scope="session")
def cifar_path() -> Path:
    return _require(CIFAR10)


@pytest.fixture(scope="session")
def _cifar_train(cifar_path):
    from svp_hf.data import load_pool

    return load_pool(cifar_path, "train[:1200]")


@pytest.fixture
def cifar_small(_cifar_train):
    """The first 1,200 rows of the real CIFAR-10 train split (PIL images in ``image``, ClassLabel ``label``)."""
    return copy.deepcopy(_cifar_train)


@pytest.fixture
def torch_one_thread():
    """One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads make small CNNs 5-8x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# Property-based tests (tests/test_properties.py): a bounded, derandomized profile for the default run, so that CI sees
# the same examples every time, and a long one: HYPOTHESIS_PROFILE=slow for every property, or `pytest -m slow` for the
# `*_many` twins, which always use it. No example database is written into the working tree.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the dev extra is not installed (test_properties.py then fails to import)
    pass
else:
    _quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    settings.register_profile(
        "ci", max_examples=50, deadline=None, derandomize=True, database=None, suppress_health_check=_quiet
    )
    settings.register_profile(
        "slow", max_examples=500, deadline=None, database=None, suppress_health_check=_quiet, print_blob=True
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
