"""The default 64x64 pixel preset on one GPU, end to end, in a fixed time budget.

    python benchmarks/gpu_pixel.py --out OUT_DIR          # on a CUDA machine (bf16 autocast)
    GPU_PIXEL_TINY=1 python benchmarks/gpu_pixel.py --out /tmp/x   # CPU rehearsal, tiny sizes

Steps: (1) collect ``Passive-v1`` frames with masks (training seeds; held-out seeds and the
held-out (kind, mechanism) pairs of ``PassiveHeldout-v1`` for evaluation; and, when ``RUNS`` holds
an ``oracle_NAME`` run, the same training seeds with every pair allowed); (2) measure training
samples/s of pixel VIM and the parameter-matched pixel VRNN on the card, alone
(``train_speed.measure``, synthetic batches); (3) train the runs of ``RUNS`` at once, one process
each, for the same wall-clock budget (a run still going at the deadline is stopped and its last
checkpoint scored; checkpoints are atomic); (4) evaluate with ``vim_world.evaluate`` (best-of-10
MSE over 10 steps after 5 context frames, PSNR, SSIM, mechanism discovery through the
slot-to-object matching, held-out / in-distribution ratio, the composition gap of each run that
has an oracle, 95% bootstrap intervals over windows) and score each VIM run's slot masks (FG-ARI,
binding kept over 10-step windows).
Writes ``OUT_DIR/gpu_pixel.md`` (Markdown tables, the device named) and ``gpu_pixel.json`` after
every phase, so a run cut short still leaves what it measured.

Training longer than one call (a device is lent for minutes): ``GPU_PIXEL_SAVE_RUNS=1`` also writes
each run's last checkpoint, options and log to ``OUT_DIR/NAME.tgz`` (``@`` written ``_at``), and
``GPU_PIXEL_CONTINUE=DIR`` trains each run whose archive ``DIR`` holds on from its checkpoint (the
data are collected again, bit for bit the same; the trainer checks them by content) for the budget.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pixel_binding import binding_scores  # noqa: E402
from train_speed import measure  # noqa: E402

from vim_world.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from vim_world.data import collect, open_dataset  # noqa: E402
from vim_world.evaluate import EvalConfig, evaluate  # noqa: E402
from vim_world.train import TrainConfig, load_model, model_config  # noqa: E402

SIZES = {
    "full": dict(obs_size=64, episodes=2048, test_episodes=256, episode_len=32, preset="default", batch_size=32,
                 budget_s=250.0, max_steps=20_000, eval_windows=2000, binding_batches=16, speed_steps=40),
    "tiny": dict(obs_size=32, episodes=32, test_episodes=16, episode_len=16, preset="tiny", batch_size=8,
                 budget_s=25.0, max_steps=10, eval_windows=64, binding_batches=2, speed_steps=2),
}  # fmt: skip
CATALOGUE: dict[str, dict[str, Any]] = {  # run name -> trainer options beside the shared ones (seq_len 10)
    "vim": dict(model="vim"),
    "vim_seq4": dict(model="vim", seq_len=4),  # binds best on the CPU (docs/model.md)
    "vim_cues_seq4": dict(model="vim", seq_len=4, overrides={"slot_cues": True}),
    # Slot Attention's learning-rate decay: stopped the cued model's slide after 3,000 CPU steps
    "vim_cues_seq4_decay": dict(model="vim", seq_len=4, lr_half_life=2000, overrides={"slot_cues": True}),
    "vim_cues": dict(model="vim", overrides={"slot_cues": True}),
    "vim_warmup": dict(model="vim", lr=4e-4, warmup_steps=300),
    "vim_warmup_cues": dict(model="vim", lr=4e-4, warmup_steps=300, overrides={"slot_cues": True}),
    "vim_lr2e-4": dict(model="vim", lr=2e-4, warmup_steps=300),
    "vim_warmup_sigma05": dict(model="vim", lr=4e-4, warmup_steps=300, overrides={"pixel_sigma": 0.05}),
    # The CPU recipe of session 15 (docs/model.md, "Binding over seeds"), without its restarts
    "vim_cues_seq4_warmup_stride2": dict(
        model="vim", seq_len=4, warmup_steps=1000, overrides={"slot_cues": True, "encoder_stride": 2}
    ),
    "vim_seq4_warmup_stride2": dict(model="vim", seq_len=4, warmup_steps=1000, overrides={"encoder_stride": 2}),
    # ... with the GPU runs' learning-rate decay (session 16)
    "vim_cues_seq4_warmup_stride2_decay": dict(
        model="vim", seq_len=4, warmup_steps=1000, lr_half_life=2000, overrides={"slot_cues": True, "encoder_stride": 2}
    ),
    "vim_seq4_warmup_stride2_decay": dict(
        model="vim", seq_len=4, warmup_steps=1000, lr_half_life=2000, overrides={"encoder_stride": 2}
    ),
    "vrnn": dict(model="vrnn"),
}
ORACLE = "oracle_"  # "oracle_NAME": run NAME trained on every (kind, mechanism) pair (the composition gap's oracle)
# GPU_PIXEL_RUNS="vim_warmup,vim_warmup@1,vrnn" picks the runs (trained at once; "@S": training seed S),
# GPU_PIXEL_BUDGET_S their seconds, GPU_PIXEL_SPLITS="test" the evaluation splits (test: held-out seeds;
# heldout: held-out pairs).
DEFAULT_RUNS = (  # the CPU recipe with the decay, cued, at two seeds (docs/model.md, H200 run of session 16)
    "vim_cues_seq4_warmup_stride2_decay,oracle_vim_cues_seq4_warmup_stride2_decay,vim_cues_seq4_warmup_stride2_decay@1,"
    "vrnn,oracle_vrnn"
)


def run_options(name: str) -> dict[str, Any]:
    """The trainer options of run ``name``: ``[oracle_]CATALOGUE_NAME[@SEED]``."""
    base, at, seed = name.removeprefix(ORACLE).partition("@")
    if base not in CATALOGUE:
        raise SystemExit(
            f"GPU_PIXEL_RUNS: unknown run {name!r}; expected [oracle_]NAME[@SEED], NAME one of {sorted(CATALOGUE)}"
        )
    if at and not (seed.isascii() and seed.isdigit()):
        raise SystemExit(f"GPU_PIXEL_RUNS: run {name!r} has seed {seed!r}; expected a non-negative integer after '@'")
    return {**CATALOGUE[base], **({"seed": int(seed)} if seed else {})}


RUNS = {n: run_options(n) for n in os.environ.get("GPU_PIXEL_RUNS", DEFAULT_RUNS).split(",")}
SOURCES = (  # split: env id, seed, env options; all_pairs is the oracles' training data
    ("train", "Passive-v1", 0, {}),
    ("all_pairs", "Passive-v1", 0, {"allowed": None}),
    ("test", "Passive-v1", 1_000_000, {}),
    ("heldout", "PassiveHeldout-v1", 2_000_000, {}),
)
SPEED_ROUNDS = 2
CONCURRENT_SLOWDOWN = 0.6  # planned share of a run's solo speed while the runs share the card


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def archive(directory: Path, name: str) -> Path:
    """Where run ``name``'s archive is in ``directory`` (file names without ``@``)."""
    return directory / f"{name.replace('@', '_at')}.tgz"


