"""Evaluation: prediction quality of VIM and baselines over a horizon, mechanism discovery, and
composition out of distribution, each with a 95% bootstrap interval; writes ``metrics.json`` and
an explained HTML report.

Windows: every window of ``context + horizon`` steps of a split (at most ``max_windows``, a
seeded random subset beyond that). Prediction: every model observes ``context`` steps and samples
``n_samples`` futures of ``horizon`` steps; per-step MSE (and PSNR, SSIM for pixels) is reported
as the mean over samples and the best of N. Discovery: VIM's inferred module per object-step
against the true mechanism, after Hungarian matching (slots matched to true objects by mask IoU in
pixel mode). Intervals: percentile bootstrap over windows, resampling whole episodes (overlapping
windows of one episode are not independent); two models on the same windows are resampled
together (paired), two splits independently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vim_world.batch import Batch
from vim_world.data import DatasetError, SequenceLoader, dataset_identity, open_dataset, split_shards
from vim_world.envs import MECHANISM_NAMES
from vim_world.figures import decomposition_rows, strip, timeline, to_frames
from vim_world.files import write_atomically
from vim_world.imagination import Imagination
from vim_world.metrics import (
    discovery_replicates,
    discovery_scores,
    hungarian_accuracy,
    match_slots,
    per_step_mse,
    percentile_interval,
    psnr,
    resample_weights,
    ssim,
)
from vim_world.model import VIM
from vim_world.model.baselines import MonolithicVRNN
from vim_world.model.outputs import Posterior
from vim_world.report import explained_sections, targets, write_report
from vim_world.tensorboard import log_metrics, log_predictions
from vim_world.train import load_model, prepare, resolve_device, uses_actions
from vim_world.world_reference import NAME as WORLD
from vim_world.world_reference import WorldSampler


@dataclass
class EvalConfig:
    """Attributes:
    runs: model name -> checkpoint or run directory.
    splits: split name -> data set; the first split is the reference for ratios. A split
        that is the (first) run's training data is scored on the shards held out of training.
    oracle_runs: model name -> a run of the same model trained on every (kind, mechanism)
        pair with the same budget; gives the composition gap on the other splits.
    batch_size: windows per forward pass, for memory. A sampling model's random draws follow
        the batch layout, so another batch size draws other futures: the same distribution, and
        figures that move within their intervals (a tiny pixel VIM's best-of-10 MSE moved by up
        to 2.6% between 32 and 64 over 64 windows). Compare models at one batch size.
    max_windows: windows scored per split (every window of a smaller split).
    max_batches: legacy cap, ``max_batches * batch_size`` windows (None: ``max_windows``).
    n_boot: bootstrap resamples per interval.
    progress: a tqdm bar over the (split, model) scorings.
    world_reference: also score the world that generated each split, restarted from each
        window's true state and mechanisms (:class:`~vim_world.world_reference.WorldSampler`,
        model ``"world"``, state splits of VimWorld passive worlds): a privileged reference, not
        a baseline. A split it cannot run is listed under ``skipped`` with the reason.
    """

    runs: dict[str, str]
    splits: dict[str, str]
    out: str
    context: int = 5
    horizon: int = 10
    n_samples: int = 10
    batch_size: int = 256
    max_windows: int = 2000
    max_batches: int | None = None
    seed: int = 0
    device: str = "auto"
    oracle_runs: dict[str, str] = field(default_factory=dict)
    n_boot: int = 1000
    progress: bool = True
    world_reference: bool = False

    def __post_init__(self) -> None:
        for name in ("context", "horizon", "n_samples", "batch_size", "max_windows", "n_boot"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"EvalConfig.{name} must be a positive int, got {value!r}")
        if self.max_batches is not None and (
            isinstance(self.max_batches, bool) or not isinstance(self.max_batches, int) or self.max_batches < 1
        ):
            raise ValueError(f"EvalConfig.max_batches must be a positive int or None, got {self.max_batches!r}")
        if not self.runs or not self.splits:
            raise ValueError(
                f"EvalConfig needs at least one run and one split, got runs={self.runs!r}, splits={self.splits!r}"
            )
        if self.world_reference and WORLD in self.runs:
            raise ValueError(f"a run is named {WORLD!r}, the name of the world reference: rename it")
        unknown = sorted(set(self.oracle_runs) - set(self.runs))
        if unknown:
            raise ValueError(f"oracle_runs names models {unknown} that are not in runs {sorted(self.runs)}")

    @property
    def window_cap(self) -> int:
        return self.max_windows if self.max_batches is None else self.max_batches * self.batch_size


@dataclass
class Evaluation:
    """Attributes: metrics (also in ``metrics.json``), report sections (heading, HTML), report path."""

    metrics: dict[str, Any]
    sections: list[tuple[str, str]]
    report: Path


@dataclass
class _Windows:
    """The scored windows of one split, gathered batch by batch (a pixel split's windows need
    not fit in memory at once): window i is ``starts[i]`` onwards in episode ``episodes[i]``
    (the bootstrap's clusters)."""

    loader: SequenceLoader
    episodes: np.ndarray  # (n,)
    starts: np.ndarray  # (n,)
    with_actions: bool

    def batches(self) -> Iterator[Batch]:
        """Batches ``(<= batch_size, context + horizon, ...)`` in window order."""
        step = self.loader.batch_size
        for i in range(0, self.episodes.size, step):
            yield prepare(
                self.loader._gather(self.episodes[i : i + step], self.starts[i : i + step]), self.with_actions
            )

    @property
    def num_objects(self) -> int | None:
        """K, the split's objects (from its states; None for frames stored without them)."""
        first = self.loader.arrays[0]
        return int(first["states"].shape[2]) if "states" in first else None


@dataclass
class _Scores:
    """Per-window figures of one model on one split (kept for paired intervals and ratios)."""

    mse: np.ndarray  # (n, N, H)
    ssim: np.ndarray | None = None  # (n, N, H)
    object_step_mse: np.ndarray | None = None  # (n, N, H, K) error of each object (state mode)
    mechanism: np.ndarray | None = None  # (n, K) its mechanism at the end of the context
    discovery: tuple[np.ndarray, np.ndarray] | None = None  # inferred, true (n, T - 1, K)

    @property
    def object_mse(self) -> np.ndarray | None:
        """``(n, K)`` mean-over-samples error of each object."""
        return None if self.object_step_mse is None else self.object_step_mse.mean((1, 2))

    def best_of_n_per_group(self, size: int) -> np.ndarray:
        """``(n,)`` best-of-N MSE over groups of ``size`` objects, averaged over the K cyclic
        groups (objects ``i .. i + size - 1`` mod K): each object is in ``size`` of them.

        The best of N samples of a whole scene depends on how many objects it holds: the more
        objects, the closer the scene's best sample is to its average one, even where every
        object is predicted exactly as well. Comparing scenes of K objects with scenes of
        ``size`` objects is fair on groups of ``size``; with ``size = K`` this is ``mse.min(1).mean(1)``.
        """
        e = self.object_step_mse  # (n, N, H, K)
        k = e.shape[-1]
        if not 1 <= size <= k:
            raise ValueError(f"group size must be in [1, {k}] (the objects per window), got {size}")
        groups = (np.arange(k)[:, None] + np.arange(size)) % k  # (K, size)
        group_mse = e[..., groups].mean(-1)  # (n, N, H, K groups)
        return group_mse.min(1).mean((1, 2))


@torch.no_grad()
def evaluate(cfg: EvalConfig) -> Evaluation:
    """Evaluate every run (and oracle) on every split; write ``metrics.json`` and ``report.html``
    in ``cfg.out``. A state model also runs on splits with another number of objects (its
    weights do not depend on it); a monolithic model cannot and is skipped there, with a note."""
    device = resolve_device(cfg.device)
    loaded = {name: load_model(path, cfg.device) for name, path in cfg.runs.items()}
    models = {name: model for name, (model, _) in loaded.items()}
    oracles = {name: load_model(path, cfg.device)[0] for name, path in cfg.oracle_runs.items()}
    first_run = next(iter(loaded.values()))[1]  # its checkpoint's metadata decides the held-out shards
    train_config = first_run["train_config"]
    holdout = train_config["holdout"]
    mode = next(iter(models.values())).config.input_mode
    reference = next(iter(cfg.splits))
    results: dict[str, Any] = {"config": vars(cfg).copy(), "splits": {}}
    scores: dict[str, dict[str, _Scores]] = {}
    oracle_scores: dict[str, dict[str, _Scores]] = {}
    weights: dict[str, np.ndarray] = {}
    figures: list[tuple[str, tuple[str, bytes]]] = []  # title, (kind, PNG)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(cfg.splits) * (len(models) + int(cfg.world_reference)),
        desc="evaluate",
        unit="model",
        disable=not cfg.progress,
    )
    for index, (split, path) in enumerate(cfg.splits.items()):
        dataset = open_dataset(path)
        # The (first) run's training data is scored on the shards it held out; another data set whole.
        held_out = holdout > 0 and _maybe_training_data(dataset, first_run)
        shards = split_shards(dataset, holdout)[1] if held_out else None
        windows = _windows(dataset, shards, mode, cfg, device)
        weights[split] = resample_weights(len(windows.episodes), cfg.n_boot, cfg.seed + index, windows.episodes)
        split_result: dict[str, Any] = {
            "data": str(path),
            "windows": int(len(windows.episodes)),
            "episodes": int(np.unique(windows.episodes).size),
            "num_objects": windows.num_objects,
            "prediction": {},
            "skipped": {},
        }
        scores[split] = {}
        if index == 0:
            reference_objects = windows.num_objects
        runnable = {}
        for name, model in models.items():
            reason = _cannot_run(model, windows, reference_objects)
            if reason:
                split_result["skipped"][name] = reason
                bar.update()
            else:
                runnable[name] = _sized(model, windows, reference_objects)
        if cfg.world_reference:
            try:
                if mode != "state":
                    raise ValueError(f"the world reference predicts states, and the models read {mode}")
                runnable[WORLD] = WorldSampler.for_dataset(dataset.meta)
            except ValueError as problem:
                split_result["skipped"][WORLD] = str(problem)
                bar.update()
        first = next(windows.batches()).slice_batch(0, 1)
        truth, predictions = _first_predictions(runnable, first, cfg)
        if index == 0:
            reference_predictions = (truth, predictions)
        figures.append(
            (f"{split}: window 0, truth and sample 0 of each model", ("strip", _prediction_strip(truth, predictions)))
        )
        for name, model in runnable.items():
            bar.set_postfix_str(f"{split}: {name}")
            s = _score(model, windows, cfg, device)
            bar.update()
            scores[split][name] = s
            split_result["prediction"][name] = _prediction_summary(s, weights[split])
            if s.discovery is not None:
                pred, true = s.discovery
                disc = discovery_scores(pred, true)
                reps = discovery_replicates(pred, true, weights[split])
                disc.update({f"{k}_ci": list(percentile_interval(v)) for k, v in reps.items()})
                split_result.setdefault("discovery", {})[name] = disc
                if name == "vim":
                    figures.append(
                        (
                            f"{split}: {name}'s sample 0 object by object (window 0)",
                            ("strip", _decomposition_strip(model, first, cfg)),
                        )
                    )
                    _, mapping = hungarian_accuracy(pred, true)
                    figures.append(
                        (
                            f"{split}: module selections of {name} (window 0)",
                            ("timeline", timeline(pred[0], true[0], mapping, list(MECHANISM_NAMES))),
                        )
                    )
        if index > 0 and windows.num_objects == reference_objects:  # the gap is about pairs: same object count
            oracle_scores[split] = {
                name: _score(o, windows, cfg, device)
                for name, o in oracles.items()
                if name in runnable and not _cannot_run(o, windows, reference_objects)
            }
        results["splits"][split] = split_result
    with np.errstate(divide="ignore", invalid="ignore"):  # a resample without some mechanism: NaN, left out
        results["ratios"] = _ratios(scores, weights, reference)
        if oracles:
            results["composition_gap"] = _gaps(scores, oracle_scores, weights)
    bar.close()
    results["targets"] = targets(results)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "metrics.json", json.dumps(results, indent=1))
    _log_to_tensorboard(cfg, loaded, results, reference_predictions)
    sections = explained_sections(results, figures, cfg.runs)
    report = write_report(out / "report.html", "vim_world evaluation", sections)
    return Evaluation(results, sections, report)


