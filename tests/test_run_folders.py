"""A run owns its output folder: one run per folder, never two, whatever the timing; results
go where they were claimed, over nothing that appeared meanwhile; a folder never looks whole
when it is not (issue 26, data loss)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lrtool import outputs
from lrtool.errors import LrtoolError
from tests.conftest import ROOT, invoke, wait_for

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from lrtool.outputs import claimed_folder
    with claimed_folder(Path(sys.argv[1]), ["a.csv"], False):
        Path(sys.argv[2]).write_text("held")
        time.sleep(600)
    """
)


def _hold(folder: Path, tmp_path: Path) -> subprocess.Popen:
    """Another process that has claimed ``folder`` and holds it until killed."""
    ready = tmp_path / f"ready-{folder.name}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(ready)], env=env)
    wait_for(ready, proc)
    assert proc.poll() is None
    return proc


def test_a_held_folder_is_refused_and_taken_over_once_its_holder_is_killed(tmp_path):
    folder = tmp_path / "run"
    holder = _hold(folder, tmp_path)
    try:
        with pytest.raises(
            LrtoolError, match=f"in use by another lrtool run \\(pid {holder.pid}\\)"
        ):
            with outputs.claimed_folder(folder, ["a.csv"], False):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert (folder / outputs.LOCK_NAME).exists()  # left by the killed run, held by no one
    with outputs.claimed_folder(folder, ["a.csv"], False):
        pass
    assert not (folder / outputs.LOCK_NAME).exists()


