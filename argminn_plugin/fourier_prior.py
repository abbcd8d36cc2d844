"""Fourier-transform attribution prior (Tseng, Shrikumar & Kundaje, NeurIPS 2020).

This module holds the prior as free functions, so that it works with any PyTorch model whose
``forward(X[, X_ctl])`` follows the bpnet-lite contract: ARGMINN, ``bpnetlite.BPNet`` or a plain
binary CNN.

Definition
----------
For one-hot sequences ``X`` of shape (N, 4, L):

1. Input gradient x input. The gradient of an explained scalar with respect to ``X`` is taken with
   ``create_graph=True`` so that the prior can itself be back-propagated (double back-propagation).
   The explained scalar is the sum of the logits for a model returning a tensor (binary heads), or,
   for a model returning ``(profile_logits, log_counts)``, the profile logits ``z`` weighted by a
   detached weight along the profile axis (see *choices* below). The counts head is not explained.
2. Collapse over bases: ``a_i = sum_c |g_ic * x_ic|``, a non-negative track of shape (N, L).
3. Smoothing: convolution with a normalised Gaussian (sigma = 3, truncated at +-1 sigma, i.e. 7
   taps) with zero padding, so the length stays L.
4. Spectrum: ``m = |rfft(a_smooth)|`` (moduli, not powers), ``L // 2 + 1`` bins.
5. Normalisation by the sum of the moduli over *all* bins, DC included; an all-zero spectrum stays
   all zero. Only then is the DC bin dropped.
6. Per example, ``loss = 1 - sum_{k>=1} w_k * m_hat_k`` with ``w_k = 1`` for ``k <= K`` and
   ``w_k = 1 / (1 + (k - K) ** c)`` above the cut-off ``K`` (soft, ``c = 0.2``), or ``0`` there
   (hard cut-off, ``limit_softness=None``). Because the normalised moduli sum to 1, this equals
   ``m_hat_0 + sum_{k>K} (1 - w_k) m_hat_k``: the prior penalises both flat, spread-out tracks (DC
   share) and spiky, noisy ones (high-frequency share).
7. The prior is the mean of the per-example loss over the positive examples of the batch (0 when
   there are none), added to the task loss with a weight lambda (1 for binary, 50 for profile models
   in the original).

Choices
-------
* **DC in the denominator.** As in the original code, the moduli are normalised before the DC bin
  is dropped, so a flat track scores badly (loss 0.84 for a constant track of length 1000).
* **Soft cut-off by default** (``limit_softness=0.2``), as in the original configurations; its tail
  is heavy, so high frequencies are only partly penalised. ``limit_softness=None`` gives the hard
  cut-off. The cut-off ``freq_limit`` is an rfft bin index (cycles per input length); by default
  ``round(0.15 * L)``, i.e. 150 for L = 1000.
* **Detached log-softmax profile weighting by default.** The original code weights the profile
  logits by a detached log-softmax (its comments say softmax). The log-sum-exp term cancels against
  the mean-centring, so the explained gradient is that of ``z`` with ``grad_outputs = (z - z.mean(-1))``
  (detached); this closed form is what is computed here. ``profile_weighting="softmax"`` uses the
  softmax probabilities instead, whose effective weight is ``p - 1/O``. Use the same weighting for
  post-hoc attribution as for training.
* Zero denominators are handled with ``torch.where`` (no in-place edits of graph tensors), and the
  prior arithmetic runs in at least fp32 with autocast disabled (cuFFT half precision supports only
  power-of-two lengths).

Cost
----
A prior step is a forward that keeps its graph, an input-gradient backward with ``create_graph``,
and a backward through both graphs: expect about 2-3x the time and 1.5-2.5x the activation memory
of a plain step. Do not wrap it in ``torch.compile``. For validation, pass ``create_graph=False`` and
evaluate under ``torch.no_grad()`` only what does not need the gradient.

Using it with ``bpnetlite.BPNet`` in a custom loop
--------------------------------------------------
``BPNet.fit`` has no hook for extra loss terms, so write the loop yourself::

    import torch
    from bpnetlite import BPNet
    from bpnetlite.losses import MNLLLoss, log1pMSELoss
    from argminn_plugin.fourier_prior import fourier_prior

    model = BPNet(n_filters=64, n_layers=8, n_outputs=2, n_control_tracks=0, trimming=173)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for X, y, status in loader:                   # X (N, 4, 1346), y (N, 2, 1000), status (N,)
        y_profile, y_counts = model(X)
        y_profile = y_profile.reshape(y_profile.shape[0], -1)
        profile_loss = MNLLLoss(torch.log_softmax(y_profile, dim=-1), y.reshape(y.shape[0], -1)).mean()
        count_loss = log1pMSELoss(y_counts, y.sum(dim=(1, 2)).reshape(-1, 1)).mean()
        prior = fourier_prior(model, X, status, freq_limit=200)
        loss = profile_loss + count_loss + 50 * prior
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

``fourier_prior`` runs its own forward pass. To share one forward between the task loss and the
prior (as the original does, which also updates BatchNorm running statistics only once), call
``tracks, (y_profile, y_counts) = attribution_tracks(model, X, return_output=True)``, compute the
task loss from those outputs and the prior with ``fourier_prior_loss(tracks[status == 1], 200)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

from ._validation import check_one_hot

__all__ = [
    "smoothing_kernel",
    "frequency_weights",
    "fourier_prior_loss",
    "attribution_tracks",
    "fourier_prior",
]

_OUTPUT_OPTIONS = ("auto", "logits", "profile")
_WEIGHTING_OPTIONS = ("log_softmax", "softmax")


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _check_sigma(sigma: float, name: str = "smooth_sigma") -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):
        raise ValueError(f"{name} must be a non-negative real number, got {sigma!r}.")
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {sigma!r}.")
    return sigma


def _check_int(value: int, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < low or value > high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}.")
    return value


def _check_softness(limit_softness: float | None) -> float | None:
    if limit_softness is None:
        return None
    if isinstance(limit_softness, bool) or not isinstance(limit_softness, numbers.Real):
        raise ValueError(f"limit_softness must be a positive number or None, got {limit_softness!r}.")
    limit_softness = float(limit_softness)
    if not math.isfinite(limit_softness) or limit_softness <= 0:
        raise ValueError(f"limit_softness must be a positive number or None, got {limit_softness!r}.")
    return limit_softness


# ---------------------------------------------------------------------------------------------
# Building blocks (cached as CPU float64 tensors; callers receive copies)
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _kernel_f64(sigma: float) -> torch.Tensor:
    # scipy.ndimage.gaussian_filter1d(delta, sigma, truncate=1) uses a kernel of radius
    # int(truncate * sigma + 0.5) with taps exp(-x^2 / (2 sigma^2)) normalised to sum 1; filtering a
    # centred delta of length 2r + 1 reproduces those taps exactly. sigma = 0 disables smoothing.
    radius = int(sigma + 0.5)
    if sigma == 0 or radius == 0:
        return torch.ones(1, dtype=torch.float64)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


@lru_cache(maxsize=32)
def _weights_f64(n_bins: int, freq_limit: int, limit_softness: float | None) -> torch.Tensor:
    k = torch.arange(1, n_bins, dtype=torch.float64)
    above = k > freq_limit
    if limit_softness is None:
        return torch.where(above, torch.zeros_like(k), torch.ones_like(k))
    excess = (k - freq_limit).clamp_min(0.0)
    soft = 1.0 / (1.0 + excess**limit_softness)
    return torch.where(above, soft, torch.ones_like(k))


def smoothing_kernel(sigma: float) -> torch.Tensor:
    """Return the normalised, truncated Gaussian kernel used to smooth attribution tracks.

    The kernel is the one obtained by Gaussian-filtering a centred delta with
    ``scipy.ndimage.gaussian_filter1d(..., sigma, truncate=1)``: radius ``r = int(sigma + 0.5)``
    (i.e. truncation at +-1 sigma), taps ``exp(-x**2 / (2 sigma**2))`` for ``x = -r .. r``,
    normalised to sum to 1. For sigma = 3 it has 7 taps,
    ``[0.1063, 0.1403, 0.1658, 0.1752, 0.1658, 0.1403, 0.1063]``. ``sigma = 0`` (or any sigma
    below 0.5) gives the identity kernel ``[1]``.

    Parameters
    ----------
    sigma: float
        Standard deviation of the Gaussian in bases; must be finite and non-negative.

    Returns
    -------
    kernel: torch.Tensor, shape=(2 * int(sigma + 0.5) + 1,)
        The float32 kernel, summing to 1.
    """
    sigma = _check_sigma(sigma, "sigma")
    return _kernel_f64(sigma).to(torch.float32)


def frequency_weights(n_bins: int, freq_limit: int, limit_softness: float | None = 0.2) -> torch.Tensor:
    """Return the weights of the non-DC rfft frequencies ``k = 1 .. n_bins - 1``.

    ``w_k = 1`` for ``k <= freq_limit``. Above the cut-off, ``w_k = 1 / (1 + (k - freq_limit) **
    limit_softness)`` (soft cut-off: 0.500, 0.465, 0.420 at 1, 2, 5 bins past the limit for
    softness 0.2), or ``0`` when ``limit_softness`` is None (hard cut-off).

    Parameters
    ----------
    n_bins: int
        Number of rfft bins including DC, ``L // 2 + 1`` for a track of length L; at least 2.
    freq_limit: int
        The cut-off K as an rfft bin index (cycles per track length), in ``[1, n_bins - 1]``.
    limit_softness: float or None, optional
        Exponent c of the soft cut-off, positive; None for a hard cut-off. Default is 0.2.

    Returns
    -------
    weights: torch.Tensor, shape=(n_bins - 1,)
        float32 weights; entry ``j`` belongs to frequency ``k = j + 1``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or int(n_bins) < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}.")
    n_bins = int(n_bins)
    freq_limit = _check_int(freq_limit, "freq_limit", 1, n_bins - 1)
    limit_softness = _check_softness(limit_softness)
    return _weights_f64(n_bins, freq_limit, limit_softness).to(torch.float32)


