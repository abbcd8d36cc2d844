"""Figures of ARGMINN's read-outs: filter logos, per-sequence tracks, spacing histograms.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot`` state, so it
works headless with any backend, Agg included, and figures are freed when dropped), returns it, and
saves it when ``path`` is given; the format follows the suffix (``.png``, ``.svg`` or ``.pdf``) and
the file is written to a temporary name first and then renamed.

Logos are drawn with ``tangermeme.plot.plot_logo`` on the PFM multiplied by its per-position
information content (bits, pseudocount 0.001; ``argminn.md`` §7.1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from .io import atomic_write
from .motifs import information_content

__all__ = ["plot_filter_logos", "plot_sequence_tracks", "plot_spacing_histograms", "save_figure"]

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save ``fig`` atomically in the format given by the suffix of ``path`` (.png, .svg or .pdf)."""
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the figure format from {path.name!r}; use one of {sorted(_FORMATS)}.")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight"))


def _check_path(path: str | os.PathLike | None) -> None:
    # Checked before drawing so that a bad suffix fails fast.
    if path is not None and Path(path).suffix.lower() not in _FORMATS:
        raise ValueError(f"cannot tell the figure format from {Path(path).name!r}; use one of {sorted(_FORMATS)}.")


def _grid(n: int, ncols: int, width: float, height: float) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _empty(message: str) -> Figure:
    fig = Figure(figsize=(4, 1.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _as_pfm_dict(pfms: Any) -> dict[str, np.ndarray]:
    if hasattr(pfms, "pfms") and not isinstance(pfms, Mapping):  # FilterMotifs
        pfms = pfms.pfms
    if isinstance(pfms, Mapping):
        out = {}
        for name, pfm in pfms.items():
            pfm = np.asarray(pfm.detach().cpu().numpy() if isinstance(pfm, torch.Tensor) else pfm, dtype=float)
            if pfm.ndim != 2 or pfm.shape[0] != 4:
                raise ValueError(f"motif {name!r} must have shape (4, w), got {pfm.shape}.")
            out[str(name)] = pfm
        return out
    if isinstance(pfms, torch.Tensor):
        pfms = pfms.detach().cpu().numpy()
    pfms = np.asarray(pfms, dtype=float)
    if pfms.ndim != 3 or pfms.shape[1] != 4:
        raise ValueError(f"pfms must have shape (n_filters, 4, w) or be a dict of (4, w), got {pfms.shape}.")
    return {f"filter_{f}": pfm for f, pfm in enumerate(pfms)}


def plot_filter_logos(
    pfms: Any,
    quality: pd.DataFrame | None = None,
    annotation: pd.DataFrame | None = None,
    path: str | os.PathLike | None = None,
    *,
    ncols: int = 2,
    trim: bool = False,
) -> Figure:
    """Information-content logos of the used (or quality-passing) filters, one panel each.

    Parameters
    ----------
    pfms: numpy.ndarray or torch.Tensor, shape=(n_filters, 4, w); dict of str -> (4, w); or FilterMotifs
        PFMs. Array rows are named ``filter_{f}``; an all-zero PFM (unused filter) is skipped.
    quality: pandas.DataFrame, optional
        The table of :func:`argminn_plugin.motifs.motif_quality` (array input only): only passing
        filters are drawn, with their mean information content in the title.
    annotation: pandas.DataFrame, optional
        The table of :func:`argminn_plugin.motifs.annotate_motifs`: the best match (``rank`` 0) and
        its q-value go into each title.
    path: str or Path, optional
        Save the figure there (.png, .svg or .pdf).
    ncols: int, optional
        Panels per row. Default is 2.
    trim: bool, optional
        With ``quality``, draw only the trimmed span of each filter. Default is False.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per drawn motif (a single blank axes with a note when there is none).
    """
    from tangermeme.plot import plot_logo

    _check_path(path)
    motifs = _as_pfm_dict(pfms)
    spans: dict[str, tuple[int, int]] = {}
    subtitles: dict[str, str] = {}
    if quality is not None:
        if not {"filter", "passes"} <= set(quality.columns):
            raise ValueError("quality must be the table of motif_quality (columns filter, passes, ...).")
        passing = {f"filter_{int(r.filter)}": r for r in quality.itertuples() if r.passes}
        motifs = {k: v for k, v in motifs.items() if k in passing}
        for name, row in passing.items():
            if trim and {"trim_start", "trim_end"} <= set(quality.columns):
                spans[name] = (int(row.trim_start), int(row.trim_end))
            if "mean_ic" in quality.columns:
                subtitles[name] = f"mean IC {float(row.mean_ic):.2f}"
    motifs = {k: v for k, v in motifs.items() if v.sum() > 0}
    if annotation is not None and len(annotation):
        if not {"motif", "target_name"} <= set(annotation.columns):
            raise ValueError("annotation must be the table of annotate_motifs (columns motif, target_name, ...).")
        best = annotation.sort_values("rank") if "rank" in annotation.columns else annotation
        for row in best.drop_duplicates("motif").itertuples():
            q = f" (q={row.q_value:.2g})" if hasattr(row, "q_value") else ""
            if row.motif in motifs:
                subtitles[row.motif] = "; ".join(filter(None, [subtitles.get(row.motif), f"{row.target_name}{q}"]))
    if not motifs:
        fig = _empty("no used filters to draw")
    else:
        width = max(v.shape[1] for v in motifs.values())
        fig, axes = _grid(len(motifs), ncols, max(3.0, 0.3 * width), 1.8)
        for ax, (name, pfm) in zip(axes, motifs.items()):
            lo, hi = spans.get(name, (0, pfm.shape[1]))
            pfm = pfm[:, lo:hi]
            logo = pfm * information_content(pfm)[None, :]
            plot_logo(logo, ax=ax)
            ax.set_ylim(0, 2)
            ax.set_ylabel("bits")
            ax.set_title(name if name not in subtitles else f"{name}: {subtitles[name]}", fontsize=9)
    if path is not None:
        save_figure(fig, path)
    return fig


def _one_sequence(X: Any) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        X = torch.as_tensor(np.asarray(X))
    if X.ndim == 2:
        X = X.unsqueeze(0)
    if X.ndim != 3 or X.shape[0] != 1 or X.shape[1] != 4:
        raise ValueError(f"X must be one sequence of shape (4, L) or (1, 4, L), got {tuple(X.shape)}.")
    return X


def plot_sequence_tracks(
    model: torch.nn.Module,
    X: torch.Tensor | np.ndarray,
    instances: pd.DataFrame | None = None,
    path: str | os.PathLike | None = None,
    *,
    filters: Sequence[int] | None = None,
    example_idx: int | None = None,
    attention_threshold: float | None = None,
    show_sequence: bool = False,
    device: str | torch.device | None = None,
) -> Figure:
    """ARGMINN's view of one sequence: pooled attention, per-filter activations and called instances.

    The top panel is the attention pooled over layers and heads by a maximum (``argminn.md`` §7.2);
    below it, one panel per filter with its activation. Tracks are drawn at the start of each
    filter window, in sequence coordinates, so that an instance ``[start, end)`` (shaded on every
    panel, coloured by motif, labelled in the top panel) lines up with the peaks that called it.

    Parameters
    ----------
    model: ARGMINN
        The model (anything with ``forward_with_interims`` returning activations and attention).
    X: torch.Tensor or numpy.ndarray, shape=(4, L) or (1, 4, L)
        One one-hot sequence.
    instances: pandas.DataFrame, optional
        Calls with ``start, end`` (and ``motif``, and ``example_idx`` when several examples are in
        the table) to shade.
    path: str or Path, optional
        Save the figure there (.png, .svg or .pdf).
    filters: sequence of int, optional
        Filters to draw. Default is all.
    example_idx: int, optional
        Which example of ``instances`` belongs to ``X``; required when the table holds several.
    attention_threshold: float, optional
        Draw this threshold as a dashed line on the attention panel.
    show_sequence: bool, optional
        Add a bottom panel with the sequence drawn as letters. Default is False.
    device: str, torch.device or None, optional
        Where to run the model (it is moved back afterwards). None, the default, runs it where its
        parameters are.

    Returns
    -------
    matplotlib.figure.Figure
        ``1 + len(filters)`` axes, plus one with ``show_sequence``.
    """
    _check_path(path)
    X = _one_sequence(X)
    if not hasattr(model, "forward_with_interims"):
        raise ValueError(f"model must provide forward_with_interims (an ARGMINN), got {type(model).__name__}.")
    n_filters = int(model.n_filters)
    filters = list(range(n_filters)) if filters is None else [int(f) for f in filters]
    bad = [f for f in filters if not 0 <= f < n_filters]
    if bad or not filters:
        raise ValueError(f"filters must be a non-empty list of indices in [0, {n_filters}), got {filters}.")
    hits = None
    if instances is not None:
        if not {"start", "end"} <= set(instances.columns):
            raise ValueError("instances must have columns start and end.")
        hits = instances
        if "example_idx" in instances.columns:
            if example_idx is not None:
                hits = instances[instances["example_idx"] == example_idx]
            elif instances["example_idx"].nunique() > 1:
                raise ValueError("instances hold several examples; pass example_idx to pick the one shown.")
    param = next(model.parameters(), None)
    model_device = param.device if param is not None else torch.device("cpu")
    target = model_device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        if target != model_device:
            model.to(target)
        with torch.no_grad():
            out = model.forward_with_interims(X.to(target))
    finally:
        if target != model_device:
            model.to(model_device)
        model.train(was_training)
    attention = out.attention[0].amax(dim=(0, 1)).double().cpu().numpy()  # (L',)
    activations = out.activations[0].double().cpu().numpy()  # (F, L')
    length = X.shape[-1]
    positions = np.arange(attention.shape[0])

    n_axes = 1 + len(filters) + int(show_sequence)
    heights = [1.6] + [0.9] * len(filters) + ([0.9] if show_sequence else [])
    fig = Figure(figsize=(max(6.0, min(16.0, length / 35)), sum(heights) + 0.6), layout="constrained")
    gs = fig.add_gridspec(n_axes, 1, height_ratios=heights)
    axes = [fig.add_subplot(gs[0])]
    axes += [fig.add_subplot(gs[i], sharex=axes[0]) for i in range(1, n_axes)]

    axes[0].plot(positions, attention, color="black", lw=0.8)
    axes[0].set_ylabel("attention\n(max)", fontsize=8)
    if attention_threshold is not None:
        axes[0].axhline(attention_threshold, color="grey", ls="--", lw=0.8)
    for ax, f in zip(axes[1 : 1 + len(filters)], filters):
        ax.fill_between(positions, activations[f], color="tab:blue", lw=0)
        ax.set_ylabel(f"filter {f}", fontsize=8)
    if show_sequence:
        from tangermeme.plot import plot_logo

        plot_logo(X[0].double(), ax=axes[-1])
        axes[-1].set_ylabel("sequence", fontsize=8)
    for ax in axes:
        ax.set_xlim(0, length)
        ax.tick_params(labelsize=7)

    if hits is not None and len(hits):
        labels = hits["motif"].astype(str) if "motif" in hits.columns else pd.Series(["call"] * len(hits))
        names = list(dict.fromkeys(labels))
        palette = [f"C{i % 10}" for i in range(len(names))]
        colours = dict(zip(names, palette))
        for (start, end), label in zip(hits[["start", "end"]].itertuples(index=False), labels):
            for ax in axes:
                ax.axvspan(start, end, color=colours[label], alpha=0.25, lw=0)
            axes[0].text((start + end) / 2, 1.0, label, transform=axes[0].get_xaxis_transform(),
                         ha="center", va="bottom", fontsize=7, color=colours[label], clip_on=False)
    axes[-1].set_xlabel("position (bp)")
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_spacing_histograms(
    spacings: pd.DataFrame,
    pairs: Sequence[tuple[Any, Any]] | None = None,
    path: str | os.PathLike | None = None,
    *,
    max_pairs: int = 12,
    ncols: int = 3,
) -> Figure:
    """Histograms of the spacing between pairs of motifs, one panel per (left, right) pair.

    Parameters
    ----------
    spacings: pandas.DataFrame
        The table of :func:`argminn_plugin.syntax.pairwise_spacings` (``motif_a, motif_b, spacing,
        count``).
    pairs: sequence of (motif_a, motif_b), optional
        Pairs to draw, in order; a pair absent from the table gets an empty panel. Default is the
        ``max_pairs`` most frequent pairs.
    path: str or Path, optional
        Save the figure there (.png, .svg or .pdf).
    max_pairs: int, optional
        Pairs drawn when ``pairs`` is None. Default is 12.
    ncols: int, optional
        Panels per row. Default is 3.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per pair (a single blank axes with a note when there is none).
    """
    _check_path(path)
    if not isinstance(spacings, pd.DataFrame):
        raise ValueError(f"spacings must be a pandas DataFrame, got {type(spacings).__name__}.")
    missing = {"motif_a", "motif_b", "spacing", "count"} - set(spacings.columns)
    if missing:
        raise ValueError(f"spacings must be the table of pairwise_spacings; missing columns {sorted(missing)}.")
    if pairs is None:
        totals = spacings.groupby(["motif_a", "motif_b"], sort=True)["count"].sum()
        totals = totals.sort_values(ascending=False, kind="stable")
        pairs = list(totals.index[:max_pairs])
    else:
        pairs = [tuple(p) for p in pairs]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("pairs must be (motif_a, motif_b) tuples.")
    if not pairs:
        fig = _empty("no motif pairs to draw")
    else:
        fig, axes = _grid(len(pairs), ncols, 3.2, 2.2)
        lo = min(0, int(spacings["spacing"].min())) if len(spacings) else 0
        hi = int(spacings["spacing"].max()) + 1 if len(spacings) else 1
        for ax, (a, b) in zip(axes, pairs):
            rows = spacings[(spacings["motif_a"] == a) & (spacings["motif_b"] == b)]
            ax.bar(rows["spacing"].to_numpy(), rows["count"].to_numpy(), width=1.0, color="tab:blue")
            ax.set_xlim(lo - 0.5, hi - 0.5)
            ax.set_title(f"{a} \u2192 {b} (n={int(rows['count'].sum())})", fontsize=9)
            ax.set_xlabel("spacing (bp)", fontsize=8)
            ax.set_ylabel("count", fontsize=8)
            ax.tick_params(labelsize=7)
    if path is not None:
        save_figure(fig, path)
    return fig
