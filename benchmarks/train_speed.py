"""Training speed of VIM against the monolithic VRNN baseline at the same batch.

Prints training steps/s, samples/s (sequences/s) and peak memory for each model, in state and
pixel mode, on the CPU and on CUDA when present (bf16 autocast there, as the trainer does).
Batches are synthetic tensors of the data's shapes, so the loader is not measured.

    python benchmarks/train_speed.py            # tiny presets
    python benchmarks/train_speed.py --preset default --batch-size 64

Peak memory is the CUDA allocator's peak on a GPU and the process's peak RSS growth on the CPU.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from vim_world.batch import Batch
from vim_world.envs import STATE_FEATURES
from vim_world.model import build_model, count_parameters, preset


def batch_for(config, batch_size: int, seq_len: int, device: torch.device) -> Batch:
    if config.input_mode == "state":
        obs = torch.randn(batch_size, seq_len, config.num_slots, config.state_dim, device=device)
    else:
        obs = torch.rand(batch_size, seq_len, config.channels, config.image_size, config.image_size, device=device)
    return Batch(obs=obs)


def measure(name: str, config, batch_size: int, seq_len: int, steps: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_model(name, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = batch_for(config, batch_size, seq_len, device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step(i: int) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = model.loss(batch, 10_000 + i)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(3):  # warm-up
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    seconds = time.perf_counter() - start
    return {"params": count_parameters(model), "steps_s": steps / seconds, "samples_s": steps * batch_size / seconds,
            "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "default"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--devices", default="cpu,cuda",
                        help="comma-separated; cuda rows are skipped when no GPU is present")
    args = parser.parse_args()
    wanted = args.devices.split(",")
    unknown = sorted(set(wanted) - {"cpu", "cuda"})
    if unknown:
        parser.error(f"--devices: unknown {unknown}; expected a comma-separated subset of cpu,cuda")
    devices = [torch.device(d) for d in wanted if d == "cpu" or torch.cuda.is_available()]
    print(f"# preset {args.preset}, batch {args.batch_size} x {args.seq_len} steps; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads")
    print("| device | mode | model | parameters | steps/s | samples/s | peak memory (MB) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for device in devices:
        for mode in ("state", "pixels"):
            config = preset(f"{args.preset}-{mode}", state_dim=len(STATE_FEATURES), num_slots=5)
            for name in ("vim", "vrnn"):
                r = measure(name, config, args.batch_size, args.seq_len, args.steps, device)
                print(f"| {device.type} | {mode} | {name} | {r['params']:,} | {r['steps_s']:.1f} | "
                      f"{r['samples_s']:.0f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
