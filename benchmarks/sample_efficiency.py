"""Real environment steps: MPC over a learned VIM (learned heads only) against PPO on the real env.

Usage::

    python benchmarks/sample_efficiency.py --out out/sample_efficiency            # small budget
    python benchmarks/sample_efficiency.py --budget tiny --ppo-steps 2048 4096 --seeds 0 --episodes 16
    python benchmarks/sample_efficiency.py --reuse-model --stages imagined   # on an earlier run's VIM
    python benchmarks/sample_efficiency.py --budget tiny --stages actor_critic --out out/ac_tiny
    python benchmarks/sample_efficiency.py --budget tiny --stages mpc_critic --out out/ac_tiny --reuse-model
    python benchmarks/sample_efficiency.py --stages mpc_pixels --out out/se --reuse-model   # from frames
    python benchmarks/sample_efficiency.py --stages ppo --out out/ppo          # PPO alone, no VIM
    python benchmarks/sample_efficiency.py --crossing out/ppo/results.json out/se/results.json
    python benchmarks/sample_efficiency.py --pool s0/results_mpc_critic.json s1/results_mpc_critic.json --agent mpc_critic

Every row keeps its per-episode successes, so ``--crossing PPO_RESULTS AGENT_RESULTS`` places the
crossing of a PPO sweep against an agent measured separately (on the same evaluation seeds): MPC,
or ``--agent actor_critic`` / ``mpc_critic`` for those stages. ``--pool RESULTS...`` pools one
stage over runs of several training seeds (``--model-seed``): each run's success rate per env with
its Wilson interval, and the mean over runs with a two-level bootstrap interval (runs, then
episodes within each: :func:`vim_world.metrics.nested_mean_ci`).

Stages, each printed as it completes and saved to ``<out>/results.json`` (rewritten atomically
after every row, so an interrupted run keeps what it measured):

1. collect Steer data, train VIM (reward and termination heads); the heads' errors on a
   held-out data set (another seed), with 95% bootstrap intervals over windows;
2. MPC-CEM over VIM scored by the learned heads only, on ``Steer-v0`` and ``SteerHeldout-v0``:
   success rate with its 95% Wilson interval;
3. PPO on the real env at every budget (smallest first) and seed, evaluated on ``Steer-v0``;
3b. PPO trained only in imagination (``ImaginedEnv``: learned reward and termination heads),
   evaluated on both envs;
3c. (``--stages actor_critic``) the Dreamer-style actor-critic trained on imagined rollouts from
   the model's own data and real resets (``train_actor_critic_imagined``), on both envs;
3d. (``--stages mpc_critic``) MPC over VIM bootstrapped by that actor-critic's critic and fed its
   actor's proposals (``Budget.mpc_critic_agent``, TD-MPC's recipe), on both envs;
3e. (``--stages mpc_pixels``) planning from frames: a pixel VIM with the task heads trained on the
   same data's 32x32 frames (``fit_world_model(mode="pixels")``; its heads' held-out errors), and
   MPC-CEM over it, scored by its learned heads, shown the envs' frames only, on both envs;
4. where PPO's success crosses MPC's (log-linear interpolation between budgets of the mean over
   seeds), with a 95% bootstrap interval (episodes resampled within each seed and budget, seeds
   resampled), and the ratio to the steps MPC's model was trained on; ``<out>/sample_efficiency.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from vim_world.agents import ImaginationReturns
from vim_world.agents.actor_critic import train_actor_critic_imagined
from vim_world.agents.baselines import train_ppo_imagined, train_ppo_real
from vim_world.agents.evaluation import (
    BUDGETS,
    CONTROL_ENVS,
    Budget,
    fit_world_model,
    head_errors,
    run_episodes,
    success_interval,
    train_world_model,
    world_model_data,
)
from vim_world.envs import STEER_ACTIONS

from vim_world.cli import json_object
from vim_world.data import collect
from vim_world.imagination import Imagination
from vim_world.metrics import nested_mean_ci


def save(results: dict[str, Any], path: Path) -> None:
    """Write ``results`` as JSON atomically (a temporary file renamed into place)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)


