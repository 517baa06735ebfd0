"""A self-contained HTML report that explains: per section what is measured, the target, whether
its 95% interval clears it, and one sentence of interpretation; HTML tables, curves and pictures
inlined. Every user-provided string (split, model and run names) is HTML-escaped."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from vim_world.files import write_atomically
from vim_world.world_reference import NAME as WORLD

GAP_TARGET = 1.2
OBJECTS_TARGET = 1.3
M1_TARGET = 0.5
ACCURACY_TARGET, NMI_TARGET = 0.9, 0.85


def gif_bytes(frames: list[np.ndarray], fps: int = 10) -> bytes:
    """``(H, W, 3)`` uint8 frames -> GIF bytes."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curve_png(metrics: dict[str, Any], split: str, keys: tuple[str, ...] = ("mse_best", "mse_mean")) -> bytes:
    """Per-step ``keys`` of every model on ``split``, one panel each, with 95% bands, as a PNG."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.2), dpi=90, squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, pred in metrics["splits"][split]["prediction"].items():
            values = np.asarray(pred[key])
            steps = np.arange(1, len(values) + 1)
            ax.plot(steps, values, marker="o", ms=3, label=name)
            if f"{key}_ci" in pred:
                ci = np.asarray(pred[f"{key}_ci"])
                ax.fill_between(steps, ci[:, 0], ci[:, 1], alpha=0.2)
        ax.set_xlabel("prediction step")
        ax.set_ylabel(key)
        ax.set_title(f"{split}: {key} (95% bands)", fontsize=9)
        ax.legend(fontsize=7)
    return _png(fig)


def training_curves_png(name: str, scalars: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """``tag -> (steps, values)`` of one run (loss and KL terms), one panel per tag."""
    plt = _pyplot()
    tags = list(scalars)
    fig, axes = plt.subplots(1, len(tags), figsize=(3 * len(tags), 2.6), dpi=80, squeeze=False)
    for ax, tag in zip(axes[0], tags):
        steps, values = scalars[tag]
        ax.plot(steps, values, lw=1)
        ax.set_title(f"{name}: {tag}", fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(labelsize=7)
    return _png(fig)


def read_training_scalars(
    run: str | Path, tags: tuple[str, ...] = ("loss", "nll", "kl_z", "kl_c")
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The logged ``tags`` of a run (TensorBoard events in ``<run>/tb``, or its parent's when
    ``run`` is a checkpoint directory): ``tag -> (steps, values)``; empty if none were logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = Path(run)
    for folder in (run / "tb", run.parent / "tb", run.parent.parent / "tb"):
        if folder.is_dir():
            acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
            acc.Reload()
            found = set(acc.Tags().get("scalars", []))
            return {
                t: (np.array([e.step for e in acc.Scalars(t)]), np.array([e.value for e in acc.Scalars(t)]))
                for t in tags
                if t in found
            }
    return {}


def table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def fmt(value: float | None, ci: list[float] | None = None, digits: int = 4) -> str:
    """``value [low, high]`` with ``digits`` significant digits."""
    if value is None:
        return "-"
    text = f"{value:.{digits}g}"
    return text if ci is None else f"{text} [{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"


def verdict(ci: list[float], target: float, below: bool = True) -> str:
    """Met only when the whole interval clears the target."""
    if below:
        return "met" if ci[1] <= target else ("not met" if ci[0] > target else "undecided (interval straddles)")
    return "met" if ci[0] >= target else ("not met" if ci[1] < target else "undecided (interval straddles)")


def below_every(ci: list[float], others: list[list[float]]) -> str:
    """Whether interval ``ci`` lies below every one of ``others`` without overlapping them: met,
    undecided (some overlap) or not met (one lies wholly below it)."""
    low, high = ci
    if all(high < o[0] for o in others):
        return "met"
    return "undecided (intervals overlap)" if any(low <= o[1] and o[0] <= high for o in others) else "not met"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target the evaluation can check, with its figure, interval and verdict."""
    splits = list(results["splits"])
    reference = splits[0]
    ref_k = results["splits"][reference].get("num_objects")
    out: list[dict[str, Any]] = []

    def add(what: str, target: str, value: float, ci: list[float], verdict: str) -> None:
        out.append({"what": what, "target": target, "value": value, "ci": ci, "verdict": verdict})

    ref_ratios = results["ratios"].get(reference, {})
    for model, other, what, bound in (
        ("vim", "vim_m1", "VIM / M = 1", M1_TARGET),
        ("vrnn", "copy_last", "VRNN / copy-last", 1.0),
    ):
        r = ref_ratios.get(model, {})
        if other in r.get("mse_best_vs", {}):
            ci = r["mse_best_vs_ci"][other]
            add(f"{reference}: {what} best-of-N MSE", f"<= {bound}", r["mse_best_vs"][other], ci, verdict(ci, bound))
    disc = results["splits"][reference].get("discovery", {}).get("vim")
    if disc:
        add(
            f"{reference}: VIM discovery accuracy",
            f">= {ACCURACY_TARGET}",
            disc["accuracy"],
            disc["accuracy_ci"],
            verdict(disc["accuracy_ci"], ACCURACY_TARGET, below=False),
        )
        add(
            f"{reference}: VIM discovery NMI",
            f">= {NMI_TARGET}",
            disc["nmi"],
            disc["nmi_ci"],
            verdict(disc["nmi_ci"], NMI_TARGET, below=False),
        )
    for split in splits[1:]:
        k = results["splits"][split].get("num_objects")
        f = results["ratios"].get(split, {}).get("vim", {})
        if "mse_best_matched" in f and k is not None and ref_k is not None and k != ref_k:
            add(
                f"{split} ({k} objects) / {reference} ({ref_k}): VIM best-of-N MSE over groups of "
                f"{f['matched_objects']} objects",
                f"<= {OBJECTS_TARGET}",
                f["mse_best_matched"],
                f["mse_best_matched_ci"],
                verdict(f["mse_best_matched_ci"], OBJECTS_TARGET),
            )
    for split, gaps in results.get("composition_gap", {}).items():
        if "vim" not in gaps:
            continue
        g = gaps["vim"]
        add(
            f"{split}: VIM composition gap",
            f"<= {GAP_TARGET}",
            g["gap"],
            g["gap_ci"],
            verdict(g["gap_ci"], GAP_TARGET),
        )
        others = {n: o["gap_ci"] for n, o in gaps.items() if n != "vim"}
        if others:
            lowest = min(o[0] for o in others.values())
            add(
                f"{split}: VIM's gap below every baseline's ({', '.join(others)})",
                "intervals do not overlap",
                g["gap"],
                g["gap_ci"],
                f"{below_every(g['gap_ci'], list(others.values()))}; lowest baseline lower bound {lowest:.4g}",
            )
    return out


