"""Peak GPU memory of the range test against a bare loop, on a model that fills most of the GPU.

    python benchmarks/gpu_memory.py [--fill 0.6 --steps 20]     # needs CUDA

The model is a stack of square linear layers sized so that weights, gradients and Adam's two
moments take ``--fill`` of the GPU's free memory. The bare loop and ``lrtool.find_lr`` (CPU
snapshot, the default; then ``snapshot="disk"``) each run ``--steps`` steps of the same batch
from the same weights, with ``torch.cuda.reset_peak_memory_stats`` before each; the ratio of
their peaks (``max_memory_allocated``) is printed. Target: lrtool / bare <= 1.02 (the snapshot
lives on the host, never on the GPU). Prepared for the GPU check of issue 20; this project's CI
has no GPU.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    import torch
    from torch import nn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fill", type=float, default=0.6)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--width", type=int, default=8192)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no CUDA device; this benchmark measures GPU memory", file=sys.stderr)
        return 2
    import lrtool

    free, total = torch.cuda.mem_get_info()
    per_layer = args.width * (args.width + 1) * 4 * 4  # weights, grads, exp_avg, exp_avg_sq
    layers = max(1, int(free * args.fill // per_layer))
    x = torch.randn(64, args.width, device="cuda")

    def build():
        torch.manual_seed(0)
        model = nn.Sequential(*[nn.Linear(args.width, args.width) for _ in range(layers)]).cuda()
        return model, torch.optim.Adam(model.parameters(), lr=1e-6)

    def loss_fn(out, target):
        return (out - target).square().mean()

    peaks = {}
    for name in ("bare", "lrtool cpu", "lrtool disk"):
        model, opt = build()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        if name == "bare":
            for i in range(args.steps):
                for group in opt.param_groups:
                    group["lr"] = 1e-7 * (10 ** (i / args.steps))
                loss = loss_fn(model(x), x)
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                loss.item()
        else:
            lrtool.find_lr(
                model, opt, [(x, x)] * args.steps, loss_fn, start_lr=1e-7, end_lr=1e-6,
                steps=args.steps, refine=False, snapshot=name.split()[1],
            )  # fmt: skip
        torch.cuda.synchronize()
        peaks[name] = torch.cuda.max_memory_allocated()
        del model, opt
        torch.cuda.empty_cache()
    params = layers * args.width * (args.width + 1)
    print(f"{layers} layers of {args.width}: {params / 1e9:.2f}B parameters, "
          f"{torch.cuda.get_device_name()} ({total / 2**30:.0f} GiB)")  # fmt: skip
    for name, peak in peaks.items():
        print(f"{name:<12} peak {peak / 2**30:8.2f} GiB   / bare {peak / peaks['bare']:.4f}")
    worst = max(peaks["lrtool cpu"], peaks["lrtool disk"]) / peaks["bare"]
    print(f"target lrtool / bare <= 1.02: {'met' if worst <= 1.02 else 'NOT met'} ({worst:.4f})")
    return 0 if worst <= 1.02 else 1


if __name__ == "__main__":
    sys.exit(main())
