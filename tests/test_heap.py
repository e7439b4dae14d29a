"""Keeping freed CPU memory: fewer page faults for the same allocations, opt-out, who calls it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lrtool import heap

# Ten 4 MB tensors allocated, written and freed, 20 times: the allocation pattern of a training
# step's activations. Prints the minor page faults of the last 19 rounds.
CHURN = """
import resource, sys, torch
from lrtool.heap import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else False
def step():
    buffers = [torch.ones(1 << 20) for _ in range(10)]
    del buffers
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
    )
    applied, faults = done.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_retained_memory_is_not_faulted_in_again():
    applied, retained = page_faults("retain")
    if applied != "True":
        pytest.skip("this libc has no mallopt")
    _, default = page_faults("default")
    # A round writes 40 MB, 10,240 pages. glibc's default usually gives them back each round
    # (~190,000 faults for 19 rounds here; how much depends on the heap's history). Kept, they
    # are faulted in once: fewer than a tenth of a round's pages per round.
    assert retained < 19 * 1024, (retained, default)
    assert retained <= default


def test_opt_out_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv(heap.OPT_OUT, "0")
    assert heap.retain_freed_memory() is False


def test_config_runs_keep_freed_memory(monkeypatch):
    from lrtool.config import load_config
    from lrtool.jobs.common import LoadedConfig, prepare

    calls = []
    monkeypatch.setattr(heap, "retain_freed_memory", lambda: calls.append(True) or True)
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "configs" / "smoke.yaml")
    prepare(LoadedConfig(config, "smoke.yaml", root / "configs"))
    assert calls == [True]


def test_old_name_still_works_unlisted_and_cheap(monkeypatch):
    """``lrtool.retain_freed_memory`` (a process setting, not part of the LR API) keeps
    working for scripts that call it, without being listed in ``lrtool.__all__``, and
    loading it does not import torch."""
    import lrtool

    assert "retain_freed_memory" not in lrtool.__all__
    monkeypatch.setenv(heap.OPT_OUT, "0")
    assert lrtool.retain_freed_memory() is False  # the heap module's function: it reads the opt-out
    code = (
        "import sys, lrtool; f = lrtool.retain_freed_memory; "
        "print(f.__module__, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["lrtool.heap", "False"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_an_address_space_limit_leaves_malloc_alone():
    """Under ulimit -v, memory kept in the heap counts against the limit (and near it such a
    process spent minutes failing allocations): the setting is not applied."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))

    code = "from lrtool.heap import retain_freed_memory; print(retain_freed_memory())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, preexec_fn=cap
    )
    assert done.stdout.strip() == "False"
    import ctypes

    if not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.skip("this libc has no mallopt")
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert free.stdout.strip() == "True"  # the same call without the limit applies it
