"""Figures of the report, drawn headless to PNG bytes.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend switch), so
it renders on servers and CI without a display and never disturbs the caller's matplotlib.
"""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

from probes._validation import require

ORIGINAL = "#1f4e79"
SURROGATE = "#d9730d"
RULES = "#2e7d32"
GRADIENT = "#8e44ad"


def _figure(width: float, height: float) -> Any:
    require("matplotlib", "explain")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def error_histogram(errors: np.ndarray, *, bound: float | None, label: str, kind: str) -> bytes:
    """Histogram of per-input errors with the tolerance marked; labels: outcome match shares."""
    fig = _figure(6.4, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    errors = np.asarray(errors, dtype=float)
    if kind in ("label", "none"):
        wrong = int(np.sum(errors > 0))
        ax.bar(["agree", "disagree"], [len(errors) - wrong, wrong], color=[ORIGINAL, SURROGATE])
        ax.set_ylabel("inputs")
        ax.set_title(f"Outcome agreement on {len(errors)} inputs ({label})")
        return to_png(fig)
    finite = errors[np.isfinite(errors)]
    n_inf = int(np.sum(~np.isfinite(errors)))
    if finite.size:
        top = float(finite.max())
        bins = np.linspace(0.0, top if top > 0 else 1.0, 40)
        ax.hist(finite, bins=bins, color=SURROGATE, alpha=0.85)
    if bound is not None and bound > 0:
        ax.axvline(bound, color="black", linestyle="--", linewidth=1, label=f"tolerance {bound:g}")
        ax.legend(loc="upper right")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("|surrogate - original|")
    ax.set_ylabel("inputs")
    extra = f"; {n_inf} with an outcome mismatch (raise vs value)" if n_inf else ""
    ax.set_title(f"Error distribution on {len(errors)} inputs ({label}){extra}", fontsize=9)
    return to_png(fig)


def response_curves(curves: Sequence[Mapping[str, Any]], *, output_label: str = "output") -> bytes:
    """One panel per argument: the answer as that argument varies, others held at a base point."""
    n = max(1, len(curves))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = _figure(4.2 * cols, 3.0 * rows)
    for k, curve in enumerate(curves):
        ax = fig.add_subplot(rows, cols, k + 1)
        x = curve["x"]
        categorical = curve.get("categorical", False)
        positions = np.arange(len(x)) if categorical else np.asarray(x, dtype=float)
        series = [("original", ORIGINAL, "-", curve["original"]), ("surrogate", SURROGATE, "--", curve["surrogate"])]
        if curve.get("rules") is not None:
            series.append(("rules", RULES, ":", curve["rules"]))
        for name, color, style, y in series:
            y = np.asarray(y, dtype=float)
            if categorical:
                ax.plot(positions, y, marker="o", linestyle="none", color=color, label=name,
                        alpha=0.85, markersize=6 if name == "original" else 4)
            else:
                ax.plot(positions, y, linestyle=style, color=color, label=name, linewidth=1.4)
        if categorical:
            ax.set_xticks(positions)
            ax.set_xticklabels([str(v) for v in x], rotation=30, fontsize=7)
        if curve.get("yticks"):
            ticks = curve["yticks"]
            ax.set_yticks(range(len(ticks)))
            ax.set_yticklabels([str(t) for t in ticks], fontsize=7)
        ax.set_title(curve["name"], fontsize=9)
        ax.set_ylabel(output_label, fontsize=8)
        if k == 0:
            ax.legend(fontsize=7)
    return to_png(fig)


def attribution_bars(names: Sequence[str], series: Mapping[str, Sequence[float]], *, title: str) -> bytes:
    """Importance per argument, one bar per explainer/model, side by side (shares of the max)."""
    fig = _figure(max(5.0, 1.1 * len(names) + 2), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    colors = [ORIGINAL, SURROGATE, GRADIENT, RULES]
    width = 0.8 / max(1, len(series))
    x = np.arange(len(names))
    for k, (label, values) in enumerate(series.items()):
        v = np.asarray(values, dtype=float)
        share = v / v.max() if v.size and v.max() > 0 else v
        ax.bar(x + (k - (len(series) - 1) / 2) * width, share, width, label=label, color=colors[k % len(colors)])
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=20, fontsize=8)
    ax.set_ylabel("importance (share of max)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return to_png(fig)


def training_curve(curve: Sequence[Sequence[float]]) -> bytes:
    """Loss per epoch (training and validation) on a log scale."""
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    data = np.asarray([list(map(float, row[:3])) + [math.nan] * (3 - len(row[:3])) for row in curve], dtype=float)
    if data.size:
        ax.plot(data[:, 0], data[:, 1], color=ORIGINAL, label="training loss")
        if np.isfinite(data[:, 2]).any():
            ax.plot(data[:, 0], data[:, 2], color=SURROGATE, label="validation")
        positive = data[:, 1:][np.isfinite(data[:, 1:])]
        if positive.size and positive.min() > 0:
            ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("Training curve", fontsize=9)
    ax.legend(fontsize=7)
    return to_png(fig)


def fidelity_vs_size(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Agreement within tolerance and R^2 of distilled rules against their size."""
    fig = _figure(6.4, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    leaves = [r["leaves"] for r in rows]
    ax.plot(leaves, [r["agreement"] for r in rows], marker="o", color=ORIGINAL, label="agreement within tolerance")
    if all(r.get("r2") is not None for r in rows):
        ax.plot(leaves, [r["r2"] for r in rows], marker="s", color=SURROGATE, label="R^2")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("leaves")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("Fidelity of distilled rules versus size", fontsize=9)
    return to_png(fig)
