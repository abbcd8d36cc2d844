"""Motif instances called from one forward pass of ARGMINN: attention x filter activation.

Following ``argminn.md`` §7.2:

1. Over the data set, each filter's activations above zero give a mean ``mu_f`` and standard
   deviation ``sigma_f`` (:func:`activation_statistics`, streamed in batches).
2. For each sequence, attention is pooled over layers and heads by a maximum; positions with pooled
   attention above ``attention_threshold`` (0.9 in the benchmark, 0.5 for exploration) are
   candidates.
3. At a candidate, the firing filters are those with activation above ``mu_f`` among the filters
   allowed (the quality-passed ones). No firing filter means no hit.
4. The hit starts at the candidate position, spans ``filter_width`` bp, and is assigned the filter
   with the largest z-score ``(A - mu_f) / sigma_f``.

The table's first columns are tangermeme's seqlet columns (``example_idx, start, end``), so it
works with ``tangermeme.plot.plot_logo(annotations=...)`` and the ``tangermeme.annotate`` counters.
Calls are scored against planted instances with :func:`score_instances` (a call matches a true
instance when they overlap by at least half the shorter length; motif identity is ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ._validation import check_one_hot, resolve_device
from .io import atomic_write

INSTANCE_COLUMNS = ["example_idx", "start", "end", "motif", "filter", "strand", "activation", "attention", "zscore"]


class ActivationStatistics(NamedTuple):
    """Mean, standard deviation and count of each filter's positive activations, shape (n_filters,)."""

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray


def _batches(X: torch.Tensor, batch_size: int) -> Iterator[tuple[int, torch.Tensor]]:
    for start in range(0, X.shape[0], batch_size):
        yield start, X[start : start + batch_size]


@torch.no_grad()
def activation_statistics(model, X: torch.Tensor, *, batch_size: int = 256, device=None) -> ActivationStatistics:
    """Streaming mean and standard deviation of each filter's activations above zero over ``X``."""
    check_one_hot(X, "X")
    device = resolve_device(device)
    model = model.to(device).eval()
    n = torch.zeros(model.n_filters, dtype=torch.float64)
    s = torch.zeros_like(n)
    s2 = torch.zeros_like(n)
    for _, batch in _batches(X, batch_size):
        acts = model.scanner(batch.to(device).to(model.filter_weights.dtype)).activations.double().cpu()
        positive = acts > 0
        n += positive.sum(dim=(0, 2))
        s += acts.sum(dim=(0, 2))
        s2 += (acts * acts).sum(dim=(0, 2))
    mean = torch.where(n > 0, s / n.clamp_min(1), torch.zeros_like(s))
    var = torch.where(n > 1, (s2 - n * mean * mean) / (n - 1).clamp_min(1), torch.zeros_like(s))
    return ActivationStatistics(mean.numpy(), var.clamp_min(0).sqrt().numpy(), n.numpy())


@torch.no_grad()
def iter_instances(
    model,
    X: torch.Tensor,
    *,
    statistics: ActivationStatistics | None = None,
    filters: Iterable[int] | None = None,
    attention_threshold: float = 0.9,
    filter_strands: dict[int, str] | None = None,
    filter_names: dict[int, str] | None = None,
    batch_size: int = 256,
    device=None,
    offset: int = 0,
) -> Iterator[pd.DataFrame]:
    """Yield one DataFrame of calls per batch of ``X`` (memory stays flat in the number of sequences).

    See :func:`call_instances` for the parameters; ``offset`` is added to ``example_idx``.
    """
    check_one_hot(X, "X")
    if not 0 <= attention_threshold < 1:
        raise ValueError(f"attention_threshold must be in [0, 1), got {attention_threshold}.")
    device = resolve_device(device)
    model = model.to(device).eval()
    if statistics is None:
        statistics = activation_statistics(model, X, batch_size=batch_size, device=device)
    allowed = np.zeros(model.n_filters, dtype=bool)
    allowed[list(range(model.n_filters)) if filters is None else list(filters)] = True
    mean = torch.as_tensor(statistics.mean, dtype=torch.float64, device=device)
    std = torch.as_tensor(statistics.std, dtype=torch.float64, device=device).clamp_min(1e-12)
    allowed_t = torch.as_tensor(allowed, device=device)
    width = model.filter_width
    names = filter_names or {}
    strands = filter_strands or {}
    for start, batch in _batches(X, batch_size):
        out = model.forward_with_interims(batch.to(device))
        pooled = out.attention.amax(dim=(1, 2)).double()  # (N, L')
        acts = out.activations.double()  # (N, F, L')
        firing = (acts > mean[None, :, None]) & allowed_t[None, :, None]
        z = torch.where(firing, (acts - mean[None, :, None]) / std[None, :, None], torch.full_like(acts, -np.inf))
        best_z, best_f = z.max(dim=1)  # (N, L')
        hit = (pooled > attention_threshold) & torch.isfinite(best_z)
        n_idx, pos = torch.nonzero(hit, as_tuple=True)
        if n_idx.numel() == 0:
            yield pd.DataFrame(columns=INSTANCE_COLUMNS)
            continue
        f = best_f[n_idx, pos]
        frame = pd.DataFrame({
            "example_idx": (n_idx + start + offset).cpu().numpy(),
            "start": pos.cpu().numpy(),
            "end": (pos + width).cpu().numpy(),
            "filter": f.cpu().numpy(),
            "activation": acts[n_idx, f, pos].cpu().numpy(),
            "attention": pooled[n_idx, pos].cpu().numpy(),
            "zscore": best_z[n_idx, pos].cpu().numpy(),
        })
        frame["motif"] = [names.get(int(k), f"filter_{int(k)}") for k in frame["filter"]]
        frame["strand"] = [strands.get(int(k), "+") for k in frame["filter"]]
        yield frame[INSTANCE_COLUMNS]


