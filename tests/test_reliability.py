"""Reliability: divergence, interrupts, atomic writes, determinism and security, end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lrtool import outputs as res
from lrtool.errors import LrtoolError
from lrtool.jobs.find import RANGE_TEST_COLUMNS
from tests.conftest import TINY, interrupt_run, invoke, write_config

# A model whose loss turns NaN (or Inf) after a given number of forward passes in training mode.
NAN_MODEL = """
import torch
from torch import nn


class Poisoned(nn.Module):
    def __init__(self, n_features, n_outputs, after, value):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)
        self.after, self.value, self.calls = after, value, 0

    def forward(self, x):
        out = self.linear(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * float(self.value)
        return out


def build(n_features, n_outputs, after=0, value="nan"):
    return Poisoned(n_features, n_outputs, after, value)
"""


def poisoned_config(tmp_path: Path, after: int, value: str = "nan") -> Path:
    (tmp_path / "poison.py").write_text(NAN_MODEL)
    return write_config(
        tmp_path,
        f"""
        seed: 0
        device: cpu
        data: {{source: synthetic, n_samples: 256, n_features: 8, n_classes: 3, batch_size: 32}}
        model: {{name: import, function: "poison:build", kwargs: {{after: {after}, value: {value}}}}}
        optimizer: {{name: sgd, lr: 0.05}}
        find: {{start_lr: 1.0e-4, end_lr: 1, steps: 30, refine: false}}
        train: {{steps: 30, eval_every: 10, schedule: {{name: constant, lr: 0.05}}}}
        """,
    )


# ------------------------------------------------------------------------------------------
# Divergence: NaN or Inf at the first step, in the middle, after the minimum
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "value"), [(0, "nan"), (12, "inf"), (25, "nan")])
def test_find_stops_on_a_non_finite_loss_and_keeps_the_curve(tmp_path, monkeypatch, after, value):
    monkeypatch.chdir(tmp_path)
    cfg = poisoned_config(tmp_path, after, value)
    out = tmp_path / "f"
    result = invoke("find", cfg, "--out", out, "--no-plot")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps_run"] == after + 1  # the steps before it, and the bad one
    assert "non-finite loss" in summary["stop_reason"]
    rows = (out / "range_test.csv").read_text().splitlines()
    assert len(rows) == after + 2 and rows[-1].split(",")[2] in ("nan", "inf")
    assert "non-finite loss" in result.stdout
    assert result.exit_code == 0  # a diverged sweep is a result, not an error


@pytest.mark.parametrize(("after", "value"), [(0, "nan"), (12, "inf"), (25, "nan")])
def test_train_stops_on_a_non_finite_loss_and_keeps_the_steps(tmp_path, monkeypatch, after, value):
    monkeypatch.chdir(tmp_path)
    cfg = poisoned_config(tmp_path, after, value)
    out = tmp_path / "t"
    result = invoke("train", cfg, "--out", out, "-q")
    assert result.exit_code == 1, result.output  # a diverged training run fails, results kept
    assert result.stderr.startswith("stopped: non-finite loss")
    summary = json.loads((out / "summary.json").read_text())
    assert "non-finite loss" in summary["stop_reason"] and f"step {after}" in summary["stop_reason"]
    rows = (out / "train.csv").read_text().splitlines()
    assert len(rows) - 1 == summary["steps_run"] == after + 1


def test_compare_records_which_runs_diverged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = poisoned_config(tmp_path, 12, "inf")
    out = tmp_path / "c"
    result = invoke("compare", cfg, "--out", out, "--schedules", "constant,onecycle", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert all("non-finite loss" in run["stop_reason"] for run in summary["runs"])
    steps = {line.split(",")[1] for line in (out / "compare.csv").read_text().splitlines()[1:]}
    assert "0" in steps and "10" in steps  # the evaluations before the divergence are kept


# ------------------------------------------------------------------------------------------
# Interrupts
# ------------------------------------------------------------------------------------------

SLOW = (
    "data: {source: synthetic, n_samples: 20000, n_features: 200, batch_size: 2000}\n"
    "model: {name: mlp, hidden: [512, 512]}\n"
    "train: {steps: 1000000, eval_every: 1000000, schedule: {name: constant, lr: 1.0e-4}}\n"
)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_compare_sigint_writes_partial_results_and_exits_130(tmp_path, jobs):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SLOW)
    out = tmp_path / "run"
    code, err = interrupt_run(
        "compare", cfg, out, tmp_path, "--schedules", "constant,cosine", "--jobs", jobs,
    )  # fmt: skip
    assert code == 130, err
    assert "interrupted" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True
    done = [r["run"] for r in summary["runs"]]
    assert done and set(done) | set(summary["runs_not_done"]) == {"constant", "cosine"}
    assert all(r["stop_reason"].startswith("interrupted") for r in summary["runs"])
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].startswith("schedule,step") and len(rows) >= 2  # the step-0 evaluation


# ------------------------------------------------------------------------------------------
# Atomic writes
# ------------------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "range_test.csv"
    target.write_text("old complete content\n")
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, text):
            self.handle.write(text[: len(text) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(res.os, "fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k)))
    rows = [
        {"step": i, "lr": 0.1, "loss": 1.0, "smoothed_loss": 1.0, "lagfree_loss": 1.0}
        for i in range(1000)
    ]
    with pytest.raises(OSError):
        res.write_csv(target, RANGE_TEST_COLUMNS, rows)
    assert target.read_text() == "old complete content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["range_test.csv"]


def test_a_crash_before_the_rename_leaves_no_result(tmp_path, monkeypatch):
    def crash(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(res.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        res.write_json(tmp_path / "summary.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_results_are_never_half_written_by_a_cli_run(tiny_config, tmp_path, monkeypatch):
    """A full disk while the results are written: no result is replaced (every file goes to
    a temporary first); a failure renaming summary.json (written last): the CSVs before it
    are complete. Both are one error line, exit 1, and leave no temporary."""
    out = tmp_path / "r"
    real_fsync = os.fsync
    calls = []

    def disk_full_on_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(res.os, "fsync", disk_full_on_second)
    result = invoke("find", tiny_config, "--out", out, "-q", "--budget", "0")
    monkeypatch.setattr(res.os, "fsync", real_fsync)
    assert result.exit_code == 1 and "No space left" in result.stderr
    assert not out.exists() or [p.name for p in out.iterdir()] == []

    real_link = os.link

    def summary_fails(src, dst):
        if str(dst).endswith("summary.json"):
            raise OSError(5, "Input/output error")
        return real_link(src, dst)

    monkeypatch.setattr(res.os, "link", summary_fails)
    result = invoke("find", tiny_config, "--out", out, "-q", "--budget", "0")
    monkeypatch.setattr(res.os, "link", real_link)
    assert result.exit_code == 1 and "Input/output error" in result.stderr
    # no temporary left, and the folder says it is incomplete (no summary.json)
    placed = sorted(p.name for p in out.iterdir())
    assert placed == [res.INCOMPLETE_NAME, "range_test.csv", "range_test_first_sweep.csv"]
    lines = (out / "range_test.csv").read_text().splitlines()
    assert lines[0] == ",".join(RANGE_TEST_COLUMNS) and len(lines) > 2
    assert all(len(line.split(",")) == len(RANGE_TEST_COLUMNS) for line in lines)


@pytest.mark.parametrize(
    "command", [["find"], ["train", "--lr", "0.1"], ["compare", "--lr-from-find"]]
)
def test_a_run_that_fails_before_writing_leaves_no_new_folder(tmp_path, monkeypatch, command):
    """The error comes after the output folder was made (the data is read when the run is
    built); the folder, and the parents made for it, are removed again."""
    config = write_config(tmp_path, "data: {source: csv, path: missing.csv}\n")
    monkeypatch.chdir(tmp_path)
    result = invoke(command[0], config, "--out", tmp_path / "a" / "b" / "out", *command[1:])
    assert result.exit_code == 1, result.output
    assert "missing.csv" in result.output
    assert not (tmp_path / "a").exists()
    result = invoke(command[0], config, *command[1:])  # the default runs/<name>-<command>-<time>
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]


def test_a_failed_run_keeps_a_folder_that_existed(tmp_path):
    config = write_config(tmp_path, "data: {source: csv, path: missing.csv}\n")
    out = tmp_path / "mine"
    out.mkdir()
    assert invoke("find", config, "--out", out).exit_code == 1
    assert out.is_dir()


# ------------------------------------------------------------------------------------------
# Determinism: the same config and seed give byte-identical files
# ------------------------------------------------------------------------------------------


def test_find_train_and_compare_are_byte_identical_across_runs(tiny_config, tmp_path):
    files = {
        "find": ["range_test.csv"],
        "train": ["train.csv", "eval.csv"],
        "compare": ["compare.csv"],
    }
    for command, names in files.items():
        extra = ["--schedules", "constant,onecycle,cosine"] if command == "compare" else []
        for run in ("a", "b"):
            result = invoke(command, tiny_config, "--out", tmp_path / command / run, "-q", *extra)
            assert result.exit_code == 0, result.output
        for name in names:
            a = (tmp_path / command / "a" / name).read_bytes()
            assert a == (tmp_path / command / "b" / name).read_bytes(), f"{command} {name}"
            assert len(a.splitlines()) > 2


def test_compare_jobs_do_not_change_the_numbers(tiny_config, tmp_path):
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        result = invoke(
            "compare", tiny_config, "--out", out, "-q", "--schedules", "constant,cosine",
            "--jobs", jobs,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    assert (tmp_path / "1" / "compare.csv").read_bytes() == (
        tmp_path / "2" / "compare.csv"
    ).read_bytes()


def test_a_different_seed_gives_a_different_curve(tiny_config, tmp_path):
    invoke("find", tiny_config, "--out", tmp_path / "a", "-q")
    invoke("find", tiny_config, "--out", tmp_path / "b", "-q", "--seed", "1")
    a = (tmp_path / "a" / "range_test.csv").read_bytes()
    assert a != (tmp_path / "b" / "range_test.csv").read_bytes()


# ------------------------------------------------------------------------------------------
# Security
# ------------------------------------------------------------------------------------------


def test_yaml_cannot_build_python_objects(tmp_path):
    marker = tmp_path / "pwned"
    cfg = write_config(
        tmp_path,
        f'seed: !!python/object/apply:os.system ["touch {marker}"]\n',
    )
    result = invoke("find", cfg, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert not marker.exists()
    assert "Traceback" not in result.output


def test_result_names_cannot_escape_the_output_folder(tmp_path):
    folder = tmp_path / "run"
    for name in ("../outside.csv", "/etc/passwd", "sub/../../x.csv"):
        with pytest.raises(LrtoolError):
            with res.claimed_folder(folder, [name], force=True):
                pass
    assert not (tmp_path / "outside.csv").exists()


def test_no_pickle_loading_and_only_the_safe_yaml_loader():
    import re

    import yaml

    from lrtool import config

    assert issubclass(config._Loader, yaml.SafeLoader)
    package = Path(__file__).resolve().parents[1] / "lrtool"
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "pickle.load" not in text, source
        assert "torch.load(" not in text or "weights_only=True" in text, source
        assert "unsafe_load" not in text and "yaml.Loader" not in text, source
        for call in re.findall(r"yaml\.load\((.*)", text):
            assert "Loader=_Loader" in call, (source, call)


def test_config_code_runs_only_through_import_paths(tmp_path, monkeypatch):
    """A config can name a module to import, and nothing else executes code."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sidefx.py").write_text(
        "import pathlib\npathlib.Path('imported').write_text('x')\n"
        "def build(n_features, n_outputs):\n    import torch\n"
        "    return torch.nn.Linear(n_features, n_outputs)\n"
    )
    text = TINY.replace(
        "model: {name: mlp, hidden: [16]}", 'model: {name: import, function: "sidefx:build"}'
    )
    cfg = write_config(tmp_path, text)
    refused = invoke("--no-imports", "find", cfg, "--out", tmp_path / "n", "-q")
    assert refused.exit_code == 1 and "runs code ('sidefx:build')" in refused.stderr
    assert not (tmp_path / "imported").exists()
    monkeypatch.setenv("LRTOOL_NO_IMPORTS", "1")
    assert invoke("find", cfg, "--out", tmp_path / "e", "-q").exit_code == 1
    monkeypatch.delenv("LRTOOL_NO_IMPORTS")
    result = invoke("find", cfg, "--out", tmp_path / "o", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "imported").exists()  # documented: import paths run the module


