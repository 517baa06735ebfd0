"""Env steps per second: one env, Gymnasium's SyncVectorEnv of N single envs, and the native vector env.

Measures ``VimWorld/Passive-v0`` (64×64, 4 objects) with pixel and with state observations at
N = 1, 64, 256, pinned to one CPU core with single-threaded BLAS, and prints a Markdown table
with the native/sync ratio at each N. Targets: native >= 50,000 frames/s at N = 256 and >= 20×
SyncVectorEnv.

    python benchmarks/env_speed.py            # about a minute
    python benchmarks/env_speed.py --quick    # a few seconds
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import vim_world  # noqa: E402, F401

ENV_ID = "VimWorld/Passive-v0"
SIZES = (1, 64, 256)
TARGET_FPS, TARGET_RATIO = 50_000, 20.0


def pin_to_one_core() -> str:
    """Pin this process to CPU 0 where the OS allows; say what was done."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        return "pinned to CPU 0 (os.sched_setaffinity)"
    return "not pinned (os.sched_setaffinity unavailable on this OS)"


def rate(step: Callable[[], None], frames_per_call: int, seconds: float, warmup: int = 3) -> float:
    """Frames per second of ``step`` over at least ``seconds`` (best of 3 rounds)."""
    for _ in range(warmup):
        step()
    best = 0.0
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3 or calls < 2:
            step()
            calls += 1
        best = max(best, calls * frames_per_call / elapsed)
    return best


def measure(kind: str, n: int, obs_mode: str, seconds: float) -> float:
    """Env steps per second of one configuration (``kind``: single, sync or native)."""
    kwargs = dict(obs_mode=obs_mode, obs_size=64, num_objects=4)
    if kind == "single":
        env = gym.make(ENV_ID, **kwargs)
        env.reset(seed=0)
        no_op = np.array([4, 0])

        def step() -> None:
            _, _, terminated, truncated, _ = env.step(no_op)
            if terminated or truncated:
                env.reset()

        return rate(step, 1, seconds)
    mode = "sync" if kind == "sync" else "vector_entry_point"
    envs = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode=mode, **kwargs)
    envs.reset(seed=0)
    no_ops = np.tile([4, 0], (n, 1))
    result = rate(lambda: envs.step(no_ops), n, seconds)
    envs.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short measurements (noisier)")
    args = parser.parse_args()
    seconds = 0.6 if args.quick else 3.0
    pinned = pin_to_one_core()
    print(f"# {ENV_ID}, 64x64, 4 objects; {pinned}; OMP/MKL/OPENBLAS threads = 1")
    print(f"# numpy {np.__version__}, gymnasium {gym.__version__}, Python {platform.python_version()}, "
          f"{platform.processor() or platform.machine()}; {'--quick' if args.quick else 'full'} run")  # fmt: skip
    print()
    print("| obs | N | gym.make (steps/s) | SyncVectorEnv (steps/s) | native vector env (steps/s) | native / sync |")
    print("|---|---:|---:|---:|---:|---:|")
    verdicts = []
    for obs_mode in ("pixels", "state"):
        single = measure("single", 1, obs_mode, seconds)
        for n in SIZES:
            sync = measure("sync", n, obs_mode, seconds)
            native = measure("native", n, obs_mode, seconds)
            one = f"{single:,.0f}" if n == 1 else ""
            print(f"| {obs_mode} | {n} | {one} | {sync:,.0f} | {native:,.0f} | {native / sync:.1f}× |", flush=True)
            if n == max(SIZES) and obs_mode == "pixels":
                verdicts.append(f"native pixels at N={n}: {native:,.0f} frames/s "
                                f"({'meets' if native >= TARGET_FPS else 'MISSES'} the {TARGET_FPS:,} target)")  # fmt: skip
            if n == max(SIZES):
                verdicts.append(f"native/sync {obs_mode} at N={n}: {native / sync:.1f}× "
                                f"({'meets' if native / sync >= TARGET_RATIO else 'MISSES'} the {TARGET_RATIO:.0f}× target)")  # fmt: skip
    print()
    for line in verdicts:
        print(f"- {line}")


if __name__ == "__main__":
    main()
