"""How cost grows with parallelism: collection frames/s against worker processes, and training
samples/s against data-parallel processes (torchrun, gloo on the CPU or nccl on GPUs).

    python benchmarks/scaling.py --workers 1 2 --procs 1 2

Collection times ``vim_world.data.collect`` end to end (process start-up included). Training
runs ``vim-world train`` under ``torchrun --nproc_per_node=N`` twice in the same run directory:
a warm-up run of ``--warmup`` steps, then a resumed run to ``warmup + steps``; samples/s is
``steps * batch_size / wall time of the resumed run`` (start-up and checkpoint loading
included, so small runs understate the steady state). Each process gets ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vim_world  # noqa: F401  (registers the envs)
from vim_world.data import collect


def collection_rate(root: Path, workers: int, episodes: int, episode_len: int, num_envs: int) -> float:
    """Frames per second of one ``collect`` call with ``workers`` processes."""
    start = time.perf_counter()
    collect("VimWorld/Passive-v0", root / f"w{workers}", episodes=episodes, episode_len=episode_len,
            num_envs=num_envs, seed=0, workers=workers)  # fmt: skip
    return episodes * episode_len / (time.perf_counter() - start)


def _torchrun(procs: int, data: Path, out: Path, steps: int, batch: int, seq_len: int) -> float:
    """Wall seconds of ``vim-world train`` to ``steps`` on ``procs`` processes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
           "-m", "vim_world.cli", "train", "--data", str(data), "--out", str(out), "--steps", str(steps),
           "--batch-size", str(batch), "--seq-len", str(seq_len), "--device", "cpu", "--holdout", "0",
           "--checkpoint-every", str(10**6), "--no-progress"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True)
    return time.perf_counter() - start


def training_rate(root: Path, data: Path, procs: int, warmup: int, steps: int, batch: int, seq_len: int) -> float:
    """Samples per second of ``steps`` resumed training steps on ``procs`` processes."""
    out = root / f"run{procs}"
    _torchrun(procs, data, out, warmup, batch, seq_len)
    return steps * batch / _torchrun(procs, data, out, warmup + steps, batch, seq_len)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--episodes", type=int, default=256)
    p.add_argument("--episode-len", type=int, default=32)
    p.add_argument("--num-envs", type=int, default=32)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"collection: VimWorld/Passive-v0, {args.episodes} episodes x {args.episode_len} frames, "
              f"{args.num_envs} envs per shard ({os.cpu_count()} CPUs)")  # fmt: skip
        print("| workers | frames/s |\n|---:|---:|")
        for w in args.workers:
            print(
                f"| {w} | {collection_rate(root, w, args.episodes, args.episode_len, args.num_envs):,.0f} |", flush=True
            )
        data = root / f"w{args.workers[0]}"
        print(f"\ntraining: vim tiny-state, global batch {args.batch_size} x {args.seq_len} steps, "
              f"{args.steps} steps after {args.warmup} warm-up steps, gloo on the CPU")  # fmt: skip
        print("| processes | samples/s |\n|---:|---:|")
        for n in args.procs:
            rate = training_rate(root, data, n, args.warmup, args.steps, args.batch_size, args.seq_len)
            print(f"| {n} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