def test_import_paths_search_the_documented_order_and_leave_sys_path_as_it_was(
    tmp_path, monkeypatch
):
    """The current directory wins over the config's folder, which wins over its parent; the
    folders are on sys.path only while the named module is imported, so a plotext.py beside
    the config is not what lrtool imports later."""
    import sys

    from lrtool import imports

    here, configs = tmp_path / "here", tmp_path / "proj" / "configs"
    for folder, tag in ((here, "cwd"), (configs, "config"), (configs.parent, "parent")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "where_mod.py").write_text(f"def build():\n    return '{tag}'\n")
    (configs / "plotext.py").write_text("raise RuntimeError('the config folder plotext ran')\n")
    monkeypatch.chdir(here)
    before = list(sys.path)
    sys.modules.pop("where_mod", None)
    assert imports.load_object("where_mod:build", "model.function", configs)() == "cwd"
    assert sys.path == before
    sys.modules.pop("where_mod", None)
    (here / "where_mod.py").unlink()
    assert imports.load_object("where_mod:build", "model.function", configs)() == "config"
    sys.modules.pop("where_mod", None)
    (configs / "where_mod.py").unlink()
    assert imports.load_object("where_mod:build", "model.function", configs)() == "parent"
    sys.modules.pop("where_mod", None)
    assert sys.path == before and str(configs) not in sys.path