def _target_section(items: list[dict[str, Any]]) -> str:
    rows = [[t["what"], t["target"], fmt(t["value"], t["ci"]), t["verdict"]] for t in items]
    met = sum(t["verdict"].startswith("met") for t in items)
    return (
        f"<p>Measured: every target this evaluation can check. A target is met only when its 95% interval "
        f"clears it. {met} of {len(items)} met.</p>"
        + table(["figure", "target", "value [95% interval]", "verdict"], rows)
    )


def _prediction_section(results: dict[str, Any]) -> str:
    rows = []
    for split, res in results["splits"].items():
        for name, p in res["prediction"].items():
            rows.append(
                [
                    split,
                    name,
                    fmt(p["mse_mean_avg"], p["mse_mean_avg_ci"]),
                    fmt(p["mse_best_avg"], p["mse_best_avg_ci"]),
                    fmt(float(np.mean(p["psnr_best"])), None),
                    fmt(float(np.mean(p["ssim_best"])), None) if "ssim_best" in p else "-",
                ]
            )
        for name, why in res.get("skipped", {}).items():
            rows.append([split, name, "skipped: " + why, "", "", ""])
    reference = next(iter(results["splits"]))
    pred = results["splits"][reference]["prediction"]
    best = min((n for n in pred if n != WORLD), key=lambda n: pred[n]["mse_best_avg"])
    counts = "; ".join(
        f"{html.escape(s)}: {r['windows']} windows from {r['episodes']} episodes" for s, r in results["splits"].items()
    )
    mech_rows = [
        [name, mech, fmt(value, p["mse_mean_by_mechanism_ci"][mech], 3),
         fmt(p["mse_best_by_mechanism"][mech], p["mse_best_by_mechanism_ci"][mech], 3)]
        for name, p in pred.items()
        for mech, value in p.get("mse_mean_by_mechanism", {}).items()
    ]  # fmt: skip
    return (
        f"<p>Measured: squared error of predicted observations over the horizon, averaged over steps: the mean over "
        f"N sampled futures and the best of N (per step). Windows scored: {counts}. Intervals resample whole "
        f"episodes.</p>"
        + table(["split", "model", "MSE mean", "MSE best-of-N", "PSNR best (dB)", "SSIM best"], rows)
        + f"<p>Interpretation: on {html.escape(reference)}, <b>{html.escape(best)}</b> has the lowest best-of-N "
        f"error ({fmt(pred[best]['mse_best_avg'], pred[best]['mse_best_avg_ci'])}).</p>"
        + (
            f"<p>The row <b>{WORLD}</b> is the world itself, restarted from each window's true state and mechanisms: "
            "a privileged reference (what the true process's own samples score), not a model and not a bound on "
            "best-of-N error.</p>"
            if WORLD in pred
            else ""
        )
        + (
            f"<p>On {html.escape(reference)}, per object by its mechanism at the end of the context: the mean over "
            "samples and each object's own best of N.</p>"
            + table(["model", "mechanism", "MSE mean", "MSE best-of-N (per object)"], mech_rows)
            if mech_rows
            else ""
        )
    )


