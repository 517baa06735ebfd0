"""``vim-world``: the command line. Each step of the pipeline is a sub-command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


import vim_world
from vim_world.envs import ENV_SPECS, env_ids


def _cmd_envs(args: argparse.Namespace) -> None:
    for name, spec in ENV_SPECS.items():
        print(f"VimWorld/{name}  (max_episode_steps={spec['max_episode_steps']})\n    {spec['doc']}")


def _cmd_play(args: argparse.Namespace) -> None:
    from vim_world.envs.play import play

    play(args.env, max_steps=args.max_steps)


def _cmd_collect(args: argparse.Namespace) -> None:
    from vim_world.data import collect

    kwargs = _json_option("--env-kwargs", args.env_kwargs) if args.env_kwargs else {}
    path = collect(
        args.env, args.out, episodes=args.episodes, episode_len=args.episode_len, seed=args.seed,
        num_envs=args.num_envs, policy=args.policy, masks=args.masks, overwrite=args.overwrite,
        env_kwargs=kwargs, progress=True, workers=args.workers,
    )  # fmt: skip
    print(f"data set written to {path}")


def _json_option(flag: str, text: str) -> dict:
    """A JSON object given on the command line; the error names the flag."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag} is not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {text!r}")
    return value


def _train_config(args: argparse.Namespace):
    """TrainConfig from ``--config FILE`` (if given), then the flags given on the command line.

    Train flags default to "not given" (``argparse.SUPPRESS``), so that the defaults live in one
    place, :class:`~vim_world.train.TrainConfig`, and a flag always beats the file.
    """
    from vim_world.train import TrainConfig, read_config_file

    given = {k: v for k, v in vars(args).items() if k not in ("command", "fn", "config")}
    if "overrides" in given:
        given["overrides"] = _json_option("--overrides", given["overrides"])
    values = read_config_file(args.config) if args.config else {}
    return TrainConfig.from_dict({**values, **given})


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
    from vim_world.evaluate import EvalConfig, evaluate

    runs = dict(item.split("=", 1) for item in args.run)
    splits = dict(item.split("=", 1) for item in args.split)
    oracles = dict(item.split("=", 1) for item in args.oracle_run or [])
    cfg = EvalConfig(runs=runs, splits=splits, out=args.out, context=args.context, horizon=args.horizon, n_samples=args.n_samples,
                     device=args.device, oracle_runs=oracles, max_windows=args.max_windows)
    evaluate(cfg)
    print(f"metrics written to {Path(args.out) / 'metrics.json'}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from vim_world.demo import run_demo

    report = run_demo(args.out, preset=args.preset, device=args.device, overwrite=args.overwrite)
    print(f"\nreport: {report}")


def _cmd_imagine(args: argparse.Namespace) -> None:
    from vim_world.demo import imagination_strip

    png = imagination_strip(args.run, args.data, device=args.device, horizon=args.horizon,
                            n_samples=args.n_samples, obj=args.obj, seed=args.seed)
    Path(args.out).write_bytes(png)
    print(f"futures and counterfactuals written to {args.out}")


def _cmd_plan(args: argparse.Namespace) -> None:
    from vim_world.agents.evaluation import compare_agents

    result = compare_agents(args.out, args.budget, device=args.device, seed=args.seed, progress=True)
    print(result.markdown_path.read_text())
    print(f"results: {result.json_path}, plot: {result.plot_path}")


def _pair(text: str) -> str:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vim-world", description="Mechanism-world envs and the VIM world model.")
    p.add_argument("--version", action="version", version=vim_world.__version__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("envs", help="list the registered env ids").set_defaults(fn=_cmd_envs)

    play = sub.add_parser("play", help="watch or play an env in a window (arrow keys steer)")
    play.add_argument("env", choices=env_ids())
    play.add_argument("--max-steps", type=int, default=None)
    play.set_defaults(fn=_cmd_play)

    c = sub.add_parser("collect", help="roll out an env into a data set")
    c.add_argument("env", choices=env_ids())
    c.add_argument("--out", required=True)
    c.add_argument("--episodes", type=int, default=512)
    c.add_argument("--episode-len", type=int, default=32)
    c.add_argument("--num-envs", type=int, default=64)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--policy", choices=["noop", "random"], default=None)
    c.add_argument("--masks", action="store_true", help="store per-object masks (for pixel-mode slot matching)")
    c.add_argument("--env-kwargs", default=None, help='JSON env options, e.g. \'{"obs_size": 32}\'')
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--workers", type=int, default=1, help="processes rolling out shards in parallel (same bytes for any number)")
    c.set_defaults(fn=_cmd_collect)

    t = sub.add_parser(
        "train", argument_default=argparse.SUPPRESS,
        help="train a world model (resumes from the run's last checkpoint; runs data-parallel under torchrun)",
        description="Flags default to the TrainConfig defaults; --config FILE (.json or .toml) holds any "
        "TrainConfig fields and flags given here take precedence. Under `torchrun --nproc_per_node=N` "
        "each process trains on its share of every batch (DDP).",
    )  # fmt: skip
    t.add_argument("--config", default=None, help="JSON or TOML file of TrainConfig fields")
    t.add_argument("--data", help="data set directory (required, here or in --config)")
    t.add_argument("--out", help="run directory (required, here or in --config)")
    t.add_argument("--model", choices=["vim", "vim_m1", "vrnn", "copy_last"])
    t.add_argument("--preset", choices=["tiny", "default"])
    t.add_argument("--mode", choices=["state", "pixels"])
    t.add_argument("--overrides", help='JSON VIMConfig overrides, e.g. \'{"num_modules": 8}\'')
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int, help="global batch size, split over the processes")
    t.add_argument("--seq-len", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--grad-clip", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto, cpu, cuda (under torchrun each process takes cuda:LOCAL_RANK)")
    t.add_argument("--holdout", type=float, help="fraction of shards held out of training")
    t.add_argument("--compile", action="store_true")
    t.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast on CUDA")
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--log-every", type=int)
    t.add_argument("--no-progress", dest="progress", action="store_false")
    t.add_argument("--revive-every", type=int, help="VIM: split the busiest module into unused ones every N steps (0: off)")
    t.add_argument("--static-attributes", action="store_true",
                   help="state mode: features constant in every episode (the kind) reach the decoder, never the modules")
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("eval", help="evaluate trained models: prediction, discovery, composition")
    e.add_argument("--run", action="append", type=_pair, required=True, help="NAME=RUN_DIR (repeat)")
    e.add_argument("--split", action="append", type=_pair, required=True, help="NAME=DATA_DIR (repeat; first is the reference)")
    e.add_argument("--out", required=True)
    e.add_argument("--context", type=int, default=5)
    e.add_argument("--horizon", type=int, default=10)
    e.add_argument("--n-samples", type=int, default=10)
    e.add_argument("--device", default="auto")
    e.add_argument("--oracle-run", action="append", type=_pair,
                   help="NAME=RUN_DIR: NAME trained on every (kind, mechanism) pair, same budget (repeat); gives the composition gap")
    e.add_argument("--max-windows", type=int, default=2000, help="windows scored per split (every window of a smaller split)")
    e.set_defaults(fn=_cmd_eval)

    im = sub.add_parser("imagine", help="sample futures and counterfactuals from a trained state VIM (PNG)")
    im.add_argument("--run", required=True, help="run or checkpoint directory of a VIM")
    im.add_argument("--data", required=True, help="data set to take a context from")
    im.add_argument("--out", default="imagined.png")
    im.add_argument("--horizon", type=int, default=10)
    im.add_argument("--n-samples", type=int, default=3)
    im.add_argument("--obj", type=int, default=0, help="object whose module the counterfactuals force")
    im.add_argument("--seed", type=int, default=0)
    im.add_argument("--device", default="auto")
    im.set_defaults(fn=_cmd_imagine)

    pl = sub.add_parser("plan", help="compare MPC with VIM, PPO and a random agent on the control task")
    pl.add_argument("--out", default="runs/plan")
    pl.add_argument("--budget", default="tiny", choices=["tiny", "small"])
    pl.add_argument("--device", default="cpu")
    pl.add_argument("--seed", type=int, default=0)
    pl.set_defaults(fn=_cmd_plan)

    d = sub.add_parser("demo", help="the main job: collect, train, evaluate, imagine, plan, report")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--preset", default="tiny", choices=["tiny", "default"])
    d.add_argument("--device", default="auto")
    d.add_argument("--overwrite", action="store_true")
    d.set_defaults(fn=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except (ValueError, TypeError, FileExistsError, KeyError) as e:
        print(f"vim-world {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
