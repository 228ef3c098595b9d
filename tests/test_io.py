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


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_temporary_folders_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    """Regression (issue 14, leftovers): a SIGKILL while writing left ``.out.tmp-*`` (a partial Arrow file) and
    ``svp_fasttext_*`` folders that nothing ever removed. Folders carry their writer's pid and host; the next run
    removes those whose writer is gone and never touches a live writer's."""
    from svp_hf.io import _host, remove_stale_temp

    dead = tmp_path / f".out.tmp-{_dead_pid()}.{_host()}.abc123"
    live = tmp_path / f".out.tmp-{os.getpid()}.{_host()}.def456"
    elsewhere = tmp_path / f".out.tmp-{_dead_pid()}.another-host.ghi789"  # a shared disk: not ours to judge
    for folder in (dead, live, elsewhere):
        folder.mkdir()
        (folder / "data-00000-of-00001.arrow").write_bytes(b"partial")
    assert remove_stale_temp(tmp_path, ".out.tmp-") == [dead]
    assert not dead.exists() and live.exists() and elsewhere.exists()

    dead.mkdir()
    with atomic_directory(tmp_path / "out") as tmp:  # the next write of that output cleans up first
        (tmp / "x.txt").write_text("x")
    assert not dead.exists() and live.exists() and (tmp_path / "out" / "x.txt").exists()


def test_fasttext_scratch_folders_of_killed_runs_are_removed(tmp_path, monkeypatch, ag_small):
    import tempfile

    from svp_hf.io import _host
    from svp_hf.proxies import build_proxy

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    leftover = tmp_path / f"svp_fasttext_{_dead_pid()}.{_host()}.xyz"
    leftover.mkdir()
    (leftover / "train.txt").write_text("__label__0 partial\n")
    build_proxy("fasttext", epochs=1, self_check=False).fit(ag_small.select(range(60)))
    assert list(tmp_path.iterdir()) == []  # the leftover is gone and the fit's own folder was removed


@pytest.mark.parametrize("where", ["same", "parent", "inside"])
def test_an_output_that_overlaps_the_input_is_refused_before_anything_is_deleted(tmp_path, where):
    """Regression (issue 14, item 4): ``--overwrite`` with the output folder equal to (or holding) the input dataset
    deleted the source."""
    import datasets

    from svp_hf.errors import OutputPathError
    from svp_hf.io import check_output_path

    data = tmp_path / "data" / "pool"
    datasets.Dataset.from_dict({"text": ["a b", "c d"], "label": [0, 1]}).save_to_disk(str(data))
    out = {"same": data, "parent": data.parent, "inside": data / "selected"}[where]
    loaded = datasets.load_from_disk(str(data))
    for inputs in ([str(data)], [loaded]):  # found by path, and by the dataset's Arrow files
        with pytest.raises(OutputPathError, match="choose an output folder outside the input data"):
            check_output_path(out, overwrite=True, inputs=inputs)
    assert datasets.load_from_disk(str(data))["text"] == ["a b", "c d"]
    check_output_path(tmp_path / "elsewhere", overwrite=True, inputs=[str(data), loaded])  # no overlap: fine


def test_an_output_that_cannot_be_written_fails_before_the_work(tmp_path):
    from svp_hf.errors import OutputPathError
    from svp_hf.io import check_output_path

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        check_output_path(blocker / "out")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        check_output_path(blocker, overwrite=True)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputPathError, match="permission denied"):
            check_output_path(locked / "out")
