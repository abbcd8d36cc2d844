"""Motif syntax read off ARGMINN's instance calls: configurations, spacings and their effects.

Following ``argminn.md`` §7.3, the *configuration* of a sequence is the tuple of motif keys (motif
names or filter IDs) of its instance calls sorted by position, and the *spacing* of two hits is the
gap between them: the start of the right hit minus the end of the left one, i.e. the difference of
positions minus the width (``K`` for ARGMINN calls). Overlapping hits therefore have a negative
spacing; they are kept, since ARGMINN can call a site at two neighbouring positions.

Everything here works on an instance table with at least ``example_idx, start, end`` and a key
column (``motif`` by default), such as :func:`argminn_plugin.instances.call_instances` returns or
the ``instances`` truth table of :func:`argminn_plugin.simulate.simulate_sequences`.

* :func:`motif_configurations`: one row per example with its configuration.
* :func:`pairwise_spacings`: counts of (left motif, right motif, spacing) for consecutive hits or all
  pairs.
* :func:`pairwise_counts`: co-occurrence counts in the layout of
  ``tangermeme.annotate.pairwise_annotations`` (built by calling that function).
* :func:`configuration_effects`: which configurations come with high predictions.
* :func:`extract_syntax`: the three tables from a model and sequences in one call.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from ._validation import check_one_hot

__all__ = [
    "CONFIGURATION_COLUMNS",
    "EFFECT_COLUMNS",
    "SPACING_COLUMNS",
    "SyntaxResult",
    "configuration_effects",
    "extract_syntax",
    "motif_configurations",
    "pairwise_counts",
    "pairwise_spacings",
]

CONFIGURATION_COLUMNS = ["example_idx", "configuration", "motifs", "n_instances"]
SPACING_COLUMNS = ["motif_a", "motif_b", "spacing", "count"]
EFFECT_COLUMNS = ["configuration", "count", "fraction", "mean_logit", "std_logit", "mean_probability"]


def _check_instances(instances: pd.DataFrame, key: str) -> None:
    if not isinstance(instances, pd.DataFrame):
        raise ValueError(f"instances must be a pandas DataFrame, got {type(instances).__name__}.")
    needed = ["example_idx", "start", "end", key]
    missing = [c for c in needed if c not in instances.columns]
    if missing:
        raise ValueError(f"instances must have columns {needed}; missing {missing}.")
    if len(instances):
        if (instances["example_idx"].to_numpy() < 0).any():
            raise ValueError("instances have a negative example_idx.")
        if (instances["end"].to_numpy() < instances["start"].to_numpy()).any():
            raise ValueError("instances have end < start.")


def _sorted_hits(instances: pd.DataFrame) -> pd.DataFrame:
    """The hits ordered by example, then position (start, then end); ties keep their table order."""
    return instances.sort_values(["example_idx", "start", "end"], kind="stable").reset_index(drop=True)


def _label(value: Any) -> str:
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    return str(value)


def motif_configurations(
    instances: pd.DataFrame,
    *,
    key: str = "motif",
    n_examples: int | None = None,
    sep: str = "|",
) -> pd.DataFrame:
    """The motif configuration of every example: its hits' keys in order of position.

    Parameters
    ----------
    instances: pandas.DataFrame
        Instance calls with columns ``example_idx, start, end`` and ``key``.
    key: str, optional
        Column naming the motif of each hit (``"motif"`` or ``"filter"``). Default is ``"motif"``.
    n_examples: int or None, optional
        Number of sequences the calls were made on. When given, every example ``0 .. n_examples - 1``
        gets a row, those without calls with the empty configuration ``""``. Default is None: only
        examples with at least one call.
    sep: str, optional
        Separator of the keys in the configuration string. Default is ``"|"``.

    Returns
    -------
    pandas.DataFrame
        One row per example, sorted by ``example_idx``, with columns ``example_idx``,
        ``configuration`` (str, e.g. ``"GATA|TAL"``), ``motifs`` (tuple of the keys, their original
        type) and ``n_instances``. Hits are ordered by start, then end; ties keep their table order.
    """
    _check_instances(instances, key)
    if n_examples is not None:
        if not isinstance(n_examples, (int, np.integer)) or isinstance(n_examples, bool) or n_examples < 0:
            raise ValueError(f"n_examples must be a non-negative int, got {n_examples!r}.")
        if len(instances) and int(instances["example_idx"].max()) >= n_examples:
            raise ValueError(
                f"instances refer to example {int(instances['example_idx'].max())} but n_examples is {n_examples}."
            )
    hits = _sorted_hits(instances)
    rows: dict[int, tuple] = {}
    for example, group in hits.groupby("example_idx", sort=True):
        motifs = tuple(v.item() if isinstance(v, np.generic) else v for v in group[key].tolist())
        rows[int(example)] = motifs
    examples = range(int(n_examples)) if n_examples is not None else sorted(rows)
    records = []
    for example in examples:
        motifs = rows.get(example, ())
        records.append({
            "example_idx": example,
            "configuration": sep.join(_label(m) for m in motifs),
            "motifs": motifs,
            "n_instances": len(motifs),
        })
    out = pd.DataFrame(records, columns=CONFIGURATION_COLUMNS)
    return out.astype({"example_idx": np.int64, "n_instances": np.int64})


def pairwise_spacings(
    instances: pd.DataFrame,
    *,
    key: str = "motif",
    max_distance: int | None = 100,
    consecutive: bool = True,
) -> pd.DataFrame:
    """Counts of (left motif, right motif, spacing) over all examples.

    Within each example the hits are ordered by start (then end); a pair is two consecutive hits
    (``consecutive=True``, the read-out of ``argminn.md`` §7.3) or any two hits (``False``). The
    spacing is ``start_b - end_a``, the number of bases between the left hit ``a`` and the right hit
    ``b`` (the difference in position minus the width); hits that overlap have a negative spacing.

    Parameters
    ----------
    instances: pandas.DataFrame
        Instance calls with columns ``example_idx, start, end`` and ``key``.
    key: str, optional
        Column naming the motif of each hit. Default is ``"motif"``.
    max_distance: int or None, optional
        Keep pairs with ``spacing < max_distance`` (the bins of
        ``tangermeme.annotate.pairwise_annotations_spacing``); None keeps every pair. Default is 100.
    consecutive: bool, optional
        Only pairs of neighbouring hits (True) or every pair of hits in an example (False).
        Default is True.

    Returns
    -------
    pandas.DataFrame
        Columns ``motif_a`` (left hit), ``motif_b`` (right hit), ``spacing`` and ``count``, one row
        per distinct triple, sorted by ``motif_a, motif_b, spacing``.
    """
    _check_instances(instances, key)
    if max_distance is not None and (not isinstance(max_distance, (int, np.integer)) or max_distance < 1):
        raise ValueError(f"max_distance must be a positive int or None, got {max_distance!r}.")
    hits = _sorted_hits(instances)
    examples = hits["example_idx"].to_numpy()
    starts = hits["start"].to_numpy().astype(np.int64)
    ends = hits["end"].to_numpy().astype(np.int64)
    keys = hits[key].to_numpy()
    # Boundaries of each example's run of rows (rows are sorted by example).
    bounds = np.flatnonzero(np.diff(examples)) + 1
    left, right = [], []
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(hits)]):
        n = hi - lo
        if n < 2:
            continue
        if consecutive:
            i = np.arange(lo, hi - 1)
            j = i + 1
        else:
            i, j = np.triu_indices(n, k=1)
            i, j = i + lo, j + lo
        left.append(i)
        right.append(j)
    if not left:
        return pd.DataFrame({"motif_a": pd.Series(dtype=object), "motif_b": pd.Series(dtype=object),
                             "spacing": pd.Series(dtype=np.int64), "count": pd.Series(dtype=np.int64)})
    i, j = np.concatenate(left), np.concatenate(right)
    pairs = pd.DataFrame({"motif_a": keys[i], "motif_b": keys[j], "spacing": starts[j] - ends[i]})
    if max_distance is not None:
        pairs = pairs[pairs["spacing"] < max_distance]
    counts = pairs.groupby(["motif_a", "motif_b", "spacing"], sort=True).size().rename("count").reset_index()
    return counts.astype({"spacing": np.int64, "count": np.int64})[SPACING_COLUMNS]


def pairwise_counts(
    instances: pd.DataFrame,
    keys: Sequence[Hashable] | int | None = None,
    *,
    key: str = "motif",
    unique: bool = True,
    symmetric: bool = True,
    return_tensor: bool = False,
) -> pd.DataFrame | torch.Tensor:
    """How often two motifs occur in the same example, via ``tangermeme.annotate.pairwise_annotations``.

    The instance table is turned into tangermeme's ``(example_idx, annotation_idx)`` tensor, rows
    sorted by example and position (so that with ``symmetric=False`` the row motif is the left hit),
    and passed to ``pairwise_annotations``; the result is therefore exactly tangermeme's.

    Parameters
    ----------
    instances: pandas.DataFrame
        Instance calls with columns ``example_idx, start, end`` and ``key``.
    keys: sequence, int or None, optional
        The motif keys in matrix order; an int ``F`` means ``range(F)`` (for ``key="filter"``). None
        uses the sorted distinct keys of the table. A key in the table but not in ``keys`` raises.
    key: str, optional
        Column naming the motif of each hit. Default is ``"motif"``.
    unique: bool, optional
        Count each pair of motifs once per example (tangermeme's ``unique``). Default is True.
    symmetric: bool, optional
        Symmetric matrix (tangermeme's ``symmetric``). Default is True.
    return_tensor: bool, optional
        Return tangermeme's tensor itself instead of a labelled DataFrame. Default is False.

    Returns
    -------
    pandas.DataFrame or torch.Tensor, shape=(n_keys, n_keys)
        Counts indexed (rows and columns) by ``keys``.
    """
    from tangermeme.annotate import pairwise_annotations

    _check_instances(instances, key)
    if keys is None:
        keys = sorted(pd.unique(instances[key]).tolist(), key=lambda v: (str(type(v)), v))
    elif isinstance(keys, (int, np.integer)) and not isinstance(keys, bool):
        keys = list(range(int(keys)))
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise ValueError("keys must be distinct.")
    index = {k: i for i, k in enumerate(keys)}
    unknown = sorted({_label(v) for v in instances[key] if v not in index})
    if unknown:
        raise ValueError(f"instances have keys not in `keys`: {unknown[:10]}.")
    n = len(keys)
    if len(instances) == 0 or n == 0:
        counts = torch.zeros(n, n, dtype=torch.int64)
    else:
        hits = _sorted_hits(instances)
        codes = torch.tensor([index[v] for v in hits[key]], dtype=torch.int64)
        examples = torch.as_tensor(hits["example_idx"].to_numpy().astype(np.int64))
        counts = pairwise_annotations(torch.stack([examples, codes], dim=1), unique=unique,
                                      symmetric=symmetric, shape=n)
    if return_tensor:
        return counts
    return pd.DataFrame(counts.numpy(), index=pd.Index(keys, name="motif_a"),
                        columns=pd.Index(keys, name="motif_b"))


def _as_vector(values: Any, name: str, task: int | None = None) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    values = np.asarray(values, dtype=float)
    if values.ndim == 2 and task is not None:
        if not 0 <= task < values.shape[1]:
            raise ValueError(f"task {task} is out of range for {name} of shape {values.shape}.")
        values = values[:, task]
    if values.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, n_tasks), got {values.shape}.")
    return values


def configuration_effects(
    configurations: pd.DataFrame | Sequence[str],
    predictions: torch.Tensor | np.ndarray | Sequence[float],
    labels: torch.Tensor | np.ndarray | Sequence[float] | None = None,
    *,
    task: int = 0,
    logits: bool = True,
) -> pd.DataFrame:
    """Which configurations come with high predictions: per-configuration summaries.

    Parameters
    ----------
    configurations: pandas.DataFrame or sequence of str
        The table of :func:`motif_configurations` (examples it lacks get the empty configuration
        ``""``, i.e. no calls), or one configuration string per example.
    predictions: torch.Tensor or numpy.ndarray, shape=(N,) or (N, n_tasks)
        Model output per example, logits unless ``logits=False`` (then probabilities).
    labels: torch.Tensor or numpy.ndarray, shape=(N,) or (N, n_tasks), optional
        Binary labels; adds ``n_positive`` and ``fraction_positive``.
    task: int, optional
        Column of 2-D ``predictions`` / ``labels`` to use. Default is 0.
    logits: bool, optional
        Whether ``predictions`` are logits (True) or probabilities in [0, 1]. Default is True.

    Returns
    -------
    pandas.DataFrame
        One row per configuration with ``configuration, count, fraction, mean_logit, std_logit,
        mean_probability`` (and ``n_positive, fraction_positive`` with labels), sorted by ``count``
        (descending), then ``mean_probability`` (descending). ``std_logit`` is the population
        standard deviation (0 for a single example).
    """
    preds = _as_vector(predictions, "predictions", task)
    n = len(preds)
    if isinstance(configurations, pd.DataFrame):
        if not {"example_idx", "configuration"} <= set(configurations.columns):
            raise ValueError("configurations must have columns example_idx and configuration "
                             "(the output of motif_configurations).")
        idx = configurations["example_idx"].to_numpy().astype(np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"configurations refer to examples outside the {n} predictions.")
        if len(np.unique(idx)) != len(idx):
            raise ValueError("configurations has repeated example_idx values.")
        config = np.full(n, "", dtype=object)
        config[idx] = configurations["configuration"].astype(str).to_numpy()
    else:
        config = np.asarray([str(c) for c in configurations], dtype=object)
        if len(config) != n:
            raise ValueError(f"got {len(config)} configurations for {n} predictions.")
    if logits:
        logit = preds
        prob = 1.0 / (1.0 + np.exp(-preds))
    else:
        if ((preds < 0) | (preds > 1)).any():
            raise ValueError("predictions must be probabilities in [0, 1] when logits=False.")
        prob = preds
        clipped = np.clip(preds, 1e-12, 1 - 1e-12)
        logit = np.log(clipped / (1 - clipped))
    table = pd.DataFrame({"configuration": config, "logit": logit, "probability": prob})
    if labels is not None:
        y = _as_vector(labels, "labels", task)
        if len(y) != n:
            raise ValueError(f"got {len(y)} labels for {n} predictions.")
        table["label"] = y
    grouped = table.groupby("configuration", sort=False)
    out = pd.DataFrame({
        "count": grouped.size(),
        "mean_logit": grouped["logit"].mean(),
        "std_logit": grouped["logit"].std(ddof=0),
        "mean_probability": grouped["probability"].mean(),
    })
    out["fraction"] = out["count"] / max(n, 1)
    columns = list(EFFECT_COLUMNS)
    if labels is not None:
        out["n_positive"] = grouped["label"].apply(lambda v: int((v > 0.5).sum()))
        out["fraction_positive"] = out["n_positive"] / out["count"]
        columns += ["n_positive", "fraction_positive"]
    out = out.reset_index().sort_values(["count", "mean_probability", "configuration"],
                                        ascending=[False, False, True], kind="stable")
    return out[columns].reset_index(drop=True).astype({"count": np.int64})


class SyntaxResult(NamedTuple):
    """The syntax read-outs of :func:`extract_syntax`.

    configurations: pandas.DataFrame
        One row per sequence (all of ``X``), see :func:`motif_configurations`.
    spacings: pandas.DataFrame
        See :func:`pairwise_spacings`.
    effects: pandas.DataFrame
        See :func:`configuration_effects`.
    instances: pandas.DataFrame
        The instance calls used.
    predictions: torch.Tensor, shape=(N, n_outputs)
        The model's output used for the effects (logits, or log counts for a profile head).
    """

    configurations: pd.DataFrame
    spacings: pd.DataFrame
    effects: pd.DataFrame
    instances: pd.DataFrame
    predictions: torch.Tensor


def extract_syntax(
    model: torch.nn.Module,
    X: torch.Tensor,
    instances: pd.DataFrame | None = None,
    *,
    labels: torch.Tensor | np.ndarray | None = None,
    key: str = "motif",
    max_distance: int | None = 100,
    consecutive: bool = True,
    task: int = 0,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    **call_kwargs: Any,
) -> SyntaxResult:
    """Configurations, spacings and configuration effects of ``model`` on ``X`` in one call.

    Instances are called with :func:`argminn_plugin.instances.call_instances` unless given;
    predictions come from ``tangermeme.predict.predict``. For a model with the profile head (whose
    output is a tuple) the last output, the log counts, is used as the prediction, and
    ``mean_probability`` in the effects is then only a monotone transform of it.

    Parameters
    ----------
    model: ARGMINN
        A trained model.
    X: torch.Tensor, shape=(N, 4, L)
        One-hot sequences.
    instances: pandas.DataFrame or None, optional
        Instance calls on ``X``; None calls them. Default is None.
    labels: torch.Tensor or numpy.ndarray, shape=(N,), optional
        Labels for the ``fraction_positive`` column of the effects.
    key: str, optional
        Instance column naming motifs. Default is ``"motif"``.
    max_distance: int or None, optional
        See :func:`pairwise_spacings`. Default is 100.
    consecutive: bool, optional
        See :func:`pairwise_spacings`. Default is True.
    task: int, optional
        Output column used for the effects. Default is 0.
    batch_size: int, optional
        Sequences per forward pass. Default is 256.
    device: str, torch.device or None, optional
        None means CUDA when available (tangermeme's convention).
    **call_kwargs
        Passed to ``call_instances`` (e.g. ``filters``, ``attention_threshold``, ``statistics``,
        ``filter_names``).

    Returns
    -------
    SyntaxResult
    """
    from tangermeme.predict import predict

    from ._validation import resolve_device
    from .instances import call_instances

    check_one_hot(X, "X")
    if instances is None:
        instances = call_instances(model, X, batch_size=batch_size, device=device, **call_kwargs)
    elif call_kwargs:
        raise ValueError(f"instances were given, so the call_instances keywords {sorted(call_kwargs)} would be unused.")
    device = resolve_device(device)
    y = predict(model, X, batch_size=batch_size, device=str(device))
    if isinstance(y, (list, tuple)):
        y = y[-1]
    y = y.reshape(y.shape[0], -1)
    configurations = motif_configurations(instances, key=key, n_examples=X.shape[0])
    spacings = pairwise_spacings(instances, key=key, max_distance=max_distance, consecutive=consecutive)
    effects = configuration_effects(configurations, y, labels, task=task)
    return SyntaxResult(configurations, spacings, effects, instances, y)
