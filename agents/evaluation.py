"""Agents on the control task and its OOD variant, against the real environment steps they used.

:func:`run_episodes` plays any agent (``act(obs (B, ...)) -> actions (B, ...)``, ``reset()``)
for one episode in each of B real envs at once. :func:`compare_agents` is the whole comparison
the demo calls: collect Steer data, train VIM on it, then evaluate a random agent, MPC with CEM
over VIM's imagination (scored by the reward head, and by the known task reward on decoded
states), PPO trained in the imagined env, the actor-critic trained on imagined rollouts and MPC
bootstrapped by its critic and fed its actor's proposals (when the budget asks for them), and PPO
on the real env at several budgets, on ``VimWorld/Steer-v0`` and ``VimWorld/SteerHeldout-v0``.
It writes ``results.json``, ``results.md`` (a table) and ``results.png`` (return and success
against real steps).

Real steps count every environment step an agent's training consumed: the world model's data set
(episodes x episode length) for the VIM agents, ``num_timesteps`` for PPO; evaluation episodes
are not counted. SteerHeldout has one more distractor than Steer: VIM (a state model, whose
weights do not depend on the number of objects) sees all of them; PPO's fixed-size input sees
the first four objects (the goal zone, the agent and two distractors).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from vim_world.envs import STEER_ACTIONS

from vim_world.collection import Agent
from vim_world.data import collect, merge
from vim_world.imagination import Imagination
from vim_world.report import gif_bytes
from vim_world.train import TrainConfig, train

from .actor_critic import ActorCriticAgent, train_actor_critic_imagined
from .baselines import RandomAgent, train_ppo_imagined, train_ppo_real
from .imagination_model import ImaginationReturns
from .mpc import MPCAgent
from .planners import CEM
from .tasks import steer_reward

CONTROL_ENVS = ("VimWorld/Steer-v0", "VimWorld/SteerHeldout-v0")


@dataclass(frozen=True)
class EpisodeStats:
    """Per-episode ``returns (E,)`` float and ``successes (E,)`` bool; with ``record``, the first
    episode's frames ``(T, H, W, 3)`` uint8."""

    returns: np.ndarray
    successes: np.ndarray
    frames: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        """Success rate with its 95% Wilson interval, and the mean and std of the returns."""
        low, high = success_interval(int(self.successes.sum()), self.successes.size)
        return {
            "success_rate": float(self.successes.mean()),
            "success_low": low,
            "success_high": high,
            "mean_return": float(self.returns.mean()),
            "std_return": float(self.returns.std()),
        }


