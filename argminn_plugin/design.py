"""Interpretable sequence design with ARGMINN, and wrappers that make ARGMINN a tangermeme model.

Following the recommended reconstruction of ``argminn.md`` §7.5: take the motifs the model learned
(filter PFMs, or their consensus), implant them into backgrounds in the configuration and at the
spacing the syntax read-out found, then check both that the model predicts the designs active and
that its attention reads back exactly the implanted instances. The same target can be designed with
``tangermeme.design.greedy_substitution`` for comparison.

* :func:`implant_configuration`: implant motifs at given spacings and orientations (through
  ``tangermeme.ersatz.multisubstitute``), returning the designs and the table of implanted instances.
* :func:`design_from_syntax`: the same, driven by a configuration and spacings read off a model.
* :func:`check_design`: predictions, and instance calls scored against the implanted instances.
* :func:`compare_with_greedy`: greedy substitution on the same target, side by side.

tangermeme functions need a model returning one tensor (N, n_outputs); ARGMINN's profile head
returns a tuple, and attention is an internal. :func:`select_output` picks one output (a binary
logit, or bpnet-lite's profile / count reduction, via :mod:`argminn_plugin.attribute`) and :class:`AttentionSelector` returns the pooled
attention over a window, so ``saturation_mutagenesis``, ``marginalize``, ``ablate``,
``deep_lift_shap`` and ``greedy_substitution`` all run on either. :func:`build_motif_detector` builds
an ARGMINN by hand whose filters are given motifs and whose attention is sharp: a positive control
for design and attribution pipelines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._validation import check_one_hot

__all__ = [
    "IMPLANT_COLUMNS",
    "CHECK_COLUMNS",
    "GREEDY_COLUMNS",
    "AttentionSelector",
    "DesignCheck",
    "GreedyComparison",
        "attention_at",
    "build_motif_detector",
    "check_design",
    "compare_with_greedy",
    "design_from_syntax",
    "implant_configuration",
    "select_output",
]

ALPHABET = "ACGT"
IMPLANT_COLUMNS = ["example_idx", "start", "end", "motif", "strand"]
CHECK_COLUMNS = ["example_idx", "logit", "probability", "n_implanted", "n_calls", "n_calls_matched",
                 "n_implanted_found", "min_attention", "exact"]
GREEDY_COLUMNS = ["method", "example_idx", "prediction", "n_edits", "n_calls", "n_calls_at_edits",
                  "found_instance"]


# ---------------------------------------------------------------------------------------------
# Output selection for tangermeme


def select_output(model: nn.Module, output: str = "logit", target: int = 0) -> nn.Module:
    """One output of ARGMINN as a single (N, 1) tensor, for tangermeme functions.

    Builds :class:`argminn_plugin.attribute.OutputSelector` after checking that ``output`` suits
    the model's head, and puts the wrapper in the model's train/eval mode: tangermeme restores the
    *wrapper's* mode on exit, recursively, and a fresh module is in training mode, so without this
    a call such as ``deep_lift_shap(OutputSelector(model), X)`` leaves the model (and its
    BatchNorm) in training mode.

    Parameters
    ----------
    model: ARGMINN
        The wrapped model.
    output: str, optional
        ``"logit"`` (binary head: column ``target``), ``"profile"`` (profile head: bpnet-lite's
        ``ProfileWrapper`` reduction over all tracks) or ``"counts"`` (profile head: the log counts,
        as ``CountWrapper``). Default is ``"logit"``.
    target: int, optional
        Logit column for ``"logit"``. Default is 0.

    Returns
    -------
    torch.nn.Module
        The selector, in the model's mode.
    """
    from .attribute import OutputSelector

    head = getattr(model, "head_type", "binary")
    if output not in ("logit", "profile", "counts"):
        raise ValueError(f"output must be 'logit', 'profile' or 'counts', got {output!r}.")
    if (output == "logit") != (head == "binary"):
        raise ValueError(f"output={output!r} does not apply to a model with the {head!r} head.")
    if output == "logit" and not 0 <= target < model.n_tasks:
        raise ValueError(f"target must be in [0, {model.n_tasks}), got {target}.")
    selector = OutputSelector(model, output, {"logit": target, "profile": None, "counts": 0}[output])
    return selector.train(model.training)


def _pooled_attention(attention: torch.Tensor, pool: str) -> torch.Tensor:
    if pool == "max":
        return attention.amax(dim=(1, 2))
    if pool == "mean":
        return attention.mean(dim=(1, 2))
    raise ValueError(f"pool must be 'max' or 'mean', got {pool!r}.")


class AttentionSelector(nn.Module):
    """Pooled attention summed over a window of conv positions, as an (N, 1) model output.

    Attention (N, layers, heads, L') is pooled over layers and heads (``"max"``, as instance calls
    do, or ``"mean"``) and summed over ``[start, end)`` in conv coordinates (position ``i`` is the
    window ``x[i : i + filter_width]``). Use it with ``tangermeme.saturation_mutagenesis`` to ask
    which bases hold the attention on an instance, or with ``marginalize`` to ask what draws it away.

    Parameters
    ----------
    model: ARGMINN
        The wrapped model.
    start: int
        First conv position of the window.
    end: int or None, optional
        One past the last position; None means ``start + 1``.
    pool: str, optional
        ``"max"`` (default) or ``"mean"`` over layers and heads.
    """

    def __init__(self, model: nn.Module, start: int, end: int | None = None, pool: str = "max") -> None:
        super().__init__()
        end = start + 1 if end is None else end
        if start < 0 or end <= start:
            raise ValueError(f"need 0 <= start < end, got start={start}, end={end}.")
        _pooled_attention(torch.zeros(1, 1, 1, 1), pool)
        self.model, self.start, self.end, self.pool = model, int(start), int(end), pool
        self.train(model.training)  # see select_output

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled attention on the window, shape (N, 1)."""
        attention = self.model.forward_with_interims(X, X_ctl).attention
        if self.end > attention.shape[-1]:
            raise ValueError(f"end ({self.end}) is beyond the {attention.shape[-1]} conv positions of X.")
        pooled = _pooled_attention(attention, self.pool)
        return pooled[:, self.start : self.end].sum(dim=-1, keepdim=True)


