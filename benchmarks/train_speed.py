"""Training speed of VIM against the monolithic VRNN baseline at the same batch.

Prints training steps/s, samples/s (sequences/s) and peak memory for each model, in state and
pixel mode, on the CPU and on CUDA when present (bf16 autocast there, as the trainer does).
Batches are synthetic tensors of the data's shapes, so the loader is not measured.

    python benchmarks/train_speed.py            # tiny presets
    python benchmarks/train_speed.py --preset default --batch-size 64

    python benchmarks/train_speed.py --modes pixels --levers   # + one row per pixel-speed lever
    python benchmarks/train_speed.py --modes pixels --overrides '{"encoder_stride": 2}'   # + a VIM row

Every row runs in a fresh process, so that its peak memory is its own: the CUDA allocator's peak
on a GPU, and on the CPU the peak RSS growth over the process's state before the model is built.
Levers (``--levers``): the tiny pixel VIM with each of its speed settings undone in turn
(``decode_steps=0`` decodes every step, ``decoder_hidden=0`` the full decoder width), and with
channels-last memory format. ``--compile`` adds both models with their networks compiled
(``torch.compile``, as the trainer's ``--compile``). ``--overrides JSON`` (repeatable) adds a VIM
row with those ``VIMConfig`` fields changed, e.g. an option's cost against the preset's row.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from dataclasses import replace
from typing import Any

import torch
from vim_world.envs import STATE_FEATURES

from vim_world.batch import Batch
from vim_world.model import build_model, count_parameters, preset


def batch_for(config, batch_size: int, seq_len: int, device: torch.device) -> Batch:
    if config.input_mode == "state":
        obs = torch.randn(batch_size, seq_len, config.num_slots, config.state_dim, device=device)
    else:
        obs = torch.rand(batch_size, seq_len, config.channels, config.image_size, config.image_size, device=device)
    return Batch(obs=obs)


def measure(
    name: str,
    config,
    batch_size: int,
    seq_len: int,
    steps: int,
    device: torch.device,
    channels_last: bool = False,
    compiled: bool = False,
) -> dict:
    """Training steps/s, samples/s and peak memory of ``name`` on synthetic batches. ``compiled``
    compiles the networks as the trainer's ``--compile`` does (the warm-up steps pay the compile)."""
    torch.manual_seed(0)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = build_model(name, config).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compiled:
        for part in model.children():
            part.compile()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batch = batch_for(config, batch_size, seq_len, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step(i: int) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = model.loss(batch, 10_000 + i)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(3):  # warm-up
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    seconds = time.perf_counter() - start
    return {
        "params": count_parameters(model),
        "steps_s": steps / seconds,
        "samples_s": steps * batch_size / seconds,
        "peak_mb": peak_mb,
    }


def _measure_in_child(args: tuple) -> dict:
    torch.set_num_threads(args[-1])
    return measure(*args[:-1])


def measure_fresh(*args: Any) -> dict:
    """:func:`measure` in a fresh (spawned) process, so that peak memory is this row's alone."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_measure_in_child, (args + (torch.get_num_threads(),),))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "default"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--devices", default="cpu,cuda", help="comma-separated; cuda rows are skipped when no GPU is present"
    )
    parser.add_argument("--modes", default="state,pixels", help="comma-separated subset of state,pixels")
    parser.add_argument("--levers", action="store_true", help="add pixel VIM rows with each speed lever undone")
    parser.add_argument("--compile", action="store_true", help="add both models with torch.compile'd networks")
    parser.add_argument(
        "--overrides", action="append", default=[], help="JSON VIMConfig fields: adds a VIM row with them (repeatable)"
    )
    args = parser.parse_args()
    try:
        overrides = [json.loads(text) for text in args.overrides]
    except json.JSONDecodeError as error:
        parser.error(f"--overrides: {error}; expected a JSON object of VIMConfig fields")
    if not all(isinstance(o, dict) for o in overrides):
        parser.error(f"--overrides: {args.overrides}; expected JSON objects of VIMConfig fields")
    wanted = args.devices.split(",")
    unknown = sorted(set(wanted) - {"cpu", "cuda"})
    if unknown:
        parser.error(f"--devices: unknown {unknown}; expected a comma-separated subset of cpu,cuda")
    modes = args.modes.split(",")
    if not modes or set(modes) - {"state", "pixels"}:
        parser.error(f"--modes: {args.modes!r}; expected a comma-separated subset of state,pixels")
    devices = [torch.device(d) for d in wanted if d == "cpu" or torch.cuda.is_available()]
    print(
        f"# preset {args.preset}, batch {args.batch_size} x {args.seq_len} steps; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    print("| device | mode | model | parameters | steps/s | samples/s | peak memory (MB) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for device in devices:
        for mode in modes:
            config = preset(f"{args.preset}-{mode}", state_dim=len(STATE_FEATURES), num_slots=5)
            rows = [("vim", "vim", config, False, False), ("vrnn", "vrnn", config, False, False)]
            if args.compile:
                rows += [("vim, compiled", "vim", config, False, True), ("vrnn, compiled", "vrnn", config, False, True)]
            if args.levers and mode == "pixels":
                rows += [
                    ("vim, all steps decoded", "vim", replace(config, decode_steps=0), False, False),
                    ("vim, full-width decoder", "vim", replace(config, decoder_hidden=0), False, False),
                    ("vim, both undone", "vim", replace(config, decode_steps=0, decoder_hidden=0), False, False),
                    ("vim, channels-last", "vim", config, True, False),
                ]
            for changed, text in zip(overrides, args.overrides):
                try:
                    rows.append((f"vim, {text}", "vim", replace(config, **changed), False, False))
                except (TypeError, ValueError) as error:
                    parser.error(f"--overrides {text}: {error}")
            for label, name, cfg, channels_last, compiled in rows:
                r = measure_fresh(name, cfg, args.batch_size, args.seq_len, args.steps, device, channels_last, compiled)
                print(
                    f"| {device.type} | {mode} | {label} | {r['params']:,} | {r['steps_s']:.2f} | "
                    f"{r['samples_s']:.1f} | {r['peak_mb']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
