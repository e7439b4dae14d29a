"""Bad input across every command: one clear line, the right exit code, nothing left behind.

Each case runs a real command through the CLI in a fresh folder holding a tiny valid config
(``cfg.yaml``, changed by the case), a few data files and import modules. The checks are the same
for every case: exit code 2 for usage/config errors and 1 for run-time errors, the named field
or path in a single line on stderr, no traceback, and no result file written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import TINY, invoke

MODULE = """
import torch
from torch import nn


def raises(**kwargs):
    raise ValueError("boom in user code")


def not_a_model(n_features, n_outputs):
    return "a string"


def not_datasets():
    return 42


def one_dataset():
    return [torch.zeros(3)]


class _Linear(nn.Module):
    def __init__(self, n_features, n_outputs, out="tensor"):
        super().__init__()
        self.net = nn.Linear(n_features, n_outputs)
        self.out = out

    def forward(self, x):
        y = self.net(x)
        return {"scores": y} if self.out == "dict" else 3 if self.out == "int" else y


def dict_model(n_features, n_outputs):
    return _Linear(n_features, n_outputs, "dict")


def int_model(n_features, n_outputs):
    return _Linear(n_features, n_outputs, "int")


def frozen_model(n_features, n_outputs):
    model = _Linear(n_features, n_outputs)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def no_parameters(n_features, n_outputs):
    return nn.Identity()


def string_labels():
    items = [(torch.randn(4), "cat" if i % 2 else "dog") for i in range(64)]
    return items, items[:16]


def ragged():
    items = [(torch.randn(3 + i % 2), i % 2) for i in range(64)]
    return items, items[:16]