@torch.no_grad()
def attention_at(model: nn.Module, X: torch.Tensor, positions: Any, *, pool: str = "max",
                 batch_size: int = 256) -> np.ndarray:
    """Pooled attention at one conv position per row of ``positions``.

    Parameters
    ----------
    model: ARGMINN
        The model.
    X: torch.Tensor, shape=(N, 4, L)
        One-hot sequences.
    positions: pandas.DataFrame or array-like, shape=(n, 2)
        ``(example_idx, start)`` pairs (a DataFrame with those columns, e.g. an instance table).
    pool: str, optional
        ``"max"`` (default) or ``"mean"`` over layers and heads.
    batch_size: int, optional
        Sequences per forward pass.

    Returns
    -------
    numpy.ndarray, shape=(n,)
        The pooled attention at each position.
    """
    check_one_hot(X, "X")
    if isinstance(positions, pd.DataFrame):
        positions = positions[["example_idx", "start"]].to_numpy()
    positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
    if len(positions) == 0:
        return np.zeros(0)
    was_training = model.training
    model.eval()
    dtype = model.filter_weights.dtype
    device = model.filter_weights.device
    try:
        pooled = torch.cat([
            _pooled_attention(model.forward_with_interims(X[i : i + batch_size].to(device).to(dtype)).attention, pool)
            for i in range(0, X.shape[0], batch_size)
        ]).double().cpu().numpy()
    finally:
        model.train(was_training)
    ex, pos = positions[:, 0], positions[:, 1]
    if ex.min() < 0 or ex.max() >= pooled.shape[0] or pos.min() < 0 or pos.max() >= pooled.shape[1]:
        raise ValueError(f"positions fall outside X: example_idx must be in [0, {pooled.shape[0]}) and start "
                         f"in [0, {pooled.shape[1]}).")
    return pooled[ex, pos]


# ---------------------------------------------------------------------------------------------
# Motifs


def _as_pfm(motif: Any, name: str) -> np.ndarray:
    """A PFM (4, w) float64 from a consensus string, a one-hot/PFM array or tensor."""
    if isinstance(motif, str):
        seq = motif.upper()
        bad = sorted(set(seq) - set(ALPHABET + "N"))
        if bad or not seq:
            raise ValueError(f"motifs: {name} must be a non-empty string over ACGTN, got {motif!r}.")
        pfm = np.zeros((4, len(seq)))
        for j, c in enumerate(seq):
            if c != "N":
                pfm[ALPHABET.index(c), j] = 1.0
        return pfm
    if isinstance(motif, torch.Tensor):
        motif = motif.detach().cpu().numpy()
    pfm = np.asarray(motif, dtype=np.float64)
    if pfm.ndim != 2 or pfm.shape[0] != 4 or pfm.shape[1] == 0:
        raise ValueError(f"motifs: {name} must be a string or a (4, w) PFM, got shape {pfm.shape}.")
    if (pfm < 0).any() or not np.isfinite(pfm).all():
        raise ValueError(f"motifs: {name} has negative or non-finite entries.")
    return pfm


def _named_motifs(motifs: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(motifs, Mapping):
        items = [(str(k), v) for k, v in motifs.items()]
    elif isinstance(motifs, (str, np.ndarray, torch.Tensor)):
        raise ValueError("motifs must be a list (or dict) of consensus strings or (4, w) PFMs, not a single motif.")
    else:
        items = []
        for i, m in enumerate(motifs):
            if isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str):
                items.append(m)  # (name, motif) pairs, for repeated motifs
            else:
                items.append((m if isinstance(m, str) else f"motif_{i}", m))
    if not items:
        raise ValueError("motifs must contain at least one motif.")
    return [(name, _as_pfm(m, name)) for name, m in items]


def _consensus(pfm: np.ndarray) -> str:
    """Argmax consensus; a column summing to zero gives N (the background is kept there)."""
    return "".join(ALPHABET[int(np.argmax(col))] if col.sum() > 0 else "N" for col in pfm.T)


def _one_hot(pfm: np.ndarray, n: int, sample: bool, rng: np.random.Generator) -> torch.Tensor:
    """(n, 4, w) int8 motif copies: the consensus, or per-example samples from the PFM."""
    width = pfm.shape[1]
    out = np.zeros((n, 4, width), dtype=np.int8)
    totals = pfm.sum(axis=0)
    for j in range(width):
        if totals[j] <= 0:
            continue  # all-zero column: substitute keeps the background base
        if sample:
            codes = rng.choice(4, size=n, p=pfm[:, j] / totals[j])
        else:
            codes = np.full(n, int(np.argmax(pfm[:, j])))
        out[np.arange(n), codes, j] = 1
    return torch.from_numpy(out)