# ---------------------------------------------------------------------------------------------
# The loss on attribution tracks
# ---------------------------------------------------------------------------------------------


def fourier_prior_loss(
    tracks: torch.Tensor,
    freq_limit: int,
    limit_softness: float | None = 0.2,
    smooth_sigma: float = 3,
) -> torch.Tensor:
    """Per-example Fourier attribution prior loss of non-negative attribution tracks.

    Each track is smoothed (Gaussian, zero padding, length kept), transformed with
    ``torch.fft.rfft``, and its moduli are divided by their sum over all ``L // 2 + 1`` bins, DC
    included (an all-zero spectrum stays zero). The DC bin is then dropped and the loss is
    ``1 - sum_k w_k * m_hat_k`` with the weights of :func:`frequency_weights`. The loss lies in
    [0, 1]; an all-zero track gives exactly 1. The computation is differentiable and runs in fp32
    (float16/bfloat16 inputs are upcast, float64 is kept) with autocast disabled.

    Parameters
    ----------
    tracks: torch.Tensor, shape=(N, L)
        Non-negative attribution tracks, e.g. from :func:`attribution_tracks`.
    freq_limit: int
        Cut-off K as an rfft bin index, in ``[1, L // 2]``; ``round(0.15 * L)`` reproduces the
        original's 150 at L = 1000.
    limit_softness: float or None, optional
        Exponent of the soft cut-off; None for a hard cut-off. Default is 0.2.
    smooth_sigma: float, optional
        Standard deviation of the smoothing Gaussian; 0 disables smoothing. Default is 3.

    Returns
    -------
    loss: torch.Tensor, shape=(N,)
        The per-example loss, in the computation dtype (float32 or float64).
    """
    if not isinstance(tracks, torch.Tensor):
        raise ValueError(f"tracks must be a torch.Tensor of shape (N, L), got {type(tracks).__name__}.")
    if tracks.ndim != 2:
        raise ValueError(f"tracks must have shape (N, L) but has shape {tuple(tracks.shape)}.")
    length = tracks.shape[1]
    if length < 2:
        raise ValueError(f"tracks must have length L >= 2 along axis 1 but has shape {tuple(tracks.shape)}.")
    freq_limit = _check_int(freq_limit, "freq_limit", 1, length // 2)
    limit_softness = _check_softness(limit_softness)
    smooth_sigma = _check_sigma(smooth_sigma, "smooth_sigma")

    dtype = tracks.dtype if tracks.dtype in (torch.float32, torch.float64) else torch.float32
    device = tracks.device
    n_bins = length // 2 + 1
    kernel = _kernel_f64(smooth_sigma).to(device=device, dtype=dtype)
    weights = _weights_f64(n_bins, freq_limit, limit_softness).to(device=device, dtype=dtype)

    with torch.autocast(device_type=device.type, enabled=False):
        x = tracks.to(dtype)
        if kernel.numel() > 1:
            radius = (kernel.numel() - 1) // 2
            x = F.conv1d(x.unsqueeze(1), kernel.view(1, 1, -1), padding=radius).squeeze(1)
        magnitudes = torch.fft.rfft(x, dim=-1).abs()
        total = magnitudes.sum(dim=-1, keepdim=True)
        safe_total = torch.where(total > 0, total, torch.ones_like(total))
        normalised = magnitudes / safe_total
        score = (normalised[:, 1:] * weights).sum(dim=-1)
        return 1.0 - score


# ---------------------------------------------------------------------------------------------
# Attribution tracks with a graph
# ---------------------------------------------------------------------------------------------


def _first_parameter(model: torch.nn.Module) -> torch.Tensor | None:
    for parameter in model.parameters():
        return parameter
    return None


def output_tracks(
    y: torch.Tensor | Sequence[torch.Tensor],
    X: torch.Tensor,
    *,
    output: str = "auto",
    profile_weighting: str = "log_softmax",
    create_graph: bool = True,
) -> torch.Tensor:
    """Attribution tracks (N, L) from a model output ``y`` already computed from ``X``.

    The second half of :func:`attribution_tracks`, for training loops that want the task loss and
    the prior to share one forward pass: make ``X`` require gradients, run the model once, and
    pass its output here. ``output`` and ``profile_weighting`` are as in
    :func:`attribution_tracks`.
    """
    if output not in _OUTPUT_OPTIONS:
        raise ValueError(f"output must be one of {_OUTPUT_OPTIONS}, got {output!r}.")
    if profile_weighting not in _WEIGHTING_OPTIONS:
        raise ValueError(f"profile_weighting must be one of {_WEIGHTING_OPTIONS}, got {profile_weighting!r}.")
    if not X.requires_grad:
        raise ValueError("X must require gradients and be the input of the forward pass that produced y.")
    with torch.enable_grad():
        is_tuple = isinstance(y, (tuple, list))
        z = y[0] if is_tuple and len(y) > 0 else y
        if not isinstance(z, torch.Tensor):
            raise ValueError(
                f"model must return a tensor or a tuple whose first element is a tensor, got {type(y).__name__}."
            )
        mode = output if output != "auto" else ("profile" if is_tuple else "logits")
        if mode == "logits":
            grad_outputs = torch.ones_like(z)
        else:
            if z.ndim < 2:
                raise ValueError(
                    f"output='profile' needs profile logits of shape (N, ..., O) but the model returned "
                    f"shape {tuple(z.shape)}."
                )
            with torch.no_grad():
                if profile_weighting == "log_softmax":
                    grad_outputs = z - z.mean(dim=-1, keepdim=True)
                else:
                    work_dtype = torch.promote_types(z.dtype, torch.float32)
                    grad_outputs = torch.softmax(z.to(work_dtype), dim=-1).to(z.dtype) - 1.0 / z.shape[-1]
        if not z.requires_grad:
            raise RuntimeError("the model output does not require gradients, so it cannot depend on X.")
        (gradient,) = torch.autograd.grad(
            z, X, grad_outputs=grad_outputs, create_graph=create_graph, retain_graph=True, allow_unused=True
        )
        if gradient is None:
            gradient = torch.zeros_like(X)
        tracks = (gradient * X).abs().sum(dim=1)
    return tracks if create_graph else tracks.detach()


def attribution_tracks(
    model: torch.nn.Module,
    X: torch.Tensor,
    X_ctl: torch.Tensor | None = None,
    *,
    output: str = "auto",
    profile_weighting: str = "log_softmax",
    create_graph: bool = True,
    return_output: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | Sequence[torch.Tensor]]:
    """Input-gradient x input attribution tracks, keeping the graph for double back-propagation.

    ``X`` is cast to the dtype (and moved to the device) of the model's parameters, made a leaf
    that requires gradients, and passed through ``model(X)`` or ``model(X, X_ctl)``. The gradient
    of the explained quantity with respect to ``X`` is taken with
    ``torch.autograd.grad(..., create_graph=create_graph)``, multiplied by ``X`` and collapsed over
    channels with absolute values: ``a = sum_c |g * X|``.

    What is explained depends on ``output``:

    * ``"logits"``: the sum of all model outputs (binary logits, summed over tasks and examples),
      i.e. ``grad_outputs`` of ones. For a model returning a tuple, its first element is used.
    * ``"profile"``: the profile logits ``z`` (the first element of a tuple output, or the tensor
      itself), shape (N, ..., O) with the profile along the last axis; the counts head is not
      explained. With ``profile_weighting="log_softmax"`` the gradient is that of
      ``sum(z * stopgrad(log_softmax(z)))`` with ``z`` mean-centred, computed in closed form as
      ``grad_outputs = (z - z.mean(-1)).detach()``. With ``"softmax"`` the weight is
      ``stopgrad(softmax(z))`` and the effective ``grad_outputs`` is ``p - 1/O``.
    * ``"auto"``: ``"profile"`` for tuple/list outputs (the bpnet-lite ``(profile, counts)``
      contract), ``"logits"`` for tensor outputs.

    The model is used in whatever mode it is in: in training mode, BatchNorm's batch statistics
    couple the examples of the batch (as in the original), and its running statistics are updated
    by this forward pass.

    Parameters
    ----------
    model: torch.nn.Module
        A model with ``forward(X)`` or ``forward(X, X_ctl)`` returning a tensor of logits (N, T)
        or a tuple ``(profile_logits (N, n_tracks, O), log_counts (N, 1))``.
    X: torch.Tensor, shape=(N, 4, L)
        One-hot sequences, any dtype.
    X_ctl: torch.Tensor or None, shape=(N, n_control_tracks, L), optional
        Control tracks passed as the second argument of the model when given. Default is None.
    output: str, optional
        ``"auto"``, ``"logits"`` or ``"profile"``, see above. Default is "auto".
    profile_weighting: str, optional
        ``"log_softmax"`` (the original code) or ``"softmax"``. Default is "log_softmax".
    create_graph: bool, optional
        Keep the graph of the input gradient so that a loss on the tracks can be back-propagated
        to the parameters. Use False for validation or post-hoc attribution (the tracks are then
        detached). Default is True.
    return_output: bool, optional
        Also return the model output of the same forward pass, so that the task loss can share it.
        Default is False.

    Returns
    -------
    tracks: torch.Tensor, shape=(N, L)
        Non-negative attribution tracks in the model's parameter dtype.
    output: torch.Tensor or tuple, optional
        The model's output, only when ``return_output`` is True.
    """
    if output not in _OUTPUT_OPTIONS:
        raise ValueError(f"output must be one of {_OUTPUT_OPTIONS}, got {output!r}.")
    if profile_weighting not in _WEIGHTING_OPTIONS:
        raise ValueError(f"profile_weighting must be one of {_WEIGHTING_OPTIONS}, got {profile_weighting!r}.")
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    check_one_hot(X, "X", check_values=False)

    parameter = _first_parameter(model)
    if parameter is not None and parameter.is_floating_point():
        dtype, device = parameter.dtype, parameter.device
    else:
        dtype, device = torch.get_default_dtype(), X.device
    X = X.detach().to(device=device, dtype=dtype).requires_grad_(True)
    if X_ctl is not None:
        if not isinstance(X_ctl, torch.Tensor) or X_ctl.ndim != 3 or X_ctl.shape[0] != X.shape[0]:
            seen = tuple(X_ctl.shape) if isinstance(X_ctl, torch.Tensor) else type(X_ctl).__name__
            raise ValueError(f"X_ctl must have shape (N={X.shape[0]}, n_control_tracks, L) but has shape {seen}.")
        X_ctl = X_ctl.to(device=device, dtype=dtype)

    with torch.enable_grad():
        y = model(X) if X_ctl is None else model(X, X_ctl)
        tracks = output_tracks(y, X, output=output, profile_weighting=profile_weighting, create_graph=create_graph)
    if return_output:
        return tracks, y
    return tracks


# ---------------------------------------------------------------------------------------------
# The prior
# ---------------------------------------------------------------------------------------------


def fourier_prior(
    model: torch.nn.Module,
    X: torch.Tensor,
    status: torch.Tensor | None = None,
    X_ctl: torch.Tensor | None = None,
    *,
    freq_limit: int | None = None,
    limit_softness: float | None = 0.2,
    smooth_sigma: float = 3,
    positives_only: bool = True,
    profile_weighting: str = "log_softmax",
    create_graph: bool = True,
) -> torch.Tensor:
    """Fourier attribution prior of a batch: mean per-example loss over the positive examples.

    Attribution tracks are computed for the whole batch in one pass with
    :func:`attribution_tracks` (so BatchNorm in training mode couples the examples, as in the
    original), scored with :func:`fourier_prior_loss` and averaged over the examples with
    ``status == 1``. A batch without positives gives a zero tensor and skips the computation. Add
    the result to the task loss with a weight (1 for binary models, 50 for profile models in the
    original).

    This costs about 2-3x a plain training step and 1.5-2.5x its activation memory (a second
    forward, a backward with ``create_graph`` and a backward through both graphs). The model runs
    in whatever mode it is in; put it in ``eval()`` for validation and pass ``create_graph=False``
    there.

    Parameters
    ----------
    model: torch.nn.Module
        Binary model returning logits (N, T) or a profile model returning
        ``(profile_logits, log_counts)``.
    X: torch.Tensor, shape=(N, 4, L)
        One-hot sequences.
    status: torch.Tensor or None, shape=(N,), optional
        1 for positive examples (bins positive for any task, or peaks), anything else (0) for
        negatives. None treats every example as positive. Default is None.
    X_ctl: torch.Tensor or None, shape=(N, n_control_tracks, L), optional
        Control tracks passed to the model. Default is None.
    freq_limit: int or None, optional
        Cut-off K as an rfft bin index in ``[1, L // 2]``; None uses ``round(0.15 * L)``
        (150 for L = 1000, 202 for L = 1346, where the original used 200). Default is None.
    limit_softness: float or None, optional
        Soft cut-off exponent; None for a hard cut-off. Default is 0.2.
    smooth_sigma: float, optional
        Standard deviation of the smoothing Gaussian; 0 disables smoothing. Default is 3.
    positives_only: bool, optional
        Average over the positives only (the original); False averages over all examples.
        Default is True.
    profile_weighting: str, optional
        ``"log_softmax"`` or ``"softmax"``, see :func:`attribution_tracks`. Default is
        "log_softmax".
    create_graph: bool, optional
        Keep the graph so the prior can be back-propagated. Default is True.

    Returns
    -------
    prior: torch.Tensor, shape=()
        The scalar prior (float32 or float64).
    """
    check_one_hot(X, "X", check_values=False)
    n, length = X.shape[0], X.shape[-1]
    if freq_limit is None:
        freq_limit = min(max(1, round(0.15 * length)), length // 2)
    freq_limit = _check_int(freq_limit, "freq_limit", 1, length // 2)
    limit_softness = _check_softness(limit_softness)
    smooth_sigma = _check_sigma(smooth_sigma, "smooth_sigma")

    mask = None
    if status is not None:
        status = torch.as_tensor(status)
        if status.shape != (n,):
            raise ValueError(f"status must have shape (N,) = ({n},) but has shape {tuple(status.shape)}.")
    if status is not None and positives_only:
        mask = status == 1
        if not bool(mask.any()):
            parameter = _first_parameter(model)
            dtype = torch.float64 if parameter is not None and parameter.dtype == torch.float64 else torch.float32
            return torch.zeros((), dtype=dtype, device=parameter.device if parameter is not None else X.device)

    tracks = attribution_tracks(
        model, X, X_ctl, output="auto", profile_weighting=profile_weighting, create_graph=create_graph
    )
    if mask is not None:
        tracks = tracks[mask.to(tracks.device)]
    losses = fourier_prior_loss(tracks, freq_limit, limit_softness=limit_softness, smooth_sigma=smooth_sigma)
    return losses.mean()
