"""The main job: collect rollouts, train VIM and the baselines, evaluate, and write a report.

Re-running reuses what is already there (data sets are verified, training resumes from its last
checkpoint), so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import html
import json
import multiprocessing
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import vim_world
from vim_world.data import SequenceLoader, collect_once, open_dataset
from vim_world.devices import resolve_device
from vim_world.envs import env_ids
from vim_world.envs.registration import PASSIVE_MECHANISMS_V1
from vim_world.evaluate import EvalConfig, Evaluation, evaluate
from vim_world.figures import strip, to_frames
from vim_world.files import check_replaceable, write_atomically
from vim_world.imagination import Imagination
from vim_world.model import discovery_recipe
from vim_world.pixel_demo import pixel_section
from vim_world.report import gif_bytes, image, table, write_report
from vim_world.sizing import prepare
from vim_world.train import train
from vim_world.train_config import MODEL_NAMES, TrainConfig

PLANNING_BUDGET: dict[str, tuple[str, dict[str, Any]]] = {
    # (budget name, fields replaced). The tiny preset plans with the small budget's data and model
    # (7,680 real steps, gated heads) and the tiny budget's quick planner and PPO baselines, 48 worlds
    # per row (the small budget's own planner made the main job 20 minutes long, docs/planning.md).
    "tiny": (
        "small",
        {"ppo_real_steps": (2048, 8192), "eval_episodes": 48, "candidates": 100, "horizon": 8, "iterations": 2},
    ),
    "default": ("small", {}),
}
PLANNING_EVAL_SEED = 900_000
"""First evaluation world of the planning comparison: worlds that no tuning played (the planning
tables of docs/planning.md used 100000-100063, 300000-300255, 400000-400063, 500000-500255 and
600000-600127)."""
PRESETS = {
    # episodes, episode length, obs size, training steps, batch size
    "tiny": dict(episodes=640, episode_len=24, obs_size=32, steps=3000, batch_size=32),
    "default": dict(episodes=8192, episode_len=32, obs_size=64, steps=30000, batch_size=64),
}
MARKER = "demo.json"
"""Written first into a demo directory: the mark that lets ``overwrite`` delete it."""


def _overrides(model: str, steps: int) -> dict:
    """One module per true mechanism. VIM takes the discovery recipe of docs/model.md: observed
    latents, affine modules, its selection chain annealed over the first 60% of training (the
    split moves run every ``steps // 30``, see ``revive_every`` below)."""
    if model != "vim":
        return {"num_modules": len(PASSIVE_MECHANISMS_V1)}
    return {"num_modules": len(PASSIVE_MECHANISMS_V1), **discovery_recipe(steps)}


def state_model_config(
    name: str,
    data: str | Path,
    run_dir: str | Path,
    preset: str = "tiny",
    device: str = "auto",
    seed: int = 0,
    steps: int | None = None,
) -> TrainConfig:
    """How the main job trains state model ``name`` (one of ``MODEL_NAMES``) on ``data``: the
    preset's steps (or ``steps``) and batch, 10-step sequences, VIM with the discovery recipe and
    module splitting, static attributes for the modular models."""
    p = {**PRESETS[preset], **({} if steps is None else {"steps": steps})}
    return TrainConfig(
        data=str(data),
        out=str(run_dir),
        model=name,
        preset=preset,
        mode="state",
        steps=p["steps"],
        batch_size=p["batch_size"],
        seq_len=10,
        device=device,
        seed=seed,
        overrides=_overrides(name, p["steps"]),
        static_attributes=name in ("vim", "vim_m1"),  # kind-blind modules
        revive_every=p["steps"] // 30 if name == "vim" else 0,  # module splitting against collapse
    )


def _planning_section(planning) -> str:
    """The comparison as an HTML table with the learned-model target and its verdict, the plot and
    one GIF per agent and env (its first evaluation episode)."""
    rows = [
        [r["env"], r["agent"], str(r["real_steps"]), f"{r['success_rate']:.2f} [{r['success_low']:.2f}, "
         f"{r['success_high']:.2f}]", f"{r['mean_return']:.2f} ± {r['std_return']:.2f}"]
        for r in planning.rows
    ]  # fmt: skip

    def verdicts(agent: str, target: float, envs: tuple[str, ...] | None = None) -> str:
        return ", ".join(
            f"{r['env']}: "
            f"{'met' if r['success_low'] >= target else 'not met' if r['success_high'] < target else 'undecided'}"
            for r in planning.rows
            if r["agent"] == agent and (envs is None or r["env"] in envs)
        )

    gifs = "".join(
        f"<figure>{image(path.read_bytes(), 'image/gif')}<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, path in planning.episode_gifs.items()
    )
    return (
        "<p>What is measured: success rate (95% Wilson interval) and return of each agent over the "
        "evaluation episodes, against the real environment steps it used. Target (issue 12): MPC over "
        f"VIM with its learned heads only solves >= 80% of episodes on both envs; verdict: "
        f"{verdicts('MPC-CEM (VIM)', 0.8)}; with the actor-critic's critic as the value of the last "
        f"imagined state and its actor's proposals (TD-MPC; no true reward either): "
        f"{verdicts('MPC-CEM + critic (VIM)', 0.8) or 'not run'}. "
        f"A policy trained only in imagination (the actor-critic) "
        f"solves >= 50% of Steer-v0 episodes here; verdict: "
        f"{verdicts('actor-critic in imagination (VIM)', 0.5, ('VimWorld/Steer-v0',)) or 'not run'}; "
        f"the same policy against the 80% target on both envs: "
        f"{verdicts('actor-critic in imagination (VIM)', 0.8) or 'not run'}. "
        "MPC with the true task reward applied to VIM's decoded futures separates the model's dynamics "
        "from its learned reward: where it succeeds and the learned-head agent does not, the reward and "
        "termination heads are the limit.</p>"
        + table(["env", "agent", "real steps", "success [95% CI]", "return"], rows)
        + image(planning.plot_path.read_bytes())
        + f"<div style='display:flex;flex-wrap:wrap;gap:8px'>{gifs}</div>"
    )


def _dataset(env_id: str, path: Path, episodes: int, p: dict, seed: int) -> Path:
    return collect_once(env_id, path, episodes=episodes, episode_len=p["episode_len"], seed=seed, num_envs=64,
                        env_kwargs={"obs_size": p["obs_size"]}, progress=True)  # fmt: skip


def env_gallery(frames: int = 40, size: int = 128) -> str:
    """One GIF per registered id, random actions, as HTML."""
    cells = []
    for env_id in env_ids():
        env = gym.make(env_id, render_mode="rgb_array", render_size=size)
        env.reset(seed=0)
        env.action_space.seed(0)
        shots = [env.render()]
        for _ in range(frames - 1):
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
            shots.append(env.render())
        env.close()
        cells.append(
            f"<figure style='display:inline-block'>{image(gif_bytes(shots), 'image/gif')}<figcaption>{env_id}</figcaption></figure>"
        )
    return "".join(cells)


def imagination_strip(
    run: str | Path,
    data: str | Path,
    *,
    device: str = "auto",
    horizon: int = 10,
    n_samples: int = 3,
    obj: int = 0,
    seed: int = 0,
) -> bytes:
    """A PNG: one context from ``data``, the truth, ``n_samples`` imagined futures, and the
    counterfactual "object ``obj`` is driven by module m from now on" for every module m, drawn
    with the env's rasteriser (state models)."""
    im = Imagination.from_checkpoint(run, device=device)
    loader = SequenceLoader(open_dataset(data), batch_size=1, seq_len=5 + horizon, mode="state", seed=123 + seed)
    batch = prepare(loader.batch_at(0), with_actions=False).to(im.device)
    context = batch.obs[:, :5]
    rows = {"truth": to_frames(batch.obs[0, 5:])}
    futures = im.rollout(context, horizon=horizon, n_samples=n_samples, seed=seed)
    rows.update({f"sample {i}": to_frames(futures.obs[0, i]) for i in range(n_samples)})
    for m in range(im.model.config.num_modules):
        cf = im.counterfactual(context, obj=obj, module=m, horizon=horizon, n_samples=1, seed=seed)
        rows[f"obj {obj} -> module {m}"] = to_frames(cf.intervened.obs[0, 0], highlight=obj)
    return strip(rows)


def _pixel_part(
    out: Path, train_data: Path, preset: str, episode_len: int, obs_size: int, device: str, threads: int
) -> tuple[list[tuple[str, str]], float]:
    """:func:`~vim_world.pixel_demo.pixel_section` in a worker process; returns its sections and seconds."""
    torch.set_num_threads(threads)
    t = time.perf_counter()
    sections = pixel_section(out, train_data, preset, episode_len, obs_size, device)
    return sections, time.perf_counter() - t


def _planning_part(out: Path, preset: str, device: str, threads: int) -> tuple[Any, float]:
    """:func:`~vim_world.agents.evaluation.compare_agents` in a worker process (after the pixel
    part, on the same core); returns the comparison and its seconds."""
    from vim_world.agents.evaluation import BUDGETS, compare_agents

    torch.set_num_threads(threads)
    t = time.perf_counter()
    name, changes = PLANNING_BUDGET[preset]
    budget = replace(BUDGETS[name], **changes)
    device = "cpu" if device == "auto" else device
    planning = compare_agents(out / "planning", budget, device=device, eval_seed=PLANNING_EVAL_SEED)
    return planning, time.perf_counter() - t


def _state_part(
    out: Path, preset: str, device: str, train_data: Path, heldout_data: Path, many_data: Path, timings: dict
) -> tuple[EvalConfig, Evaluation, str]:
    """Train the state models, evaluate them and imagine; returns the evaluation's config, the
    evaluation and the imagination figure (HTML)."""
    runs = {}
    for name in MODEL_NAMES:
        t = time.perf_counter()
        runs[name] = str(train(state_model_config(name, train_data, out / "runs" / name, preset, device)).out)
        timings[f"train {name}"] = time.perf_counter() - t

    t = time.perf_counter()
    ecfg = EvalConfig(runs=runs, splits={"in_distribution": str(train_data), "heldout_pairs": str(heldout_data),
                                                "eight_objects": str(many_data)},
                      out=str(out / "eval"), device=device)  # fmt: skip
    evaluation = evaluate(ecfg)
    timings["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    imagination = image(imagination_strip(runs["vim"], train_data, device=device))
    timings["imagine"] = time.perf_counter() - t
    return ecfg, evaluation, imagination


def _is_demo(path: Path) -> bool:
    return (path / MARKER).is_file()


def run_demo(out: str | Path, preset: str = "tiny", device: str = "auto", overwrite: bool = False) -> Path:
    """Run the whole path with ``preset`` and return the report's path.

    Every option is checked before anything is deleted or written. ``overwrite`` deletes ``out``
    only if the demo wrote it (it holds ``demo.json``); without it, an existing demo directory is
    reused (finished steps are skipped) and any other non-empty directory is refused.
    """
    out = Path(out)
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    resolve_device(device)
    if overwrite:
        check_replaceable(out, _is_demo, "vim_world demo directory (no demo.json)")
        if out.exists():
            shutil.rmtree(out)
    elif out.is_dir() and any(out.iterdir()) and not _is_demo(out):
        raise ValueError(f"{str(out)!r} is a non-empty directory the demo did not write; choose another --out")
    elif out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file; expected a directory")
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / MARKER, json.dumps({"vim_world_demo": vim_world.__version__, "preset": preset}))
    p = PRESETS[preset]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    train_data = _dataset("VimWorld/Passive-v1", out / "data" / "passive", p["episodes"], p, seed=0)
    heldout_data = _dataset("VimWorld/PassiveHeldout-v1", out / "data" / "heldout", p["episodes"] // 5, p, seed=10_000)
    many_data = _dataset("VimWorld/PassiveMany-v1", out / "data" / "many", p["episodes"] // 5, p, seed=20_000)
    timings["collect"] = time.perf_counter() - t0

    # The pixel models, then the planning comparison, run in a second process beside the state
    # models (a second core; tiny preset on this 2-core CPU: about 240 s + 265 s there, 305 s for
    # the state part); leaving the block ends that process, also when the state part fails.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        threads = torch.get_num_threads()
        pixels = pool.apply_async(
            _pixel_part, (out, train_data, preset, p["episode_len"], p["obs_size"], device, threads)
        )
        plans = pool.apply_async(_planning_part, (out, preset, device, threads))
        ecfg, evaluation, imagination = _state_part(out, preset, device, train_data, heldout_data, many_data, timings)
        t = time.perf_counter()
        pixel_sections, timings["pixels (second process)"] = pixels.get()
        planning, timings["plan (second process, after the pixels)"] = plans.get()
        pool.close()  # let the worker exit on its own (terminating it leaks its semaphores)
        pool.join()
        timings["wait for the second process"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    sections = [
        ("Summary", f"<p>vim_world {vim_world.__version__}, preset <b>{preset}</b>, state-input models "
                    "(pixel models in the sections 'From pixels'), "
                    f"context {ecfg.context}, horizon {ecfg.horizon}, N = {ecfg.n_samples} samples.</p>"
                    f"<pre>{json.dumps({k: round(v, 1) for k, v in timings.items()}, indent=1)}</pre>"),
        *evaluation.sections,
        ("Imagination: sampled futures and a counterfactual", imagination),
        ("Planning on the control task (real environment steps used vs success)", _planning_section(planning)),
        *pixel_sections,
        ("Environments", env_gallery()),
    ]  # fmt: skip
    return write_report(out / "report.html", "vim_world demo report", sections)