def crossing(steps: list[int], success: np.ndarray, target: float) -> float | None:
    """Real steps where the success curve ``(len(steps),)`` first reaches ``target`` (log-linear
    interpolation), or None when it never does."""
    for i, (s, y) in enumerate(zip(steps, success)):
        if y >= target:
            if i == 0:
                return float(s)
            s0, y0 = steps[i - 1], success[i - 1]
            frac = (target - y0) / (y - y0)
            return float(np.exp(np.log(s0) + frac * (np.log(s) - np.log(s0))))
    return None


def crossing_interval(
    steps: list[int], outcomes: np.ndarray, target_outcomes: np.ndarray, resamples: int = 1000, seed: int = 0
) -> tuple[float | None, float | None, float]:
    """95% bootstrap interval of the crossing, and the share of resamples where PPO never crosses.

    ``outcomes``: bool ``(budgets, seeds, episodes)`` PPO successes; ``target_outcomes``: bool
    ``(episodes,)`` MPC successes (resampled too).
    """
    rng = np.random.default_rng(seed)
    n_budgets, n_seeds, n_eps = outcomes.shape
    found = []
    for _ in range(resamples):
        seeds = rng.integers(0, n_seeds, n_seeds)
        eps = rng.integers(0, n_eps, (n_budgets, n_seeds, n_eps))
        picked = np.take_along_axis(outcomes[:, seeds], eps, 2).mean((1, 2))
        target = target_outcomes[rng.integers(0, target_outcomes.size, target_outcomes.size)].mean()
        found.append(crossing(steps, picked, target))
    hits = [f for f in found if f is not None]
    never = 1.0 - len(hits) / resamples
    if not hits:
        return None, None, never
    low, high = np.percentile(hits, [2.5, 97.5])
    return float(low), float(high), never


AGENT_LABELS = {
    "mpc": "MPC-CEM over VIM (learned heads)",
    "actor_critic": "actor-critic trained in VIM's imagination",
    "mpc_critic": "MPC-CEM over VIM + critic and actor proposals",
    "mpc_pixels": "MPC-CEM over a pixel VIM, from frames (learned heads)",
}


def plot(results: dict[str, Any], path: Path, agent: str = "mpc") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    ppo = results["ppo"]
    budgets = sorted({r["steps"] for r in ppo})
    for seed in sorted({r["seed"] for r in ppo}):
        pts = sorted((r["real_steps"], r["success_rate"]) for r in ppo if r["seed"] == seed)
        ax.plot(*zip(*pts), marker="o", alpha=0.4, label=f"PPO (real env), seed {seed}")
    means = [np.mean([r["success_rate"] for r in ppo if r["steps"] == b]) for b in budgets]
    ax.plot(budgets, means, color="black", marker="s", label="PPO mean over seeds")
    row = results[agent][CONTROL_ENVS[0]]
    ax.errorbar(
        [results["model"]["real_steps"]],
        [row["success_rate"]],
        yerr=[[row["success_rate"] - row["success_low"]], [row["success_high"] - row["success_rate"]]],
        color="red",
        marker="*",
        markersize=12,
        label=AGENT_LABELS[agent],
    )
    crossing = results.get("crossing", {})
    if crossing.get("ppo_steps"):
        ax.axvline(crossing["ppo_steps"], color="red", linestyle=":", label="PPO reaches its success")
        ax.axvspan(*crossing["ci"], color="red", alpha=0.1)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("success rate on Steer-v0")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pool_seeds(paths: list[Path], agent: str) -> dict[str, Any]:
    """Per control env: each run's successes / episodes and Wilson interval, and the mean success
    over the runs with its two-level bootstrap interval (10,000 resamples)."""
    runs = [json.loads(p.read_text()) for p in paths]
    for path, run in zip(paths, runs):
        if agent not in run:
            raise SystemExit(f"{path} has no {agent!r} stage; it has {sorted(set(run) & set(AGENT_LABELS))}")
    pooled: dict[str, Any] = {"agent": agent, "runs": [str(p) for p in paths]}
    for env_id in CONTROL_ENVS:
        groups = [np.asarray(run[agent][env_id]["successes"], np.float64) for run in runs]
        mean, low, high = nested_mean_ci(groups)
        pooled[env_id] = {
            "per_run": [
                {"successes": int(g.sum()), "episodes": g.size, "wilson": list(success_interval(int(g.sum()), g.size))}
                for g in groups
            ],
            "mean_success": mean,
            "ci": [low, high],
        }
    return pooled


