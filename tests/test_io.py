"""Atomic outputs: one writer per output folder, nothing replaced that the run did not own."""

import os
import subprocess
import sys

import pytest

from svp_hf.errors import OutputExistsError
from svp_hf.io import atomic_directory


def test_a_folder_that_appears_meanwhile_is_never_replaced(tmp_path):
    """Regression (issue 14, item 3): two runs writing one output both reported success while one result was lost,
    because the swap replaced a folder that appeared while the second run worked."""
    out = tmp_path / "out"
    with pytest.raises(OutputExistsError, match="appeared while this run was working"), atomic_directory(out) as tmp:
        (tmp / "mine.txt").write_text("second run")
        out.mkdir()  # the first run finishes meanwhile
        (out / "theirs.txt").write_text("first run")
    assert sorted(p.name for p in out.iterdir()) == ["theirs.txt"]  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder, no lock left behind


def test_overwrite_replaces_and_leaves_no_lock(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_live_writer_holds_the_swap_and_a_dead_one_does_not(tmp_path):
    out = tmp_path / "out"
    lock = tmp_path / ".out.lock"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        lock.write_text(str(sleeper.pid))
        from svp_hf import io

        with pytest.raises(OutputExistsError, match="another run is writing"), io._swap_lock(out, timeout=0.3):
            pass
    finally:
        sleeper.kill()
        sleeper.wait()
    lock.write_text(str(sleeper.pid))  # that process is gone: a stale lock is taken over
    with atomic_directory(out) as tmp:
        (tmp / "x").write_text("x")
    assert (out / "x").exists() and not lock.exists()
    assert os.listdir(tmp_path) == ["out"]
