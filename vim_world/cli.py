"""``vim-world``: the command line. Each step of the pipeline is a sub-command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

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

    kwargs = json.loads(args.env_kwargs) if args.env_kwargs else {}
    path = collect(
        args.env, args.out, episodes=args.episodes, episode_len=args.episode_len, seed=args.seed,
        num_envs=args.num_envs, policy=args.policy, masks=args.masks, overwrite=args.overwrite,
        env_kwargs=kwargs, progress=True,
    )  # fmt: skip
    print(f"data set written to {path}")


def _train_config(args: argparse.Namespace):
    from vim_world.train import TrainConfig

    overrides = json.loads(args.overrides) if args.overrides else {}
    return TrainConfig(
        data=args.data, out=args.out, model=args.model, preset=args.preset, mode=args.mode, overrides=overrides,
        steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr, seed=args.seed,
        device=args.device, compile=args.compile, checkpoint_every=args.checkpoint_every,
    )  # fmt: skip


def _cmd_train(args: argparse.Namespace) -> None:
    from vim_world.train import train

    result = train(_train_config(args))
    print(f"trained {result.steps} steps (resumed from {result.resumed_from}); checkpoint: {result.checkpoint}")


def _cmd_eval(args: argparse.Namespace) -> None:
    from vim_world.evaluate import EvalConfig, evaluate

    runs = dict(item.split("=", 1) for item in args.run)
    splits = dict(item.split("=", 1) for item in args.split)
    cfg = EvalConfig(runs=runs, splits=splits, out=args.out, context=args.context, horizon=args.horizon, n_samples=args.n_samples, device=args.device)
    evaluate(cfg)
    print(f"metrics written to {Path(args.out) / 'metrics.json'}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from vim_world.demo import run_demo

    report = run_demo(args.out, preset=args.preset, device=args.device, overwrite=args.overwrite)
    print(f"\nreport: {report}")


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
    c.set_defaults(fn=_cmd_collect)

    t = sub.add_parser("train", help="train a world model (resumes from the run's last checkpoint)")
    t.add_argument("--data", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--model", default="vim", choices=["vim", "vim_m1", "vrnn", "copy_last"])
    t.add_argument("--preset", default="tiny", choices=["tiny", "default"])
    t.add_argument("--mode", default="state", choices=["state", "pixels"])
    t.add_argument("--overrides", default=None, help='JSON VIMConfig overrides, e.g. \'{"num_modules": 8}\'')
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--seq-len", type=int, default=10)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--compile", action="store_true")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("eval", help="evaluate trained models: prediction, discovery, composition")
    e.add_argument("--run", action="append", type=_pair, required=True, help="NAME=RUN_DIR (repeat)")
    e.add_argument("--split", action="append", type=_pair, required=True, help="NAME=DATA_DIR (repeat; first is the reference)")
    e.add_argument("--out", required=True)
    e.add_argument("--context", type=int, default=5)
    e.add_argument("--horizon", type=int, default=10)
    e.add_argument("--n-samples", type=int, default=10)
    e.add_argument("--device", default="auto")
    e.set_defaults(fn=_cmd_eval)

    d = sub.add_parser("demo", help="the main job: collect, train, evaluate, report")
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
    except (ValueError, FileExistsError, KeyError) as e:
        print(f"vim-world {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
