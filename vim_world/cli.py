"""``vim-world``: the command line. Each step of the pipeline is a sub-command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import vim_world
from vim_world import minari_io
from vim_world.envs import ENV_SPECS, env_ids
from vim_world.envs import play as play_args
from vim_world.train_config import FIELD_TYPES, PRESET_SIZES, TrainConfig


def _cmd_envs(args: argparse.Namespace) -> None:
    for name, spec in ENV_SPECS.items():
        print(f"VimWorld/{name}  (max_episode_steps={spec['max_episode_steps']})\n    {spec['doc']}")


def _cmd_identify(args: argparse.Namespace) -> None:
    import gymnasium as gym
    import numpy as np

    from vim_world.envs import WorldConfig
    from vim_world.envs.identifiability import (
        GIVEAWAY,
        MIN_FRACTION,
        identifiability_report,
        state_giveaway,
    )

    if (args.env is None) == (args.mechanisms is None):
        raise ValueError("give an env id or --mechanisms a,b,... (one of the two)")
    if args.env is not None:
        config, name = WorldConfig(**gym.spec(args.env).kwargs), args.env
    else:
        names = tuple(m.strip() for m in args.mechanisms.split(","))
        config, name = WorldConfig(mechanisms=names, allowed=None, switch_prob=0.05), ", ".join(names)
    report = identifiability_report(config, worlds=args.worlds, steps=args.steps, seed=args.seed)
    giveaway = state_giveaway(config, worlds=args.worlds, steps=args.steps, seed=args.seed)
    mechanisms = report.mechanisms

    def matrix(title: str, values: np.ndarray) -> str:
        head = f"| {title} | " + " | ".join(mechanisms) + " |\n|---|" + "---:|" * len(mechanisms)
        rows = [f"| {a} | " + " | ".join("-" if i == j or np.isnan(v) else f"{v:.2f}" for j, v in enumerate(row)) + " |"
                for i, (a, row) in enumerate(zip(mechanisms, values))]  # fmt: skip
        return "\n".join([head, *rows])

    verdict = "identifiable" if report.identifiable() else "NOT identifiable"
    print(f"{name}: {verdict} ({args.worlds} worlds x {args.steps} steps, seed {args.seed})\n")
    print("| mechanism | object-steps | own affine law explains | regimes |\n|---|---:|---:|---|")
    for a, n, share in zip(mechanisms, report.steps, report.single_law):
        kind = "interacts (n-ary)" if np.isnan(share) else "yes" if a in report.regimes() else "no"
        print(f"| {a} | {n} | {'-' if np.isnan(share) else f'{share:.2f}'} | {kind} |")
    print(f"\nTold apart on the row's steps (min of law and affine measures; >= {MIN_FRACTION} needed):\n")
    print(matrix("A \\ B", report.distinguishable))
    print(f"\nThe state before a step tells the pair apart (balanced accuracy; >= {GIVEAWAY}: given away):\n")
    print(matrix("pair", giveaway.state_tells))
    if report.failing():
        print("\nfailing pairs: " + ", ".join(f"({a}, {b})" for a, b in report.failing()))
    if args.json:
        out = {
            "world": name, "identifiable": report.identifiable(), "mechanisms": list(mechanisms),
            "steps": report.steps.tolist(), "law_differs": report.law_differs.tolist(),
            "affine_differs": report.affine_differs.tolist(), "single_law": report.single_law.tolist(),
            "state_tells": giveaway.state_tells.tolist(), "failing": report.failing(), "regimes": report.regimes(),
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(out, indent=1).replace("NaN", "null"))


def _cmd_collect(args: argparse.Namespace) -> None:
    from vim_world.data import collect

    kwargs = args.env_kwargs or {}
    path = collect(
        args.env, args.out, episodes=args.episodes, episode_len=args.episode_len, seed=args.seed,
        num_envs=args.num_envs, policy=args.policy, masks=args.masks, overwrite=args.overwrite,
        env_kwargs=kwargs, progress=args.progress, workers=args.workers,
    )  # fmt: skip
    print(f"data set written to {path}")


def json_object(flag: str) -> Callable[[str], dict]:
    """An argparse type: a JSON object given on the command line; the error names the flag."""

    def parse(text: str) -> dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"{flag} is not valid JSON ({e}): {text!r}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{flag} must be a JSON object, got {text!r}")
        return value

    return parse


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from ``--config FILE`` (if given), then the flags given on the command line.

    Train flags default to "not given" (``argparse.SUPPRESS``), so that the defaults live in one
    place, :class:`~vim_world.train_config.TrainConfig`, and a flag always beats the file.
    """
    from vim_world.train_config import read_config_file

    given = {k: v for k, v in vars(args).items() if k not in ("command", "fn", "config")}
    values = read_config_file(args.config) if args.config else {}
    return TrainConfig.from_dict({**values, **given})


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field: name, type, choices and help from the field."""
    for f in fields(TrainConfig):
        default: Any = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)  # fmt: skip
        text = f.metadata["help"] + ("" if default is None else f" (default: {json.dumps(default)})")
        flag = "--" + f.name.replace("_", "-")
        kinds = FIELD_TYPES[f.name]
        if bool in kinds:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
            continue
        kind: Callable[[str], Any] = {dict: json_object(flag), tuple: _comma_list}.get(kinds[0], kinds[-1])
        parser.add_argument(flag, type=kind, choices=f.metadata.get("choices"), help=text)


def _add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``, as ``train`` has them (a bar on stderr; off for logs)."""
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")