def world_model(b: Budget, out: Path, results: dict[str, Any], seed: int = 0) -> Imagination:
    """Collect Steer data and a held-out set, train VIM (:func:`train_world_model`, its data and
    training seeded by ``seed``), and record the heads' held-out errors."""
    held_out = collect(
        CONTROL_ENVS[0],
        out / "steer_heldout",
        episodes=256,
        episode_len=b.episode_len,
        seed=10_000,
        num_envs=64,
        env_kwargs={"obs_size": 32},
        overwrite=True,
    )
    im = train_world_model(b, out, seed=seed, device="cpu", progress=True)
    results["model"] = {
        "real_steps": b.real_steps,
        "train_steps": b.train_steps,
        "held_out": head_errors(im, held_out),
    }
    return im


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="out/sample_efficiency")
    parser.add_argument("--budget", default="small", choices=sorted(BUDGETS))
    parser.add_argument("--ppo-steps", type=int, nargs="+", default=[8192, 12288, 16384, 24576, 32768, 65536])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=64, help="evaluation episodes per agent and env")
    parser.add_argument(
        "--eval-seed",
        type=int,
        default=100_000,
        help="evaluation episode i is seeded eval_seed + i (another value gives a fresh set of worlds)",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        default=["mpc", "imagined", "ppo"],
        choices=["mpc", "imagined", "actor_critic", "mpc_critic", "mpc_pixels", "ppo"],
        help="stages after the world model (the crossing needs mpc; ppo alone trains no world model)",
    )
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="use the VIM of an earlier run in <out>/vim_run instead of training one",
    )
    parser.add_argument("--iterations", type=int, default=None, help="CEM iterations (default: the budget's)")
    parser.add_argument(
        "--crossing",
        nargs=2,
        metavar=("PPO_RESULTS", "AGENT_RESULTS"),
        help="only place the crossing of an earlier PPO sweep against an earlier agent's run (results.json files)",
    )
    parser.add_argument(
        "--pool",
        nargs="+",
        metavar="RESULTS",
        help="only pool the --agent stage of earlier runs (one per training seed) over their seeds",
    )
    parser.add_argument(
        "--agent",
        default="mpc",
        choices=sorted(AGENT_LABELS),
        help="with --crossing: the stage of AGENT_RESULTS to place PPO's crossing against; with --pool: the stage pooled",
    )
    parser.add_argument("--rounds", type=int, default=None, help="data-aggregation rounds (default: the budget's)")
    for name, what in (("candidates", "CEM candidates"), ("samples", "imagined futures per candidate"),
                       ("horizon", "planning horizon")):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=None, help=f"{what} (default: the budget's)")
    parser.add_argument("--cold", action="store_true", help="every MPC search starts afresh (no warm start)")
    parser.add_argument(
        "--model-seed", type=int, default=0, help="seed of the world model's data collection and training"
    )
    parser.add_argument(
        "--model-overrides",
        type=json_object("--model-overrides"),
        default={},
        help='VIMConfig fields on top of the budget\'s model_overrides, e.g. \'{"head_pool": "gated"}\'',
    )
    args = parser.parse_args()
    if args.pool:
        print(json.dumps(pool_seeds([Path(f) for f in args.pool], args.agent), indent=1), flush=True)
        return
    if args.crossing:
        ppo, other = (json.loads(Path(f).read_text()) for f in args.crossing)
        agent = args.agent
        if agent not in other:
            raise SystemExit(
                f"{args.crossing[1]} has no {agent!r} stage; it has {sorted(set(other) & set(AGENT_LABELS))}"
            )
        out = Path(args.crossing[0]).parent
        results = {"ppo": ppo["ppo"], agent: other[agent], "model": other["model"], "sources": args.crossing}
        place_crossing(results, np.asarray(other[agent][CONTROL_ENVS[0]]["successes"], bool))
        print("crossing", json.dumps(results["crossing"]), flush=True)
        suffix = "" if agent == "mpc" else f"_{agent}"
        save(results, out / f"crossing{suffix}.json")
        plot(results, out / f"sample_efficiency{suffix}.png", agent)
        return
    b = BUDGETS[args.budget]
    for name in ("iterations", "rounds", "candidates", "samples", "horizon"):
        if getattr(args, name) is not None:
            b = replace(b, **{name: getattr(args, name)})
    if args.cold:
        b = replace(b, warm_start=False)
    if args.model_overrides:
        b = replace(b, model_overrides={**b.model_overrides, **args.model_overrides})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("results.json" if not args.reuse_model else f"results_{'_'.join(args.stages)}.json")
    results: dict[str, Any] = {"args": vars(args), "seconds": {}}
    clock = time.perf_counter()
    if args.stages == ["ppo"]:
        im = None
    elif args.reuse_model:
        im = Imagination.from_checkpoint(out / (f"vim_run_round{b.rounds}" if b.rounds else "vim_run"), device="cpu")
        results["model"] = {"real_steps": b.real_steps, "train_steps": b.train_steps}
    else:
        im = world_model(b, out, results, seed=args.model_seed)
        results["seconds"]["model"] = round(time.perf_counter() - clock, 1)
        print("heads on held-out data:", json.dumps(results["model"]), flush=True)
        save(results, path)

    space = gym.spaces.Discrete(len(STEER_ACTIONS))

    def on_both_envs(
        stage: str,
        label: str,
        make: Callable[[str], Any],
        num_objects: int | None = None,
        obs_mode: str = "state",
        **extra: Any,
    ) -> None:
        """``results[stage][env_id]`` for both control envs: the summary, ``extra``, the seconds
        and the per-episode successes of the agent ``make(env_id)`` (shown the first
        ``num_objects`` objects, or 32x32 frames with ``obs_mode="pixels"``), saved after each env."""
        results.setdefault(stage, {})
        for env_id in CONTROL_ENVS:
            clock = time.perf_counter()
            stats = run_episodes(
                make(env_id),
                env_id,
                args.episodes,
                seed=args.eval_seed,
                num_objects=num_objects,
                progress=True,
                obs_mode=obs_mode,
                env_kwargs={"obs_size": 32} if obs_mode == "pixels" else None,  # the frames VIM was trained on
            )
            results[stage][env_id] = {
                **stats.summary(),
                **extra,
                "seconds": round(time.perf_counter() - clock, 1),
                "successes": stats.successes.astype(int).tolist(),
            }
            print(label, env_id, json.dumps(results[stage][env_id]), flush=True)
            save(results, path)

    def objects(env_id: str) -> int:
        return gym.spec(env_id).kwargs["num_objects"] + 2  # + goal zone and agent

    outcomes_mpc = None
    if "mpc" in args.stages:
        on_both_envs(
            "mpc",
            "MPC (learned heads)",
            lambda env_id: b.mpc_agent(
                ImaginationReturns(im.for_num_objects(objects(env_id)), space, n_samples=b.samples)
            ),
        )
        outcomes_mpc = np.asarray(results["mpc"][CONTROL_ENVS[0]]["successes"], bool)
    if "imagined" in args.stages:
        clock = time.perf_counter()
        ppo = train_ppo_imagined(
            im,
            CONTROL_ENVS[0],
            b.ppo_imagined_steps,
            real_steps=results["model"]["real_steps"],
            n_envs=b.ppo_imagined_envs,
            seed=0,
        )
        results["seconds"]["imagined"] = round(time.perf_counter() - clock, 1)
        on_both_envs(
            "imagined",
            "PPO in imagination (learned heads)",
            lambda env_id: ppo,
            imagined_steps=b.ppo_imagined_steps,
            num_objects=im.config.num_slots,
        )
    if {"actor_critic", "mpc_critic"} & set(args.stages):
        actor_critic = train_actor_critic_imagined(
            im,
            CONTROL_ENVS[0],
            data=world_model_data(b, out),
            steps=b.actor_critic_steps,
            real_steps=results["model"]["real_steps"],
            seed=0,
            progress=True,
        )
        results["seconds"]["actor_critic_training"] = round(actor_critic.seconds, 1)
        if "actor_critic" in args.stages:
            on_both_envs(
                "actor_critic",
                "actor-critic in imagination",
                lambda env_id: actor_critic,
                imagined_steps=actor_critic.imagined_steps,
            )
        if "mpc_critic" in args.stages:
            on_both_envs(
                "mpc_critic",
                "MPC + critic",
                lambda env_id: b.mpc_critic_agent(im.for_num_objects(objects(env_id)), space, actor_critic),
            )
    if "mpc_pixels" in args.stages:
        clock = time.perf_counter()
        pixels = fit_world_model(b, world_model_data(b, out), out / "vim_pixels", mode="pixels", progress=True)
        results["pixel_model"] = {"real_steps": b.real_steps, "train_steps": b.pixel_train_steps}
        if (out / "steer_heldout" / "meta.json").is_file():  # collected with the state model
            results["pixel_model"]["held_out"] = head_errors(pixels, out / "steer_heldout")
        results["seconds"]["pixel_model"] = round(time.perf_counter() - clock, 1)
        print("pixel VIM's heads on held-out data:", json.dumps(results["pixel_model"]), flush=True)
        on_both_envs(
            "mpc_pixels",
            "MPC from frames (pixel VIM, learned heads)",
            lambda env_id: b.mpc_agent(ImaginationReturns(pixels, space, n_samples=b.samples)),
            obs_mode="pixels",
        )
    if "ppo" not in args.stages:
        return

    results["ppo"] = []
    for steps in sorted(args.ppo_steps):
        for seed in args.seeds:
            clock = time.perf_counter()
            agent = train_ppo_real(CONTROL_ENVS[0], steps, n_envs=b.ppo_envs, seed=seed)
            stats = run_episodes(agent, CONTROL_ENVS[0], args.episodes, seed=args.eval_seed)
            row = {
                "steps": steps,
                "seed": seed,
                "real_steps": agent.real_steps,
                **stats.summary(),
                "seconds": round(time.perf_counter() - clock, 1),
                "successes": stats.successes.astype(int).tolist(),
            }
            results["ppo"].append(row)
            print("PPO (real env)", json.dumps(row), flush=True)
            save(results, path)
        if outcomes_mpc is not None:
            place_crossing(results, outcomes_mpc)
            print("crossing", json.dumps(results["crossing"]), flush=True)
            save(results, path)
            plot(results, out / "sample_efficiency.png")