def _windows(dataset, shards: list[int] | None, mode: str, cfg: EvalConfig, device: torch.device) -> _Windows:
    """Every window of ``context + horizon`` valid steps (a seeded subset of ``cfg.window_cap``
    beyond that), in batches of ``cfg.batch_size``."""
    seq_len = cfg.context + cfg.horizon
    loader = SequenceLoader(
        dataset,
        batch_size=cfg.batch_size,
        seq_len=seq_len,
        mode=mode,
        seed=cfg.seed + 1,
        shard_indices=shards,
        device=device,
    )
    valid = np.concatenate([np.asarray(a["valid"]).sum(1) for a in loader.arrays])  # (episodes,)
    starts_per = np.maximum(valid - seq_len + 1, 0)
    episodes = np.repeat(np.arange(valid.size), starts_per)
    starts = np.concatenate([np.arange(n) for n in starts_per]) if episodes.size else episodes
    if episodes.size > cfg.window_cap:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(episodes.size, cfg.window_cap, replace=False))
        episodes, starts = episodes[keep], starts[keep]
    return _Windows(loader, episodes, starts, uses_actions(dataset))


def _maybe_training_data(dataset, checkpoint: dict[str, Any]) -> bool:
    """Whether ``dataset`` may be the run's training data, so that only its held-out shards are
    fair to score. Yes when it has the identity the checkpoint recorded (the SHA-256 of its
    ``meta.json``, whatever its path), or the same shard contents as the data set at the recorded
    path. When that path cannot be opened (relative to another directory), the recorded identity
    decides; a checkpoint without one (older) is assumed to: never score on training episodes."""
    identity = checkpoint.get("data_identity")
    if identity is not None and identity == dataset_identity(dataset.path):
        return True
    try:
        trained_on = open_dataset(checkpoint["train_config"]["data"])
    except (DatasetError, OSError, ValueError):
        return identity is None
    return [s["sha256"] for s in trained_on.meta["shards"]] == [s["sha256"] for s in dataset.meta["shards"]]