"""

CSV = {
    "empty.csv": "",
    "header.csv": "a,b,label\n",
    "text.csv": "a,b,label\n" + "".join(f"{i},x{i},{i % 2}\n" for i in range(100)),
    "nan.csv": "a,b,label\n" + "".join(f"{i},{'' if i == 5 else i},{i % 2}\n" for i in range(100)),
    "few.csv": "a,b,label\n1,2,0\n3,4,1\n5,6,0\n",
    "oneclass.csv": "a,b,label\n" + "".join(f"{i},{i * 2},1\n" for i in range(100)),
    "good.csv": "a,b,label\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(100)),
    "inf_target.csv": "a,b,y\n"
    + "".join(f"{i},{i % 3},{'inf' if i == 9 else i / 3}\n" for i in range(100)),
}


def merged(change: dict) -> str:
    """The tiny config with ``change`` deep-merged into it."""
    base = yaml.safe_load(TINY)

    def merge(a: dict, b: dict) -> dict:
        for key, value in b.items():
            a[key] = merge(a.get(key, {}), value) if isinstance(value, dict) else value
        return a

    return yaml.safe_dump(merge(base, change))


# (id, command + args ({cfg} is the config path, {out} the output folder), config: a dict merged
#  into the tiny config, raw text, or None for the tiny config as it is, exit code, fragment)
CASES = [
    # config files
    ("missing-config", "find {dir}/nope.yaml", None, 2, "not found"),
    ("directory-config", "find {dir}", None, 2, "directory"),
    ("empty-config", "find {cfg}", "", 2, "empty"),
    ("invalid-yaml", "find {cfg}", "find: [unclosed", 2, "invalid YAML"),
    ("list-top-level", "train {cfg}", "- a\n- b\n", 2, "must be a mapping"),
    ("scalar-top-level", "find {cfg}", "42\n", 2, "must be a mapping"),
    ("unknown-top-key", "find {cfg}", {"sed": 1}, 2, "did you mean 'seed'"),
    ("unknown-data-key", "find {cfg}", {"data": {"batchsize": 3}}, 2, "data.batchsize"),
    ("unknown-model-key", "train {cfg}", {"model": {"hiden": [3]}}, 2, "model.hiden"),
    ("unknown-optimizer-key", "find {cfg}", {"optimizer": {"moment": 0.9}}, 2, "optimizer.moment"),
    ("unknown-find-key", "find {cfg}", {"find": {"stepz": 10}}, 2, "find.stepz"),
    ("unknown-train-key", "train {cfg}", {"train": {"stepz": 10}}, 2, "train.stepz"),
    ("unknown-schedule-param", "train {cfg}",
     {"train": {"schedule": {"name": "onecycle", "max_lr": 0.1, "pct": 0.3}}}, 2, "pct"),
    ("unknown-schedule", "compare {cfg}", {"train": {"schedule": {"name": "cosin"}}}, 2,
     "did you mean 'cosine'"),
    ("wrong-type-steps", "find {cfg}", {"find": {"steps": "ten"}}, 2, "find.steps"),
    ("wrong-type-batch", "train {cfg}", {"data": {"batch_size": [1]}}, 2, "data.batch_size"),
    ("wrong-type-seed", "find {cfg}", {"seed": [1]}, 2, "seed"),
    ("out-of-range-val-fraction", "find {cfg}", {"data": {"val_fraction": 1.5}}, 2,
     "data.val_fraction"),
    ("negative-lr", "train {cfg}", {"optimizer": {"lr": -1}}, 2, "optimizer.lr"),
    ("threshold-below-one", "find {cfg}", {"find": {"diverge_threshold": 0.5}}, 2,
     "find.diverge_threshold"),
    ("nan-in-yaml", "find {cfg}", "find: {start_lr: .nan}\n", 2, "find.start_lr"),
    ("inf-in-yaml", "find {cfg}", "find: {end_lr: .inf}\n", 2, "find.end_lr"),
    ("huge-steps", "train {cfg}", {"train": {"steps": 10**12}}, 2, "train.steps"),
    ("end-below-start", "find {cfg}", {"find": {"start_lr": 1.0, "end_lr": 0.1}}, 2, "find.end_lr"),
    ("bad-schedule-value", "train {cfg}",
     {"train": {"schedule": {"name": "onecycle", "max_lr": 0.1, "pct_start": 2}}}, 2, "pct_start"),
    # CLI flags
    ("find-steps-flag", "find {cfg} --out {out} --steps 3", None, 2, "find.steps"),
    ("find-mode-flag", "find {cfg} --out {out} --mode cubic", None, 2, "find.mode"),
    ("find-device-flag", "find {cfg} --out {out} --device tpu", None, 2, "--device"),
    ("train-backend-flag", "train {cfg} --out {out} --backend mpi", None, 2, "--backend"),
    ("find-verify-steps", "find {cfg} --out {out} --verify --verify-steps 1", None, 2,
     "find.verify_steps"),
    ("train-steps-flag", "train {cfg} --out {out} --steps 0", None, 2, "train.steps"),
    ("train-schedule-flag", "train {cfg} --out {out} --schedule nope", None, 2, "nope"),
    ("train-set-flag", "train {cfg} --out {out} --set foo", None, 2, "--set"),
    ("compare-schedules-flag", "compare {cfg} --out {out} --schedules constant,nope", None, 2,
     "nope"),
    ("compare-lrs-without-schedule", "compare {cfg} --out {out} --lrs 0.1", None, 2, "--lrs"),
    ("compare-lrs-not-numbers", "compare {cfg} --out {out} --schedule constant --lrs a,b", None,
     2, "--lrs"),
    ("compare-jobs-flag", "compare {cfg} --out {out} --jobs 0", None, 2, "--jobs"),
    ("plot-unknown-schedule", "plot --schedule nope", None, 2, "nope"),
    ("plot-steps-flag", "plot --schedule onecycle --steps 0", None, 2, "--steps"),
    ("plot-negative-param", "plot --schedule onecycle --set max_lr=-1", None, 2, "max_lr"),
    ("plot-nan-lr", "plot --schedule cosine --lr nan", None, 2, "--lr"),
    ("plot-metric-csv-missing", "plot --schedule plateau --metric-csv {dir}/none.csv", None, 1,
     "--metric-csv"),
    ("schedules-unknown", "schedules cosin", None, 2, "did you mean 'cosine'"),
    # data
    ("csv-empty", "find {cfg} --out {out}", {"data": {"source": "csv", "path": "empty.csv"}}, 1,
     "empty"),
    ("csv-header-only", "train {cfg} --out {out}",
     {"data": {"source": "csv", "path": "header.csv"}}, 1, "no rows"),
    ("csv-missing-target", "find {cfg} --out {out}",
     {"data": {"source": "csv", "path": "good.csv", "target": "lable"}}, 1, "data.target"),
    ("csv-non-numeric", "find {cfg} --out {out}", {"data": {"source": "csv", "path": "text.csv"}},
     1, "'b'"),
    ("csv-nan-cells", "compare {cfg} --out {out}", {"data": {"source": "csv", "path": "nan.csv"}},
     1, "'b'"),
    ("csv-fewer-rows-than-batch", "find {cfg} --out {out}",
     {"data": {"source": "csv", "path": "few.csv"}}, 1, "data.batch_size"),
    ("csv-one-class", "find {cfg} --out {out}",
     {"data": {"source": "csv", "path": "oneclass.csv", "task": "classification"}}, 1,
     "one class"),
    ("csv-path-missing", "find {cfg} --out {out}", {"data": {"source": "csv", "path": "no.csv"}}, 1,
     "data.path"),
    ("csv-path-directory", "find {cfg} --out {out}", {"data": {"source": "csv", "path": "mods"}},
     1, "directory"),
    # import paths
    ("import-module-missing", "find {cfg} --out {out}",
     {"model": {"name": "import", "function": "no_such_module_xyz:build"}}, 1, "model.function"),
    ("import-attribute-missing", "train {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:nope"}}, 1, "no attribute 'nope'"),
    ("import-function-raises", "find {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:raises"}}, 1, "boom in user code"),
    ("import-returns-wrong-type", "find {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:not_a_model"}}, 1, "model.function"),
    ("data-import-raises", "compare {cfg} --out {out}",
     {"data": {"source": "import", "function": "mods.user:raises"}}, 1, "data.function"),
    ("data-import-wrong-type", "find {cfg} --out {out}",
     {"data": {"source": "import", "function": "mods.user:not_datasets"}}, 1, "data.function"),
    ("import-path-malformed", "find {cfg} --out {out}",
     {"model": {"name": "import", "function": "just_a_name"}}, 2,
     "model.function: must be an import path like package.module:function"),
    # output paths
    ("out-is-a-file", "find {cfg} --out {dir}/afile", None, 1, "is a file"),
    ("out-under-a-file", "train {cfg} --out {dir}/afile/sub", None, 1, "afile"),
    ("find-results-exist", "find {cfg} --out {dir}/done", None, 1, "--force"),
    ("train-results-exist", "train {cfg} --out {dir}/done", None, 1, "--force"),
    ("compare-results-exist", "compare {cfg} --out {dir}/done", None, 1, "--force"),
    ("plot-csv-exists", "plot --schedule onecycle --csv {dir}/done/summary.json", None, 1,
     "--force"),
    ("png-exists", "plot --schedule onecycle --png {dir}/old.png", None, 1, "--force"),
    ("png-wrong-suffix", "find {cfg} --out {out} --png {dir}/x.jpg", None, 2, ".png"),
    ("png-folder-missing", "train {cfg} --out {out} --png {dir}/no/x.png", None, 1, "does not exist"),
    # round two (issue 17): YAML that hangs or crashes a parser, inputs that crashed torch
    ("yaml-duplicate-key", "find {cfg}", "seed: 1\nseed: 2\n", 2, "duplicate key 'seed'"),
    ("yaml-huge-integer", "find {cfg}", "seed: " + "9" * 5000 + "\n", 2, "thousands of digits"),
    ("yaml-deep-nesting", "train {cfg}", "a: " + "[" * 3000 + "]" * 3000 + "\n", 2,
     "nested too deeply"),
    ("mse-on-classes", "find {cfg} --out {out}", {"loss": "mse"}, 2, "loss: mse"),
    ("csv-infinite-target", "train {cfg} --out {out}",
     {"data": {"source": "csv", "path": "inf_target.csv", "task": "regression"}}, 1, "infinite"),
    ("data-too-big-for-memory", "find {cfg} --out {out}",
     {"data": {"n_samples": 10_000_000, "n_features": 100_000}}, 1, "memory"),
    ("model-too-big-for-memory", "train {cfg} --out {out}",
     {"model": {"hidden": [1_000_000, 1_000_000]}}, 1, "memory"),
    ("model-returns-dict", "find {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:dict_model"}}, 1, "dict without"),
    ("model-returns-int", "train {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:int_model"}}, 1, "returned int"),
    ("model-frozen", "find {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:frozen_model"}}, 1, "trainable"),
    ("model-no-parameters", "compare {cfg} --out {out}",
     {"model": {"name": "import", "function": "mods.user:no_parameters"}}, 1, "trainable"),
    ("data-string-labels", "find {cfg} --out {out}",
     {"data": {"source": "import", "function": "mods.user:string_labels"}}, 1, "string labels"),
    ("data-items-of-varying-shape", "train {cfg} --out {out}",
     {"data": {"source": "import", "function": "mods.user:ragged"}}, 1, "same shape"),
    ("plot-csv-missing-folder", "plot --schedule onecycle --csv {dir}/nope/x.csv", None, 1,
     "does not exist"),
    ("plot-csv-is-a-folder", "plot --schedule onecycle --csv {dir}/done --force", None, 1,
     "is a folder"),
    ("png-is-a-folder", "plot --schedule onecycle --png {dir}/done --force", None, 2, ".png"),
    ("plot-width-zero", "plot --schedule onecycle --width 0", None, 2, "--width"),
    # issue 19 and 20: epochs, sequential, snapshot, distributed
    ("epochs-and-steps", "train {cfg} --epochs 2 --steps 5 --out {out}", None, 2, "--epochs or --steps"),
    ("epochs-negative", "compare {cfg} --epochs -1 --out {out}", None, 2, "--epochs"),
    ("epochs-and-steps-in-config", "train {cfg} --out {out}", {"train": {"steps": 5, "epochs": 2}}, 2,
     "train.epochs"),
    ("epoch-length-without-steps-per-epoch", "plot --schedule step --set step_size=2ep", None, 2,
     "--steps-per-epoch"),
    ("steps-per-epoch-zero", "plot --schedule cosine --steps-per-epoch 0", None, 2, "--steps-per-epoch"),
    ("sequential-bad-part", "plot --schedule sequential --set schedules=[{{\"name\":\"cosin\"}}]", None, 2,
     "cosine"),
    ("sequential-bad-index", "plot --schedule sequential --set schedules.7.lr=1", None, 2,
     "schedules.I.KEY"),
    ("sequential-bad-yaml", "plot --schedule sequential --set schedules=[{{name:x", None, 2, "YAML"),
    ("snapshot-unknown", "find {cfg} --snapshot gpu --out {out}", None, 2, "find.snapshot"),
    ("snapshot-none-with-search", "find {cfg} --snapshot none --budget 1 --out {out}", None, 2,
     "find.budget: 0"),
    ("distributed-unknown", "find {cfg} --out {out}", {"distributed": "zero3"}, 2, "distributed"),
]  # fmt: skip


def setup_folder(folder: Path, config: object) -> None:
    (folder / "mods").mkdir()
    (folder / "mods" / "__init__.py").write_text("")
    (folder / "mods" / "user.py").write_text(MODULE)
    for name, text in CSV.items():
        (folder / name).write_text(text)
    (folder / "afile").write_text("not a folder")
    (folder / "old.png").write_bytes(b"\x89PNG old")
    done = folder / "done"
    done.mkdir()
    for name in ("range_test.csv", "train.csv", "eval.csv", "compare.csv", "summary.json"):
        (done / name).write_text("earlier results\n")
    if isinstance(config, dict):
        text = merged(config)
    elif isinstance(config, str):
        text = config
    else:
        text = TINY
    (folder / "cfg.yaml").write_text(text)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_the_matrix_is_large_and_covers_every_command():
    assert len(CASES) >= 40
    commands = {case[1].split()[0] for case in CASES}
    assert commands == {"find", "train", "compare", "plot", "schedules"}
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("command", "config", "code", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_input(tmp_path, monkeypatch, command, config, code, fragment):
    setup_folder(tmp_path, config)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    args = command.format(cfg=tmp_path / "cfg.yaml", out=out, dir=tmp_path).split()
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), "a result was written"
    after = snapshot(tmp_path)
    assert after == before, "a file was written or changed"


def test_errors_do_not_depend_on_the_terminal(tmp_path, monkeypatch):
    """The one line stays one line in a narrow terminal (no wrapping into several)."""
    setup_folder(tmp_path, {"data": {"source": "csv", "path": "good.csv", "target": "lable"}})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "40")
    result = invoke("find", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "o"))
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_output_folder_not_writable(tmp_path, monkeypatch):
    setup_folder(tmp_path, None)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = invoke("find", str(tmp_path / "cfg.yaml"), "--out", str(locked / "run"))
        assert result.exit_code == 1 and "locked" in result.stderr
    finally:
        locked.chmod(0o700)