def success_interval(successes: int, episodes: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a success rate (``successes`` of ``episodes``)."""
    from scipy.stats import binomtest

    if episodes < 1 or not 0 <= successes <= episodes:
        raise ValueError(f"need 0 <= successes <= episodes and episodes >= 1, got {successes} of {episodes}")
    ci = binomtest(successes, episodes).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def run_episodes(
    agent: Agent,
    env_id: str,
    episodes: int,
    *,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    num_objects: int | None = None,
    progress: bool = False,
    record: bool = False,
    obs_mode: str = "state",
) -> EpisodeStats:
    """One episode in each of ``episodes`` real envs (env i seeded ``seed + i``).

    ``obs_mode``: what the agent sees, ``"state"`` (``(K, S)`` object features) or ``"pixels"``
    (frames ``(H, W, 3)`` uint8 at ``env_kwargs``' ``obs_size``, e.g. for a pixel VIM).
    ``num_objects``: show the agent only the first objects (for fixed-input policies; state only).
    ``progress``: a tqdm bar over the steps (at most the env's ``max_episode_steps``).
    ``record``: keep the frames of episode 0 (rendered at 96 x 96), e.g. for a GIF.
    """
    from tqdm.auto import tqdm

    if obs_mode not in ("state", "pixels"):
        raise ValueError(f"obs_mode must be 'state' or 'pixels', got {obs_mode!r}")
    if num_objects is not None and obs_mode != "state":
        raise ValueError(f"num_objects: state only (frames show every object); got num_objects={num_objects} "
                         f"with obs_mode={obs_mode!r}")  # fmt: skip
    render = {"render_mode": "rgb_array", "render_size": 96} if record else {}
    env = gym.make_vec(env_id, num_envs=episodes, obs_mode=obs_mode, **render, **(env_kwargs or {}))
    obs, _ = env.reset(seed=seed)
    agent.reset()
    returns = np.zeros(episodes)
    successes = np.zeros(episodes, bool)
    running = np.ones(episodes, bool)
    bar = tqdm(
        total=gym.spec(env_id).max_episode_steps,
        desc=f"{env_id} ({episodes} episodes)",
        unit="step",
        disable=not progress,
        leave=False,
    )
    frames = []
    while running.any():
        bar.update()
        if record and running[0]:
            frames.append(env.render()[0])
        actions = agent.act(obs[:, :num_objects])
        obs, reward, terminated, truncated, info = env.step(actions)
        returns += np.where(running, reward, 0.0)
        successes |= running & terminated
        running &= ~(terminated | truncated)
    bar.close()
    env.close()
    return EpisodeStats(returns, successes, np.stack(frames) if record else None)


@dataclass(frozen=True)
class Budget:
    """Sizes of one comparison.

    Attributes:
        data_episodes, episode_len: the Steer data set VIM is trained on.
        train_steps: VIM training steps (tiny state preset).
        pixel_train_steps: training steps of the pixel VIM that plans from frames
            (:func:`fit_world_model` with ``mode="pixels"``), on the same data.
        ppo_real_steps: PPO-on-the-real-env budgets (one agent per budget).
        ppo_imagined_steps: PPO steps inside the imagined env.
        actor_critic_steps: updates of the actor-critic trained in imagination
            (:func:`~vim_world.agents.actor_critic.train_actor_critic_imagined`, its other options
            at their defaults); 0 leaves it out of the comparison.
        critic_horizon, proposals: with the actor-critic, a second MPC agent (TD-MPC's recipe): CEM
            over ``critic_horizon`` steps, each candidate's return bootstrapped with the critic's
            value of its last imagined state, and ``proposals`` sequences imagined by the actor
            scored beside the sampled ones (:meth:`mpc_critic_agent`); ``critic_horizon=0``
            leaves it out.
        eval_episodes: evaluation episodes per agent and env.
        candidates, samples, horizon, iterations: the CEM planner of the MPC agent.
        ppo_envs: parallel envs of every PPO run on the real env (each PPO update uses ``256 * ppo_envs`` steps).
        ppo_imagined_envs: parallel imagined envs of PPO in imagination (one batched model call per step).
        replan_every: the MPC agent re-plans every this many steps.
        warm_start: the MPC agent starts each search from its previous one, shifted one step.
        model_overrides: VIMConfig fields of the world model on top of the tiny state preset.
        head_weight_decay: ``TrainConfig.head_weight_decay`` of the world model's training.
        rounds, round_episodes: data aggregation (as PETS and PlaNet iterate): after training on
            the random-policy data, ``rounds`` times collect ``round_episodes`` episodes with the
            MPC agent over the current model (learned heads), add them to the data and retrain.
    """

    data_episodes: int
    episode_len: int
    train_steps: int
    ppo_real_steps: tuple[int, ...]
    ppo_imagined_steps: int
    eval_episodes: int
    candidates: int = 200
    samples: int = 4
    horizon: int = 10
    iterations: int = 3
    ppo_envs: int = 8
    ppo_imagined_envs: int = 16
    replan_every: int = 1
    warm_start: bool = True
    model_overrides: dict[str, Any] = field(default_factory=dict)
    head_weight_decay: float = 0.1
    rounds: int = 0
    round_episodes: int = 32
    actor_critic_steps: int = 0
    critic_horizon: int = 3
    proposals: int = 32
    pixel_train_steps: int = 3000

    @property
    def real_steps(self) -> int:
        """Real environment steps the world model's data cost: random-policy episodes and every
        round's planner episodes, ``episode_len`` steps each."""
        return (self.data_episodes + self.rounds * self.round_episodes) * self.episode_len

    def mpc_agent(
        self,
        model: ImaginationReturns,
        seed: int = 0,
        horizon: int | None = None,
        proposer: Callable[..., Any] | None = None,
    ) -> MPCAgent:
        """The budget's MPC agent (CEM planner) over ``model``; ``horizon`` overrides the budget's,
        ``proposer`` is :class:`MPCAgent`'s."""
        planner = CEM(self.horizon if horizon is None else horizon, self.candidates, iterations=self.iterations)
        return MPCAgent(
            planner, model, replan_every=self.replan_every, seed=seed, warm_start=self.warm_start, proposer=proposer
        )

    def mpc_critic_agent(
        self, imagination: Imagination, space: gym.spaces.Space, actor_critic: ActorCriticAgent, seed: int = 0
    ) -> MPCAgent:
        """MPC over ``imagination`` with the learned heads, ``actor_critic``'s critic as the value of
        the last imagined state and its actor's imagined sequences as proposals (TD-MPC), over
        ``critic_horizon`` steps."""
        model = ImaginationReturns(
            imagination, space, n_samples=self.samples, terminal_value=actor_critic.latent_value(imagination)
        )
        return self.mpc_agent(
            model, seed, horizon=self.critic_horizon, proposer=actor_critic.proposer(imagination, self.proposals)
        )


BUDGETS: dict[str, Budget] = {
    "tiny": Budget(
        data_episodes=64,
        episode_len=30,
        train_steps=1500,
        ppo_real_steps=(2048, 8192),
        ppo_imagined_steps=65536,
        eval_episodes=48,  # 44 of 48 is the fewest successes whose Wilson interval clears 80% (16: all 16)
        candidates=100,
        horizon=8,
        iterations=2,
        model_overrides={"state_encoder": "identity", "module_layers": 0},  # observed latents, affine modules
        head_weight_decay=1.0,  # 1,920 steps: planning success 0.80 / 0.70 with it, 0.72 / 0.52 with 0.1 (docs/planning.md)
        actor_critic_steps=480,  # about 26 s on one CPU thread (docs/planning.md, "Actor-critic in imagination")
    ),
    "small": Budget(
        data_episodes=256,
        episode_len=30,
        train_steps=1500,
        ppo_real_steps=(8192, 32768, 131072),
        ppo_imagined_steps=32768,
        eval_episodes=32,
        # relevance-gated heads: SteerHeldout-v0 +0.17 [0.06, 0.29] over two fresh training seeds
        # (docs/planning.md, "Heads that learn which objects matter"; the tiny budget keeps the
        # mean: its gates collapsed)
        model_overrides={"state_encoder": "identity", "module_layers": 0, "head_pool": "gated"},
        actor_critic_steps=480,
    ),
}


@dataclass(frozen=True)
class ComparisonResult:
    """Rows (agent, env, real steps, success rate, returns), the files written and timings."""

    rows: list[dict[str, Any]]
    json_path: Path
    markdown_path: Path
    plot_path: Path
    seconds: dict[str, float]
    episode_gifs: dict[str, Path]  # "agent on env" -> GIF of its first evaluation episode


def fit_world_model(
    b: Budget,
    data: Path,
    run_dir: Path,
    *,
    mode: str = "state",
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> Imagination:
    """VIM with the reward and termination heads trained on ``data`` in ``run_dir`` (a run left
    there with other options is replaced; one with the same options resumes or is reused).

    ``mode="state"``: the tiny state preset + ``b.model_overrides``, ``b.train_steps`` steps.
    ``mode="pixels"``: the tiny pixel preset on the data's 32x32 frames (learnt slots, no cues:
    an agent sees frames alone), ``b.pixel_train_steps`` steps of 16 sequences of 4 steps (the
    setting that binds slots best on this CPU, docs/model.md).
    """
    if mode not in ("state", "pixels"):
        raise ValueError(f"mode must be 'state' or 'pixels', got {mode!r}")
    sizes = (
        dict(steps=b.train_steps, overrides=b.model_overrides)
        if mode == "state"
        else dict(steps=b.pixel_train_steps, batch_size=16, seq_len=4)
    )
    config = TrainConfig(
        data=str(data),
        out=str(run_dir),
        mode=mode,
        head_weight_decay=b.head_weight_decay,
        holdout=0.0,  # every collected step is charged to the agent, so every one is trained on
        seed=seed,
        device=device,
        progress=progress,
        checkpoint_every=sizes["steps"],
        **sizes,
    )
    saved = Path(run_dir) / "train_config.json"
    if saved.is_file() and json.loads(saved.read_text()) != json.loads(json.dumps(asdict(config))):
        shutil.rmtree(run_dir)  # this comparison's own run, left with other options (an older budget)
    return Imagination.from_checkpoint(train(config).out, device=device)


def train_world_model(
    b: Budget, out: Path, *, seed: int = 0, device: str = "cpu", progress: bool = False
) -> Imagination:
    """Collect the budget's random-policy Steer data in ``out / "steer_data"`` (seeded by ``seed``)
    and train VIM on it in ``out / "vim_run"`` (:func:`fit_world_model`, state input); then
    ``b.rounds`` rounds of data aggregation: episodes of the MPC agent over the latest model
    (``out / "steer_data_mpc<r>"``), merged with the data so far (``out / "steer_data_round<r>"``),
    and a model trained afresh on the union (``out / "vim_run_round<r>"``). Returns the last model."""
    data = collect(
        CONTROL_ENVS[0],
        out / "steer_data",
        episodes=b.data_episodes,
        episode_len=b.episode_len,
        seed=seed,
        num_envs=min(64, b.data_episodes),
        env_kwargs={"obs_size": 32},
        overwrite=True,
    )

    def fit(data: Path, run_dir: Path) -> Imagination:
        return fit_world_model(b, data, run_dir, seed=seed, device=device, progress=progress)

    imagination = fit(data, out / "vim_run")
    space = gym.spaces.Discrete(len(STEER_ACTIONS))
    for r in range(1, b.rounds + 1):
        agent = b.mpc_agent(ImaginationReturns(imagination, space, n_samples=b.samples), seed=seed + r)
        episodes = collect(
            CONTROL_ENVS[0],
            out / f"steer_data_mpc{r}",
            episodes=b.round_episodes,
            episode_len=b.episode_len,
            seed=seed + 1_000_000 * r,  # other worlds than the random-policy data's
            num_envs=min(64, b.round_episodes),
            policy=agent,
            env_kwargs={"obs_size": 32},
            overwrite=True,
        )
        data = merge([data, episodes], out / f"steer_data_round{r}", overwrite=True)
        imagination = fit(data, out / f"vim_run_round{r}")
    return imagination


def world_model_data(b: Budget, out: Path) -> Path:
    """The data set :func:`train_world_model` trained its last model on (under ``out``)."""
    return Path(out) / (f"steer_data_round{b.rounds}" if b.rounds else "steer_data")


def compare_agents(
    out: str | Path,
    budget: str | Budget = "tiny",
    *,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = False,
    eval_seed: int | None = None,
) -> ComparisonResult:
    """Collect, train VIM, train baselines, evaluate everything on both control envs; write results.

    ``budget="tiny"`` finishes in a minute or two on a CPU. Evaluation episode i of every agent
    is seeded ``eval_seed + i`` (default ``seed + 100_000``).
    """
    b = BUDGETS[budget] if isinstance(budget, str) else budget
    first_world = seed + 100_000 if eval_seed is None else eval_seed
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 2)
        clock = now

    imagination = train_world_model(b, out, seed=seed, device=device, progress=progress)
    data_steps = b.real_steps
    lap("collect and train VIM")

    space = gym.spaces.Discrete(len(STEER_ACTIONS))

    def mpc(num_objects: int, reward_fn: Callable | None = None) -> MPCAgent:
        model = ImaginationReturns(
            imagination.for_num_objects(num_objects), space, n_samples=b.samples, reward_fn=reward_fn
        )
        return b.mpc_agent(model, seed=seed)

    def mpc_critic(num_objects: int, actor_critic: ActorCriticAgent) -> MPCAgent:
        return b.mpc_critic_agent(imagination.for_num_objects(num_objects), space, actor_critic, seed=seed)

    ppo_imagined = train_ppo_imagined(
        imagination, CONTROL_ENVS[0], b.ppo_imagined_steps, real_steps=data_steps, n_envs=b.ppo_imagined_envs, seed=seed
    )
    lap("PPO in imagination")
    actor_critic = None
    if b.actor_critic_steps:
        actor_critic = train_actor_critic_imagined(
            imagination,
            CONTROL_ENVS[0],
            data=world_model_data(b, out),
            steps=b.actor_critic_steps,
            real_steps=data_steps,
            seed=seed,
            progress=progress,
        )
        lap("actor-critic in imagination")
    ppo_real = {
        steps: train_ppo_real(CONTROL_ENVS[0], steps, n_envs=b.ppo_envs, seed=seed) for steps in b.ppo_real_steps
    }
    lap("PPO on the real env")

    train_objects = imagination.config.num_slots
    agents: list[tuple[str, int, Callable[[int], Agent], int | None]] = [
        ("random", 0, lambda k: RandomAgent(space, seed=seed), None),
        ("MPC-CEM (VIM)", data_steps, mpc, None),
        ("MPC-CEM (VIM, task reward)", data_steps, lambda k: mpc(k, steer_reward), None),
        ("PPO in imagination (VIM)", data_steps, lambda k: ppo_imagined, train_objects),
        *([("actor-critic in imagination (VIM)", data_steps, lambda k: actor_critic, None)] if actor_critic else []),
        *(
            [("MPC-CEM + critic (VIM)", data_steps, lambda k: mpc_critic(k, actor_critic), None)]
            if actor_critic and b.critic_horizon
            else []
        ),
        *[("PPO (real env)", a.real_steps, (lambda k, a=a: a), train_objects) for a in ppo_real.values()],
    ]
    rows, gifs = [], {}
    (out / "episodes").mkdir(exist_ok=True)
    for env_id in CONTROL_ENVS:
        num_objects = gym.spec(env_id).kwargs["num_objects"] + 2  # + goal zone and agent
        for name, steps, make, visible in agents:
            stats = run_episodes(
                make(num_objects),
                env_id,
                b.eval_episodes,
                seed=first_world,
                num_objects=visible,
                progress=progress,
                record=True,
            )
            rows.append({"agent": name, "env": env_id, "real_steps": steps, **stats.summary()})
            title = f"{name}, {steps} real steps, on {env_id}"
            gifs[title] = out / "episodes" / (re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_") + ".gif")
            gifs[title].write_bytes(gif_bytes(list(stats.frames)))
    lap("evaluate")

    summary = {
        "budget": asdict(b),
        "eval_seed": first_world,
        "rows": rows,
        "steps_ratio": steps_ratios(rows),
        "seconds": seconds,
    }
    json_path = out / "results.json"
    json_path.write_text(json.dumps(summary, indent=1))
    markdown_path = out / "results.md"
    markdown_path.write_text(markdown_table(rows) + "\n")
    plot_path = plot_results(rows, out / "results.png")
    return ComparisonResult(rows, json_path, markdown_path, plot_path, seconds, gifs)


def steps_ratios(rows: list[dict[str, Any]], baseline: str = "PPO (real env)") -> dict[str, dict[str, Any]]:
    """How many times more real steps ``baseline`` needed to match each other trained agent.

    Per env and agent: ``ratio`` = the fewest real steps with which ``baseline`` reached the
    agent's mean return, over the agent's real steps; when no budget of ``baseline`` reached it,
    ``ratio`` is None and ``at_least`` is its largest budget over the agent's steps.
    """
    ratios: dict[str, dict[str, Any]] = {}
    for env_id in dict.fromkeys(r["env"] for r in rows):
        runs = [r for r in rows if r["env"] == env_id]
        base = sorted((r for r in runs if r["agent"] == baseline), key=lambda r: r["real_steps"])
        ratios[env_id] = {}
        for mine in runs:
            if mine["agent"] == baseline or mine["real_steps"] == 0 or not base:
                continue
            matched = [r for r in base if r["mean_return"] >= mine["mean_return"]]
            ratios[env_id][mine["agent"]] = {
                "ratio": matched[0]["real_steps"] / mine["real_steps"] if matched else None,
                "at_least": None if matched else base[-1]["real_steps"] / mine["real_steps"],
            }
    return ratios


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| env | agent | real steps | success rate [95% CI] | return (mean ± std) |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['agent']} | {r['real_steps']} | {r['success_rate']:.2f} "
            f"[{r['success_low']:.2f}, {r['success_high']:.2f}] | "
            f"{r['mean_return']:.2f} ± {r['std_return']:.2f} |"
        )
    return "\n".join(lines)


def plot_results(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Return and success rate against real steps, one panel pair per env, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({r["env"] for r in rows}, key=CONTROL_ENVS.index)
    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 7), squeeze=False)
    for col, env_id in enumerate(envs):
        for row, key in enumerate(("mean_return", "success_rate")):
            ax = axes[row, col]
            for agent in dict.fromkeys(r["agent"] for r in rows):
                pts = sorted((r["real_steps"], r[key]) for r in rows if r["env"] == env_id and r["agent"] == agent)
                if pts[0][0] == 0:  # no real steps: a reference line
                    ax.axhline(pts[0][1], linestyle="--", color="grey", label=agent)
                else:
                    ax.plot(*zip(*pts), marker="o", label=agent)
            ax.set_xscale("log")
            ax.set_xlabel("real environment steps")
            ax.set_ylabel(key.replace("_", " "))
            ax.set_title(env_id)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def bootstrap_interval(
    values: np.ndarray, *, resamples: int = 2000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values (E,)`` (e.g. one value per window)."""
    values = np.asarray(values, np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"need a 1-D array of at least 2 values, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def head_errors(
    imagination: Imagination, data: str | Path, *, seq_len: int = 10, batch_size: int = 64
) -> dict[str, Any]:
    """The reward and termination heads on a (held-out) data set, read from each step's encoded state.

    Per episode window (the first ``seq_len`` steps of every episode with that many valid ones):
    the reward heads' mean squared error, and the termination head's Brier score and its accuracy
    at 0.5 (terminations are rare: the accuracy of always saying "continues" is reported beside
    it). Means over windows with 95% bootstrap intervals; ``reward_variance`` is the rewards'
    variance, the MSE of predicting their mean.
    """
    import torch

    from vim_world.data import SequenceLoader, open_dataset

    model = imagination.model
    loader = SequenceLoader(
        open_dataset(data),
        batch_size=batch_size,
        seq_len=seq_len,
        mode=imagination.config.input_mode,
        device=imagination.device,
    )
    mse, brier, correct, base, rewards = [], [], [], [], []
    with torch.inference_mode():
        for batch in loader:
            post = model.observe(batch)
            z, a = post.z_mean.flatten(0, 1), batch.actions.flatten(0, 1)
            b, t = batch.rewards.shape
            reward = model.reward(z, a).reshape(b, t)
            ends = model.termination_logit(z, a).sigmoid().reshape(b, t)
            target = batch.terminations.float()
            mse.append(((reward - batch.rewards) ** 2).mean(1))
            brier.append(((ends - target) ** 2).mean(1))
            correct.append(((ends > 0.5).float() == target).float().mean(1))
            base.append((target == 0).float().mean(1))
            rewards.append(batch.rewards.flatten())
    out: dict[str, Any] = {"windows": int(sum(len(m) for m in mse)), "reward_variance": float(torch.cat(rewards).var())}
    for name, parts in (
        ("reward_mse", mse),
        ("termination_brier", brier),
        ("termination_accuracy", correct),
        ("termination_accuracy_always_continue", base),
    ):
        values = torch.cat(parts).double().cpu().numpy()
        out[name] = float(values.mean())
        out[f"{name}_ci"] = bootstrap_interval(values)
    return out