def _cannot_run(model, windows: _Windows, reference_objects: int | None) -> str:
    """Why ``model`` cannot score these windows ('' if it can): a monolithic state model has an
    input of fixed size, and a pixel VIM with one learnt start per slot a fixed slot count, so
    neither can take another number of objects than the reference split's."""
    k, fixed = windows.num_objects, model.config.num_slots
    if model.config.input_mode == "state":
        if k is None or k == fixed or not isinstance(model, MonolithicVRNN):
            return ""
        return f"{type(model).__name__} reads a fixed {fixed} objects, this split has {k}"
    if k is None or reference_objects is None or k == reference_objects or not isinstance(model, VIM):
        return ""
    if model.slots_fixed:
        return (
            f"its {fixed} slots are fixed (slot_init={model.config.slot_init!r}, no slot_cues): "
            f"this split has {k} objects, the reference {reference_objects}"
        )
    return ""


def _sized(model, windows: _Windows, reference_objects: int | None):
    """``model`` as it scores these windows: a pixel VIM that can change its slot count gets one
    slot more (or fewer) per object more (or fewer) than the reference split holds."""
    k = windows.num_objects
    if model.config.input_mode != "pixels" or not isinstance(model, VIM) or None in (k, reference_objects):
        return model
    return model if k == reference_objects else model.resized(model.config.num_slots + k - reference_objects)