def _discovery_section(results: dict[str, Any]) -> str:
    rows = []
    for split, res in results["splits"].items():
        for name, d in res.get("discovery", {}).items():
            rows.append(
                [
                    split,
                    name,
                    fmt(d["accuracy"], d["accuracy_ci"], 3),
                    fmt(d["nmi"], d["nmi_ci"], 3),
                    fmt(d["ari"], d["ari_ci"], 3),
                    str(d["object_steps"]),
                ]
            )
    if not rows:
        return ""
    reference = next(iter(results["splits"]))
    d = results["splits"][reference].get("discovery", {}).get("vim")
    sentence = (
        ""
        if d is None
        else (
            f"<p>Interpretation: VIM's modules match the true mechanisms on {d['accuracy']:.0%} of object-steps after the "
            f"best relabelling (target >= {ACCURACY_TARGET:.0%}: {verdict(d['accuracy_ci'], ACCURACY_TARGET, below=False)}); "
            f"mechanisms that follow one law in the state cannot be told apart by any model.</p>"
        )
    )
    return (
        "<p>Measured: inferred module of every object-step against its true mechanism: Hungarian accuracy, NMI and "
        f"ARI. Targets: accuracy >= {ACCURACY_TARGET}, NMI >= {NMI_TARGET}.</p>"
        + table(["split", "model", "accuracy", "NMI", "ARI", "object-steps"], rows)
        + sentence
    )


def _composition_section(results: dict[str, Any]) -> str:
    reference = next(iter(results["splits"]))
    rows, mech_rows = [], []
    for split, by_model in results["ratios"].items():
        if split == reference:
            continue
        for name, r in by_model.items():
            if "mse_best" not in r:
                continue
            rows.append(
                [
                    split,
                    name,
                    fmt(r["mse_best"], r["mse_best_ci"]),
                    (
                        f"{fmt(r['mse_best_matched'], r['mse_best_matched_ci'])} (groups of {r['matched_objects']})"
                        if "mse_best_matched" in r
                        else "-"
                    ),
                    fmt(r["accuracy"], r["accuracy_ci"], 3) if "accuracy" in r else "-",
                ]
            )
            for mech, value in r.get("mse_mean_by_mechanism", {}).items():
                mech_rows.append([split, name, mech, fmt(value, r["mse_mean_by_mechanism_ci"][mech], 3)])
    if not rows:
        return ""
    text = (
        f"<p>Measured: each split's error over the reference split's ({html.escape(reference)}), per model; "
        "independent bootstraps of the two splits. Below 1 means the split is easier, not that the model "
        "composes: the composition gap (next section) does not depend on how hard a split is. Between "
        "object counts the best of N samples of a whole scene is not a fair comparison: the more objects, the "
        "closer a scene's best sample is to its average one, even where each object is predicted as well. "
        "The matched ratio takes the best of N over groups of the smaller count on both sides; the "
        "object-count target is read on it.</p>"
        + table(["split", "model", "best-of-N MSE ratio", "matched best-of-N ratio", "accuracy ratio"], rows)
    )
    if mech_rows:
        text += (
            "<p>Per mechanism (mean-over-samples object error, the same mechanism on other kinds or counts):</p>"
            + table(["split", "model", "mechanism", "MSE ratio"], mech_rows)
        )
    return text