def call_instances(
    model,
    X: torch.Tensor,
    *,
    statistics: ActivationStatistics | None = None,
    filters: Iterable[int] | None = None,
    attention_threshold: float = 0.9,
    filter_strands: dict[int, str] | None = None,
    filter_names: dict[int, str] | None = None,
    batch_size: int = 256,
    device=None,
) -> pd.DataFrame:
    """Call motif instances in ``X`` from a single forward pass per batch.

    Parameters
    ----------
    model: ARGMINN
        A trained model.
    X: torch.Tensor, shape=(N, 4, L)
        One-hot sequences.
    statistics: ActivationStatistics or None, optional
        Per-filter positive-activation statistics; None computes them on ``X``. Pass statistics
        from a larger set when calling on a few sequences.
    filters: iterable of int or None, optional
        Filters allowed to call instances (the quality-passed ones); None allows all.
    attention_threshold: float, optional
        Pooled-attention threshold. Default is 0.9 (the benchmark value).
    filter_strands: dict or None, optional
        Strand of each filter relative to its annotated motif (from TOMTOM), reported per call;
        filters not in the dict report "+".
    filter_names: dict or None, optional
        Motif name per filter (e.g. its JASPAR match); default ``"filter_{f}"``.
    batch_size: int, optional
        Sequences per forward pass. Default is 256.
    device: str or None, optional
        None means CUDA when available.

    Returns
    -------
    pandas.DataFrame
        Columns ``example_idx, start, end, motif, filter, strand, activation, attention, zscore``;
        positions are in sequence coordinates (0-based, end exclusive).
    """
    frames = list(iter_instances(model, X, statistics=statistics, filters=filters,
                                 attention_threshold=attention_threshold, filter_strands=filter_strands,
                                 filter_names=filter_names, batch_size=batch_size, device=device))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=INSTANCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def to_genomic(instances: pd.DataFrame, coords: pd.DataFrame) -> pd.DataFrame:
    """Add ``chrom, chrom_start, chrom_end`` from the loci the sequences were cut from.

    ``coords`` has one row per example with ``chrom`` and ``start`` of the window (as returned by
    :mod:`argminn_plugin.data`).
    """
    missing = {"chrom", "start"} - set(coords.columns)
    if missing:
        raise ValueError(f"coords must have columns chrom and start; missing {sorted(missing)}.")
    out = instances.copy()
    window = coords.iloc[out["example_idx"].to_numpy()]
    out["chrom"] = window["chrom"].to_numpy()
    out["chrom_start"] = window["start"].to_numpy() + out["start"].to_numpy()
    out["chrom_end"] = window["start"].to_numpy() + out["end"].to_numpy()
    return out


def write_bed(instances: pd.DataFrame, path: str | os.PathLike, *, append: bool = False) -> Path:
    """Write genomic calls as BED6 (chrom, start, end, motif, score = attention x 1000, strand).

    With ``append=True`` the rows are appended (for incremental genome-scale writing); otherwise the
    file is written atomically.
    """
    if "chrom" not in instances.columns:
        raise ValueError("instances have no genomic coordinates; call to_genomic(instances, coords) first.")
    bed = pd.DataFrame({
        "chrom": instances["chrom"], "start": instances["chrom_start"], "end": instances["chrom_end"],
        "name": instances["motif"], "score": (instances["attention"] * 1000).round().astype(int).clip(0, 1000),
        "strand": instances["strand"],
    })
    if append:
        with open(path, "a") as handle:
            bed.to_csv(handle, sep="\t", header=False, index=False)
        return Path(path)
    return atomic_write(path, lambda tmp: bed.to_csv(tmp, sep="\t", header=False, index=False))


class InstanceScores(NamedTuple):
    """Precision and recall of instance calls against the truth."""

    precision: float
    recall: float
    n_calls: int
    n_true: int


def _overlaps(calls: pd.DataFrame, truth: pd.DataFrame, min_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    call_hit = np.zeros(len(calls), dtype=bool)
    true_hit = np.zeros(len(truth), dtype=bool)
    by_example = {k: g for k, g in truth.reset_index(drop=True).groupby("example_idx")}
    for i, (ex, s, e) in enumerate(calls[["example_idx", "start", "end"]].itertuples(index=False)):
        group = by_example.get(ex)
        if group is None:
            continue
        ts, te = group["start"].to_numpy(), group["end"].to_numpy()
        overlap = np.minimum(e, te) - np.maximum(s, ts)
        shorter = np.minimum(e - s, te - ts)
        match = overlap >= min_fraction * shorter
        if match.any():
            call_hit[i] = True
            true_hit[group.index.to_numpy()[match]] = True
    return call_hit, true_hit


def score_instances(calls: pd.DataFrame, truth: pd.DataFrame, *, min_fraction: float = 0.5) -> InstanceScores:
    """Precision and recall of ``calls`` against ``truth`` (both with example_idx, start, end).

    A call matches a true instance when they overlap by at least ``min_fraction`` of the shorter of
    the two; motif identity is ignored (``argminn.md`` §7.2). Precision is the fraction of calls
    matching some true instance; recall the fraction of true instances matched by some call.
    """
    call_hit, true_hit = _overlaps(calls, truth, min_fraction)
    precision = float(call_hit.mean()) if len(calls) else float("nan")
    recall = float(true_hit.mean()) if len(truth) else float("nan")
    return InstanceScores(precision, recall, len(calls), len(truth))