def restore_run(name: str, work: Path) -> int:
    """Unpack run ``name`` from ``GPU_PIXEL_CONTINUE`` into ``work`` if an archive of it is there;
    returns the step of its checkpoint (0: none, the run starts afresh)."""
    source = os.environ.get("GPU_PIXEL_CONTINUE")
    if not source:
        return 0
    if not Path(source).is_dir():
        raise SystemExit(f"GPU_PIXEL_CONTINUE={source!r} is not a folder; expected one holding NAME.tgz archives")
    if not archive(Path(source), name).exists():
        return 0
    shutil.rmtree(work / name, ignore_errors=True)
    with tarfile.open(archive(Path(source), name)) as tar:
        tar.extractall(work, filter="data")
    last = latest_checkpoint(work / name / "checkpoints")
    if last is None:
        raise SystemExit(f"GPU_PIXEL_CONTINUE: {archive(Path(source), name)} holds no checkpoint of run {name!r}")
    return load_checkpoint(last).step


def save_run(name: str, work: Path, out: Path) -> None:
    """Archive run ``name``'s options, last checkpoint and log into ``out`` (see ``restore_run``)."""
    last = latest_checkpoint(work / name / "checkpoints")
    tmp = out / f".{archive(out, name).name}.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        for path in (work / name / "train_config.json", last, work / f"{name}.log"):
            tar.add(path, arcname=str(path.relative_to(work)))
    os.replace(tmp, archive(out, name))