def _gap_section(results: dict[str, Any]) -> str:
    gaps = results.get("composition_gap")
    if not gaps:
        return ""
    rows, mech_rows = [], []
    for split, by_model in gaps.items():
        for name, g in by_model.items():
            rows.append(
                [split, name, fmt(g["model_mse_best"]), fmt(g["oracle_mse_best"]), fmt(g["gap"], g["gap_ci"], 3)]
            )
            for mech, value in g.get("gap_by_mechanism", {}).items():
                mech_rows.append([split, name, mech, fmt(value, g["gap_by_mechanism_ci"][mech], 3)])
    split, by_model = next(iter(gaps.items()))
    order = sorted(by_model, key=lambda n: by_model[n]["gap"])
    return (
        f"<p>Measured: on each split's windows, best-of-N MSE of the model trained without the split's (kind, "
        f"mechanism) pairs over that of the same model trained on all pairs with the same budget (an oracle); "
        f"paired bootstrap. Target: VIM <= {GAP_TARGET}, below every baseline with intervals that do not "
        "overlap.</p>"
        + table(["split", "model", "MSE without pairs", "MSE oracle", "gap [95%]"], rows)
        + "<p>Per mechanism (mean-over-samples object error):</p>"
        + table(["split", "model", "mechanism", "gap [95%]"], mech_rows)
        + f"<p>Interpretation: on {html.escape(split)}, the models rank by gap as "
        f"{html.escape(' < '.join(order))}; a gap near 1 means leaving the pairs out of training costs nothing.</p>"
    )


def explained_sections(
    results: dict[str, Any], figures: list[tuple[str, tuple[str, bytes]]], runs: dict[str, str]
) -> list[tuple[str, str]]:
    """The report's sections (heading, HTML body) for ``results`` of :func:`vim_world.evaluate.evaluate`."""
    sections = [
        ("Targets", _target_section(results.setdefault("targets", targets(results)))),
        ("Prediction", _prediction_section(results)),
    ]
    curves = "".join(image(curve_png(results, split)) for split in results["splits"])
    sections.append(
        (
            "Prediction error over the horizon",
            "<p>Measured: per-step error with its 95% band. Interpretation: error grows with the horizon; "
            "a model whose band stays below another's is better at every step.</p>" + curves,
        )
    )
    for title, body in (
        ("Mechanism discovery", _discovery_section(results)),
        ("Composition: ratio to the reference split", _composition_section(results)),
        ("Composition gap (model without the pairs / oracle with them)", _gap_section(results)),
    ):
        if body:
            sections.append((title, body))
    training = []
    for name, run in runs.items():
        scalars = read_training_scalars(run)
        if scalars:
            training.append(image(training_curves_png(name, scalars)))
    if training:
        sections.append(
            (
                "Training curves",
                "<p>Measured: the logged training loss (negative ELBO), reconstruction NLL and the KL terms "
                "(latent kl_z, selection kl_c) per model. Interpretation: flat tails mean the budget was "
                "spent; a KL that collapses to 0 means the latent or selection carries no information.</p>"
                + "".join(training),
            )
        )
    for title, (kind, png) in figures:
        what = (
            "Truth over the horizon, then each model's first sampled future."
            if kind == "strip"
            else "Which module VIM selects for each object (after matching) against the true mechanism."
        )
        sections.append((title, f"<p>{what}</p>" + image(png)))
    return sections


def metrics_table(metrics: dict[str, Any]) -> str:
    """Prediction and discovery figures of every model on every split, with intervals."""
    return _prediction_section(metrics) + _discovery_section(metrics)


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write ``sections`` (heading, HTML body) as one self-contained HTML page (atomically)."""
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{margin:4px;image-rendering:pixelated}}
pre{{background:#f4f4f4;padding:8px;overflow-x:auto}}</style></head><body><h1>{html.escape(title)}</h1>
{body}</body></html>"""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, page)


def image(data: bytes, mime: str = "image/png") -> str:
    """An ``<img>`` tag with the picture inlined, so the report is one self-contained file."""
    return f'<img src="data:{mime};base64,{base64.b64encode(data).decode()}"/>'