def _cmd_train(args: argparse.Namespace) -> None:
    from vim_world.train import TrainingDiverged, train

    try:
        result = train(_train_config(args))
    except TrainingDiverged as e:
        print(f"vim-world train: error: {e}", file=sys.stderr)
        raise SystemExit(3) from None
    if os.environ.get("RANK", "0") == "0":  # one line per run, not per torchrun process
        print(f"trained {result.steps} steps (resumed from {result.resumed_from}); checkpoint: {result.checkpoint}")


def _cmd_eval(args: argparse.Namespace) -> None:
    from vim_world.devices import resolve_device
    from vim_world.evaluate import EvalConfig, evaluate

    out = Path(args.out)
    existing = [str(out / name) for name in ("metrics.json", "report.html") if (out / name).exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"--out {args.out!r} already holds {existing}; pass --overwrite to replace them")
    if out.is_file():
        raise ValueError(f"--out {args.out!r} is a file; expected a directory")
    resolve_device(args.device)
    runs = dict(item.split("=", 1) for item in args.run)
    splits = dict(item.split("=", 1) for item in args.split)
    oracles = dict(item.split("=", 1) for item in args.oracle_run or [])
    cfg = EvalConfig(
        runs=runs,
        splits=splits,
        out=args.out,
        context=args.context,
        horizon=args.horizon,
        n_samples=args.n_samples,
        device=args.device,
        oracle_runs=oracles,
        max_windows=args.max_windows,
        batch_size=args.batch_size,
        progress=args.progress,
        world_reference=args.world_reference,
        seed=args.seed,
    )
    evaluate(cfg)
    print(f"metrics written to {Path(args.out) / 'metrics.json'}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from vim_world.demo import run_demo

    report = run_demo(args.out, preset=args.preset, device=args.device, overwrite=args.overwrite)
    print(f"\nreport: {report}")


def _cmd_imagine(args: argparse.Namespace) -> None:
    from vim_world.demo import imagination_strip
    from vim_world.devices import resolve_device
    from vim_world.files import check_output_file, write_atomically

    check_output_file(args.out, args.overwrite)
    resolve_device(args.device)
    png = imagination_strip(
        args.run,
        args.data,
        device=args.device,
        horizon=args.horizon,
        n_samples=args.n_samples,
        obj=args.obj,
        seed=args.seed,
    )
    write_atomically(args.out, png)
    print(f"futures and counterfactuals written to {args.out}")


def _cmd_plan(args: argparse.Namespace) -> None:
    from vim_world.agents.evaluation import compare_agents
    from vim_world.devices import resolve_device

    resolve_device(args.device)
    result = compare_agents(args.out, args.budget, device=args.device, seed=args.seed, progress=True)
    print(result.markdown_path.read_text())
    print(f"results: {result.json_path}, plot: {result.plot_path}")


def _pair(text: str) -> str:
    """An argparse type: ``NAME=PATH``."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return text


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``vim-world train: error: ...``) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


DEVICE_HELP = "auto (CUDA when available, else CPU), cpu, cuda or cuda:N"


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vim-world", description="Mechanism-world envs and the VIM world model.")
    p.add_argument("--version", action="version", version=vim_world.__version__)
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, fn: Callable[[argparse.Namespace], None], **kw: Any) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help, description=kw.pop("description", help),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kw)  # fmt: skip
        parser.set_defaults(fn=fn)
        return parser

    command("envs", "list the registered env ids", _cmd_envs)

    # the same flags as `python -m vim_world.envs.play` (one parser, owned by envs/play.py)
    play_args.add_arguments(command("play", "watch or play an env in a window (arrow keys steer)", play_args.run))

    i = command(
        "identify",
        "whether a world's mechanisms can be told apart (envs.identifiability): laws, regimes, state cues",
        _cmd_identify,
    )
    i.add_argument("env", nargs="?", choices=env_ids(), default=None, help="env id (or --mechanisms)")
    i.add_argument("--mechanisms", default=None, help="a comma-separated mechanism set instead of an env id")
    i.add_argument("--worlds", type=int, default=64, help="worlds rolled out")
    i.add_argument("--steps", type=int, default=50, help="steps per world")
    i.add_argument("--seed", type=int, default=0, help="seed of the rollouts")
    i.add_argument("--json", default=None, help="also write every figure to this file")

    c = command("collect", "roll out an env into a data set", _cmd_collect)
    c.add_argument("env", choices=env_ids(), help="env id")
    c.add_argument("--out", required=True, help="data set directory to write")
    c.add_argument("--episodes", type=int, default=512, help="number of episodes")
    c.add_argument("--episode-len", type=int, default=32, help="frames per episode")
    c.add_argument("--num-envs", type=int, default=64, help="worlds stepped together (episodes per shard)")
    c.add_argument("--seed", type=int, default=0, help="seed of resets and random actions")
    c.add_argument(
        "--policy",
        choices=["noop", "random"],
        default=None,
        help="actions: noop (passive envs' default) or random (control tasks' default)",
    )
    c.add_argument("--masks", action="store_true", help="store per-object masks (for pixel-mode slot matching)")
    c.add_argument(
        "--env-kwargs",
        type=json_object("--env-kwargs"),
        default=None,
        help='JSON env options, e.g. \'{"obs_size": 32}\' ({"obs_mode": "state"} stores no frames)',
    )
    c.add_argument("--overwrite", action="store_true", help="replace an existing data set (only a vim_world data set)")
    c.add_argument(
        "--workers", type=int, default=1, help="processes rolling out shards in parallel (same bytes for any number)"
    )
    _add_progress_flag(c)

    t = command(
        "train", "train a world model (resumes from the run's last checkpoint; runs data-parallel under torchrun)",
        _cmd_train, argument_default=argparse.SUPPRESS,
        description="Flags default to the TrainConfig defaults; --config FILE (.json or .toml) holds any "
        "TrainConfig fields and flags given here take precedence. Under `torchrun --nproc_per_node=N` "
        "each process trains on its share of every batch (DDP).",
    )  # fmt: skip
    t.add_argument("--config", default=None, help="JSON or TOML file of TrainConfig fields")
    _add_train_flags(t)

    e = command("eval", "evaluate trained models: prediction, discovery, composition", _cmd_eval)
    e.add_argument("--run", action="append", type=_pair, required=True, help="NAME=RUN_DIR (repeat)")
    e.add_argument(
        "--split", action="append", type=_pair, required=True, help="NAME=DATA_DIR (repeat; first is the reference)"
    )
    e.add_argument("--out", required=True, help="directory for metrics.json and report.html")
    e.add_argument("--context", type=int, default=5, help="observed steps before imagining")
    e.add_argument("--horizon", type=int, default=10, help="imagined steps")
    e.add_argument("--n-samples", type=int, default=10, help="sampled futures per context")
    e.add_argument("--device", default="auto", help=DEVICE_HELP)
    e.add_argument("--overwrite", action="store_true", help="replace metrics.json / report.html in --out")
    e.add_argument(
        "--oracle-run",
        action="append",
        type=_pair,
        help="NAME=RUN_DIR: NAME trained on every (kind, mechanism) pair, same budget (repeat); gives the composition gap",
    )
    e.add_argument(
        "--max-windows", type=int, default=2000, help="windows scored per split (every window of a smaller split)"
    )
    e.add_argument(
        "--batch-size",
        type=int,
        default=256,
        help="windows per forward pass, for memory (a pixel model holds N x horizon frames per window: one tiny "
        "32x32 run at 256 peaked at 4.8 GB; take 8 or so at 64x64 on a CPU); sampled futures follow the batch "
        "layout, so compare models at one batch size",
    )
    e.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the window subset, the sampled futures and the bootstrap (another seed: other draws, the "
        "same distribution)",
    )
    e.add_argument(
        "--world-reference",
        action="store_true",
        help="also score the world that generated each state split, restarted from each window's true state and "
        "mechanisms (model 'world'): a privileged reference (what the true process's own samples score), not a "
        "baseline and not a bound",
    )
    _add_progress_flag(e)

    im = command("imagine", "sample futures and counterfactuals from a trained state VIM (PNG)", _cmd_imagine)
    im.add_argument("--run", required=True, help="run or checkpoint directory of a VIM")
    im.add_argument("--data", required=True, help="data set to take a context from")
    im.add_argument("--out", default="imagined.png", help="PNG file to write")
    im.add_argument("--horizon", type=int, default=10, help="imagined steps")
    im.add_argument("--n-samples", type=int, default=3, help="sampled futures")
    im.add_argument("--obj", type=int, default=0, help="object whose module the counterfactuals force")
    im.add_argument("--seed", type=int, default=0, help="seed of the sampled futures")
    im.add_argument("--device", default="auto", help=DEVICE_HELP)
    im.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    pl = command("plan", "compare MPC with VIM, PPO and a random agent on the control task", _cmd_plan)
    pl.add_argument("--out", default="runs/plan", help="directory for results, table and plot")
    pl.add_argument("--budget", default="tiny", choices=["tiny", "small"], help="real-env step budget")
    pl.add_argument("--device", default="auto", help=DEVICE_HELP)
    pl.add_argument("--seed", type=int, default=0, help="seed of training and evaluation")

    minari_io.add_cli(sub)  # to-minari, from-minari

    d = command("demo", "the main job: collect, train, evaluate, imagine, plan, report", _cmd_demo)
    d.add_argument("--out", default="runs/demo", help="demo directory (data, runs, eval, report.html)")
    d.add_argument("--preset", default="tiny", choices=PRESET_SIZES, help="size of data, models and training")
    d.add_argument("--device", default="auto", help=DEVICE_HELP)
    d.add_argument(
        "--overwrite", action="store_true", help="delete an existing demo directory first (only one the demo wrote)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except (ValueError, TypeError, FileExistsError, KeyError) as e:
        message = " ".join(str(e).split())  # one line
        print(f"vim-world {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