def train_command(cfg: TrainConfig, work: Path, name: str, fresh: bool = True) -> list[str]:
    """``vim-world train --config FILE`` for ``cfg`` (written to ``work/name.json``), run by this Python.
    A ``fresh`` run trains from scratch: a run an earlier call left at ``cfg.out`` is removed (else
    the trainer would resume it, or refuse it when the data were collected again); otherwise the
    trainer resumes the run restored there."""
    if fresh:
        shutil.rmtree(cfg.out, ignore_errors=True)
    path = work / f"{name}.json"
    atomic_write_text(path, json.dumps(asdict(cfg)))
    return [sys.executable, "-m", "vim_world.cli", "train", "--config", str(path)]


def train_all(
    data: dict[str, str],
    work: Path,
    size: dict[str, Any],
    speeds: dict[str, dict],
    device: str,
    starts: dict[str, int],
) -> dict[str, dict]:
    """Train every run of ``RUNS`` at once for ``size['budget_s']`` seconds (an oracle run on
    ``data['all_pairs']``, the others on ``data['train']``), each from step ``starts[name]`` (a
    run restored by :func:`restore_run`; 0: afresh); returns per run the planned and trained
    steps and the seconds it ran."""
    procs, planned = {}, {}
    threads = max(1, (os.cpu_count() or 1) // len(RUNS))  # the runs share the machine's cores
    for name, opts in RUNS.items():
        # measured at 10-step sequences; shorter ones run faster (at most in proportion: planning
        # too many steps is safe, the deadline stops the run)
        solo = speeds[opts["model"]]["steps_s"] * 10 / opts.get("seq_len", 10)
        start = starts[name]
        steps = start + int(min(size["max_steps"], max(2, solo * size["budget_s"] * CONCURRENT_SLOWDOWN)))
        source = data["all_pairs" if name.startswith(ORACLE) else "train"]
        cfg = TrainConfig(data=source, out=str(work / name), preset=size["preset"], mode="pixels", steps=steps,
                          batch_size=size["batch_size"], device=device, checkpoint_every=max(1, (steps - start) // 20),
                          progress=False, **{"seq_len": 10, **opts})  # fmt: skip
        planned[name] = (start, steps)
        log_file = open(work / f"{name}.log", "a" if start else "w")
        procs[name] = (subprocess.Popen(train_command(cfg, work, name, fresh=not start), cwd=work, stdout=log_file,
                                        stderr=subprocess.STDOUT,
                                        env={**os.environ, "OMP_NUM_THREADS": str(threads)}),
                       log_file, time.perf_counter())  # fmt: skip
        log(f"{name}: training from step {start} up to {steps}")
    deadline = time.perf_counter() + size["budget_s"]
    result = {}
    for name, (proc, log_file, t0) in procs.items():
        try:
            proc.wait(timeout=max(1.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            proc.terminate()
            proc.wait()
        log_file.close()
        last = latest_checkpoint(work / name / "checkpoints")
        trained = load_checkpoint(last).step if last is not None else 0
        result[name] = {"start_step": planned[name][0], "planned_steps": planned[name][1], "train_steps": trained,
                        "train_s": time.perf_counter() - t0, "returncode": proc.returncode}  # fmt: skip
        log(f"{name}: {trained} of {planned[name][1]} steps (exit {proc.returncode})")
        if trained <= planned[name][0] or proc.returncode not in (0, -signal.SIGTERM):  # it failed, or never trained
            print((work / f"{name}.log").read_text()[-3000:], flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_pixel_out"))
    parser.add_argument("--work", default=None, help="scratch directory for data and runs (default: a temp dir)")
    parser.add_argument("--reuse-data", action="store_true", help="keep data sets already in the work directory")
    args = parser.parse_args()
    size = dict(SIZES["tiny" if os.environ.get("GPU_PIXEL_TINY") else "full"])
    size["budget_s"] = float(os.environ.get("GPU_PIXEL_BUDGET_S", size["budget_s"]))
    splits = os.environ.get("GPU_PIXEL_SPLITS", "test,heldout").split(",")
    out = Path(args.out)
    work = Path(args.work) if args.work else Path(tempfile.gettempdir()) / "gpu_pixel_work"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    log(f"device: {card}; torch {torch.__version__}; sizes: {size}")
    start = time.perf_counter()
    results: dict[str, Any] = {"device": card, "torch": torch.__version__, "sizes": size, "runs": RUNS}

    def save() -> None:
        results["wall_s"] = time.perf_counter() - start
        atomic_write_text(out / "gpu_pixel.json", json.dumps(results, indent=1, default=str))
        atomic_write_text(out / "gpu_pixel.md", markdown(results))

    starts = {name: restore_run(name, work) for name in RUNS}  # first: a bad GPU_PIXEL_CONTINUE stops at once
    data = {}
    training = ["train", "all_pairs"] if any(name.startswith(ORACLE) for name in RUNS) else ["train"]
    for split, env_id, seed, extra in SOURCES:
        if split not in training + splits:
            continue
        path = work / split
        if not (args.reuse_data and (path / "meta.json").exists()):
            collect(f"VimWorld/{env_id}", path, episodes=size["episodes" if split in training else "test_episodes"],
                    episode_len=size["episode_len"], seed=seed, masks=True, overwrite=True,
                    env_kwargs={"obs_size": size["obs_size"], **extra}, workers=min(16, os.cpu_count() or 1))  # fmt: skip
        data[split] = str(path)
    log(f"collected in {time.perf_counter() - start:.0f} s")

    probe = TrainConfig(data=data["train"], out=str(work / "probe"), mode="pixels", preset=size["preset"])
    config = model_config(probe, open_dataset(data["train"]))
    results["speed"], results["speed_rounds"] = {}, []
    for _ in range(SPEED_ROUNDS):  # interleaved rounds: the card's rate drifts between measurements
        r = {
            name: measure(name, config, size["batch_size"], 10, size["speed_steps"], device) for name in ("vim", "vrnn")
        }
        results["speed_rounds"].append(r)
        log(f"speed round: {r}")
    for name in ("vim", "vrnn"):  # samples/s averaged over the rounds; parameters and peak memory are per model
        rounds = [r[name] for r in results["speed_rounds"]]
        results["speed"][name] = {**rounds[-1], "samples_s": sum(x["samples_s"] for x in rounds) / len(rounds),
                                  "steps_s": sum(x["steps_s"] for x in rounds) / len(rounds)}  # fmt: skip
    save()

    results["training"] = train_all(data, work, size, results["speed"], device.type, starts)
    if os.environ.get("GPU_PIXEL_SAVE_RUNS") == "1":
        for name, t in results["training"].items():
            if t["train_steps"] > t["start_step"]:
                save_run(name, work, out)
    copy_last = TrainConfig(data=data["train"], out=str(work / "copy_last"), model="copy_last", mode="pixels",
                            preset=size["preset"], steps=1, device=device.type, progress=False)  # fmt: skip
    subprocess.run(train_command(copy_last, work, "copy_last"), cwd=work, check=True)
    save()

    done = [name for name in RUNS if results["training"][name]["train_steps"] > 0]
    trained = [name for name in done if not name.startswith(ORACLE)] + ["copy_last"]
    oracle_runs = {name: str(work / f"{ORACLE}{name}") for name in trained if f"{ORACLE}{name}" in done}
    results["binding"] = {}
    for name in trained:
        if name in RUNS and RUNS[name]["model"] == "vim":
            model, _ = load_model(work / name, device.type)
            results["binding"][name] = binding_scores(
                model, data["test"], batches=size["binding_batches"], device=device
            )
            save()
    evaluation = evaluate(EvalConfig(runs={name: str(work / name) for name in trained},
                                     splits={split: data[split] for split in splits}, out=str(work / "eval"),
                                     oracle_runs=oracle_runs,
                                     batch_size=32, max_windows=size["eval_windows"], device=device.type,
                                     progress=False))  # fmt: skip
    results["evaluation"] = evaluation.metrics
    save()
    log(f"done in {time.perf_counter() - start:.0f} s; wrote {out / 'gpu_pixel.md'}")
    print(markdown(results))


def markdown(r: dict[str, Any]) -> str:
    """The results measured so far as Markdown tables."""
    s = r["sizes"]
    lines = [f"# Pixel VIM on {r['device']} (torch {r['torch']}, preset {s['preset']}, {s['obs_size']}x{s['obs_size']}, "
             "bf16 on CUDA)", ""]  # fmt: skip
    if "speed" in r:
        sp = r["speed"]
        lines += ["| model (synthetic batches, alone on the card, mean of the rounds) | parameters | samples/s | peak memory (MB) |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        lines += [f"| {n} | {v['params']:,} | {v['samples_s']:.0f} | {v['peak_mb']:.0f} |" for n, v in sp.items()]
        per_round = ", ".join(
            f"{x['vim']['samples_s'] / x['vrnn']['samples_s']:.2f}" for x in r.get("speed_rounds", [])
        )
        lines += ["", f"VIM / VRNN samples/s (mean over rounds): {sp['vim']['samples_s'] / sp['vrnn']['samples_s']:.2f}"
                  f" (per round: {per_round})", ""]  # fmt: skip
    if "training" in r:
        lines += [f"Trained at once, {s['budget_s']:.0f} s each:", "", "| run | options | steps trained (planned) |",
                  "|---|---|---:|"]  # fmt: skip
        for n, t in r["training"].items():
            start = f" from {t['start_step']}" if t.get("start_step") else ""
            lines.append(f"| {n} | {json.dumps(r['runs'][n])} | {t['train_steps']} ({t['planned_steps']}){start} |")
        lines.append("")
    if "evaluation" in r:
        lines += ["| run | split | windows | best-of-10 MSE [95% CI] | x VRNN [95% CI] | x copy-last [95% CI] | "
                  "PSNR | SSIM | discovery acc / NMI [95% CI] |", "|---|---|---:|---|---|---|---:|---:|---|"]  # fmt: skip
        for split, sr in r["evaluation"]["splits"].items():
            ratios = r["evaluation"]["ratios"].get(split, {})
            for n, p in sr["prediction"].items():
                vs = ratios.get(n, {})
                rel = [
                    _ci(vs.get("mse_best_vs", {}).get(b), vs.get("mse_best_vs_ci", {}).get(b))
                    for b in ("vrnn", "copy_last")
                ]
                d = sr.get("discovery", {}).get(n)
                disc = "-" if not d else f"{_ci(d['accuracy'], d['accuracy_ci'])} / {_ci(d['nmi'], d['nmi_ci'])}"
                lines.append(f"| {n} | {split} | {sr['windows']} | {_ci(p['mse_best_avg'], p['mse_best_avg_ci'])} | "
                             f"{rel[0]} | {rel[1]} | {sum(p['psnr_best']) / len(p['psnr_best']):.2f} | "
                             f"{sum(p['ssim_best']) / len(p['ssim_best']):.3f} | {disc} |")  # fmt: skip
        lines.append("")
    for split, gaps in r.get("evaluation", {}).get("composition_gap", {}).items():
        lines += [f"Composition gap on {split} (MSE of the run over its oracle's, trained on every pair; paired windows):",
                  "", "| run | best-of-10 MSE | oracle's | gap [95% CI] |", "|---|---:|---:|---|"]  # fmt: skip
        lines += [f"| {n} | {g['model_mse_best']:.4g} | {g['oracle_mse_best']:.4g} | {_ci(g['gap'], g['gap_ci'])} |"
                  for n, g in gaps.items()]  # fmt: skip
        lines.append("")
    if r.get("binding"):
        lines += ["| run | FG-ARI [95% CI] | video FG-ARI [95% CI] | binding kept over 10 steps | windows / frames |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for n, b in r["binding"].items():
            fg, kept = _ci(b["fg_ari"][0], b["fg_ari"][1:]), _ci(b["binding_kept"][0], b["binding_kept"][1:])
            video = _ci(b["video_fg_ari"][0], b["video_fg_ari"][1:]) if "video_fg_ari" in b else "-"
            lines.append(f"| {n} | {fg} | {video} | {kept} | {b['windows']} / {b['frames']} |")
        lines.append("")
    lines.append(f"Wall time so far: {r.get('wall_s', 0):.0f} s.")
    return "\n".join(lines) + "\n"


def _ci(value: float | None, interval: list[float] | None) -> str:
    """``value [low, high]``, or a dash where the figure is absent."""
    return "-" if value is None else f"{value:.4g} [{interval[0]:.4g}, {interval[1]:.4g}]"


if __name__ == "__main__":
    main()