@pytest.mark.parametrize("content", ["", "1\n", f"{os.getppid()}\n", "garbage"])
def test_a_lock_file_nobody_holds_is_taken_over_whatever_it_says(tmp_path, content):
    """An empty lock (a run killed between creating and writing it) and a pid that now
    belongs to another live process (reused) no longer block the folder."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / outputs.LOCK_NAME).write_text(content)
    with outputs.claimed_folder(folder, ["a.csv"], False):
        assert (folder / outputs.LOCK_NAME).read_text() == f"{os.getpid()}\n"


def _race(folder: str, barrier, results) -> None:
    barrier.wait()
    try:
        with outputs.claimed_folder(Path(folder), ["a.csv"], False):
            results.put("claimed")
            barrier.wait()  # hold it until every racer has tried
    except LrtoolError:
        results.put("refused")
        barrier.wait()


@pytest.mark.parametrize("stale", [False, True])
def test_of_runs_racing_for_one_folder_exactly_one_gets_it(tmp_path, stale):
    """Four processes claim one folder at the same moment (with a stale lock in it, or
    none), ten times over: each time exactly one holds it."""
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(10):
        folder = tmp_path / f"run{attempt}"
        if stale:
            folder.mkdir()
            (folder / outputs.LOCK_NAME).write_text("")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(folder), barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        got = sorted(results.get(timeout=5) for _ in procs)
        assert got == ["claimed", "refused", "refused", "refused"], (attempt, got)


def test_runs_started_in_the_same_second_without_out_get_their_own_folders(tmp_path):
    from lrtool.jobs.common import run_folders

    first, alternatives = run_folders(None, "cfg", "find")
    holder = _hold(tmp_path / first, tmp_path)
    try:
        options = (tmp_path / p for p in alternatives)
        with outputs.claimed_folder(tmp_path / first, ["a.csv"], False, options) as got:
            assert got == tmp_path / f"{first}-2"
    finally:
        holder.kill()
        holder.wait()


def test_a_file_created_during_the_run_is_not_overwritten(tmp_path):
    folder = tmp_path / "run"
    with outputs.claimed_folder(folder, ["a.csv", "summary.json"], False):
        (folder / "a.csv").write_text("someone else's")
        with pytest.raises(LrtoolError, match="created while lrtool was running"):
            outputs.write_results(folder, {"a.csv": "x\n", "summary.json": "{}\n"}, ["a.csv"])
    assert (folder / "a.csv").read_text() == "someone else's"
    assert not (folder / "summary.json").exists()  # the run's own set is not whole
    assert not list(folder.glob(f"{outputs.TEMP_PREFIX}*.tmp"))


def test_a_csv_created_after_the_up_front_check_is_kept(tmp_path):
    target = tmp_path / "lr.csv"
    outputs.check_output_file(target, "--csv", False)  # the check at start passes
    target.write_text("someone else's")
    with pytest.raises(LrtoolError, match="created while lrtool was running"):
        outputs.write_csv(target, ["step"], [{"step": 1}], force=False)
    assert target.read_text() == "someone else's"
    outputs.write_csv(target, ["step"], [{"step": 1}], force=True)
    assert target.read_text() == "step\n1\n"


def test_a_folder_replaced_during_the_run_is_not_written_into(tmp_path):
    folder = tmp_path / "run"
    with outputs.claimed_folder(folder, ["a.csv"], False):
        folder.rename(tmp_path / "moved")
        folder.mkdir()
        with pytest.raises(LrtoolError, match="moved, removed or replaced"):
            outputs.write_results(folder, {"a.csv": "x\n"}, ["a.csv"])
    assert list(folder.iterdir()) == []


def test_a_force_run_stopped_while_moving_files_leaves_a_folder_marked_incomplete(
    tmp_path, monkeypatch
):
    """The new range_test.csv in place, the rename of summary.json never happens (a kill):
    the earlier run's summary.json is already gone and the marker says what happened."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "a.csv").write_text("old\n")
    (folder / "summary.json").write_text('{"old": true}\n')
    real_replace = os.replace

    def killed_at_summary(src, dst):
        if str(dst).endswith("summary.json"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    with outputs.claimed_folder(folder, ["a.csv", "summary.json"], True):
        monkeypatch.setattr(outputs.os, "replace", killed_at_summary)
        with pytest.raises(LrtoolError):
            outputs.write_results(folder, {"a.csv": "new\n", "summary.json": "{}\n"}, [])
        monkeypatch.setattr(outputs.os, "replace", real_replace)
    assert (folder / "a.csv").read_text() == "new\n"
    assert not (folder / "summary.json").exists()
    assert (folder / outputs.INCOMPLETE_NAME).exists()


def test_temporaries_of_a_killed_run_are_removed_by_the_next_claim(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / f"{outputs.TEMP_PREFIX}abc123.tmp").write_text("half")
    (folder / "notes.tmp").write_text("the user's")
    with outputs.claimed_folder(folder, ["a.csv"], False):
        pass
    assert sorted(p.name for p in folder.iterdir()) == ["notes.tmp"]


def test_a_full_disk_at_the_claim_leaves_no_folder_and_no_lock(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "write", full)
    with pytest.raises(LrtoolError, match="No space left"):
        with outputs.claimed_folder(tmp_path / "a" / "b", ["x.csv"], False):
            pass
    assert not (tmp_path / "a").exists()


def test_a_long_output_name_fits_its_temporary(tmp_path):
    """A 250-byte file name is fine: the temporary's name is short, not the name plus more."""
    target = tmp_path / ("x" * 246 + ".csv")
    outputs.write_csv(target, ["step"], [{"step": 1}], force=False)
    assert target.read_text() == "step\n1\n"


def test_a_png_follows_the_umask(tiny_config, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curve.png"
    old = os.umask(0o022)
    try:
        result = invoke("find", tiny_config, "--out", tmp_path / "r", "-q", "--budget", "0",
                        "--png", png)  # fmt: skip
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(png.stat().st_mode) == 0o644


def test_a_stop_signal_while_the_results_are_written_keeps_them_whole(
    tiny_config, tmp_path, monkeypatch
):
    """SIGTERM arrives in the middle of the final write: the files are completed, the summary
    is not marked interrupted (it is complete), the suggestion is printed, and the exit code
    still obeys the signal."""
    real = outputs._write_temporary
    sent = []

    def signal_midway(path, text):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(path, text)

    monkeypatch.setattr(outputs, "_write_temporary", signal_midway)
    out = tmp_path / "r"
    result = invoke("find", tiny_config, "--out", out, "--budget", "0", "--no-plot")
    assert result.exit_code == 143, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is False and summary["lr"] is not None
    assert "suggested lr" in result.stdout
    assert "after the results were written: they are complete" in result.stderr
