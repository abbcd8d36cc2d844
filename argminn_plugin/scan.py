"""Genome-scale read-out: motif instances (and predictions) over a whole genome FASTA.

:func:`scan_genome` slides a window of the model's input length along every chromosome, reads the
windows batch by batch with pyfaidx, runs one forward pass per batch
(:func:`argminn_plugin.instances.iter_instances`) and appends the calls, in genomic coordinates, to
a BED file as it goes. Memory depends on ``batch_size`` and ``window`` only, never on the size of
the genome: no chromosome is ever held whole, only the stretch of sequence under one batch.

Windows and de-duplication
--------------------------
A window of ``window`` bp has ``span = window - filter_width + 1`` activation positions, the
positions where a motif instance can start. Windows start every ``stride`` bp from the start of
each chromosome, plus one last window aligned with the chromosome end, so that the end is covered
too. The default stride equals ``span``: the activation positions of consecutive windows then tile
the chromosome exactly, every possible instance start ``0 .. length - filter_width`` is looked at
once, and no two windows can report the same call.

With a smaller stride windows overlap, and a position is seen by several windows, each of which may
call it (attention depends on the whole window, so they need not agree). Every position is then
*owned* by exactly one window, the one in which it lies most centrally: between two consecutive
windows starting at ``a < b`` the boundary is ``(a + b + span) // 2``, the first window of a
chromosome owns everything from its start and the last everything up to its end. Only calls at
owned positions are kept, so every call is reported once, by the window that saw the most context
around it. With a stride larger than ``span`` positions between windows are not scanned (a
``UserWarning`` says so).

Sequence policy
---------------
As in :mod:`argminn_plugin.data`: A, C, G, T in either case are bases, any other letter (N, IUPAC
codes) is an all-zero column, and any other character is an error naming the file, line and
chromosome. Windows with more than ``max_n_fraction`` non-ACGT positions (assembly gaps) are not
run through the model and are counted in the summary. Chromosomes shorter than ``window`` are
skipped with a warning.

Activation statistics
---------------------
Instance calling compares each activation to the filter's mean positive activation (``mu_f``) and
z-scores it with the standard deviation (``argminn.md`` §7.2). Computing them over a whole genome
would need a second full pass, so by default they are computed on a *sample* of
``statistics_windows`` windows (1024) spread evenly over the whole list of windows of the scanned
chromosomes (every k-th window, deterministic, no seed), skipping windows that fail
``max_n_fraction``. Pass ``statistics`` (e.g. from
:func:`argminn_plugin.instances.activation_statistics` on the training positives) to use the same
thresholds as elsewhere; results are then independent of the sample.

Output files are written to a temporary file next to the destination and renamed into place only
when the scan has finished, so an interrupted or failed scan never leaves a partial file under the
final name, and an existing file of that name stays untouched until then.

Performance
-----------
Peak memory is set by ``batch_size`` and the model, not by the genome: about 690 MB of resident
memory in all (230 MB above the imported libraries) for the published model at ``batch_size=256``,
the same for 10^4 and 10^6 windows. On a 2-core CPU one thread scans 1,000-1,600 windows/s with the
published model (1.1-1.6 h for the 6.3 million windows of a 3.1 Gb genome) and 2,000-5,000 with one
attention layer. On a shared machine set ``torch.set_num_threads(1)``: spinning OpenMP threads can
make two threads several times slower than one (``benchmarks/genome_scan.py``).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyfaidx
import torch

from . import data as _data
from ._validation import resolve_device
from .instances import INSTANCE_COLUMNS, ActivationStatistics, activation_statistics, iter_instances, to_genomic
from .instances import write_bed as _write_bed

__all__ = ["ScanSummary", "genome_windows", "scan_genome"]

DEFAULT_WINDOW = 500

# Byte -> code: A, C, G, T (either case) -> 0..3, any other letter -> 4 (N), anything else -> 5.
_LUT = np.full(256, 5, dtype=np.uint8)
for _c in range(256):
    if chr(_c).isascii() and chr(_c).isalpha():
        _LUT[_c] = 4
for _i, _base in enumerate("ACGT"):
    _LUT[ord(_base)] = _i
    _LUT[ord(_base.lower())] = _i
_ONE_HOT = np.zeros((6, 4), dtype=np.int8)
_ONE_HOT[:4] = np.eye(4, dtype=np.int8)


class ScanSummary(NamedTuple):
    """What :func:`scan_genome` did.

    Attributes
    ----------
    n_windows: int
        Windows run through the model.
    n_skipped_windows: int
        Windows not run because more than ``max_n_fraction`` of them is N.
    n_calls: int
        Instance calls kept (after de-duplication).
    skipped_chroms: list of str
        Chromosomes shorter than ``window``, not scanned.
    window: int
        Window length.
    stride: int
        Distance between window starts.
    statistics: ActivationStatistics
        The activation statistics used.
    statistics_source: str
        ``"given"`` or ``"sample of k windows"``.
    out_bed: pathlib.Path or None
        The BED of calls, when asked for.
    predictions_bed: pathlib.Path or None
        The per-window predictions, when asked for.
    calls: pandas.DataFrame or None
        Without ``out_bed``: every call, with ``INSTANCE_COLUMNS`` (``example_idx`` is the global
        window index) plus ``chrom, chrom_start, chrom_end``. None when ``out_bed`` is given.
    seconds: float
        Wall time of the scan (statistics included).
    """

    n_windows: int
    n_skipped_windows: int
    n_calls: int
    skipped_chroms: list
    window: int
    stride: int
    statistics: ActivationStatistics
    statistics_source: str
    out_bed: Path | None
    predictions_bed: Path | None
    calls: pd.DataFrame | None
    seconds: float

    @property
    def windows_per_second(self) -> float:
        """Throughput: windows run through the model per second of wall time."""
        return self.n_windows / self.seconds if self.seconds > 0 else float("nan")


# ----------------------------------------------------------------------------------------------
# Window layout
# ----------------------------------------------------------------------------------------------


class _ChromWindows:
    """Arithmetic description of the windows of one chromosome (nothing is materialised)."""

    def __init__(self, name: str, length: int, window: int, stride: int, span: int) -> None:
        self.name, self.length, self.window, self.stride, self.span = name, length, window, stride, span
        self.n_regular = (length - window) // stride + 1
        last_regular = (self.n_regular - 1) * stride
        self.n = self.n_regular + (1 if last_regular + window < length else 0)

    def starts(self, j: np.ndarray) -> np.ndarray:
        """Window starts of window indices ``j``."""
        return np.where(j < self.n_regular, j * self.stride, self.length - self.window).astype(np.int64)

    def owned(self, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Half-open genomic ranges of activation positions owned by windows ``j``."""
        s = self.starts(j)
        prev = self.starts(np.maximum(j - 1, 0))
        nxt = self.starts(np.minimum(j + 1, self.n - 1))
        lo = np.where(j == 0, s, np.maximum(s, (prev + s + self.span) // 2))
        hi = np.where(j == self.n - 1, s + self.span, np.minimum(s + self.span, (s + nxt + self.span) // 2))
        return lo, hi


def genome_windows(lengths: dict[str, int], window: int, stride: int, span: int) -> pd.DataFrame:
    """All windows of a genome as a table, with the positions each owns (for tests and small genomes).

    Parameters
    ----------
    lengths: dict of str to int
        Chromosome lengths; chromosomes shorter than ``window`` get no window.
    window, stride: int
        Window length and distance between starts.
    span: int
        Activation positions per window, ``window - filter_width + 1``.

    Returns
    -------
    pandas.DataFrame
        ``chrom, start, end, owned_start, owned_end`` (0-based, half-open) in scanning order.
    """
    frames = []
    for name, length in lengths.items():
        if length < window:
            continue
        plan = _ChromWindows(name, length, window, stride, span)
        j = np.arange(plan.n)
        starts = plan.starts(j)
        lo, hi = plan.owned(j)
        frames.append(pd.DataFrame({"chrom": name, "start": starts, "end": starts + window,
                                    "owned_start": lo, "owned_end": hi}))
    if not frames:
        return pd.DataFrame(columns=["chrom", "start", "end", "owned_start", "owned_end"])
    return pd.concat(frames, ignore_index=True)


class _Batch(NamedTuple):
    X: torch.Tensor  # (B, 4, window) int8, only windows that pass the N filter
    chroms: np.ndarray  # (B,) object
    starts: np.ndarray  # (B,) int64
    lo: np.ndarray  # (B,) owned range
    hi: np.ndarray
    n_skipped: int


def _encode(seq: str, fasta: str, source: str, chrom: str, offset: int) -> np.ndarray:
    """Codes 0..4 of ``seq`` (read at ``chrom:offset``); any non-letter is an error naming its line."""
    codes = _LUT[np.frombuffer(seq.encode("latin-1", errors="replace"), dtype=np.uint8)]
    bad = np.flatnonzero(codes == 5)
    if bad.size:
        pos = offset + int(bad[0])
        raise _data._genome_character_error(fasta, source, chrom, pos, seq[int(bad[0])], "fasta")
    return codes


def _read_chunk(genome: pyfaidx.Fasta, fasta: str, source: str, plan: _ChromWindows, j: np.ndarray):
    """Codes (n, window) of windows ``j`` of one chromosome, from one read of the stretch they cover."""
    starts = plan.starts(j)
    first, last = int(starts.min()), int(starts.max()) + plan.window
    seq = str(genome[plan.name][first:last])
    if len(seq) != last - first:
        raise ValueError(f"fasta: could only read {len(seq)} of {last - first} bp at {plan.name}:{first} of {source}.")
    codes = _encode(seq, fasta, source, plan.name, first)
    index = (starts - first)[:, None] + np.arange(plan.window)[None, :]
    return codes[index], starts


def _iter_batches(
    genome: pyfaidx.Fasta, fasta: str, source: str, plans: Sequence[_ChromWindows], batch_size: int,
    max_n: int,
) -> Iterator[_Batch]:
    """Batches of up to ``batch_size`` windows, in genome order, possibly spanning chromosomes."""
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    n_pending = 0
    skipped = 0

    def flush() -> _Batch:
        codes = np.concatenate([p[0] for p in pending])
        X = torch.from_numpy(np.ascontiguousarray(_ONE_HOT[codes].transpose(0, 2, 1)))
        return _Batch(X, np.concatenate([p[1] for p in pending]), np.concatenate([p[2] for p in pending]),
                      np.concatenate([p[3] for p in pending]), np.concatenate([p[4] for p in pending]), skipped)

    for plan in plans:
        for first in range(0, plan.n, batch_size):
            j = np.arange(first, min(first + batch_size, plan.n))
            codes, starts = _read_chunk(genome, fasta, source, plan, j)
            lo, hi = plan.owned(j)
            keep = (codes == 4).sum(axis=1) <= max_n
            skipped += int((~keep).sum())
            offset = 0
            idx = np.flatnonzero(keep)
            while offset < idx.size:
                take = idx[offset : offset + batch_size - n_pending]
                offset += take.size
                pending.append((codes[take], np.full(take.size, plan.name, dtype=object), starts[take], lo[take],
                                hi[take]))
                n_pending += take.size
                if n_pending == batch_size:
                    yield flush()
                    pending, n_pending, skipped = [], 0, 0
    if pending or skipped:
        if pending:
            yield flush()
        else:
            yield _Batch(torch.zeros(0, 4, plans[0].window if plans else 0, dtype=torch.int8),
                         np.zeros(0, dtype=object), np.zeros(0, np.int64), np.zeros(0, np.int64),
                         np.zeros(0, np.int64), skipped)


def _sample_statistics(model, genome, fasta, source, plans, n_sample, max_n, batch_size, device):
    """Activation statistics on ``n_sample`` windows spread evenly over all windows (see module doc)."""
    counts = np.array([p.n for p in plans], dtype=np.int64)
    total = int(counts.sum())
    picks = np.unique(np.linspace(0, total - 1, min(n_sample, total)).round().astype(np.int64))
    bounds = np.concatenate([[0], np.cumsum(counts)])
    windows = []
    for k, plan in enumerate(plans):
        local = picks[(picks >= bounds[k]) & (picks < bounds[k + 1])] - bounds[k]
        for j in local:
            codes, _ = _read_chunk(genome, fasta, source, plan, np.array([j]))
            if int((codes == 4).sum()) <= max_n:
                windows.append(codes[0])
    if not windows:
        raise ValueError(
            f"fasta: none of the {picks.size} windows sampled for activation statistics from {source} has at most "
            f"{max_n} N; pass statistics= or raise max_n_fraction."
        )
    X = torch.from_numpy(np.ascontiguousarray(_ONE_HOT[np.stack(windows)].transpose(0, 2, 1)))
    return activation_statistics(model, X, batch_size=batch_size, device=device), len(windows)


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


class _Recorder:
    """Stands in for the model inside ``iter_instances`` and keeps the output of its forward pass.

    ``iter_instances`` makes one ``forward_with_interims`` call per batch; recording its ``y`` gives
    the per-window predictions without a second forward pass.
    """

    def __init__(self, model) -> None:
        self._model = model
        self.y = None

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def to(self, *args, **kwargs) -> _Recorder:
        self._model.to(*args, **kwargs)
        return self

    def eval(self) -> _Recorder:
        self._model.eval()
        return self

    def forward_with_interims(self, X, X_ctl=None):
        out = self._model.forward_with_interims(X, X_ctl)
        self.y = out.y
        return out


def _prediction_table(y, chroms: np.ndarray, starts: np.ndarray, window: int) -> pd.DataFrame:
    if isinstance(y, (tuple, list)):  # profile head: one log-count per count output
        values, label = y[1], "log_counts"
    else:
        values, label = y, "logit"
    values = values.detach().float().cpu().numpy().reshape(len(starts), -1)
    table = pd.DataFrame({"#chrom": chroms, "start": starts, "end": starts + window})
    for k in range(values.shape[1]):
        table[f"{label}_{k}"] = values[:, k]
    return table


def _temporary_beside(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    return Path(name)


# ----------------------------------------------------------------------------------------------
# The scan
# ----------------------------------------------------------------------------------------------


def _positive_int(value, argname: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argname} must be a positive integer, got {value!r}.")
    return int(value)


@torch.no_grad()
def scan_genome(
    model,
    fasta: str | os.PathLike,
    *,
    window: int | None = None,
    stride: int | None = None,
    chroms: Sequence[str] | None = None,
    batch_size: int = 256,
    attention_threshold: float = 0.9,
    statistics: ActivationStatistics | None = None,
    filters: Iterable[int] | None = None,
    filter_names: dict[int, str] | None = None,
    filter_strands: dict[int, str] | None = None,
    out_bed: str | os.PathLike | None = None,
    predictions_bed: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    statistics_windows: int = 1024,
    max_n_fraction: float = 0.5,
    cache_dir: str | os.PathLike | None = None,
) -> ScanSummary:
    """Call motif instances over a whole genome with sliding windows, streaming in batches.

    See the module docstring for the window layout, de-duplication, sequence policy and the
    default activation statistics.

    Parameters
    ----------
    model: ARGMINN
        A trained model (anything with ``forward_with_interims``, ``n_filters``, ``filter_width``).
    fasta: str or os.PathLike
        Genome FASTA, plain or gzip (decompressed once, see ``data.ensure_plain_fasta``).
    window: int or None, optional
        Window length, the model's input length. None means ``model.in_window`` when the model has
        one, else 500 (ARGMINN's L). Default is None.
    stride: int or None, optional
        Distance between window starts. None means ``window - filter_width + 1``, so that the
        activation positions of consecutive windows tile the genome. Default is None.
    chroms: list of str or None, optional
        Chromosomes to scan, in this order; None scans all in FASTA order. Default is None.
    batch_size: int, optional
        Windows per forward pass; memory is proportional to it. Default is 256.
    attention_threshold: float, optional
        Pooled-attention threshold of instance calling. Default is 0.9.
    statistics: ActivationStatistics or None, optional
        Per-filter activation statistics; None computes them on a sample of windows. Default None.
    filters: iterable of int or None, optional
        Filters allowed to call instances (the quality-passed ones); None allows all.
    filter_names, filter_strands: dict or None, optional
        Motif name and strand of each filter, as in ``instances.call_instances``.
    out_bed: str, os.PathLike or None, optional
        BED6 of the calls (``chrom, start, end, motif, attention x 1000, strand``), written
        incrementally to a temporary file and renamed at the end. None keeps the calls in memory
        and returns them in ``summary.calls`` (memory then grows with the number of calls).
    predictions_bed: str, os.PathLike or None, optional
        One row per scanned window: ``chrom, start, end`` and the model's outputs (binary head:
        ``logit_k``; profile head: ``log_counts_k``), with a ``#chrom ...`` header line. Written
        like ``out_bed``. Default is None.
    device: str, torch.device or None, optional
        None means CUDA when available.
    statistics_windows: int, optional
        Size of the sample for the default statistics. Default is 1024.
    max_n_fraction: float, optional
        Windows with a larger fraction of non-ACGT positions are skipped (counted in the
        summary). 1 runs every window. Default is 0.5.
    cache_dir: str, os.PathLike or None, optional
        Where a gzip FASTA is decompressed. Default is None.

    Returns
    -------
    ScanSummary
        Counts, the statistics used, output paths, throughput.

    Raises
    ------
    ValueError
        On bad arguments, a FASTA that pyfaidx cannot index or that holds a non-letter character
        (naming file, line and chromosome), unknown chromosomes, or no chromosome long enough.
    """
    tic = time.perf_counter()
    if not hasattr(model, "forward_with_interims") or not hasattr(model, "filter_width"):
        raise ValueError(f"model must be an ARGMINN (with forward_with_interims), got {type(model).__name__}.")
    width = int(model.filter_width)
    window = _positive_int(getattr(model, "in_window", None) or DEFAULT_WINDOW if window is None else window, "window")
    if window < width:
        raise ValueError(f"window ({window}) must be at least the model's filter_width ({width}).")
    span = window - width + 1
    stride = span if stride is None else _positive_int(stride, "stride")
    if stride > span:
        warnings.warn(
            f"stride={stride} is larger than the {span} activation positions of a window: "
            f"{stride - span} possible instance starts between consecutive windows are not scanned.",
            UserWarning, stacklevel=3,
        )
    batch_size = _positive_int(batch_size, "batch_size")
    statistics_windows = _positive_int(statistics_windows, "statistics_windows")
    if not 0 <= attention_threshold < 1:
        raise ValueError(f"attention_threshold must be in [0, 1), got {attention_threshold!r}.")
    if not 0 <= max_n_fraction <= 1:
        raise ValueError(f"max_n_fraction must be in [0, 1], got {max_n_fraction!r}.")
    max_n = int(np.floor(max_n_fraction * window))

    source = str(fasta)
    plain, lengths = _data._open_genome(fasta, cache_dir)
    selected = _data._check_chrom_list(chroms, "chroms", lengths, source) or list(lengths)
    short = [c for c in selected if lengths[c] < window]
    if short:
        warnings.warn(f"{len(short)} chromosome(s) shorter than window={window} are not scanned: {short[:10]}",
                      UserWarning, stacklevel=3)
    plans = [_ChromWindows(c, lengths[c], window, stride, span) for c in selected if lengths[c] >= window]
    if not plans:
        raise ValueError(f"fasta: no chromosome of {source} among {selected[:10]} is at least window={window} bp long.")

    device = resolve_device(device)
    model = model.to(device).eval()
    genome = pyfaidx.Fasta(plain, as_raw=True, sequence_always_upper=False)
    # Windows are one-hot by construction; iter_instances checks them once, the model need not again.
    validate = getattr(model, "validate_inputs", None)
    if validate is not None:
        model.validate_inputs = False
    out_path = None if out_bed is None else Path(out_bed)
    pred_path = None if predictions_bed is None else Path(predictions_bed)
    tmp_bed = tmp_pred = None
    try:
        if statistics is None:
            statistics, n_sampled = _sample_statistics(model, genome, plain, source, plans, statistics_windows,
                                                       max_n, batch_size, device)
            statistics_source = f"sample of {n_sampled} windows"
        else:
            statistics_source = "given"
        if out_path is not None:
            tmp_bed = _temporary_beside(out_path)
        if pred_path is not None:
            tmp_pred = _temporary_beside(pred_path)
            header = True

        recorder = _Recorder(model)
        kept: list[pd.DataFrame] = []
        n_windows = n_skipped = n_calls = 0
        for batch in _iter_batches(genome, plain, source, plans, batch_size, max_n):
            n_skipped += batch.n_skipped
            if len(batch.X) == 0:
                continue
            frame = next(iter_instances(
                recorder, batch.X, statistics=statistics, filters=filters, attention_threshold=attention_threshold,
                filter_strands=filter_strands, filter_names=filter_names, batch_size=len(batch.X), device=device,
            ))
            if len(frame):
                ex = frame["example_idx"].to_numpy()
                genomic = batch.starts[ex] + frame["start"].to_numpy()
                frame = frame[(genomic >= batch.lo[ex]) & (genomic < batch.hi[ex])]
            if len(frame):
                coords = pd.DataFrame({"chrom": batch.chroms, "start": batch.starts})
                frame = to_genomic(frame.reset_index(drop=True), coords)
                frame["example_idx"] = frame["example_idx"].to_numpy() + n_windows
                n_calls += len(frame)
                if tmp_bed is not None:
                    _write_bed(frame, tmp_bed, append=True)
                else:
                    kept.append(frame)
            if tmp_pred is not None:
                table = _prediction_table(recorder.y, batch.chroms, batch.starts, window)
                with open(tmp_pred, "a") as handle:
                    table.to_csv(handle, sep="\t", header=header, index=False, float_format="%.6g")
                header = False
            recorder.y = None
            n_windows += len(batch.X)

        if tmp_pred is not None and header:  # nothing scanned: still a header
            Path(tmp_pred).write_text("#chrom\tstart\tend\n")
        if tmp_bed is not None:
            os.replace(tmp_bed, out_path)
            tmp_bed = None
        if tmp_pred is not None:
            os.replace(tmp_pred, pred_path)
            tmp_pred = None
    finally:
        genome.close()
        if validate is not None:
            model.validate_inputs = validate
        for tmp in (tmp_bed, tmp_pred):
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    calls = None
    if out_path is None:
        columns = INSTANCE_COLUMNS + ["chrom", "chrom_start", "chrom_end"]
        calls = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=columns)
    if n_windows == 0:
        warnings.warn(f"fasta: every window of {source} has more than max_n_fraction={max_n_fraction} N; "
                      "nothing was scanned.", UserWarning, stacklevel=3)
    return ScanSummary(n_windows, n_skipped, n_calls, short, window, stride, statistics, statistics_source,
                       out_path, pred_path, calls, time.perf_counter() - tic)