# ------------------------------------------------------------------------------------------
# CI smoke runs: every exit path of find --smoke
# ------------------------------------------------------------------------------------------


def test_smoke_fails_when_the_loss_diverges_at_the_very_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = poisoned_config(tmp_path, 0, "nan")
    result = invoke("find", cfg, "--out", tmp_path / "s", "--smoke")
    assert result.exit_code == 1
    assert result.stderr.startswith("smoke: FAIL: the loss diverged at the very start")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_smoke_fails_when_the_curve_cannot_support_a_suggestion(tmp_path):
    cfg = write_config(
        tmp_path,
        """
        data: {source: synthetic, n_samples: 128, n_features: 4, batch_size: 32}
        find: {start_lr: 1.0e-9, end_lr: 1.0e-8, steps: 20}
        """,
    )
    result = invoke("find", cfg, "--out", tmp_path / "s", "--smoke")
    verdict = result.stderr.splitlines()[-1]  # after the progress lines (stderr is a CI log)
    assert result.exit_code == 1 and verdict.startswith("smoke: FAIL")
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["smoke"]["ok"] is False and summary["lr"] is None


def test_smoke_passes_inside_the_expected_range_with_json(tiny_config, tmp_path):
    result = invoke(
        "find", tiny_config, "--out", tmp_path / "s", "--smoke", "--expect-lr", "1e-6:100", "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # --json: nothing but the summary on stdout
    assert data["smoke"]["ok"] is True and "within 1e-06:100" in data["smoke"]["verdict"]
    # a human-readable line still reaches the CI log (stderr), and the JSON carries it too
    assert result.stderr.startswith("smoke: ok") and data["message"] == data["smoke"]["verdict"]
    failed = invoke(
        "find", tiny_config, "--out", tmp_path / "f", "--smoke", "--expect-lr", "1e-9:1e-8",
        "--json",
    )  # fmt: skip
    assert failed.exit_code == 1 and failed.stderr.startswith("smoke: FAIL")
    assert json.loads(failed.stdout)["message"].startswith("smoke: FAIL")


@pytest.mark.parametrize("command", ["train", "compare"])
def test_png_of_train_and_compare(tiny_config, tmp_path, command):
    from tests.test_docs import png_size

    png = tmp_path / f"{command}.png"
    extra = ["--schedules", "constant,cosine"] if command == "compare" else []
    result = invoke(command, tiny_config, "--out", tmp_path / "o", "-q", "--png", png, *extra)
    assert result.exit_code == 0, result.output
    assert png_size(png) == (800, 500)


def test_png_without_matplotlib_names_the_extra(tiny_config, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "o"
    result = invoke("find", tiny_config, "--out", out, "--png", tmp_path / "c.png")
    assert result.exit_code == 1
    assert "pip install 'lrtool[png]'" in result.stderr
    assert not out.exists() or not any(out.iterdir())  # checked before any work