def place_crossing(results: dict[str, Any], outcomes_mpc: np.ndarray) -> None:
    """``results["crossing"]``: where the mean PPO success over seeds (budgets whose every seed is
    in ``results["ppo"]``) first reaches MPC's, with its bootstrap interval and the ratio to the
    real steps MPC's model was trained on. ``outcomes_mpc``: bool ``(episodes,)``."""
    ppo = results["ppo"]
    seeds = sorted({r["seed"] for r in ppo})
    done = sorted(b for b in {r["steps"] for r in ppo} if sum(r["steps"] == b for r in ppo) == len(seeds))
    rows = {(r["steps"], r["seed"]): r["successes"] for r in ppo}
    outcomes = np.array([[rows[b, s] for s in seeds] for b in done], bool)
    target = float(outcomes_mpc.mean())
    point = crossing(done, outcomes.mean((1, 2)), target)
    low, high, never = crossing_interval(done, outcomes, outcomes_mpc)
    mpc_steps = results["model"]["real_steps"]
    results["crossing"] = {
        "target_success": target,
        "ppo_steps": point,
        "ci": [low, high],
        "never_share": never,
        "budgets": done,
        "ratio": None if point is None else point / mpc_steps,
        "ratio_ci": [None if low is None else low / mpc_steps, None if high is None else high / mpc_steps],
    }


if __name__ == "__main__":
    main()
