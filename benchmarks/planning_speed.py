"""Imagination throughput and planner decisions per second, on the CPU and on CUDA when present.

Usage::

    python benchmarks/planning_speed.py                      # default-state preset, 500 x 8 x 12
    python benchmarks/planning_speed.py --preset tiny-state --candidates 200 --samples 4 --horizon 10
    python benchmarks/planning_speed.py --threads 1          # one CPU thread
    python benchmarks/planning_speed.py --threads 1 --preset tiny-state \
        --overrides '{"state_encoder": "identity", "latent_dim": 13, "module_layers": 0}'  # the budgets' model

Imagination throughput is imagined object-steps per second of :meth:`Imagination.rollout`
(``B * C * N * T * K`` per call, rewards included, no decoding) next to the same rollout through
``VIM.prior_step`` (every module on every object). Planner decisions are full ``plan`` calls of
random shooting, CEM and MPPI for one start state on a randomly initialised model of the Steer
task's sizes (speed does not depend on training), and warm-started CEM decisions as
:class:`~vim_world.agents.MPCAgent` takes them after its first (the previous search's
distribution shifted by one step).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import torch
from vim_world.agents import CEM, MPPI, ImaginationReturns, RandomShooting
from vim_world.envs import STATE_FEATURES, STEER_ACTIONS

from vim_world.actions import action_vectors
from vim_world.cli import json_object
from vim_world.imagination import Imagination, LatentState
from vim_world.model import VIM, preset
from vim_world.model.distributions import sample_categorical
from vim_world.model.heads import MAX_PAIR_WIDTH, _pair_pool


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def prior_step_rollout(im: Imagination, state: LatentState, actions: torch.Tensor, samples: int) -> None:
    """The same rollout through ``VIM.prior_step`` (reference for the speed-up)."""
    z = state.z.repeat_interleave(actions.shape[1] * samples, 0)
    c = state.c.repeat_interleave(actions.shape[1] * samples, 0)
    flat = actions.unsqueeze(2).expand(-1, -1, samples, -1, -1).reshape(-1, *actions.shape[2:])
    for t in range(flat.shape[1]):
        im.model.task(z, flat[:, t])
        z, c, _ = im.model.prior_step(z, c, flat[:, t])


def step_parts(im: Imagination, batch: int, device: torch.device, repeats: int) -> list[tuple[str, str, str]]:
    """Time per imagined step of its parts, at ``batch`` futures."""
    cfg = im.config
    z = torch.randn(batch, cfg.num_slots, cfg.latent_dim, device=device)
    c = torch.randint(0, cfg.num_modules, (batch, cfg.num_slots), device=device)
    onehot = torch.nn.functional.one_hot(c, cfg.num_modules).float()
    a = action_vectors(torch.randint(0, cfg.action_dim, (batch,), device=device), gym.spaces.Discrete(cfg.action_dim))
    probs = torch.full((batch, cfg.num_slots, cfg.num_modules), 1.0 / cfg.num_modules, device=device)
    left, right = torch.randn(2, batch, cfg.num_slots, MAX_PAIR_WIDTH, device=device)
    parts = {
        "switching prior": lambda: im.model.switching_prior(z, onehot, a),
        "sampling selections": lambda: sample_categorical(probs),
        "sampling selections, torch.multinomial (reference)": lambda: torch.multinomial(probs.flatten(0, 1), 1),
        "pair pooling of the task heads, chunked": lambda: _pair_pool(left, right),
        "pair pooling, one (N, K, K, 64) tensor (reference)": lambda: (
            (left[:, :, None] + right[:, None]).relu().mean((1, 2))
        ),
        "selected modules": lambda: im.model.transitions.selected(z, a, c, z),  # before = z: no change yet
        "task heads (reward, termination)": lambda: im.model.task(z, a),
        "Imagination.step (all of it)": lambda: im.step(LatentState(z, c), a),
    }
    return [
        (f"one step: {name} ({batch} futures)", "", f"{timed(fn, device, repeats) * 1e3:.1f} ms")
        for name, fn in parts.items()
    ]


def bench(device: torch.device, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    torch.manual_seed(0)
    cfg = preset(
        args.preset,
        num_slots=4,
        state_dim=len(STATE_FEATURES),
        action_dim=len(STEER_ACTIONS),
        reward_head=True,
        **args.overrides,
    )
    im = Imagination(VIM(cfg).to(device).eval())
    space = gym.spaces.Discrete(len(STEER_ACTIONS))
    c, n, h, k = args.candidates, args.samples, args.horizon, cfg.num_slots
    state = LatentState(
        torch.randn(1, k, cfg.latent_dim, device=device), torch.full((1, k), -1, dtype=torch.long, device=device)
    )
    actions = action_vectors(torch.randint(0, space.n, (1, c, h), device=device), space)
    object_steps = c * n * h * k
    rows = []
    with torch.inference_mode():
        for name, fn in (
            ("Imagination.rollout", lambda: im.rollout(state, actions, n_samples=n, decode=False)),
            ("VIM.prior_step loop", lambda: prior_step_rollout(im, state, actions, n)),
        ):
            s = timed(fn, device, args.repeats)
            rows.append(
                (f"{name} ({c}x{n}x{h}, K={k})", f"{object_steps / s:,.0f} object-steps/s", f"{s * 1e3:.0f} ms")
            )
        rows += step_parts(im, c * n, device, args.repeats)
    model = ImaginationReturns(im, space, n_samples=n)
    planners = {
        "random shooting": RandomShooting(h, c),
        f"CEM ({args.iterations} iterations)": CEM(h, c, iterations=args.iterations),
        f"MPPI ({args.iterations} iterations)": MPPI(h, c, iterations=args.iterations),
    }
    for name, planner in planners.items():
        generator = torch.Generator(device=device).manual_seed(0)
        s = timed(lambda p=planner, g=generator: p.plan(model, state, 1, g), device, args.repeats)
        rows.append((f"{name} decision ({c}x{n}x{h})", f"{1 / s:.2f} decisions/s", f"{s * 1e3:.0f} ms"))
    for iterations in (1, 2):
        s = timed(warm_decision(model, CEM(h, c, iterations=iterations), state, device), device, args.repeats)
        rows.append(
            (
                f"CEM warm-started ({iterations} iteration{'s' * (iterations > 1)}) decision ({c}x{n}x{h})",
                f"{1 / s:.2f} decisions/s",
                f"{s * 1e3:.0f} ms",
            )
        )
    return rows


def warm_decision(
    model: ImaginationReturns, planner: CEM, state: LatentState, device: torch.device
) -> Callable[[], object]:
    """One MPC decision as :class:`MPCAgent` takes it after the first: the search starts from the
    previous decision's distribution shifted by one step (with 0.2 of the broad one mixed in)."""
    generator = torch.Generator(device=device).manual_seed(0)
    broad = planner.start(model, 1)
    previous = planner.plan(model, state, 1, generator).distribution

    def decide() -> None:
        nonlocal previous
        previous = planner.plan(model, state, 1, generator, previous.shifted(1, broad, 0.2)).distribution

    return decide


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="default-state", choices=["tiny-state", "default-state"])
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument(
        "--overrides",
        default="{}",
        type=json_object("--overrides"),
        help='JSON VIMConfig overrides, e.g. the planning budgets\' model: \'{"state_encoder": "identity", "latent_dim": 13, "module_layers": 0}\'',
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"preset {args.preset} {args.overrides}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n")
    print("| device | what | throughput | time per call |")
    print("|---|---|---:|---:|")
    for device in devices:
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for what, rate, per_call in bench(device, args):
            print(f"| {label} | {what} | {rate} | {per_call} |")


if __name__ == "__main__":
    main()
