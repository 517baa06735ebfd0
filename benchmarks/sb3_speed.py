"""SB3 VecEnv steps per second: DummyVecEnv of N single envs against ``vim_world.sb3.as_sb3_vec_env``
on the native vector env, measured in the same run.

Steps ``VimWorld/Passive-v0`` (64×64 pixels, 4 objects) and ``VimWorld/Steer-v0`` (state
observations) through SB3's ``VecEnv.step`` with random actions at N = 16 envs (episode ends
included), pinned to one CPU core, and prints a Markdown table with the batched/Dummy ratio.

    python benchmarks/sb3_speed.py            # about half a minute
    python benchmarks/sb3_speed.py --quick    # a few seconds
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import argparse  # noqa: E402
import platform  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from env_speed import pin_to_one_core, rate  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv  # noqa: E402

import vim_world  # noqa: E402, F401
from vim_world.sb3 import as_sb3_vec_env  # noqa: E402

CASES = (("VimWorld/Passive-v0", {"obs_mode": "pixels", "obs_size": 64, "num_objects": 4}),
         ("VimWorld/Steer-v0", {"obs_mode": "state"}))  # fmt: skip


def make(kind: str, env_id: str, n: int, kwargs: dict) -> VecEnv:
    """An SB3 VecEnv of ``n`` envs: ``kind`` is ``"dummy"`` (DummyVecEnv) or ``"batched"``."""
    if kind == "dummy":
        return DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(n)])
    return as_sb3_vec_env(gym.make_vec(env_id, num_envs=n, **kwargs))


def measure(kind: str, env_id: str, n: int, kwargs: dict, seconds: float) -> float:
    """Env steps per second through SB3's ``VecEnv.step`` with pre-drawn random actions."""
    venv = make(kind, env_id, n, kwargs)
    venv.seed(0)
    venv.reset()
    venv.action_space.seed(0)
    actions = np.stack([np.stack([venv.action_space.sample() for _ in range(n)]) for _ in range(64)])
    counter = iter(range(10**12))
    result = rate(lambda: venv.step(actions[next(counter) % len(actions)]), n, seconds)
    venv.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (a few seconds in all)")
    parser.add_argument("--num-envs", type=int, default=16, help="N, envs per VecEnv")
    args = parser.parse_args()
    seconds = 0.6 if args.quick else 4.0
    print(f"{platform.processor() or platform.machine()}, {pin_to_one_core()}, N = {args.num_envs}\n")
    print("| env | obs | DummyVecEnv steps/s | as_sb3_vec_env steps/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for env_id, kwargs in CASES:
        dummy = measure("dummy", env_id, args.num_envs, kwargs, seconds)
        batched = measure("batched", env_id, args.num_envs, kwargs, seconds)
        print(f"| {env_id} | {kwargs['obs_mode']} | {dummy:,.0f} | {batched:,.0f} | {batched / dummy:.1f}× |")


if __name__ == "__main__":
    main()