def _first_predictions(models, batch: Batch, cfg: EvalConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The first window's truth over the horizon ``(1, T, ...)`` and sample 0 of every model."""
    one = batch.slice_batch(0, 1)
    predictions = {}
    for name, model in models.items():
        gen = torch.Generator(device=one.obs.device).manual_seed(cfg.seed)
        predictions[name] = model.predict(one, cfg.context, cfg.horizon, 1, generator=gen).obs[:, 0]
    return one.obs[:, cfg.context : cfg.context + cfg.horizon], predictions


def _prediction_strip(truth: torch.Tensor, predictions: dict[str, torch.Tensor]) -> bytes:
    """Truth over the horizon, then sample 0 of every model, for the first window."""
    return strip({"truth": to_frames(truth[0]), **{name: to_frames(p[0]) for name, p in predictions.items()}})


def _log_to_tensorboard(cfg: EvalConfig, loaded: dict, results: dict, first: tuple) -> None:
    """Each evaluated run's TensorBoard directory (``<run>/tb``, beside its training curves) gets
    its evaluation metrics as scalars and the reference split's first prediction as an image, at
    the checkpoint's step. Runs given as a checkpoint directory log to their run directory."""
    truth, predictions = first
    for name, path in cfg.runs.items():
        run = Path(path)
        run = run.parent.parent if run.parent.name == "checkpoints" else run
        if not (run / "train_config.json").is_file():
            continue  # not a run directory written by the trainer
        step = int(loaded[name][1]["step"])
        per_split = {
            split: {part: r[part][name] for part in ("prediction", "discovery") if name in r.get(part, {})}
            for split, r in results["splits"].items()
        }
        log_metrics(run, step, per_split)
        if name in predictions:
            log_predictions(run, step, truth, predictions[name], tag="eval/prediction (truth above model)")


def _decomposition_strip(model, batch: Batch, cfg: EvalConfig) -> bytes:
    """A VIM's first sampled future of the first window, composite then one row per object
    slot: each slot's alpha-masked rendering (pixels) or each object drawn alone (states)."""
    one = batch.slice_batch(0, 1)
    gen = torch.Generator(device=one.obs.device).manual_seed(cfg.seed)
    z = model.predict(one, cfg.context, cfg.horizon, 1, generator=gen).z[0, 0]  # (T, K, D)
    return strip(decomposition_rows(model.decode(z)))


def _score(model, windows: _Windows, cfg: EvalConfig, device: torch.device) -> _Scores:
    """Per-window errors of ``model`` (and its selections, for models that infer them)."""
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    mse, sim, obj, mech, inferred, true = [], [], [], [], [], []
    for batch in windows.batches():
        pred = _sample_futures(model, batch, cfg, gen).float()
        target = batch.obs[:, cfg.context : cfg.context + cfg.horizon].float()
        mse.append(per_step_mse(pred, target).cpu())
        if batch.obs.dim() == 5:
            sim.append(ssim(pred.clamp(0, 1), target[:, None].expand_as(pred)).cpu())
        else:
            obj.append((pred - target[:, None]).pow(2).mean(-1).cpu())  # (B, N, H, K)
            if batch.mechanism is not None:
                mech.append(batch.mechanism[:, cfg.context - 1].cpu())
        if (
            hasattr(model, "observe")
            and batch.mechanism is not None
            and (batch.obs.dim() < 5 or batch.masks is not None)
        ):
            p, t = matched_selections(model, batch)  # from frames only through the slot matching
            inferred.append(p)
            true.append(t)
    cat = lambda xs: torch.cat(xs).numpy().astype(np.float64) if xs else None  # noqa: E731
    return _Scores(
        mse=cat(mse),
        ssim=cat(sim),
        object_step_mse=cat(obj),
        mechanism=torch.cat(mech).numpy() if mech else None,
        discovery=(np.concatenate(inferred), np.concatenate(true)) if inferred else None,
    )


def _sample_futures(model, batch: Batch, cfg: EvalConfig, generator: torch.Generator) -> torch.Tensor:
    """``(B, N, horizon, ...)`` sampled futures after ``context`` observed steps. A VIM rolls
    out through :class:`Imagination`, which runs only the selected module of each object-step
    (the same draws as ``VIM.predict``, M times less transition compute)."""
    if not isinstance(model, VIM):
        return model.predict(batch, cfg.context, cfg.horizon, cfg.n_samples, generator=generator).obs
    c, h = cfg.context, cfg.horizon
    actions = None if batch.actions is None else batch.actions[:, c - 1 : c - 1 + h]
    context_actions = None if batch.actions is None else batch.actions[:, :c]
    context_states = None if batch.states is None else batch.states[:, :c]
    return (
        Imagination(model)
        .rollout(
            batch.obs[:, :c],
            actions,
            h,
            cfg.n_samples,
            context_actions=context_actions,
            context_states=context_states,
            generator=generator,
        )
        .obs
    )


def matched_selections(model: VIM, batch: Batch, post: Posterior | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inferred modules and true mechanisms of ``batch`` (which must carry ``mechanism``),
    ``(B, T - 1, K)`` each. In pixel mode, where ``batch`` has the objects' masks, each object
    reads the modules of the slot matched to it (:func:`~vim_world.metrics.match_slots`, over the
    window's masks), so discovery from frames is scored through the slot-to-object matching;
    a pixel batch without masks is refused. ``post``: the model's posterior of ``batch`` where
    the caller has it already."""
    if batch.mechanism is None:
        raise ValueError("matched_selections needs batch.mechanism (the true mechanism ids), got None")
    if batch.obs.dim() == 5 and batch.masks is None:
        raise ValueError(
            "matched_selections on frames needs batch.masks (collect with --masks) to match slots to objects"
        )
    post = model.observe(batch) if post is None else post
    sel = post.selections[:, 1:]  # (B, T-1, Ks)
    true = batch.mechanism[:, 1:]  # (B, T-1, K)
    if post.masks is not None and batch.masks is not None:
        slot = match_slots(post.masks, batch.masks).to(sel.device)  # (B, K)
        sel = torch.gather(sel, 2, slot[:, None, :].expand(-1, sel.shape[1], -1))
    return sel.cpu().numpy(), true.cpu().numpy()


def _interval(weights: np.ndarray, x: np.ndarray) -> list:
    """Intervals of the mean of per-window ``x (n,)`` -> ``[low, high]``, or ``(n, H)`` -> H of them."""
    reps = weights @ x / weights.sum(1).reshape(-1, *([1] * (x.ndim - 1)))
    if x.ndim == 1:
        return list(percentile_interval(reps))
    return [list(percentile_interval(reps[:, h])) for h in range(x.shape[1])]


def _prediction_summary(s: _Scores, weights: np.ndarray) -> dict[str, Any]:
    """Per-step and horizon-average figures, each with its ``*_ci`` interval."""
    best, mean = s.mse.min(1), s.mse.mean(1)  # (n, H): best of N per step, mean over samples
    out: dict[str, Any] = {}
    for key, x in (
        ("mse_mean", mean),
        ("mse_best", best),
        ("psnr_mean", psnr(torch.from_numpy(s.mse)).numpy().mean(1)),
        ("psnr_best", psnr(torch.from_numpy(best)).numpy()),
    ):
        out[key], out[f"{key}_ci"] = x.mean(0).tolist(), _interval(weights, x)
    if s.ssim is not None:
        for key, x in (("ssim_mean", s.ssim.mean(1)), ("ssim_best", s.ssim.max(1))):
            out[key], out[f"{key}_ci"] = x.mean(0).tolist(), _interval(weights, x)
    for key, x in (("mse_mean_avg", mean.mean(1)), ("mse_best_avg", best.mean(1))):
        out[key], out[f"{key}_ci"] = float(x.mean()), _interval(weights, x)
    if s.mechanism is not None:
        for key, best in (("mse_mean_by_mechanism", False), ("mse_best_by_mechanism", True)):
            by, by_ci = {}, {}
            for m in np.unique(s.mechanism):
                num, den = _mechanism_sums(s, m, best)
                by[MECHANISM_NAMES[int(m)]] = float(num.sum() / den.sum())
                by_ci[MECHANISM_NAMES[int(m)]] = list(percentile_interval(_ratio_reps(weights, num, den)))
            out[key], out[f"{key}_ci"] = by, by_ci
    return out


def _mechanism_sums(s: _Scores, m: int, best: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-window error sum and count of the objects driven by mechanism ``m``: ``(n,)`` each.
    The error is each object's mean over samples, or with ``best`` its best of N (per step, as
    the scene's best-of-N, but chosen for the object alone)."""
    hit = s.mechanism == m
    error = s.object_step_mse.min(1).mean(1) if best else s.object_mse  # (n, K)
    return (error * hit).sum(1), hit.sum(1).astype(np.float64)


def _ratio_reps(weights: np.ndarray, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Resampled ``sum(num) / sum(den)``: ``(R,)`` (NaN where a resample has ``sum(den) = 0``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (weights @ num) / (weights @ den)


def _mean_reps(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return weights @ x / weights.sum(1)


def _put(entry: dict[str, Any], key: str, value: float, reps: np.ndarray, cis: dict[str, Any] | None = None) -> None:
    """``entry[key] = value`` and its interval ``[low, high]`` from bootstrap replicates in
    ``entry[key + "_ci"]``, or in ``cis[key]`` (for a dict of figures beside a dict of intervals)."""
    entry[key] = float(value)
    (entry if cis is None else cis)[key if cis is not None else f"{key}_ci"] = list(percentile_interval(reps))


def _ratios(scores: dict[str, dict[str, _Scores]], weights: dict[str, np.ndarray], reference: str) -> dict[str, Any]:
    """Each split against the reference (unpaired: other windows): best-of-N MSE (and, between
    object counts, ``mse_best_matched``: best of N over groups of the smaller count on both
    sides, see :meth:`_Scores.best_of_n_per_group`), mean MSE per mechanism (state mode) and
    discovery accuracy; and, within each split, every model against
    every other on the same windows (paired): ``mse_best_vs`` ratios of best-of-N MSE, and in
    state mode ``mse_best_by_mechanism_vs[other]["ratio"]``, the same per mechanism on each
    object's best of N."""
    ref, w_ref = scores[reference], weights[reference]
    ratios: dict[str, Any] = {}
    for split, by_model in scores.items():
        w = weights[split]
        entry: dict[str, Any] = {}
        for name, s in by_model.items():
            best = s.mse.min(1).mean(1)
            figures: dict[str, Any] = {}
            if split != reference and name in ref:
                r = ref[name]
                r_best = r.mse.min(1).mean(1)
                _put(figures, "mse_best", best.mean() / r_best.mean(), _mean_reps(w, best) / _mean_reps(w_ref, r_best))
                counts = [x.object_step_mse.shape[-1] for x in (s, r) if x.object_step_mse is not None]
                if len(counts) == 2 and counts[0] != counts[1]:  # best of N over as many objects on both sides
                    g_best, g_ref = s.best_of_n_per_group(min(counts)), r.best_of_n_per_group(min(counts))
                    _put(
                        figures,
                        "mse_best_matched",
                        g_best.mean() / g_ref.mean(),
                        _mean_reps(w, g_best) / _mean_reps(w_ref, g_ref),
                    )
                    figures["matched_objects"] = min(counts)
                if s.mechanism is not None and r.mechanism is not None:
                    # the same mechanisms on other pairs or counts: composition without the mix
                    by, by_ci = (
                        figures.setdefault("mse_mean_by_mechanism", {}),
                        figures.setdefault("mse_mean_by_mechanism_ci", {}),
                    )
                    for m in sorted(set(np.unique(s.mechanism)) & set(np.unique(r.mechanism))):
                        num, den = _mechanism_sums(s, m)
                        rnum, rden = _mechanism_sums(r, m)
                        value = (num.sum() / den.sum()) / (rnum.sum() / rden.sum())
                        _put(
                            by,
                            MECHANISM_NAMES[int(m)],
                            value,
                            _ratio_reps(w, num, den) / _ratio_reps(w_ref, rnum, rden),
                            by_ci,
                        )
                if s.discovery is not None and r.discovery is not None:
                    acc = discovery_scores(*s.discovery)["accuracy"] / discovery_scores(*r.discovery)["accuracy"]
                    reps = (
                        discovery_replicates(*s.discovery, w)["accuracy"]
                        / discovery_replicates(*r.discovery, w_ref)["accuracy"]
                    )
                    _put(figures, "accuracy", acc, reps)
            vs, vs_ci = figures.setdefault("mse_best_vs", {}), figures.setdefault("mse_best_vs_ci", {})
            for other, o in by_model.items():
                if other != name:
                    o_best = o.mse.min(1).mean(1)
                    _put(vs, other, best.sum() / o_best.sum(), _ratio_reps(w, best, o_best), vs_ci)
                    if s.mechanism is not None and o.mechanism is not None:
                        # per mechanism, on the same object-steps: each object's best of N
                        mv = figures.setdefault("mse_best_by_mechanism_vs", {})[other] = {"ratio": {}, "ratio_ci": {}}
                        for m in np.unique(s.mechanism):
                            num, _ = _mechanism_sums(s, m, best=True)
                            den, _ = _mechanism_sums(o, m, best=True)
                            value, reps = num.sum() / den.sum(), _ratio_reps(w, num, den)
                            _put(mv["ratio"], MECHANISM_NAMES[int(m)], value, reps, mv["ratio_ci"])
            entry[name] = figures
        ratios[split] = entry
    return ratios


def _gaps(scores, oracle_scores, weights) -> dict[str, Any]:
    """Composition gap on each non-reference split with the reference's object count: best-of-N MSE of the model trained without
    the split's pairs over its oracle's (trained on all pairs), on the same windows (paired);
    also per mechanism (mean-over-samples object error)."""
    gaps: dict[str, Any] = {}
    for split, oracles in oracle_scores.items():
        w = weights[split]
        for name, o in oracles.items():
            s = scores[split][name]
            best, o_best = s.mse.min(1).mean(1), o.mse.min(1).mean(1)
            entry: dict[str, Any] = {"model_mse_best": float(best.mean()), "oracle_mse_best": float(o_best.mean())}
            _put(entry, "gap", best.sum() / o_best.sum(), _ratio_reps(w, best, o_best))
            if s.mechanism is not None:
                by, by_ci = entry.setdefault("gap_by_mechanism", {}), entry.setdefault("gap_by_mechanism_ci", {})
                for m in np.unique(s.mechanism):
                    num, _ = _mechanism_sums(s, m)
                    den, _ = _mechanism_sums(o, m)
                    _put(by, MECHANISM_NAMES[int(m)], num.sum() / den.sum(), _ratio_reps(w, num, den), by_ci)
            gaps.setdefault(split, {})[name] = entry
    return gaps
