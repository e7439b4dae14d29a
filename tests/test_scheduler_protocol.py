"""LrtoolScheduler is a real torch LR scheduler: state_dict/load_state_dict, resumable with the
same LRs (plateau state and momentum included), and accepted by Lightning and the HF Trainer
(tested against the real libraries when the ``integrations`` extra is installed)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from lrtool import LrtoolScheduler, build_schedule
from lrtool.errors import LrtoolError


def _optimizer(kind: str = "sgd") -> torch.optim.Optimizer:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    if kind == "adam":
        return torch.optim.Adam(model.parameters(), lr=0.1)
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def _trace(sched: LrtoolScheduler, steps: int, metrics: dict[int, float] | None = None) -> list:
    """(lr, momentum) after each of ``steps`` steps; plateau fed ``metrics`` at some steps."""
    out = []
    for t in range(steps):
        if metrics and t in metrics and sched.schedule.stateful:
            sched.update(metrics[t])
        sched.step()
        out.append((sched.get_last_lr()[0], sched.current_momentum()))
    return out


@pytest.mark.parametrize(
    ("name", "params", "kind"),
    [
        ("onecycle", {"max_lr": 1.0, "total_steps": 60}, "sgd"),
        ("onecycle", {"max_lr": 1.0, "total_steps": 60}, "adam"),
        ("cosine_restarts", {"lr": 0.5, "total_steps": 60, "warmup_steps": 5}, "sgd"),
        ("plateau", {"lr": 1.0, "patience": 1}, "sgd"),
    ],
)
def test_resuming_from_state_dict_gives_the_same_lrs(name, params, kind):
    metrics = dict.fromkeys(range(0, 60, 4), 1.0)  # a stalled metric: plateau cuts
    whole = LrtoolScheduler(_optimizer(kind), build_schedule(name, params))
    expected = _trace(whole, 60, metrics)

    first = LrtoolScheduler(_optimizer(kind), build_schedule(name, params))
    head = _trace(first, 25, metrics)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)  # a checkpoint holds plain data only
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed = LrtoolScheduler(_optimizer(kind), build_schedule(name, params))
    resumed.load_state_dict(state)
    tail = _trace(resumed, 35, {t - 25: v for t, v in metrics.items() if t >= 25})
    assert head + tail == expected
    assert resumed.last_epoch == 60
    if name == "plateau":
        assert resumed.schedule.state.cuts  # the cuts before the checkpoint came along


def test_it_is_a_torch_lr_scheduler():
    opt = _optimizer()
    sched = LrtoolScheduler(opt, build_schedule("cosine", {"lr": 0.2, "total_steps": 10}))
    assert isinstance(sched, torch.optim.lr_scheduler.LRScheduler)
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.2]
    opt.step()
    sched.step()
    assert sched.last_epoch == 1 and sched.get_last_lr() == sched.get_lr()


def test_a_state_for_another_schedule_is_refused():
    first = LrtoolScheduler(_optimizer(), build_schedule("cosine", {"lr": 0.2, "total_steps": 9}))
    other = LrtoolScheduler(_optimizer(), build_schedule("constant", {"lr": 0.2}))
    with pytest.raises(LrtoolError, match="cosine"):
        other.load_state_dict(first.state_dict())


def _state_of(opt: torch.optim.Optimizer, name: str, params: dict, steps: int = 0) -> dict:
    sched = LrtoolScheduler(opt, build_schedule(name, params))
    for _ in range(steps):
        sched.step()
    return sched.state_dict()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: {**s, "schedule_params": {**s["schedule_params"], "lr": 0.1}}, "lr: saved 0.1"),
        (lambda s: {**s, "schedule_params": {**s["schedule_params"], "total_steps": 100}},
         "total_steps"),
        (lambda s: {**s, "ratios": [float("nan")]}, "ratios must be finite"),
        (lambda s: {**s, "ratios": [1.0, 1.0]}, "2 entries but the optimizer has 1"),
        (lambda s: {**s, "base_lrs": "0.5"}, "base_lrs has str entries"),
        (lambda s: {**s, "last_epoch": 2.5}, "last_epoch must be an integer"),
        (lambda s: {"last_epoch": 3, "base_lrs": [0.5], "_step_count": 4}, "not an LrtoolScheduler"),
        (lambda s: [1, 2], "not an LrtoolScheduler"),
    ],
)  # fmt: skip
def test_a_state_that_does_not_fit_is_refused_whole_and_changes_nothing(mangle, message):
    """Another schedule's parameters (cosine 0.1/10 steps into cosine 0.5/20 would resume at
    another LR), a torch scheduler's state, NaN ratios or another number of param groups: one
    LrtoolError naming the mismatch, and the scheduler and optimizer as they were."""
    saved = _state_of(_optimizer(), "cosine", {"lr": 0.5, "total_steps": 20}, steps=5)
    opt = _optimizer()
    sched = LrtoolScheduler(opt, build_schedule("cosine", {"lr": 0.5, "total_steps": 20}))
    sched.step()
    before = (sched.last_epoch, list(sched.ratios), list(sched.base_lrs), opt.param_groups[0]["lr"])
    with pytest.raises(LrtoolError, match=message):
        sched.load_state_dict(mangle(saved))
    assert (sched.last_epoch, sched.ratios, sched.base_lrs, opt.param_groups[0]["lr"]) == before
    sched.load_state_dict(saved)  # the state that fits still resumes
    assert sched.last_epoch == 5


def test_a_torch_scheduler_state_is_refused():
    opt = _optimizer()
    step = torch.optim.lr_scheduler.StepLR(opt, step_size=3)
    mine = LrtoolScheduler(_optimizer(), build_schedule("constant", {"lr": 0.2}))
    with pytest.raises(LrtoolError, match="not an LrtoolScheduler state"):
        mine.load_state_dict(step.state_dict())


# ------------------------------------------------------------------------------------------
# The real libraries (pip install 'lrtool[integrations]')
# ------------------------------------------------------------------------------------------


def _regression_data(n: int = 64) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True))


def test_lightning_takes_it_in_configure_optimizers(tmp_path):
    pl = pytest.importorskip("lightning.pytorch")
    schedule = build_schedule("onecycle", {"max_lr": 0.5, "total_steps": 16})
    seen: list[float] = []

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
            x, y = batch
            seen.append(self.trainer.optimizers[0].param_groups[0]["lr"])
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):  # noqa: ANN201
            opt = torch.optim.SGD(self.parameters(), lr=0.5, momentum=0.9)
            sched = LrtoolScheduler(opt, schedule)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    loader = torch.utils.data.DataLoader(_regression_data(), batch_size=8)
    trainer = pl.Trainer(
        max_steps=16, logger=False, enable_checkpointing=True, default_root_dir=tmp_path,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(Module(), loader)
    assert seen == pytest.approx([schedule(t) for t in range(16)], rel=1e-12)
    checkpoint = next(tmp_path.rglob("*.ckpt"))
    state = torch.load(checkpoint, weights_only=False)["lr_schedulers"][0]
    assert state["last_epoch"] == 16 and state["schedule"] == "onecycle"


def test_the_hf_trainer_checkpoints_and_resumes_with_it(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(4, 1)

        def forward(self, x, labels=None):  # noqa: ANN001, ANN201
            out = self.net(x)
            return {"loss": nn.functional.mse_loss(out, labels), "logits": out}

    data = _regression_data()

    class Items(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, i: int) -> dict:
            return {"x": data[i][0], "labels": data[i][1]}

    schedule_params = {"max_lr": 0.3, "total_steps": 16}

    def run(steps: int, resume: bool) -> tuple[list[float], LrtoolScheduler]:
        torch.manual_seed(0)
        model = Model()
        opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
        sched = LrtoolScheduler(opt, build_schedule("onecycle", schedule_params))
        args = transformers.TrainingArguments(
            output_dir=str(tmp_path / "hf"), max_steps=steps, per_device_train_batch_size=8,
            save_strategy="steps", save_steps=8, report_to=[], use_cpu=True,
            logging_strategy="no", disable_tqdm=True, seed=0,
        )  # fmt: skip
        trainer = transformers.Trainer(
            model=model, args=args, train_dataset=Items(), optimizers=(opt, sched)
        )
        trainer.train(
            resume_from_checkpoint=str(tmp_path / "hf" / "checkpoint-8") if resume else None
        )
        return sched.get_last_lr(), sched

    lrs, sched = run(16, resume=False)
    assert (tmp_path / "hf" / "checkpoint-8").exists()  # the checkpoint saved the scheduler
    schedule = build_schedule("onecycle", schedule_params)
    assert sched.last_epoch == 16 and lrs[0] == pytest.approx(schedule(16))
    resumed_lrs, resumed = run(16, resume=True)
    assert resumed.last_epoch == 16 and resumed_lrs == lrs


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("onecycle", {"max_lr": 0.5, "total_steps": 40}),
        ("cosine", {"lr": 0.2, "total_steps": 40, "warmup_steps": 5}),
        ("sequential", {"lr": 0.1, "total_steps": 40}),
        ("plateau", {"lr": 0.1, "patience": 0}),
    ],
)
def test_schedules_and_the_scheduler_pickle_and_continue_the_same(name, params):
    """multiprocessing and checkpoint tools pickle schedulers: a schedule is rebuilt from its
    recipe (a plateau with its state), and an LrtoolScheduler continues with the same LRs."""
    import pickle

    sched = LrtoolScheduler(_optimizer(), build_schedule(name, params))
    for t in range(7):
        if sched.schedule.stateful and t % 2:
            sched.update(float(t))  # a metric that only gets worse: cuts
        sched.step()
    copy = pickle.loads(pickle.dumps(sched))
    assert copy.last_epoch == sched.last_epoch
    assert _trace(copy, 10) == _trace(sched, 10)


def test_a_schedule_not_built_by_build_schedule_says_how_to_pickle_it():
    import pickle

    from lrtool.schedules.base import Schedule

    hand_made = Schedule("mine", lambda t: 0.1)
    with pytest.raises(TypeError, match="build it with lrtool.build_schedule"):
        pickle.dumps(hand_made)
