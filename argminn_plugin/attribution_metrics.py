"""Attribution cleanliness and seed-to-seed stability, to compare models trained with and without
the Fourier attribution prior (``specs/fourier_prior.md`` §3.2).

Conventions
-----------
* Attribution arrays have the plugin's layout (N, 4, L): sequences x bases (A, C, G, T) x
  positions. Arrays may be numpy arrays or torch tensors; all metrics are computed in float64
  numpy and returned as numpy arrays or Python floats.
* *Hypothetical* attributions give a score to every base at every position (DeepLIFT-SHAP
  hypothetical contributions, or the raw input gradient). *Actual* importance is hypothetical x
  one-hot: only the observed base keeps its value. Stability is measured on hypothetical
  attributions (an actual track L1-normalised per position is just the sign of the observed
  base, so the continuous Jaccard would only compare signs); cleanliness on actual importance.

Metrics
-------
Stability (§3.2c):

* :func:`continuous_jaccard`: per position, both tracks are L1-normalised over the 4 bases; the
  intersection is ``sum_c min(|u_c|, |v_c|) * sign(u_c) * sign(v_c)`` and the union
  ``sum_c max(|u_c|, |v_c|)``; their ratio (0 where the union is 0) is **summed** over positions,
  so the value lies in [-L, L]. Identical tracks score the number of positions with any non-zero
  score; a sign flip of every score gives the negative of that.
* :func:`cosine_similarity`: the cosine of the flattened (4 * L) tracks.
* :func:`pairwise_stability`: per sample, the mean of a similarity over all pairs of models
  (models trained from different random initialisations).

Cleanliness on a simulated ground truth (§3.2a):

* :func:`motif_mask`: a (N, L) boolean mask of the planted motif instances.
* :func:`importance_in_motifs`: per sequence, the fraction of ``sum |actual importance|`` that
  lies inside the mask.
* :func:`ranked_base_auprc`: all positions of all sequences ranked by |actual importance|; the
  area under the precision-recall curve of "the position lies in a motif". Computed with
  scikit-learn's ``average_precision_score``, i.e. the step-wise sum
  ``sum_n (R_n - R_{n-1}) P_n`` over score thresholds (no trapezoidal interpolation; tied scores
  form one threshold).
* Smoothness: the Fourier-prior loss (:func:`argminn_plugin.fourier_prior.fourier_prior_loss`) of
  the actual-importance track ``sum_c |actual|``; lower means less high-frequency noise and less
  diffuse (DC) importance.

Comparison:

* :func:`compare_prior` computes all of the above for the two conditions and tests "prior is
  better" with one-sided tests: a Wilcoxon signed-rank test over samples for per-sample metrics
  (paired: the same sequences), and a Mann-Whitney U test over models for per-model metrics
  (auPRC).
* :func:`train_prior_pair` trains one architecture with and without the prior over several seeds
  with :func:`argminn_plugin.training.fit`; the two runs of a seed share the initial weights and
  the batch order.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

__all__ = [
    "continuous_jaccard",
    "cosine_similarity",
    "pairwise_stability",
    "motif_mask",
    "importance_in_motifs",
    "ranked_base_auprc",
    "attribution_smoothness",
    "one_sided_wilcoxon",
    "compute_attributions",
    "compare_prior",
    "PriorPair",
    "train_prior_pair",
]

CONDITIONS = ("prior", "no_prior")


# ---------------------------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------------------------


def _as_array(A: Any, name: str) -> np.ndarray:
    if isinstance(A, torch.Tensor):
        A = A.detach().cpu().to(torch.float64).numpy()
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 3 or A.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4, L) but has shape {A.shape}.")
    return A


def _pair(U: Any, V: Any) -> tuple[np.ndarray, np.ndarray]:
    U, V = _as_array(U, "U"), _as_array(V, "V")
    if U.shape != V.shape:
        raise ValueError(f"U and V must have the same shape, got {U.shape} and {V.shape}.")
    return U, V


def _tracks(X_attr: Any, name: str = "X_attr") -> np.ndarray:
    """|importance| per position, (N, L): the sum over bases of (N, 4, L) or the abs of (N, L)."""
    if isinstance(X_attr, torch.Tensor):
        X_attr = X_attr.detach().cpu().to(torch.float64).numpy()
    X_attr = np.asarray(X_attr, dtype=np.float64)
    if X_attr.ndim == 3 and X_attr.shape[1] == 4:
        return np.abs(X_attr).sum(axis=1)
    if X_attr.ndim == 2:
        return np.abs(X_attr)
    raise ValueError(f"{name} must have shape (N, 4, L) or (N, L) but has shape {X_attr.shape}.")


def _mask_array(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask).astype(bool)
    if mask.shape != shape:
        raise ValueError(f"mask must have shape (N, L) = {shape} but has shape {mask.shape}.")
    return mask


# ---------------------------------------------------------------------------------------------
# Stability
# ---------------------------------------------------------------------------------------------


def _l1_normalise(A: np.ndarray) -> np.ndarray:
    total = np.abs(A).sum(axis=1, keepdims=True)
    return np.divide(A, total, out=np.zeros_like(A), where=total > 0)


def continuous_jaccard(U: Any, V: Any) -> np.ndarray:
    """Continuous Jaccard similarity of two sets of attribution tracks, summed over positions.

    Each position of each track is first L1-normalised over its 4 bases (a position whose scores
    are all 0 stays 0). Then, per position, ``intersection = sum_c min(|u_c|, |v_c|) * sign(u_c) *
    sign(v_c)`` and ``union = sum_c max(|u_c|, |v_c|)``; the ratio is 0 where the union is 0. The
    ratios are **summed** (not averaged) over positions, as in the original analysis, so the
    result lies in [-L, L]: identical tracks give the number of positions with a non-zero score,
    and ``V = -U`` gives minus that number.

    Parameters
    ----------
    U, V: numpy.ndarray or torch.Tensor, shape=(N, 4, L)
        Attribution tracks (hypothetical scores, for the stability analysis).

    Returns
    -------
    similarity: numpy.ndarray, shape=(N,)
        The continuous Jaccard similarity of each pair ``U[i], V[i]``.
    """
    U, V = _pair(U, V)
    u, v = _l1_normalise(U), _l1_normalise(V)
    au, av = np.abs(u), np.abs(v)
    intersection = (np.minimum(au, av) * np.sign(u) * np.sign(v)).sum(axis=1)
    union = np.maximum(au, av).sum(axis=1)
    ratio = np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
    return ratio.sum(axis=-1)


def cosine_similarity(U: Any, V: Any) -> np.ndarray:
    """Cosine similarity of the flattened (4 * L) attribution tracks, per sample.

    Parameters
    ----------
    U, V: numpy.ndarray or torch.Tensor, shape=(N, 4, L)
        Attribution tracks.

    Returns
    -------
    similarity: numpy.ndarray, shape=(N,)
        ``<u, v> / (|u| |v|)``, in [-1, 1]; 0 where either track is all zero.
    """
    U, V = _pair(U, V)
    u, v = U.reshape(len(U), -1), V.reshape(len(V), -1)
    dot = (u * v).sum(axis=1)
    norms = np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1)
    return np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)


_METRICS: dict[str, Callable[[Any, Any], np.ndarray]] = {
    "jaccard": continuous_jaccard,
    "cosine": cosine_similarity,
}


def pairwise_stability(
    attributions: Sequence[Any],
    metric: str | Callable[[Any, Any], np.ndarray] = "jaccard",
) -> np.ndarray:
    """Per-sample similarity of attributions from several models, averaged over model pairs.

    For M models there are M (M - 1) / 2 unordered pairs; for each sample the similarity is
    averaged over all of them (the lower triangle of the model x model similarity matrix).

    Parameters
    ----------
    attributions: sequence of numpy.ndarray or torch.Tensor, each shape=(N, 4, L)
        Attributions of the same N sequences by M >= 2 models, e.g. trained from different seeds.
    metric: str or callable, optional
        ``"jaccard"`` (:func:`continuous_jaccard`), ``"cosine"`` (:func:`cosine_similarity`) or a
        function ``f(U, V) -> (N,)``. Default is "jaccard".

    Returns
    -------
    stability: numpy.ndarray, shape=(N,)
        The mean pairwise similarity per sample.
    """
    if isinstance(metric, str):
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)} or a callable, got {metric!r}.")
        metric = _METRICS[metric]
    arrays = [_as_array(A, f"attributions[{i}]") for i, A in enumerate(attributions)]
    if len(arrays) < 2:
        raise ValueError(f"pairwise_stability needs attributions from at least 2 models, got {len(arrays)}.")
    if any(A.shape != arrays[0].shape for A in arrays):
        raise ValueError(f"all attributions must have the same shape, got {[A.shape for A in arrays]}.")
    values = [np.asarray(metric(a, b), dtype=np.float64) for a, b in itertools.combinations(arrays, 2)]
    return np.mean(values, axis=0)


# ---------------------------------------------------------------------------------------------
# Cleanliness against a simulated ground truth
# ---------------------------------------------------------------------------------------------


def motif_mask(X: Any, instances: pd.DataFrame | Mapping[str, Sequence[int]], length: int | None = None) -> np.ndarray:
    """Boolean mask of the positions covered by motif instances.

    Parameters
    ----------
    X: numpy.ndarray, torch.Tensor or int
        The sequences (N, 4, L), from which N and L are taken, or the number of sequences N (then
        ``length`` is required).
    instances: pandas.DataFrame or dict
        A truth table with columns ``example_idx`` (row of ``X``), ``start`` (0-based, inclusive)
        and ``end`` (exclusive), e.g. ``SimulationResult.instances``. Instances are clipped to
        [0, L); rows whose ``example_idx`` is outside [0, N) raise an error.
    length: int or None, optional
        Sequence length L; must equal ``X.shape[-1]`` when ``X`` is an array. Default is None.

    Returns
    -------
    mask: numpy.ndarray, dtype=bool, shape=(N, L)
        True where a position lies in at least one instance.
    """
    if isinstance(X, (int, np.integer)) and not isinstance(X, bool):
        if length is None:
            raise ValueError("length is required when X is the number of sequences.")
        n, L = int(X), int(length)
    else:
        shape = tuple(X.shape) if hasattr(X, "shape") else np.asarray(X).shape
        if len(shape) != 3:
            raise ValueError(f"X must have shape (N, 4, L) or be an int, got shape {shape}.")
        n, L = shape[0], shape[-1]
        if length is not None and int(length) != L:
            raise ValueError(f"length={length} does not match X's length {L}.")
    table = pd.DataFrame(instances)
    missing = {"example_idx", "start", "end"} - set(table.columns)
    if missing:
        raise ValueError(f"instances lacks the column(s) {sorted(missing)}.")
    mask = np.zeros((n, L), dtype=bool)
    for idx, start, end in table[["example_idx", "start", "end"]].itertuples(index=False):
        if not 0 <= int(idx) < n:
            raise ValueError(f"instance example_idx {idx} is outside [0, {n}).")
        mask[int(idx), max(int(start), 0):min(int(end), L)] = True
    return mask


def importance_in_motifs(X_attr: Any, mask: Any) -> np.ndarray:
    """Fraction of the absolute importance of each sequence that lies inside its motif mask.

    Parameters
    ----------
    X_attr: numpy.ndarray or torch.Tensor, shape=(N, 4, L) or (N, L)
        Actual importance (hypothetical x one-hot); absolute values are summed over bases.
    mask: array-like of bool, shape=(N, L)
        Motif positions, e.g. from :func:`motif_mask`.

    Returns
    -------
    fraction: numpy.ndarray, shape=(N,)
        ``sum |importance| inside / sum |importance|``, in [0, 1]; NaN for a sequence whose
        importance is all zero.
    """
    tracks = _tracks(X_attr)
    mask = _mask_array(mask, tracks.shape)
    total = tracks.sum(axis=1)
    inside = np.where(mask, tracks, 0.0).sum(axis=1)
    return np.divide(inside, total, out=np.full_like(total, np.nan), where=total > 0)


def ranked_base_auprc(X_attr: Any, mask: Any) -> float:
    """auPRC of "this position lies in a motif" along the ranking of all positions by importance.

    All positions of all sequences are pooled and scored by ``sum_c |X_attr[:, c, :]|``; the
    area under the precision-recall curve is scikit-learn's ``average_precision_score``
    (step-wise ``sum_n (R_n - R_{n-1}) P_n``, no interpolation; tied scores share a threshold).

    Parameters
    ----------
    X_attr: numpy.ndarray or torch.Tensor, shape=(N, 4, L) or (N, L)
        Actual importance.
    mask: array-like of bool, shape=(N, L)
        Motif positions.

    Returns
    -------
    auprc: float
        In [0, 1]; its chance level is the fraction of masked positions. NaN if the mask is empty.
    """
    from sklearn.metrics import average_precision_score

    tracks = _tracks(X_attr)
    mask = _mask_array(mask, tracks.shape)
    if not mask.any():
        return float("nan")
    return float(average_precision_score(mask.ravel(), tracks.ravel()))


def attribution_smoothness(
    X_attr: Any,
    freq_limit: int | None = None,
    limit_softness: float | None = 0.2,
    smooth_sigma: float = 3,
) -> np.ndarray:
    """Fourier-prior loss of the absolute importance track of each sequence (lower is smoother).

    The track ``sum_c |X_attr|`` is scored with
    :func:`argminn_plugin.fourier_prior.fourier_prior_loss`, the quantity the prior minimises.

    Parameters
    ----------
    X_attr: numpy.ndarray or torch.Tensor, shape=(N, 4, L) or (N, L)
        Actual importance.
    freq_limit: int or None, optional
        Cut-off as an rfft bin; None uses ``round(0.15 * L)`` as in training. Default is None.
    limit_softness: float or None, optional
        Soft cut-off exponent, None for a hard cut-off. Default is 0.2.
    smooth_sigma: float, optional
        Smoothing Gaussian's standard deviation. Default is 3.

    Returns
    -------
    loss: numpy.ndarray, shape=(N,)
        Values in [0, 1].
    """
    from .fourier_prior import fourier_prior_loss

    tracks = _tracks(X_attr)
    L = tracks.shape[1]
    if freq_limit is None:
        freq_limit = min(max(1, round(0.15 * L)), L // 2)
    loss = fourier_prior_loss(torch.from_numpy(tracks), freq_limit, limit_softness, smooth_sigma)
    return loss.numpy()


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def one_sided_wilcoxon(with_prior: Any, without_prior: Any, alternative: str = "greater") -> float:
    """One-sided Wilcoxon signed-rank p-value of paired values, prior vs no prior.

    ``alternative="greater"`` tests whether ``with_prior - without_prior`` tends to be positive
    (higher is better, e.g. Jaccard); ``"less"`` whether it tends to be negative (e.g. the
    Fourier loss). Pairs with a non-finite value are dropped; zero differences are dropped
    (scipy's ``zero_method="wilcox"``). Returns NaN when no non-zero difference is left.

    Parameters
    ----------
    with_prior, without_prior: array-like, shape=(N,)
        Paired values (the same samples under both conditions).
    alternative: str, optional
        ``"greater"`` or ``"less"``. Default is "greater".

    Returns
    -------
    p_value: float
    """
    from scipy.stats import wilcoxon

    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}.")
    a = np.asarray(with_prior, dtype=np.float64).ravel()
    b = np.asarray(without_prior, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.shape} and {b.shape}.")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if not np.any(a != b):
        return float("nan")
    return float(wilcoxon(a, b, alternative=alternative, zero_method="wilcox").pvalue)


def _one_sided_mannwhitney(a: Sequence[float], b: Sequence[float], alternative: str) -> float:
    from scipy.stats import mannwhitneyu

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(mannwhitneyu(a, b, alternative=alternative).pvalue)


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Mean ignoring NaN, NaN (without a warning) where every value is NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _mean_sem(values: Any) -> tuple[float, float, int]:
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), 0
    sem = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    return float(values.mean()), sem, n


# ---------------------------------------------------------------------------------------------
# Attributions
# ---------------------------------------------------------------------------------------------


def _model_device(model: torch.nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def _input_gradient(model: torch.nn.Module, X: torch.Tensor, target: int, batch_size: int, device) -> np.ndarray:
    out = []
    for start in range(0, len(X), batch_size):
        Xb = X[start:start + batch_size].to(device=device, dtype=torch.float32).requires_grad_(True)
        with torch.enable_grad():
            y = model(Xb)
            if isinstance(y, (tuple, list)):
                y = y[0]
            y = y.reshape(len(Xb), -1)[:, target]
            (gradient,) = torch.autograd.grad(y.sum(), Xb, allow_unused=True)
        if gradient is None:
            gradient = torch.zeros_like(Xb)
        out.append(gradient.detach().cpu().to(torch.float64).numpy())
    return np.concatenate(out)


def compute_attributions(
    models: Sequence[torch.nn.Module],
    X: Any,
    *,
    attribution: str = "deep_lift_shap",
    target: int = 0,
    n_shuffles: int = 10,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    random_state: int = 0,
) -> list[np.ndarray]:
    """Hypothetical attributions of the same sequences by several models.

    Every model is put in ``eval()`` mode (and restored to its previous mode afterwards).

    * ``"deep_lift_shap"``: tangermeme's ``deep_lift_shap`` with ``hypothetical=True`` and
      ``n_shuffles`` dinucleotide-shuffled references (tangermeme's ``dinucleotide_shuffle``)
      drawn with the same ``random_state`` for every model, so that the models are compared on
      identical references.
    * ``"input_gradient"``: the gradient of output ``target`` with respect to the one-hot input,
      for every base (the hypothetical counterpart of gradient x input).

    Parameters
    ----------
    models: sequence of torch.nn.Module
        Binary models returning (N, T) logits (for a tuple output, its first element is used with
        ``"input_gradient"``).
    X: numpy.ndarray or torch.Tensor, shape=(N, 4, L)
        One-hot sequences.
    attribution: str, optional
        ``"deep_lift_shap"`` or ``"input_gradient"``. Default is "deep_lift_shap".
    target: int, optional
        Output column explained. Default is 0.
    n_shuffles: int, optional
        References per sequence for DeepLIFT-SHAP. Default is 10, as in the original analyses.
    batch_size: int, optional
        Default is 64.
    device: str, torch.device or None, optional
        None uses each model's parameter device. Default is None.
    random_state: int, optional
        Seed of the reference shuffles. Default is 0.

    Returns
    -------
    attributions: list of numpy.ndarray, each shape=(N, 4, L)
        Hypothetical attributions, float64; multiply by ``X`` for actual importance.
    """
    if attribution not in ("deep_lift_shap", "input_gradient"):
        raise ValueError(f"attribution must be 'deep_lift_shap' or 'input_gradient', got {attribution!r}.")
    X = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X).float()
    out = []
    for model in models:
        was_training = model.training
        model.eval()
        dev = _model_device(model, device)
        try:
            if attribution == "deep_lift_shap":
                from tangermeme.deep_lift_shap import deep_lift_shap
                from tangermeme.ersatz import dinucleotide_shuffle

                attr = deep_lift_shap(
                    model, X, target=target, references=dinucleotide_shuffle, n_shuffles=n_shuffles,
                    hypothetical=True, batch_size=batch_size, device=dev, random_state=random_state,
                    warning_threshold=1e-3, only_warn=True, verbose=False,
                )
                out.append(attr.detach().cpu().to(torch.float64).numpy())
            else:
                out.append(_input_gradient(model, X, target, batch_size, dev))
        finally:
            model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------


def _resolve(items: Sequence[Any], X: torch.Tensor, name: str, **kwargs) -> list[np.ndarray]:
    items = list(items)
    if len(items) < 2:
        raise ValueError(f"{name} needs at least 2 models (or attribution arrays) for stability, got {len(items)}.")
    is_model = [isinstance(item, torch.nn.Module) for item in items]
    if all(is_model):
        return compute_attributions(items, X, **kwargs)
    if any(is_model):
        raise ValueError(f"{name} mixes models and attribution arrays; pass one kind.")
    arrays = [_as_array(item, f"{name}[{i}]") for i, item in enumerate(items)]
    for i, A in enumerate(arrays):
        if A.shape != tuple(X.shape):
            raise ValueError(f"{name}[{i}] has shape {A.shape} but X has shape {tuple(X.shape)}.")
    return arrays


def compare_prior(
    models_with: Sequence[torch.nn.Module | Any],
    models_without: Sequence[torch.nn.Module | Any],
    X: Any,
    *,
    truth: pd.DataFrame | Any | None = None,
    attribution: str = "deep_lift_shap",
    target: int = 0,
    n_shuffles: int = 10,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    random_state: int = 0,
    freq_limit: int | None = None,
    limit_softness: float | None = 0.2,
    smooth_sigma: float = 3,
    return_attributions: bool = False,
) -> dict[str, Any]:
    """Attribution stability and cleanliness of models trained with and without the Fourier prior.

    For each condition ("prior": ``models_with``; "no_prior": ``models_without``):

    * **stability** per sample: the continuous Jaccard and the cosine similarity of the
      hypothetical attributions, averaged over all pairs of models (:func:`pairwise_stability`);
    * **smoothness** per sample: the Fourier-prior loss of the actual-importance track
      (:func:`attribution_smoothness`), averaged over the models (lower is better);
    * with ``truth``: **motif_fraction** per sample, the fraction of |actual importance| inside
      the motif mask (:func:`importance_in_motifs`), averaged over the models; and per model
      the ranked-base **auprc** (:func:`ranked_base_auprc`, all sequences pooled).

    Per-sample metrics are compared with a one-sided Wilcoxon signed-rank test over samples
    (paired: the same sequences), per-model metrics with a one-sided Mann-Whitney U test over
    models; the alternative is always "the prior is better" (higher, or lower for smoothness).

    Parameters
    ----------
    models_with, models_without: sequence of torch.nn.Module or of arrays (N, 4, L)
        At least 2 models per condition (different seeds) or, instead of models, their
        hypothetical attributions of ``X`` (any per-base attribution; actual importance is taken
        as attribution x ``X``).
    X: numpy.ndarray or torch.Tensor, shape=(N, 4, L)
        One-hot sequences to explain, typically held-out positives.
    truth: pandas.DataFrame, array-like of bool (N, L) or None, optional
        Ground truth: an instance table with ``example_idx``, ``start``, ``end`` (rows of ``X``)
        or a ready motif mask. None skips the ground-truth metrics. Default is None.
    attribution: str, optional
        ``"deep_lift_shap"`` (hypothetical scores, dinucleotide-shuffled references) or
        ``"input_gradient"``; see :func:`compute_attributions`. Default is "deep_lift_shap".
    target, n_shuffles, batch_size, device, random_state:
        Passed to :func:`compute_attributions`.
    freq_limit, limit_softness, smooth_sigma:
        Passed to :func:`attribution_smoothness`.
    return_attributions: bool, optional
        Also return the hypothetical attributions under key ``"attributions"``. Default is False.

    Returns
    -------
    result: dict
        * ``"summary"``: DataFrame, one row per metric with ``metric``, ``level`` ("sample" or
          "model"), ``better`` ("higher"/"lower"), ``mean_prior``, ``sem_prior``,
          ``mean_no_prior``, ``sem_no_prior``, ``n``, ``test`` and ``p_value`` (one-sided, prior
          better);
        * ``"per_sample"``: DataFrame with ``sample``, ``condition`` and the per-sample metrics;
        * ``"per_model"``: DataFrame with ``condition``, ``model`` and the per-model metrics
          (mean smoothness, mean motif fraction, auprc);
        * ``"attributions"``: ``{"prior": [...], "no_prior": [...]}``, when requested.
    """
    if isinstance(X, torch.Tensor):
        X_t = X.detach().cpu().float()
    else:
        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if X_t.ndim != 3 or X_t.shape[1] != 4:
        raise ValueError(f"X must have shape (N, 4, L) but has shape {tuple(X_t.shape)}.")
    n, L = X_t.shape[0], X_t.shape[-1]
    X_np = X_t.numpy().astype(np.float64)

    mask = None
    if truth is not None:
        if isinstance(truth, pd.DataFrame) or isinstance(truth, Mapping):
            mask = motif_mask(X_np, truth)
        else:
            mask = _mask_array(truth, (n, L))

    kwargs = dict(attribution=attribution, target=target, n_shuffles=n_shuffles, batch_size=batch_size,
                  device=device, random_state=random_state)
    hyp = {
        "prior": _resolve(models_with, X_t, "models_with", **kwargs),
        "no_prior": _resolve(models_without, X_t, "models_without", **kwargs),
    }

    per_sample, per_model = [], []
    for condition in CONDITIONS:
        actual = [A * X_np for A in hyp[condition]]
        smooth = np.stack([attribution_smoothness(A, freq_limit, limit_softness, smooth_sigma) for A in actual])
        columns = {
            "sample": np.arange(n),
            "condition": condition,
            "jaccard": pairwise_stability(hyp[condition], "jaccard"),
            "cosine": pairwise_stability(hyp[condition], "cosine"),
            "smoothness": smooth.mean(axis=0),
        }
        fractions = None
        if mask is not None:
            fractions = np.stack([importance_in_motifs(A, mask) for A in actual])
            columns["motif_fraction"] = _nanmean(fractions, axis=0)
        per_sample.append(pd.DataFrame(columns))
        for i, A in enumerate(actual):
            row = {"condition": condition, "model": i, "smoothness": float(smooth[i].mean())}
            if mask is not None:
                row["motif_fraction"] = float(_nanmean(fractions[i]))
                row["auprc"] = ranked_base_auprc(A, mask)
            per_model.append(row)
    per_sample = pd.concat(per_sample, ignore_index=True)
    per_model = pd.DataFrame(per_model)

    sample_metrics = [("jaccard", "higher"), ("cosine", "higher"), ("smoothness", "lower")]
    if mask is not None:
        sample_metrics.append(("motif_fraction", "higher"))
    rows = []
    for metric, better in sample_metrics:
        a = per_sample.loc[per_sample.condition == "prior", metric].to_numpy()
        b = per_sample.loc[per_sample.condition == "no_prior", metric].to_numpy()
        rows.append(_summary_row(metric, "sample", better, a, b, "wilcoxon",
                                 one_sided_wilcoxon(a, b, "greater" if better == "higher" else "less")))
    if mask is not None:
        a = per_model.loc[per_model.condition == "prior", "auprc"].to_numpy()
        b = per_model.loc[per_model.condition == "no_prior", "auprc"].to_numpy()
        rows.append(_summary_row("auprc", "model", "higher", a, b, "mannwhitney",
                                 _one_sided_mannwhitney(a, b, "greater")))
    result: dict[str, Any] = {"summary": pd.DataFrame(rows), "per_sample": per_sample, "per_model": per_model}
    if return_attributions:
        result["attributions"] = hyp
    return result


def _summary_row(metric: str, level: str, better: str, a: np.ndarray, b: np.ndarray, test: str, p: float) -> dict:
    mean_a, sem_a, n_a = _mean_sem(a)
    mean_b, sem_b, n_b = _mean_sem(b)
    return {
        "metric": metric, "level": level, "better": better,
        "mean_prior": mean_a, "sem_prior": sem_a, "mean_no_prior": mean_b, "sem_no_prior": sem_b,
        "n": min(n_a, n_b), "test": test, "p_value": p,
    }


# ---------------------------------------------------------------------------------------------
# Training the pair
# ---------------------------------------------------------------------------------------------


class PriorPair(NamedTuple):
    """Models of one architecture trained with and without the prior, one per seed.

    Attributes
    ----------
    prior, no_prior: list of torch.nn.Module
        The trained models (in ``eval()`` mode), in the order of ``seeds``.
    seeds: list of int
        The seeds; the two models of a seed share their initial weights and batch order.
    seconds: dict of str -> list of float
        Training wall time per model, keyed by condition.
    """

    prior: list[torch.nn.Module]
    no_prior: list[torch.nn.Module]
    seeds: list[int]
    seconds: dict[str, list[float]]


def train_prior_pair(
    model_factory: Callable[[], torch.nn.Module],
    train_data: tuple[Any, Any] | Callable[[int], Iterable],
    valid_data: tuple[Any, Any] | None = None,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    fourier_weight: float = 1.0,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    restore_best: bool = True,
    workdir: str | Path | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    verbose: bool = False,
) -> PriorPair:
    """Train the same architecture with and without the Fourier prior over several seeds.

    For every seed, the random generators are seeded before ``model_factory()`` is called, so the
    "prior" and "no_prior" models of a seed start from identical weights; the training batches
    are drawn with the same seed too. Each model is trained with
    :func:`argminn_plugin.training.fit` (Adam, ``fourier_weight`` or 0, ARGMINN schedules off),
    whose files are written under ``workdir`` (a temporary folder, removed afterwards, when
    None). With ``restore_best`` the weights of the epoch with the lowest validation task loss
    (or training task loss without validation data) are loaded back, as the original analyses
    selected checkpoints by the validation correctness loss.

    Parameters
    ----------
    model_factory: callable
        ``model_factory() -> torch.nn.Module``, a fresh binary model returning logits (N, T).
        Its class must be importable (picklable) because ``fit`` saves whole models.
    train_data: tuple (X, y) or callable
        Training sequences (N, 4, L) and labels (N,) or (N, T), batched with
        :func:`argminn_plugin.data.binary_dataloader` (shuffled, seeded per seed); or a callable
        ``f(seed) -> iterable of (X, y, labels) batches``.
    valid_data: tuple (X_valid, y_valid) or None, optional
        Validation data for checkpoint selection. Default is None.
    seeds: sequence of int, optional
        One model per seed and condition. Default is (0, 1, 2).
    fourier_weight: float, optional
        The prior's weight in the "prior" condition (1 for binary models in the paper).
        Default is 1.0.
    epochs: int, optional
        Epochs per model. Default is 10.
    lr: float, optional
        Adam learning rate. Default is 1e-3.
    batch_size: int, optional
        Training batch size when ``train_data`` is a tuple. Default is 64.
    device: str or torch.device, optional
        Default is "cpu".
    restore_best: bool, optional
        Load the best epoch's weights back into the returned models. Default is True.
    workdir: str, Path or None, optional
        Folder for the files ``fit`` writes. Default is None (a temporary folder).
    fit_kwargs: dict or None, optional
        Extra keyword arguments for ``fit`` (e.g. ``fourier_freq_limit``, ``reverse_complement``).
    verbose: bool, optional
        Print ``fit``'s log rows. Default is False.

    Returns
    -------
    pair: PriorPair
    """
    from .data import binary_dataloader
    from .io import load_bpnet_compatible
    from .training import fit, set_seed

    if not callable(model_factory):
        raise ValueError("model_factory must be a callable returning a fresh torch.nn.Module.")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty.")
    if fourier_weight <= 0:
        raise ValueError(f"fourier_weight must be positive (the 'prior' condition), got {fourier_weight}.")
    if callable(train_data):
        make_loader = train_data
    else:
        X_train, y_train = train_data

        def make_loader(seed: int) -> Iterable:
            return binary_dataloader(X_train, y_train, batch_size=batch_size, shuffle=True, random_state=seed)

    X_valid = y_valid = None
    if valid_data is not None:
        X_valid, y_valid = valid_data
        X_valid = torch.as_tensor(np.asarray(X_valid) if not isinstance(X_valid, torch.Tensor) else X_valid).float()
        y_valid = torch.as_tensor(np.asarray(y_valid) if not isinstance(y_valid, torch.Tensor) else y_valid).float()
        if y_valid.ndim == 1:
            y_valid = y_valid[:, None]

    models: dict[str, list[torch.nn.Module]] = {c: [] for c in CONDITIONS}
    seconds: dict[str, list[float]] = {c: [] for c in CONDITIONS}
    with tempfile.TemporaryDirectory(prefix="prior_pair_") as tmp:
        folder = Path(workdir) if workdir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            for condition in CONDITIONS:
                set_seed(seed)
                model = model_factory()
                model.name = str(folder / f"{condition}_seed{seed}")
                optimizer = torch.optim.Adam(model.parameters(), lr=lr)
                tic = time.perf_counter()
                fit(
                    model, make_loader(seed), optimizer, X_valid=X_valid, y_valid=y_valid, max_epochs=epochs,
                    device=device, schedule="none",
                    fourier_weight=fourier_weight if condition == "prior" else 0.0,
                    random_state=seed, verbose=verbose, progress=False, **dict(fit_kwargs or {}),
                )
                seconds[condition].append(time.perf_counter() - tic)
                best = Path(f"{model.name}.torch")
                if restore_best and best.exists():
                    model.load_state_dict(load_bpnet_compatible(best, map_location=device).state_dict())
                model.eval()
                models[condition].append(model)
    return PriorPair(models["prior"], models["no_prior"], seeds, seconds)
