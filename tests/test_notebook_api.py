"""The Python API as a notebook uses it: repr, plot, save/load, progress, repeats, per-group
LRs, and one clear error for the usual mix-ups."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from lrtool import LrtoolError, RangeTestResult, find_lr


def _problem(seed: int = 0) -> tuple[nn.Module, torch.optim.Optimizer, torch.utils.data.DataLoader]:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    x = torch.randn(1024, 8)
    data = torch.utils.data.TensorDataset(x, x[:, :3].argmax(dim=1))
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.01},
            {"params": model[2].parameters(), "lr": 0.1},
        ],
        momentum=0.9,
    )
    return model, opt, loader


@pytest.fixture(scope="module")
def result() -> RangeTestResult:
    model, opt, loader = _problem()
    return find_lr(model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-5, end_lr=10, steps=80)


def test_repr_is_short_and_says_the_answer(result):
    text = repr(result)
    assert text.startswith("RangeTestResult(lr=") and len(text) < 300
    assert f"{result.lr:.3g}" in text and "steps=" in text


def test_save_and_load_give_the_same_result(result, tmp_path):
    path = result.save(tmp_path / "rt.json")
    loaded = RangeTestResult.load(path)
    assert loaded.lrs == result.lrs and loaded.lr == result.lr
    assert loaded.recommendation == result.recommendation
    assert len(loaded.smoothed) == len(result.smoothed)
    assert all(
        a == b or (math.isnan(a) and math.isnan(b))
        for a, b in zip(loaded.smoothed, result.smoothed, strict=True)
    )
    # every field comes back (NaN written as null and read as NaN)
    assert json.dumps(loaded.to_dict()) == json.dumps(result.to_dict())
    with pytest.raises(LrtoolError, match="file not found"):
        RangeTestResult.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("tamper", "fragment"),
    [
        (lambda d: {**d, "lrs": 3}, "'lrs' must be a list of numbers"),
        (lambda d: {**d, "lrs": d["lrs"][:-1]}, "different lengths"),
        (lambda d: {**d, "losses": ["x", *d["losses"][1:]]}, "'losses' must be a list"),
        (lambda d: {**d, "recommendation": {**d["recommendation"], "lr": 1e3}}, "outside the sweep"),
        (lambda d: {**d, "recommendation": {**d["recommendation"], "lr": -1}}, "positive number"),
        (lambda d: {**d, "start_lr": 100.0}, "must be below 'end_lr'"),
        (lambda d: {**d, "end_lr": 1e-3}, "outside the sweep's range"),
        (lambda d: {**d, "steps_requested": 2}, "steps_requested"),
        (lambda d: {**d, "mode": "cosine"}, "'mode' must be exp or linear"),
        (lambda d: [d], "JSON object"),
    ],
)  # fmt: skip
def test_a_tampered_or_mixed_result_file_is_refused_with_what_does_not_fit(
    result, tmp_path, tamper, fragment
):
    path = result.save(tmp_path / "rt.json")
    data = json.loads(path.read_text())
    path.write_text(json.dumps(tamper(data)))
    with pytest.raises(LrtoolError, match=fragment):
        RangeTestResult.load(path)


def test_plot_returns_an_axes_with_the_curve_and_the_marks(result):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    ax = result.plot()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "curve the rules read" in labels and any(lab.startswith("lr ") for lab in labels)
    assert ax.get_xscale() == "log"


def test_one_lr_per_param_group_keeps_their_ratio(result):
    assert result.group_lr[0] == pytest.approx(result.lr)  # the reference group: lr itself
    assert result.group_lr[1] == pytest.approx(10 * result.lr)  # 0.1 / 0.01


def test_repeats_and_progress(capsys):
    """Three sweeps merged, and the progress bar shown on stderr (not stdout)."""
    model, opt, loader = _problem()
    repeated = find_lr(
        model, opt, loader, nn.CrossEntropyLoss(), start_lr=1e-5, end_lr=10, steps=40,
        repeats=3, progress=True, refine=False,
    )  # fmt: skip
    assert len(repeated.repeat_lrs) == 3 and repeated.stop_reason.startswith("median of 3")
    warnings = repeated.recommendation.warnings if repeated.recommendation else []
    assert not any(w.startswith("--") or " try --" in w for w in warnings)
    shown = capsys.readouterr()
    assert shown.out == ""  # a notebook's cell output stays clean: the bar is on stderr
    # stderr is no terminal here (a CI log): plain lines, about one per tenth of each sweep
    lines = [line for line in shown.err.splitlines() if line.startswith("range test: step")]
    firsts = [line for line in lines if line.startswith("range test: step 1/40,")]
    assert len(firsts) == 3 and 3 * 3 <= len(lines) <= 3 * 12


@pytest.mark.parametrize(
    ("optimizer", "loader", "fragment"),
    [
        (torch.optim.SGD, None, "instance"),
        ("adam", None, "torch optimizer"),
        (None, "dataset", "DataLoader"),
        (None, 42, "iterable"),
    ],
)
def test_mix_ups_are_one_clear_error(optimizer, loader, fragment):
    model, opt, real_loader = _problem()
    if loader == "dataset":
        loader = real_loader.dataset
    with pytest.raises(LrtoolError, match=fragment):
        find_lr(
            model,
            optimizer or opt,
            loader if loader is not None else real_loader,
            nn.CrossEntropyLoss(),
        )
