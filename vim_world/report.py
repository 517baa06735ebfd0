"""A self-contained HTML report: metrics tables, prediction curves and env GIFs, inlined."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np


def gif_bytes(frames: list[np.ndarray], fps: int = 10) -> bytes:
    """``(H, W, 3)`` uint8 frames -> GIF bytes."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


def curve_png(metrics: dict[str, Any], split: str, key: str) -> bytes:
    """Per-step ``key`` (e.g. ``mse_best``) of every model on ``split``, as a PNG plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for name, pred in metrics["splits"][split]["prediction"].items():
        values = pred[key]
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel("prediction step")
    ax.set_ylabel(key)
    ax.set_title(f"{split}: {key}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def metrics_table(metrics: dict[str, Any]) -> str:
    rows = ["<tr><th>split</th><th>model</th><th>MSE mean</th><th>MSE best-of-N</th><th>accuracy</th><th>NMI</th><th>ARI</th></tr>"]
    for split, res in metrics["splits"].items():
        for name, pred in res["prediction"].items():
            disc = res.get("discovery", {}).get(name, {})
            cells = [split, name, f"{pred['mse_mean_avg']:.5f}", f"{pred['mse_best_avg']:.5f}"]
            cells += [f"{disc[k]:.3f}" if k in disc else "-" for k in ("accuracy", "nmi", "ari")]
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write ``sections`` (heading, HTML body) as one self-contained HTML page."""
    body = "".join(f"<h2>{html.escape(h)}</h2>\n{content}\n" for h, content in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}img{{margin:4px;image-rendering:pixelated}}
pre{{background:#f4f4f4;padding:8px;overflow-x:auto}}</style></head><body><h1>{html.escape(title)}</h1>
{body}</body></html>"""
    path = Path(path)
    path.write_text(page)
    return path


def image(data: bytes, mime: str = "image/png") -> str:
    """An ``<img>`` tag with the picture inlined, so the report is one self-contained file."""
    return f'<img src="data:{mime};base64,{base64.b64encode(data).decode()}"/>'
