"""Motifs read directly off a trained ARGMINN: per-filter PFMs, CWM views, quality filter, annotation.

The motif scanner is meant to hold one motif per filter, so a motif is read from a filter in one of
two ways (``argminn.md`` §7.1):

* **PFM from activations**: over an evaluation set (normally positives with their reverse
  complements), take every ``filter_width``-bp window whose activation exceeds ``threshold`` times
  the filter's maximum, and average their one-hot encodings. A filter that never fires gives an
  all-zero PFM and is not *used*.
* **CWM view of the weights**: the convolution weights, mean-centred over the four bases at each
  position.

The quality filter trims flanks whose information content is below ``trim_ic`` and keeps a motif
when at least ``min_length`` positions remain with a mean information content of at least
``min_mean_ic`` bits. Annotation uses ``memelite.tomtom`` against a MEME database (JASPAR 2024
CORE vertebrates non-redundant by default, shipped in the package), on both strands, with
Benjamini-Hochberg q-values per query.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from ._validation import check_one_hot, resolve_device
from .io import atomic_write

JASPAR_2024 = Path(__file__).parent / "resources" / "JASPAR2024_CORE_vertebrates_nonredundant.meme"


class FilterMotifs(NamedTuple):
    """Motifs of every filter.

    pfms: numpy.ndarray, shape=(n_filters, 4, filter_width)
        Position frequency matrices from activations (rows sum to 1 for used filters, 0 otherwise).
    cwms: numpy.ndarray, shape=(n_filters, 4, filter_width)
        Mean-centred convolution weights.
    counts: numpy.ndarray, shape=(n_filters,)
        Number of windows averaged into each PFM (0 for unused filters).
    max_activation: numpy.ndarray, shape=(n_filters,)
        Maximum activation of each filter over the evaluation set.
    """

    pfms: np.ndarray
    cwms: np.ndarray
    counts: np.ndarray
    max_activation: np.ndarray


def _batches(X: torch.Tensor, batch_size: int):
    for start in range(0, X.shape[0], batch_size):
        yield X[start : start + batch_size]


@torch.no_grad()
def filter_activations_max(model, X: torch.Tensor, *, batch_size: int = 256, device=None) -> torch.Tensor:
    """Per-filter maximum motif activation over ``X`` (streamed in batches), shape (n_filters,)."""
    device = resolve_device(device)
    model = model.to(device).eval()
    best = torch.zeros(model.n_filters, dtype=torch.float64)
    for batch in _batches(X, batch_size):
        acts = model.scanner(batch.to(device).to(model.filter_weights.dtype)).activations
        best = torch.maximum(best, acts.amax(dim=(0, 2)).double().cpu())
    return best


@torch.no_grad()
def extract_motifs(
    model,
    X: torch.Tensor,
    *,
    threshold: float = 0.5,
    reverse_complement: bool = True,
    batch_size: int = 256,
    device=None,
) -> FilterMotifs:
    """PFMs (from activating windows) and CWMs (from weights) of every filter of ``model``.

    Parameters
    ----------
    model: ARGMINN
        A trained model.
    X: torch.Tensor, shape=(N, 4, L)
        Evaluation sequences, normally the positives.
    threshold: float, optional
        Fraction of each filter's maximum activation above which a window counts. Default is 0.5.
    reverse_complement: bool, optional
        Also scan the reverse complements of ``X`` (the paper's choice). Default is True.
    batch_size: int, optional
        Sequences per forward pass; memory stays flat in N. Default is 256.
    device: str or None, optional
        None means CUDA when available.

    Returns
    -------
    FilterMotifs
    """
    check_one_hot(X, "X")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
    device = resolve_device(device)
    model = model.to(device).eval()
    width, n_filters = model.filter_width, model.n_filters
    dtype = model.filter_weights.dtype

    def passes():
        for batch in _batches(X, batch_size):
            yield batch
            if reverse_complement:
                yield batch.flip(1).flip(2)

    best = torch.zeros(n_filters, dtype=torch.float64, device=device)
    for batch in passes():
        acts = model.scanner(batch.to(device).to(dtype)).activations
        best = torch.maximum(best, acts.amax(dim=(0, 2)).double())
    cutoff = (threshold * best).to(dtype)

    sums = torch.zeros(n_filters, 4, width, dtype=torch.float64, device=device)
    counts = torch.zeros(n_filters, dtype=torch.float64, device=device)
    for batch in passes():
        batch = batch.to(device).to(dtype)
        acts = model.scanner(batch).activations
        mask = ((acts > cutoff[None, :, None]) & (best[None, :, None] > 0)).to(dtype)
        windows = batch.unfold(2, width, 1)  # (N, 4, L', K), a view
        sums += torch.einsum("nfl,nclk->fck", mask, windows).double()
        counts += mask.sum(dim=(0, 2)).double()
    pfms = torch.where(counts[:, None, None] > 0, sums / counts.clamp_min(1)[:, None, None], torch.zeros_like(sums))
    weights = model.filter_weights.detach().double()
    cwms = weights - weights.mean(dim=1, keepdim=True)
    return FilterMotifs(pfms.cpu().numpy(), cwms.cpu().numpy(), counts.cpu().numpy(), best.cpu().numpy())


def information_content(pfm: np.ndarray, pseudocount: float = 0.001, background: float = 0.25) -> np.ndarray:
    """Per-position information content (bits) of a PFM (4, w): ``sum_c p log2(p / background)``.

    An all-zero column (no data) has information content 0.
    """
    pfm = np.asarray(pfm, dtype=float)
    if pfm.ndim != 2 or pfm.shape[0] != 4:
        raise ValueError(f"pfm must have shape (4, w), got {pfm.shape}.")
    empty = pfm.sum(axis=0) == 0
    p = (pfm + pseudocount) / (pfm + pseudocount).sum(axis=0, keepdims=True)
    ic = (p * np.log2(p / background)).sum(axis=0)
    ic[empty] = 0.0
    return ic


def trim_motif(pfm: np.ndarray, min_ic: float = 0.2) -> tuple[int, int]:
    """Half-open bounds ``(start, end)`` of ``pfm`` after dropping flanks with IC below ``min_ic``.

    Returns ``(0, 0)`` when no position reaches ``min_ic``.
    """
    keep = np.flatnonzero(information_content(pfm) >= min_ic)
    if keep.size == 0:
        return 0, 0
    return int(keep[0]), int(keep[-1]) + 1


def motif_quality(
    pfms: np.ndarray, *, trim_ic: float = 0.2, min_length: int = 5, min_mean_ic: float = 1.0
) -> pd.DataFrame:
    """The quality filter of ``argminn.md`` §7.1, one row per filter.

    Columns: ``filter, used, trim_start, trim_end, length, mean_ic, total_ic, passes``.
    """
    rows = []
    for f, pfm in enumerate(pfms):
        used = bool(pfm.sum() > 0)
        start, end = trim_motif(pfm, trim_ic)
        ic = information_content(pfm)[start:end]
        length = end - start
        mean_ic = float(ic.mean()) if length else 0.0
        rows.append({
            "filter": f, "used": used, "trim_start": start, "trim_end": end, "length": length,
            "mean_ic": mean_ic, "total_ic": float(ic.sum()),
            "passes": bool(used and length >= min_length and mean_ic >= min_mean_ic),
        })
    return pd.DataFrame(rows)


def trimmed_motifs(motifs: FilterMotifs, quality: pd.DataFrame, *, only_passing: bool = True,
                   prefix: str = "filter_") -> dict[str, np.ndarray]:
    """``{f"{prefix}{f}": trimmed PFM (4, w)}`` for the filters that pass (or all used ones)."""
    out = {}
    for row in quality.itertuples():
        if (only_passing and not row.passes) or not row.used or row.length == 0:
            continue
        out[f"{prefix}{row.filter}"] = motifs.pfms[row.filter][:, row.trim_start : row.trim_end]
    return out


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values along the last axis (monotone, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    n = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(ranked)
    np.put_along_axis(q, order, np.minimum(ranked, 1.0), axis=-1)
    return q


_MEME_WIDTH = re.compile(r"\bw=\s*(\d+)")
_MEME_ALENGTH = re.compile(r"\balength=\s*(\d+)")
_MEME_ROW_TOLERANCE = 0.02


def _check_meme(path: Path) -> int:
    """Check a MEME file line by line the way ``memelite.io.read_meme`` reads it; return the motif count.

    memelite drops a motif whose matrix is cut short, merges a motif without a matrix into the next
    one, overwrites duplicate names and fails with bare ``float``/broadcast errors on bad rows. Here
    each of those is a ValueError naming the file, the line and the motif. Rows must hold four
    finite, non-negative probabilities (A, C, G, T) summing to 1 within 0.02.
    """
    names: dict[str, int] = {}
    motif, motif_line, width, width_line, rows = None, 0, None, 0, 0
    lineno = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, start=1):
                at = f"line {lineno} of {path}"
                if motif is None:
                    if line[:5] != "MOTIF":
                        continue
                    motif = " ".join(line[5:].split())
                    if not motif:
                        raise ValueError(f"MEME file: MOTIF without a name at {at}.")
                    if motif in names:
                        raise ValueError(
                            f"MEME file: duplicate motif {motif!r} at {at} (first at line {names[motif]})."
                        )
                    names[motif], motif_line, width, rows = lineno, lineno, None, 0
                elif width is None:
                    if line[:5] == "MOTIF":
                        raise ValueError(
                            f"MEME file: motif {motif!r} (line {motif_line} of {path}) has no "
                            f"'letter-probability matrix' line before the next MOTIF at line {lineno}."
                        )
                    if line[:6] != "letter":
                        continue
                    found = _MEME_WIDTH.search(line)
                    if found is None or int(found.group(1)) < 1:
                        raise ValueError(
                            f"MEME file: the letter-probability line of motif {motif!r} at {at} has no positive w=."
                        )
                    alength = _MEME_ALENGTH.search(line)
                    if alength is not None and int(alength.group(1)) != 4:
                        raise ValueError(
                            f"MEME file: motif {motif!r} at {at} has alength={alength.group(1)}; only DNA "
                            "motifs (alength=4: A, C, G, T) are supported."
                        )
                    width, width_line, rows = int(found.group(1)), lineno, 0
                else:
                    fields = line.split()
                    if line[:5] == "MOTIF" or not fields:
                        raise ValueError(
                            f"MEME file: motif {motif!r} declares w={width} at line {width_line} of {path} but "
                            f"has only {rows} matrix row(s) before {'a blank line' if not fields else 'MOTIF'} "
                            f"at line {lineno}."
                        )
                    try:
                        values = [float(v) for v in fields]
                    except ValueError:
                        raise ValueError(
                            f"MEME file: row {rows + 1} of motif {motif!r} at {at} is not numeric: {line.strip()!r}."
                        ) from None
                    if len(values) != 4:
                        raise ValueError(
                            f"MEME file: row {rows + 1} of motif {motif!r} at {at} has {len(values)} values; "
                            "expected 4 probabilities (A, C, G, T)."
                        )
                    if not all(np.isfinite(values)) or min(values) < 0 or abs(sum(values) - 1) > _MEME_ROW_TOLERANCE:
                        raise ValueError(
                            f"MEME file: row {rows + 1} of motif {motif!r} at {at} is not a probability "
                            f"distribution (values {values}, sum {sum(values):.4g})."
                        )
                    rows += 1
                    if rows == width:
                        motif = None
    except UnicodeDecodeError as err:
        raise ValueError(
            f"MEME file {path} is not UTF-8 text (byte {err.start} after line {lineno}); is it a MEME file?"
        ) from None
    if motif is not None:
        if width is None:
            raise ValueError(
                f"MEME file: motif {motif!r} (line {motif_line} of {path}) has no 'letter-probability matrix' "
                "line before the end of the file."
            )
        raise ValueError(
            f"MEME file: motif {motif!r} declares w={width} at line {width_line} of {path} but the file ends "
            f"after {rows} row(s) (line {lineno}); is it truncated?"
        )
    if not names:
        raise ValueError(f"MEME file {path} contains no motifs (no line starts with 'MOTIF').")
    return len(names)


def read_motif_database(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Read a MEME motif database (default: the shipped JASPAR 2024 file) as ``{name: (4, w)}``.

    The file is checked first (see ``_check_meme``): malformed files raise a ValueError naming the
    file, the line and the motif. Motifs are read by ``memelite.io.read_meme``.
    """
    from memelite.io import read_meme

    path = JASPAR_2024 if path is None else Path(path)
    if not Path(path).exists():
        raise ValueError(f"motif database {path} does not exist.")
    if not Path(path).is_file():
        raise ValueError(f"motif database {path} is not a regular file.")
    _check_meme(Path(path))
    try:
        motifs = read_meme(str(path))
    except (ValueError, IndexError, AttributeError) as err:
        raise ValueError(f"could not read MEME file {path}: {err}") from None
    if not motifs:
        raise ValueError(f"MEME file {path} contains no motifs.")
    return motifs


def annotate_motifs(
    motifs: dict[str, np.ndarray], database: dict[str, np.ndarray] | str | os.PathLike | None = None,
    *, n_matches: int = 3,
) -> pd.DataFrame:
    """Match motifs against a database with ``memelite.tomtom`` (both strands); a tidy table.

    q-values are Benjamini-Hochberg over all targets of each query, as TOMTOM reports them.

    Returns
    -------
    pandas.DataFrame
        One row per (motif, rank): ``motif, rank, target, target_id, target_name, p_value, q_value,
        strand, offset, overlap``; ``rank`` 0 is the best match.
    """
    from memelite import tomtom

    if not isinstance(database, dict):
        database = read_motif_database(database)
    names = list(motifs)
    if not names:
        return pd.DataFrame(columns=["motif", "rank", "target", "target_id", "target_name", "p_value", "q_value",
                                     "strand", "offset", "overlap"])
    targets = list(database)
    queries = [np.asarray(motifs[n], dtype=np.float64) for n in names]
    p, _, offsets, overlaps, strands = tomtom(queries, [np.asarray(database[t], dtype=np.float64) for t in targets])
    q = benjamini_hochberg(p)
    rows = []
    for i, name in enumerate(names):
        for rank, j in enumerate(np.argsort(p[i])[:n_matches]):
            target = targets[j]
            tid, _, tname = target.partition(" ")
            rows.append({
                "motif": name, "rank": rank, "target": target, "target_id": tid, "target_name": tname or tid,
                "p_value": float(p[i, j]), "q_value": float(q[i, j]),
                "strand": "-" if strands[i, j] == 1 else "+", "offset": int(offsets[i, j]),
                "overlap": int(overlaps[i, j]),
            })
    return pd.DataFrame(rows)


def write_meme(motifs: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write ``{name: (4, w)}`` motifs as MEME v4 with memelite's writer, atomically."""
    from memelite.io import write_meme as _write

    clean = {name.replace(" ", "_"): np.asarray(m, dtype=float) for name, m in motifs.items()}
    return atomic_write(path, lambda tmp: _write(tmp, clean))