def _per_motif(value: Any, n_motifs: int, name: str, default: Any) -> list:
    if value is None:
        return [default] * n_motifs
    if isinstance(value, (str, int, np.integer)):
        return [value] * n_motifs
    value = list(value)
    if len(value) != n_motifs:
        raise ValueError(f"{name} must have one entry per motif ({n_motifs}), got {len(value)}.")
    return value


# ---------------------------------------------------------------------------------------------
# Implanting


def implant_configuration(
    X_background: torch.Tensor,
    motifs: Sequence[Any] | Mapping[str, Any],
    spacings: int | Sequence[int] = 0,
    *,
    start: int | Sequence[int] | str | None = None,
    orientation: str | Sequence[str] = "+",
    sample: bool = False,
    random_state: int | np.random.Generator | None = None,
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Implant motifs, in order, at fixed spacings into every background sequence.

    The motifs are written with ``tangermeme.ersatz.multisubstitute`` (one call per distinct start),
    so the background outside them is untouched and an ``N`` (an all-zero PFM column) keeps the
    background base.

    Parameters
    ----------
    X_background: torch.Tensor, shape=(N, 4, L)
        One-hot backgrounds; not modified.
    motifs: list or dict
        Consensus strings or PFMs (4, w), e.g. the trimmed filter PFMs of
        :func:`argminn_plugin.motifs.trimmed_motifs` (a dict keys the ``motif`` column; a list of
        strings uses the strings, other list entries ``motif_{i}``).
    spacings: int or sequence of int, optional
        Bases between the end of one motif and the start of the next (``len(motifs) - 1`` values,
        or one int for every gap). Must be >= 0: implants never overlap. Default is 0.
    start: int, sequence of int, "random" or None, optional
        Start of the first motif: one int for every sequence, one per sequence, ``"random"`` (drawn
        per sequence so the whole configuration fits), or None to centre the configuration (as
        ``multisubstitute`` does). Default is None.
    orientation: str or sequence of str, optional
        ``"+"`` or ``"-"`` per motif (``"-"`` implants the reverse complement). Default is ``"+"``.
    sample: bool, optional
        Draw each implanted copy from the PFM (independently per sequence and position) instead of
        writing the consensus. Default is False.
    random_state: int, numpy.random.Generator or None, optional
        Seed for ``sample`` and ``start="random"``.

    Returns
    -------
    X_designed: torch.Tensor, shape=(N, 4, L), int8
        The designed sequences.
    implanted: pandas.DataFrame
        One row per implanted motif, columns ``example_idx, start, end, motif, strand`` (0-based,
        end exclusive, in sequence coordinates), ordered by example then position.
    """
    from tangermeme.ersatz import multisubstitute

    check_one_hot(X_background, "X_background")
    named = _named_motifs(motifs)
    n_motifs = len(named)
    n, _, length = X_background.shape
    widths = [pfm.shape[1] for _, pfm in named]
    for (name, pfm) in named:
        if pfm.shape[1] > length:
            raise ValueError(f"motifs: {name} ({pfm.shape[1]} bp) is longer than the sequences ({length} bp).")
    if isinstance(spacings, (int, np.integer)):
        gaps = [int(spacings)] * (n_motifs - 1)
    else:
        gaps = [int(s) for s in spacings]
        if len(gaps) != n_motifs - 1:
            raise ValueError(f"spacings must have len(motifs) - 1 = {n_motifs - 1} values, got {len(gaps)}.")
    if any(g < 0 for g in gaps):
        raise ValueError(f"spacings must be >= 0 (implants may not overlap), got {gaps}.")
    strands = _per_motif(orientation, n_motifs, "orientation", "+")
    if any(s not in ("+", "-") for s in strands):
        raise ValueError(f"orientation must be '+' or '-' per motif, got {strands}.")
    span = sum(widths) + sum(gaps)
    if span > length:
        raise ValueError(f"spacings: the configuration spans {span} bp but the sequences have {length} bp.")

    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    if start is None:
        starts = np.full(n, length // 2 - span // 2, dtype=np.int64)
    elif isinstance(start, str):
        if start != "random":
            raise ValueError(f"start must be an int, a sequence of ints, 'random' or None, got {start!r}.")
        starts = rng.integers(0, length - span + 1, size=n)
    elif isinstance(start, (int, np.integer)):
        starts = np.full(n, int(start), dtype=np.int64)
    else:
        starts = np.asarray(list(start), dtype=np.int64)
        if starts.shape != (n,):
            raise ValueError(f"start must have one value per sequence ({n}), got shape {starts.shape}.")
    if (starts < 0).any() or (starts + span > length).any():
        raise ValueError(f"start: the configuration ({span} bp) must fit in [0, {length}); got starts in "
                         f"[{int(starts.min())}, {int(starts.max())}].")

    copies = []
    for (name, pfm), strand in zip(named, strands):
        onehot = _one_hot(pfm, n, sample, rng)
        copies.append(onehot.flip(1).flip(2) if strand == "-" else onehot)

    X = X_background.to(torch.int8).clone()
    for s in np.unique(starts):
        rows = np.flatnonzero(starts == s)
        idx = torch.as_tensor(rows)
        X[idx] = multisubstitute(X[idx], [c[idx] for c in copies], list(gaps), start=int(s))

    records = []
    offsets = np.cumsum([0] + [w + g for w, g in zip(widths[:-1], gaps)])
    for i in range(n):
        for k, ((name, _), strand) in enumerate(zip(named, strands)):
            s = int(starts[i] + offsets[k])
            records.append((i, s, s + widths[k], name, strand))
    implanted = pd.DataFrame(records, columns=IMPLANT_COLUMNS)
    return X, implanted.astype({"example_idx": np.int64, "start": np.int64, "end": np.int64})


def _parse_configuration(configuration: Any, names: Sequence[str]) -> list[str]:
    if isinstance(configuration, pd.DataFrame):
        if "configuration" not in configuration.columns or len(configuration) == 0:
            raise ValueError("configuration: a DataFrame must be a non-empty configuration_effects table.")
        nonempty = configuration[configuration["configuration"].astype(str) != ""]
        if len(nonempty) == 0:
            raise ValueError("configuration: the table has only the empty configuration.")
        configuration = str(nonempty.iloc[0]["configuration"])
    keys = configuration.split("|") if isinstance(configuration, str) else [str(k) for k in configuration]
    out = []
    for key in keys:
        if key in names:
            out.append(key)
        elif f"filter_{key}" in names:
            out.append(f"filter_{key}")
        else:
            raise ValueError(f"configuration: motif {key!r} is not among the motifs {list(names)}.")
    if not out:
        raise ValueError("configuration is empty.")
    return out


def _modal_spacing(table: pd.DataFrame, left: str, right: str) -> int:
    rows = table[(table["motif_a"].astype(str).isin([left, left.removeprefix("filter_")]))
                 & (table["motif_b"].astype(str).isin([right, right.removeprefix("filter_")]))]
    if len(rows) == 0:
        raise ValueError(f"spacing: the spacing table has no pair ({left!r}, {right!r}).")
    rows = rows.sort_values(["count", "spacing"], ascending=[False, True], kind="stable")
    return int(rows.iloc[0]["spacing"])


def design_from_syntax(
    model: nn.Module,
    motifs: Mapping[str, Any],
    configuration: str | Sequence[Any] | pd.DataFrame,
    spacing: int | Sequence[int] | pd.DataFrame,
    *,
    n: int = 100,
    length: int | None = None,
    background: str | torch.Tensor = "iid",
    X: torch.Tensor | None = None,
    spacing_between: str = "windows",
    trim_starts: Mapping[str, int] | None = None,
    start: int | Sequence[int] | str | None = "random",
    orientation: str | Sequence[str] = "+",
    sample: bool = False,
    gc: float = 0.5,
    random_state: int | None = None,
) -> tuple[torch.Tensor, pd.DataFrame]:
    """Sequences carrying chosen motifs in a configuration and spacing learned by ``model``.

    Parameters
    ----------
    model: ARGMINN
        The model the syntax was read from (its ``filter_width`` converts window spacings).
    motifs: dict
        ``{name: PFM (4, w) or consensus}``, e.g. :func:`argminn_plugin.motifs.trimmed_motifs`.
    configuration: str, sequence or pandas.DataFrame
        Motif keys in order: ``"filter_3|filter_5"``, ``(3, 5)`` (matched to ``filter_3``...), or a
        :func:`argminn_plugin.syntax.configuration_effects` table (its first non-empty row is used;
        sort it as wanted first).
    spacing: int, sequence of int or pandas.DataFrame
        Gaps between consecutive motifs, or a :func:`argminn_plugin.syntax.pairwise_spacings` table,
        from which the modal spacing of each consecutive pair is taken.
    n: int, optional
        Number of sequences. Default is 100.
    length: int or None, optional
        Sequence length; None takes that of ``X`` (required for ``background="iid"`` without ``X``).
    background: str or torch.Tensor, optional
        ``"iid"`` (independent bases, GC fraction ``gc``, via ``tangermeme.utils.random_one_hot``),
        ``"shuffle"`` (dinucleotide shuffles of ``X``, cycled to ``n``) or a tensor (N, 4, L) of
        backgrounds to use as they are. Default is ``"iid"``.
    X: torch.Tensor or None, optional
        Sequences to shuffle for ``background="shuffle"``.
    spacing_between: str, optional
        ``"windows"`` (default): spacings are gaps between ARGMINN call windows of
        ``model.filter_width`` bp, as :func:`pairwise_spacings` reports for ``call_instances``; they
        are converted to gaps between the motifs using each motif's width and ``trim_starts``.
        ``"motifs"``: spacings are already gaps between the implanted motifs.
    trim_starts: dict or None, optional
        Offset of each trimmed motif within its filter window (``trim_start`` of
        :func:`motif_quality`); missing motifs count as 0.
    start, orientation, sample:
        See :func:`implant_configuration`. ``start`` defaults to ``"random"``.
    gc: float, optional
        GC fraction of iid backgrounds. Default is 0.5.
    random_state: int or None, optional
        Seed of backgrounds, starts and samples.

    Returns
    -------
    X_designed: torch.Tensor, shape=(n, 4, length), int8
    implanted: pandas.DataFrame
        See :func:`implant_configuration`.
    """
    from tangermeme.ersatz import dinucleotide_shuffle
    from tangermeme.utils import random_one_hot

    if not isinstance(motifs, Mapping):
        raise ValueError("motifs must be a dict {name: PFM or consensus} (e.g. trimmed_motifs output).")
    named = dict(_named_motifs(motifs))
    keys = _parse_configuration(configuration, list(named))
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}.")
    if spacing_between not in ("windows", "motifs"):
        raise ValueError(f"spacing_between must be 'windows' or 'motifs', got {spacing_between!r}.")

    if isinstance(spacing, pd.DataFrame):
        gaps = [_modal_spacing(spacing, a, b) for a, b in zip(keys[:-1], keys[1:])]
    elif isinstance(spacing, (int, np.integer)):
        gaps = [int(spacing)] * (len(keys) - 1)
    else:
        gaps = [int(s) for s in spacing]
        if len(gaps) != len(keys) - 1:
            raise ValueError(f"spacing must have {len(keys) - 1} values for configuration {keys}, got {len(gaps)}.")
    if spacing_between == "windows":
        width = int(model.filter_width)
        trims = dict(trim_starts or {})
        gaps = [g + width + trims.get(b, 0) - trims.get(a, 0) - named[a].shape[1]
                for g, a, b in zip(gaps, keys[:-1], keys[1:])]
        if any(g < 0 for g in gaps):
            raise ValueError(f"spacing: the learned spacing puts the motifs {keys} on top of each other "
                             f"(motif gaps {gaps}).")

    rng = np.random.default_rng(random_state)
    seed = int(rng.integers(0, 2**31 - 1))
    if isinstance(background, torch.Tensor):
        check_one_hot(background, "background")
        backgrounds = background[:n] if background.shape[0] >= n else background.repeat(
            math.ceil(n / background.shape[0]), 1, 1)[:n]
    elif background == "iid":
        if length is None:
            if X is None:
                raise ValueError("length must be given for iid backgrounds when X is not.")
            length = X.shape[-1]
        probs = [[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]]
        backgrounds = random_one_hot((n, 4, int(length)), probs=probs, random_state=seed)
    elif background == "shuffle":
        if X is None:
            raise ValueError("background='shuffle' needs X, the sequences to shuffle.")
        check_one_hot(X, "X")
        source = X[torch.as_tensor(np.arange(n) % X.shape[0])]
        backgrounds = dinucleotide_shuffle(source.to(torch.int8), n=1, random_state=seed)[:, 0]
    else:
        raise ValueError(f"background must be 'iid', 'shuffle' or a tensor, got {background!r}.")
    if length is not None and backgrounds.shape[-1] != length:
        raise ValueError(f"length ({length}) differs from the backgrounds' length ({backgrounds.shape[-1]}).")
    return implant_configuration(backgrounds.to(torch.int8), [(k, named[k]) for k in keys], gaps, start=start,
                                 orientation=orientation, sample=sample, random_state=rng)


# ---------------------------------------------------------------------------------------------
# Checking a design


class DesignCheck(NamedTuple):
    """Result of :func:`check_design`.

    table: pandas.DataFrame
        One row per sequence, columns :data:`CHECK_COLUMNS`.
    calls: pandas.DataFrame
        The instance calls on the designs.
    summary: dict
        ``n, mean_logit, mean_probability, fraction_active, precision, recall, fraction_exact,
        mean_attention_at_implants``.
    """

    table: pd.DataFrame
    calls: pd.DataFrame
    summary: dict


def _predict_selected(model: nn.Module, X: torch.Tensor, output: str, target: int, batch_size: int) -> np.ndarray:
    from tangermeme.predict import predict

    selector = select_output(model, output, target)
    y = predict(selector, X, batch_size=batch_size, device=str(model.filter_weights.device))
    return y[:, 0].double().cpu().numpy()


def _default_output(model: nn.Module, output: str | None) -> str:
    if output is not None:
        return output
    return "logit" if getattr(model, "head_type", "binary") == "binary" else "counts"


def check_design(
    model: nn.Module,
    X_designed: torch.Tensor,
    implanted: pd.DataFrame,
    *,
    attention_threshold: float = 0.5,
    statistics=None,
    filters=None,
    output: str | None = None,
    target: int = 0,
    min_fraction: float = 0.5,
    batch_size: int = 256,
) -> DesignCheck:
    """Predictions on designed sequences, and whether the instance calls read back the implants.

    Parameters
    ----------
    model: ARGMINN
        The model.
    X_designed: torch.Tensor, shape=(N, 4, L)
        Designed sequences.
    implanted: pandas.DataFrame
        Implanted instances (``example_idx, start, end``), as :func:`implant_configuration` returns.
    attention_threshold: float, optional
        Threshold of :func:`argminn_plugin.instances.call_instances`. Default is 0.5.
    statistics: ActivationStatistics or None, optional
        Activation statistics for the calls (e.g. from the training positives); None computes them
        on ``X_designed``.
    filters: iterable of int or None, optional
        Filters allowed to call (the quality-passed ones).
    output: str or None, optional
        :func:`select_output` output; None means ``"logit"`` (binary head) or ``"counts"``.
    target: int, optional
        Task of the logit. Default is 0.
    min_fraction: float, optional
        Overlap (fraction of the shorter interval) for a call to match an implant. Default is 0.5.
    batch_size: int, optional
        Sequences per forward pass.

    Returns
    -------
    DesignCheck
        ``exact`` in the table is True when every implant of the sequence is matched by a call and
        every call matches an implant. ``probability`` is the sigmoid of the prediction (meaningful
        for logits). ``min_attention`` is the smallest pooled (max) attention at the implants' starts.
    """
    from .instances import _overlaps, call_instances, score_instances

    check_one_hot(X_designed, "X_designed")
    missing = {"example_idx", "start", "end"} - set(implanted.columns)
    if missing:
        raise ValueError(f"implanted must have columns example_idx, start, end; missing {sorted(missing)}.")
    n, length = X_designed.shape[0], X_designed.shape[-1]
    if len(implanted) and (implanted["example_idx"].max() >= n or implanted["end"].max() > length):
        raise ValueError("implanted refers to examples or positions outside X_designed.")
    output = _default_output(model, output)
    y = _predict_selected(model, X_designed, output, target, batch_size)
    calls = call_instances(model, X_designed, statistics=statistics, filters=filters,
                           attention_threshold=attention_threshold, batch_size=batch_size,
                           device=model.filter_weights.device)
    truth = implanted.reset_index(drop=True)
    call_hit, true_hit = _overlaps(calls.reset_index(drop=True), truth, min_fraction)
    scores = score_instances(calls, truth, min_fraction=min_fraction)

    starts = truth["start"].clip(upper=length - model.filter_width).to_numpy()
    att = attention_at(model, X_designed, np.c_[truth["example_idx"].to_numpy(), starts], batch_size=batch_size)
    per_call = pd.DataFrame({"example_idx": calls["example_idx"].to_numpy(dtype=np.int64), "hit": call_hit})
    per_true = pd.DataFrame({"example_idx": truth["example_idx"].to_numpy(dtype=np.int64), "hit": true_hit,
                             "attention": att})
    idx = pd.RangeIndex(n, name="example_idx")
    table = pd.DataFrame({
        "example_idx": np.arange(n),
        "logit": y,
        "probability": 1.0 / (1.0 + np.exp(-y)),
        "n_implanted": per_true.groupby("example_idx").size().reindex(idx, fill_value=0).to_numpy(),
        "n_calls": per_call.groupby("example_idx").size().reindex(idx, fill_value=0).to_numpy(),
        "n_calls_matched": per_call.groupby("example_idx")["hit"].sum().reindex(idx, fill_value=0).to_numpy(),
        "n_implanted_found": per_true.groupby("example_idx")["hit"].sum().reindex(idx, fill_value=0).to_numpy(),
        "min_attention": per_true.groupby("example_idx")["attention"].min().reindex(idx).to_numpy(),
    })
    table["exact"] = ((table["n_calls"] == table["n_calls_matched"])
                      & (table["n_implanted"] == table["n_implanted_found"]))
    table = table.astype({"n_implanted": np.int64, "n_calls": np.int64, "n_calls_matched": np.int64,
                          "n_implanted_found": np.int64})[CHECK_COLUMNS]
    summary = {
        "n": int(n),
        "output": output,
        "mean_logit": float(np.mean(y)),
        "mean_probability": float(table["probability"].mean()),
        "fraction_active": float((y > 0).mean()),
        "precision": scores.precision,
        "recall": scores.recall,
        "n_calls": scores.n_calls,
        "n_implanted": scores.n_true,
        "fraction_exact": float(table["exact"].mean()),
        "mean_attention_at_implants": float(np.mean(att)) if len(att) else float("nan"),
    }
    return DesignCheck(table, calls, summary)


# ---------------------------------------------------------------------------------------------
# Greedy substitution side by side


class GreedyComparison(NamedTuple):
    """Result of :func:`compare_with_greedy`.

    table: pandas.DataFrame
        One row per (method, sequence), columns :data:`GREEDY_COLUMNS`; methods ``"start"``,
        ``"greedy"`` and, when given, ``"interpretable"``.
    summary: pandas.DataFrame
        Per method: ``n, mean_prediction, mean_edits, mean_calls, fraction_found``.
    X_greedy: torch.Tensor, shape=(N, 4, L)
        The greedy designs.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    X_greedy: torch.Tensor


def _edit_mask(X: torch.Tensor, X0: torch.Tensor) -> np.ndarray:
    return (X.to(torch.int8) != X0.to(torch.int8)).any(dim=1).cpu().numpy()


def _rows(method: str, X: torch.Tensor, X0: torch.Tensor, y: np.ndarray, calls: pd.DataFrame,
          edits: np.ndarray) -> list[dict]:
    rows = []
    by_example = {k: g for k, g in calls.groupby("example_idx")} if len(calls) else {}
    for i in range(X.shape[0]):
        group = by_example.get(i)
        at_edits = 0
        if group is not None:
            for s, e in group[["start", "end"]].itertuples(index=False):
                at_edits += bool(edits[i, s:e].any())
        rows.append({"method": method, "example_idx": i, "prediction": float(y[i]),
                     "n_edits": int(edits[i].sum()), "n_calls": 0 if group is None else len(group),
                     "n_calls_at_edits": int(at_edits), "found_instance": bool(at_edits > 0)})
    return rows


def compare_with_greedy(
    model: nn.Module,
    X_start: torch.Tensor,
    *,
    max_iter: int,
    target: int = 0,
    output: str | None = None,
    y: float | None = None,
    motifs: Sequence[str] | None = None,
    reverse_complement: bool = True,
    designed: torch.Tensor | None = None,
    attention_threshold: float = 0.5,
    statistics=None,
    filters=None,
    batch_size: int = 64,
) -> GreedyComparison:
    """Design with ``tangermeme.design.greedy_substitution`` and summarise it next to ARGMINN's read-out.

    Greedy substitution designs one sequence at a time, so it is called once per row of
    ``X_start``; ``max_iter`` is required because tangermeme's default (-1) runs no round at all.

    Parameters
    ----------
    model: ARGMINN
        The model (the greedy target is one :func:`select_output` output).
    X_start: torch.Tensor, shape=(N, 4, L)
        Starting sequences (e.g. the backgrounds of the interpretable design).
    max_iter: int
        Greedy rounds (each one substitution); must be >= 1.
    target: int, optional
        Logit column (binary head). Default is 0.
    output: str or None, optional
        :func:`select_output` output; None means ``"logit"`` or ``"counts"`` by head.
    y: float or None, optional
        Desired output value (MSE loss, unreduced); None maximises the output.
    motifs: list of str or None, optional
        Strings greedy substitution may insert (e.g. the filters' consensus); None means single bases.
    reverse_complement: bool, optional
        Also try the reverse complement of ``motifs``. Default is True.
    designed: torch.Tensor or None, optional
        The interpretable designs made from the same ``X_start`` (e.g. by
        :func:`implant_configuration`), summarised as method ``"interpretable"``.
    attention_threshold, statistics, filters:
        Passed to :func:`argminn_plugin.instances.call_instances` for every method; None statistics
        are computed once on all the sequences compared (start, greedy and interpretable).
    batch_size: int, optional
        Batch size of the predictions. Default is 64.

    Returns
    -------
    GreedyComparison
        ``n_edits`` counts positions differing from ``X_start``; ``n_calls_at_edits`` the instance
        calls whose window covers an edited base; ``found_instance`` whether there is one.
    """
    from tangermeme.design import greedy_substitution

    from .instances import activation_statistics, call_instances

    check_one_hot(X_start, "X_start")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int (tangermeme's default -1 runs no round), got {max_iter!r}.")
    if designed is not None:
        check_one_hot(designed, "designed")
        if designed.shape != X_start.shape:
            raise ValueError(f"designed must have the shape of X_start {tuple(X_start.shape)}, "
                             f"got {tuple(designed.shape)}.")
    output = _default_output(model, output)
    selector = select_output(model, output, target)
    device = str(model.filter_weights.device)
    loss = torch.nn.MSELoss(reduction="none")
    y_target = None if y is None else torch.tensor([[float(y)]])
    X0 = X_start.to(torch.int8)
    greedy = torch.cat([
        greedy_substitution(selector, X0[i : i + 1], y=y_target, motifs=None if motifs is None else list(motifs),
                            loss=loss, reverse_complement=reverse_complement and motifs is not None,
                            max_iter=int(max_iter), batch_size=batch_size, device=device)
        for i in range(X0.shape[0])
    ]).to(torch.int8)

    candidates = [("start", X0), ("greedy", greedy)]
    if designed is not None:
        candidates.append(("interpretable", designed.to(torch.int8)))
    if statistics is None:  # one set of statistics for every method, so the calls are comparable
        statistics = activation_statistics(model, torch.cat([X for _, X in candidates]), batch_size=batch_size,
                                           device=model.filter_weights.device)
    rows = []
    for method, X in candidates:
        preds = _predict_selected(model, X, output, target, batch_size)
        calls = call_instances(model, X, statistics=statistics, filters=filters,
                               attention_threshold=attention_threshold, batch_size=batch_size,
                               device=model.filter_weights.device)
        rows += _rows(method, X, X0, preds, calls, _edit_mask(X, X0))
    table = pd.DataFrame(rows, columns=GREEDY_COLUMNS)
    summary = table.groupby("method", sort=False).agg(
        n=("example_idx", "size"), mean_prediction=("prediction", "mean"), mean_edits=("n_edits", "mean"),
        mean_calls=("n_calls", "mean"), fraction_found=("found_instance", "mean"),
    ).reset_index()
    return GreedyComparison(table, summary, greedy)


# ---------------------------------------------------------------------------------------------
# A hand-built detector


@torch.no_grad()
def build_motif_detector(
    motifs: Sequence[Any] | Mapping[str, Any],
    *,
    filter_width: int | None = None,
    mismatches: int = 3,
    sharpness: float = 30.0,
    gain: float = 4.0,
    head: str = "binary",
    trimming: int = 0,
    n_outputs: int = 1,
    footprint_width: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """An ARGMINN whose weights are set by hand so that it detects the given motifs.

    Filter ``f`` holds motif ``f`` (consensus, forward strand, at the filter's left edge): weight 1
    on each consensus base and bias ``-(w - mismatches - 0.5)``, so an exact match activates to
    ``mismatches + 0.5`` and every mismatch costs 1 (windows with more than ``mismatches``
    mismatches stay at 0). Head ``f`` of the single attention layer attends to filter ``f`` with
    logits ``sharpness * activation``, so it points at the best match of its motif. The output (the
    binary logit, or the log counts of the profile head) increases with the sum over motifs of the
    attended activations and is 0 when that sum is one mismatch short of every motif matching
    exactly; ``gain`` scales it. The profile head places a Gaussian footprint at attended instances.
    No BatchNorm is used. A positive control, not a trained model.

    Parameters
    ----------
    motifs: list or dict
        Consensus strings or PFMs (consensus taken); at most 8.
    filter_width: int or None, optional
        Width of the filters; None means the longest motif.
    mismatches: int, optional
        Mismatches still giving a positive activation. Default is 3.
    sharpness: float, optional
        Attention logit per unit activation. Default is 30.
    gain: float, optional
        Scale of the output. Default is 4.
    head: str, optional
        ``"binary"`` or ``"profile"``. Default is ``"binary"``.
    trimming, n_outputs, footprint_width:
        Profile-head sizes (no control tracks). ``footprint_width`` None means ``filter_width + 10``.
    dtype: torch.dtype, optional
        Parameter dtype. Default is float32.

    Returns
    -------
    ARGMINN
        In eval mode.
    """
    from .model import ARGMINN

    named = _named_motifs(motifs)
    consensus = [_consensus(pfm) for _, pfm in named]
    n_motifs = len(named)
    if n_motifs > 8:
        raise ValueError(f"motifs: at most 8 motifs, got {n_motifs}.")
    width = max(len(c) for c in consensus) if filter_width is None else int(filter_width)
    if any(len(c) > width for c in consensus):
        raise ValueError(f"motifs: a motif is longer than filter_width ({width}).")
    head_dim = 4
    token_dim = head_dim * n_motifs
    stream_dim = 16
    kwargs: dict[str, Any] = {}
    if head == "profile":
        kwargs = {"n_outputs": n_outputs, "n_control_tracks": 0, "trimming": trimming,
                  "footprint_width": width + 10 if footprint_width is None else footprint_width}
    model = ARGMINN(n_filters=n_motifs, filter_width=width, n_attention_layers=1, n_heads=n_motifs,
                    token_dim=token_dim, stream_dim=stream_dim, head=head, batch_norm=False, verbose=False,
                    **kwargs)
    exact = mismatches + 0.5

    conv = model.scanner.conv
    conv.weight.zero_()
    for f, c in enumerate(consensus):
        informative = [j for j, b in enumerate(c) if b != "N"]
        for j in informative:
            conv.weight[f, ALPHABET.index(c[j]), j] = 1.0
        conv.bias[f] = -(len(informative) - exact)

    token = model.syntax.token  # Linear(F + pos_enc_dim -> token_dim)
    token.weight.zero_()
    token.bias.zero_()
    for f in range(n_motifs):
        token.weight[f * head_dim, f] = 1.0

    layer = model.syntax.layers[0]
    layer.query.weight.zero_()
    layer.query.bias.zero_()
    for f in range(n_motifs):
        layer.query.bias[f * head_dim] = sharpness * math.sqrt(head_dim)
    layer.value.weight.copy_(torch.eye(token_dim))
    layer.value.bias.zero_()

    # summary[0] = sum_f attended activation_f - threshold, with two constant components so that the
    # LayerNorms stay monotone (almost linear) in it.
    big = 4.0
    layer.output.weight.zero_()
    layer.output.bias.zero_()
    for f in range(n_motifs):
        layer.output.weight[0, f * head_dim] = 1.0
    layer.output.bias[0] = -(n_motifs * exact - 1.0)
    layer.output.bias[-2], layer.output.bias[-1] = big, -big
    shift = 10.0
    layer.ffn_in.weight.zero_()
    layer.ffn_in.bias.zero_()
    layer.ffn_in.weight[0, 0] = 1.0
    layer.ffn_in.bias[0] = shift
    layer.ffn_out.weight.zero_()
    layer.ffn_out.bias.zero_()
    layer.ffn_out.weight[0, 0] = 1.0
    layer.ffn_out.bias[0] = -shift
    layer.ffn_out.bias[-2], layer.ffn_out.bias[-1] = big, -big

    def readout_feature(total: float) -> torch.Tensor:
        read = torch.zeros(1, token_dim)
        read[0, 0] = total
        summary = layer.output_norm(layer.output(read))
        stream = model.syntax.stream[None] + layer.ffn_norm(layer.ffn_out(layer.ffn_relu(layer.ffn_in(summary))))
        return stream

    # Calibrate: output 0 at one mismatch short (sum = n * exact - 1), slope `gain` per unit sum.
    norm = model.head.norm if head == "binary" else model.head.count_norm
    linear = model.head.linear if head == "binary" else model.head.count
    lo = norm(readout_feature(n_motifs * exact - 1.0))[0, 0]
    hi = norm(readout_feature(n_motifs * exact))[0, 0]
    linear.weight.zero_()
    linear.weight[0, 0] = gain / float(hi - lo)
    linear.bias.fill_(-float(lo) * gain / float(hi - lo))
    if head == "profile":
        fp = model.head.footprint
        grid = torch.arange(fp.weight.shape[-1], dtype=torch.float64)
        bump = torch.exp(-0.5 * ((grid - grid.mean()) / 3.0) ** 2)
        fp.weight.copy_(bump.expand_as(fp.weight).to(fp.weight.dtype))
        if fp.bias is not None:
            fp.bias.zero_()
    return model.to(dtype).eval()
