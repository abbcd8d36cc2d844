"""Regularisers of ARGMINN and the per-epoch schedules of their weights.

This module holds the three penalties that the ARGMINN training loss adds to the task loss
(``argminn.md`` §3) and the helpers that turn a schedule (a scalar or one value per epoch) into the
weight used at a given epoch:

* :func:`filter_overlap_penalty`: the per-example filter-overlap penalty L_over (§3.2), which pushes
  filters that fire next to a stronger filter, at an offset where both look at the same bases, to
  shrink. Its F×F×(2K−1) kernel factorises, so it is computed from small matrix products and a
  gather of each position's top-filter window: time O(N·F·L'·(2K−1)) and no N·F·L'·(2K−1) tensor.
  On the CPU (float32/float64) the per-position work runs in fused numba kernels
  (``_overlap_numba``); elsewhere in the chunked PyTorch implementation below.
* :func:`filter_l1_penalty`: L_L1 = Σ|W| (§3.3), one number for the whole batch.
* :func:`attention_entropy_penalty`: the per-example entropy of the stream-attention weights (§3.4).
* :func:`log_ramp_schedule`, :func:`scheduled_weight`, :func:`schedule_weights` and
  :data:`SCHEDULE_PRESETS`: the log-linear ramps of §3.5.

All penalties are pure functions of tensors; none of them reads or changes a model.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional

from . import _overlap_numba

#: Use the fused numba kernels (``_overlap_numba``) for float32/float64 CPU tensors. The chunked
#: PyTorch implementation below serves every other device and dtype, and the tests compare the two.
_USE_FUSED_KERNELS = True

__all__ = [
    "SCHEDULE_KEYS",
    "SCHEDULE_PRESETS",
    "attention_entropy_penalty",
    "filter_l1_penalty",
    "filter_overlap_penalty",
    "log_ramp_schedule",
    "overlap_kernel",
    "schedule_weights",
    "scheduled_weight",
]


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _check_tensor(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}.")
    if not value.is_floating_point():
        raise ValueError(f"{name} must have a floating-point dtype, got {value.dtype}.")
    return value


def _check_weights(weights: object) -> torch.Tensor:
    weights = _check_tensor(weights, "weights")
    if weights.ndim != 3:
        raise ValueError(
            "weights must have shape (n_filters, n_channels, filter_width) like a Conv1d weight, "
            f"but has shape {tuple(weights.shape)}."
        )
    if min(weights.shape) < 1:
        raise ValueError(f"weights must have no empty axis, but has shape {tuple(weights.shape)}.")
    return weights


# ---------------------------------------------------------------------------------------------
# Filter-overlap penalty (§3.2)
# ---------------------------------------------------------------------------------------------


def _overlap_masses(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Overlap masses S^a, S^b and the total mass Z of a set of filters.

    Parameters
    ----------
    weights: torch.Tensor, shape=(F, C, K)
        Convolution weights (bias excluded).

    Returns
    -------
    s_a: torch.Tensor, shape=(F, 2K-1)
        ``s_a[f, t]`` is S^a_f(δ) with δ = t − (K − 1): the L1 mass of filter f at kernel
        positions max(0, δ) … K − 1 − max(0, −δ).
    s_b: torch.Tensor, shape=(F, 2K-1)
        S^b_f(δ) = S^a_f(−δ), the same table flipped along the offset axis.
    z: torch.Tensor, shape=()
        Σ|W|.
    """
    n_filters, _, width = weights.shape
    mass = weights.abs().sum(dim=1)  # (F, K): m_f(k)
    # prefix[:, k] = Σ_{k' < k} m_f(k'), so a window sum over k = lo … hi is prefix[hi+1] − prefix[lo].
    prefix = torch.cat([mass.new_zeros(n_filters, 1), mass.cumsum(dim=1)], dim=1)  # (F, K+1)
    offsets = torch.arange(-(width - 1), width, device=weights.device)  # (2K-1,)
    low = offsets.clamp(min=0)  # max(0, δ)
    high_exclusive = width - (-offsets).clamp(min=0)  # K − max(0, −δ)
    s_a = prefix[:, high_exclusive] - prefix[:, low]
    s_b = s_a.flip(dims=(1,))
    z = mass.sum()
    return s_a, s_b, z


def overlap_kernel(weights: torch.Tensor) -> torch.Tensor:
    """Build the F×F×(2K−1) convolution kernel behind the filter-overlap penalty.

    Entry ``[a, f, t]`` with δ = t − (K − 1) is 1[f ≠ a] · S^a_a(δ) · S^b_f(δ): the overlap weight
    between a stationary top filter a and a mobile filter f placed δ positions to its right. The
    diagonal (a = f) is zero, which is how the top filter is excluded at every offset. The kernel is
    not divided by Z.

    Parameters
    ----------
    weights: torch.Tensor, shape=(F, C, K)
        Convolution weights in PyTorch ``Conv1d`` layout (C = 4 for DNA), bias excluded.

    Returns
    -------
    kernel: torch.Tensor, shape=(F, F, 2K-1)
        Differentiable with respect to ``weights``.
    """
    weights = _check_weights(weights)
    kernel, _ = _kernel_and_total_mass(weights)
    return kernel


def _kernel_and_total_mass(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s_a, s_b, z = _overlap_masses(weights)
    n_filters = weights.shape[0]
    off_diagonal = 1.0 - torch.eye(n_filters, dtype=weights.dtype, device=weights.device)
    kernel = s_a[:, None, :] * s_b[None, :, :] * off_diagonal[:, :, None]  # (F, F, 2K-1)
    return kernel, z


#: Largest (examples x offsets x padded length) block that :class:`_OverlapTerms` works on at once.
#: Its temporaries are a few such blocks, so memory stays flat in the batch size (1 MiB in fp32).
_OVERLAP_CHUNK_ELEMENTS = 2**18


class _OverlapTerms(torch.autograd.Function):
    """Un-normalised overlap penalty of every position, in factorised form, with a hand-written backward.

    With a = top[n, i], offsets t = 0 … T−1 (T = 2K − 1, δ = t − (K − 1)) and Ā the activations
    zero-padded by K − 1 on both sides (so Ā[n, f, i + t] is A[n, f, i + δ]), the kernel entry
    1[f ≠ a]·S^a_a(δ)·S^b_f(δ) factorises and

        out[n, i] = Σ_t S^a_a(t) · (Σ_f S^b_f(t)·Ā[n, f, i + t]  −  S^b_a(t)·Ā[n, a, i + t]).

    The first inner sum is one small matrix product over filters (F → T channels) read along a
    skewed view; the second is a gather of the top filter's own window. This costs O(N·F·L'·T)
    instead of the O(N·F²·L'·T) of the full F×F×T convolution, and never builds an (N, F, L', T)
    tensor. The subtraction is done on separately rounded products, so the top filter's own term
    cancels exactly. Examples are processed in chunks (``_OVERLAP_CHUNK_ELEMENTS``), and the backward
    recomputes the cheap per-chunk pieces instead of keeping them, so only ``top`` is saved.
    Inputs: activations (N, F, L'), s_a and s_b (F, T), top (N, 1, L') int64 (no gradient).
    Output: (N, L'). Not twice differentiable.
    """

    @staticmethod
    def _pieces(padded, s_b_t, top, length):
        n, n_filters, width = padded.shape
        n_offsets = s_b_t.shape[0]
        projected = torch.bmm(s_b_t.expand(n, n_offsets, n_filters), padded)  # (n, T, W)
        # shifted[n, t, i] = projected[n, t, i + t]: a skewed view, no copy.
        shifted = projected.as_strided(
            (n, n_offsets, length), (n_offsets * width, width + 1, 1), projected.storage_offset()
        )
        # window[n, t, i] = padded[n, top[n, i], i + t]
        window = padded.unfold(2, length, 1).gather(1, top.unsqueeze(2).expand(n, 1, n_offsets, length))
        return shifted, window.squeeze(1)

    @staticmethod
    def forward(ctx, activations, s_a, s_b, top):
        n, n_filters, length = activations.shape
        n_offsets = s_a.shape[1]
        pad = (n_offsets - 1) // 2
        chunk = max(1, _OVERLAP_CHUNK_ELEMENTS // (n_offsets * (length + 2 * pad)))
        s_b_t = s_b.t().contiguous()
        padded_all = functional.pad(activations, (pad, pad))
        out = activations.new_empty(n, length)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            part_top = top[start:stop]
            shifted, window = _OverlapTerms._pieces(padded_all[start:stop], s_b_t, part_top, length)
            own = torch.gather(s_b_t.expand(stop - start, n_offsets, n_filters), 2,
                               part_top.expand(stop - start, n_offsets, length))
            rest = torch.sub(shifted, own.mul_(window), out=own)  # other filters only
            per_filter = torch.bmm(s_a.expand(stop - start, n_filters, n_offsets), rest)
            out[start:stop] = per_filter.gather(1, part_top).squeeze(1)
        ctx.save_for_backward(activations, s_a, s_b, top)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        activations, s_a, s_b, top = ctx.saved_tensors
        n, n_filters, length = activations.shape
        n_offsets = s_a.shape[1]
        pad = (n_offsets - 1) // 2
        width = length + 2 * pad
        chunk = max(1, _OVERLAP_CHUNK_ELEMENTS // (n_offsets * width))
        s_a_t, s_b_t = s_a.t().contiguous(), s_b.t().contiguous()
        minus_diag_t = (s_a * s_b).t().neg().contiguous()
        padded_all = functional.pad(activations, (pad, pad))
        d_padded_all = torch.empty_like(padded_all)
        from_shifted, from_window, from_projected = (s_a.new_zeros(s_a.shape) for _ in range(3))
        grad = grad.unsqueeze(1)
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            m = stop - start
            part_top = top[start:stop]
            padded = padded_all[start:stop]
            shifted, window = _OverlapTerms._pieces(padded, s_b_t, part_top, length)
            # picked[n, f, i] = grad[n, i] if f is the top filter of (n, i), else 0
            picked = grad.new_zeros(m, n_filters, length).scatter_(1, part_top, grad[start:stop])
            from_shifted += torch.bmm(picked, shifted.transpose(1, 2)).sum(0)
            from_window += torch.bmm(picked, window.transpose(1, 2)).sum(0)
            d_shifted = torch.bmm(s_a_t.expand(m, n_offsets, n_filters), picked)  # (m, T, L')
            # Un-skew: d_projected[n, t, j] = d_shifted[n, t, j - t], zero elsewhere. Right-pad every
            # row by T and read the buffer back with row stride W = L' + T - 1 instead of L' + T.
            d_projected = functional.pad(d_shifted, (0, n_offsets)).as_strided(
                (m, n_offsets, width), (n_offsets * (width + 1), width, 1)
            )
            from_projected += torch.bmm(padded, d_projected.transpose(1, 2)).sum(0)
            d_padded = torch.bmm(s_b.expand(m, n_filters, n_offsets), d_projected, out=d_padded_all[start:stop])
            d_window = torch.bmm(minus_diag_t.expand(m, n_offsets, n_filters), picked)  # (m, T, L')
            for t in range(n_offsets):  # the top filter's own window, back to its positions
                d_padded[:, :, t : t + length].scatter_add_(1, part_top, d_window[:, t : t + 1])
        grad_s_a = from_shifted - from_window * s_b
        grad_s_b = from_projected - from_window * s_a
        return d_padded_all[:, :, pad : pad + length], grad_s_a, grad_s_b, None


def filter_overlap_penalty(
    activations: torch.Tensor,
    weights: torch.Tensor,
    *,
    ignore_inactive: bool = False,
) -> torch.Tensor:
    """Per-example filter-overlap penalty L_over of ARGMINN (``argminn.md`` §3.2).

    At every position i the top filter a = argmax_f A[n, f, i] is found (a hard argmax: the lowest
    index wins ties, so a row of zeros selects filter 0). Every *other* filter f that fires at
    position i + δ, for δ = −(K−1) … K−1, adds

        S^a_a(δ) · S^b_f(δ) · A[n, f, i + δ],

    where S^a_a(δ) and S^b_f(δ) are the L1 masses of the two filters inside their overlap
    (positions outside 0 … L'−1 read 0). The sum over (i, f, δ) is divided by L'·F·(2K−1) and by
    Z = Σ|W|. The term is scaled by the activation of the other filter, never by the top filter's
    own activation, and the top filter is excluded at every offset.

    The sum over (f, δ) equals a 1-D convolution of the activations with the kernel of
    :func:`overlap_kernel` (padding K − 1) read at each position's top filter. Because every
    kernel entry is a product S^a_a(δ)·S^b_f(δ), it is evaluated in factorised form instead: the
    activations are projected onto S^b (one F → 2K−1 channel matrix product), read along a skewed
    view, weighted by S^a of the top filter, and the top filter's own window is subtracted. That
    needs O(N·F·L'·(2K−1)) work rather than O(N·F²·L'·(2K−1)), works in chunks of examples, and
    never builds the N·F·L'·(2K−1) tensor of a direct implementation; the backward pass is written
    out by hand. Gradients reach ``activations`` and ``weights`` (through both S factors and
    through Z); the argmax index carries none. The result is differentiable once (no
    double-backward).

    Parameters
    ----------
    activations: torch.Tensor, shape=(N, F, L')
        Motif activations: the post-ReLU, pre-BatchNorm convolution output, channels first.
    weights: torch.Tensor, shape=(F, C, K)
        Convolution weights in PyTorch ``Conv1d`` layout (C = 4 for DNA), bias excluded. The spec's
        F×K×4 layout holds the same numbers with the last two axes swapped.
    ignore_inactive: bool, optional
        If True, positions where no filter fires (max_f A[n, f, i] ≤ 0, i.e. = 0 for post-ReLU
        activations) contribute nothing, instead of being charged to filter 0 as in the original
        (``argminn.md`` §11 item 5). The normaliser stays L'·F·(2K−1)·Z. Default is False.

    Returns
    -------
    penalty: torch.Tensor, shape=(N,)
        L_over for each example, in the dtype of ``activations`` and ``weights`` combined. If every
        weight is zero (Z = 0) the value is NaN (0/0).
    """
    activations = _check_tensor(activations, "activations")
    weights = _check_weights(weights)
    if activations.ndim != 3:
        raise ValueError(
            f"activations must have shape (N, n_filters, length), but has shape {tuple(activations.shape)}."
        )
    n_examples, n_filters, length = activations.shape
    if n_examples < 1:
        raise ValueError(f"activations must hold at least one example, but has shape {tuple(activations.shape)}.")
    if length < 1:
        raise ValueError(f"activations must have length >= 1, but has shape {tuple(activations.shape)}.")
    if n_filters != weights.shape[0]:
        raise ValueError(
            f"activations has {n_filters} filters (shape {tuple(activations.shape)}) but weights "
            f"has {weights.shape[0]} (shape {tuple(weights.shape)})."
        )
    width = weights.shape[2]

    dtype = torch.promote_types(activations.dtype, weights.dtype)
    activations = activations.to(dtype)
    weights = weights.to(dtype)

    s_a, s_b, z = _overlap_masses(weights)  # (F, 2K-1) each, ()

    normaliser = length * n_filters * (2 * width - 1)
    if _USE_FUSED_KERNELS and _overlap_numba.available(activations):
        # float32/float64 on the CPU: the fused numba kernels (same terms, fewer passes over memory).
        return _overlap_numba.overlap_per_example(activations, s_a, s_b, ignore_inactive) / (normaliser * z)
    else:
        # Top filter per position; torch.max returns the first maximal index, so ties go to the lowest
        # filter. (On the CPU, max(dim=1) is several times faster than argmax(dim=1) for this layout.)
        top_value, top = activations.detach().max(dim=1, keepdim=True)  # (N, 1, L') each
        per_position = _OverlapTerms.apply(activations, s_a, s_b, top)  # (N, L')
        if ignore_inactive:
            active = top_value.squeeze(1) > 0
            per_position = per_position * active.to(dtype)

    return per_position.sum(dim=1) / (normaliser * z)


# ---------------------------------------------------------------------------------------------
# Filter L1 penalty (§3.3)
# ---------------------------------------------------------------------------------------------


def filter_l1_penalty(weights: torch.Tensor) -> torch.Tensor:
    """Filter L1 penalty L_L1 = Σ|W| of ARGMINN (``argminn.md`` §3.3).

    The same number applies to every example, so it is returned once; broadcast it (or add it to
    the batch mean) as needed. It is not normalised: at PyTorch's default ``Conv1d`` initialisation
    with F = 8, K = 10 it is close to 25.

    Parameters
    ----------
    weights: torch.Tensor, shape=(F, C, K)
        Convolution weights in PyTorch ``Conv1d`` layout, bias excluded.

    Returns
    -------
    penalty: torch.Tensor, shape=()
        Σ|W|, differentiable with respect to ``weights``.
    """
    weights = _check_weights(weights)
    return weights.abs().sum()


# ---------------------------------------------------------------------------------------------
# Attention-entropy penalty (§3.4)
# ---------------------------------------------------------------------------------------------


def attention_entropy_penalty(attention: torch.Tensor) -> torch.Tensor:
    """Per-example entropy of the stream-attention weights (``argminn.md`` §3.4).

    For layer l and head h,

        H[n, l, h] = −Σ_i α[n, l, h, i] · log2(α[n, l, h, i] + 1e-6) − c,
        c = −log2(1/L' + 1e-6) / L',

    and the penalty is the mean of H over layers and heads. The constant c is the original's offset;
    it does not change gradients. Sharper (lower-entropy) attention gives a smaller value. The paper's
    runs used weight 0 for this term (§11 item 14) but it is still worth logging.

    Parameters
    ----------
    attention: torch.Tensor, shape=(N, n_layers, n_heads, L')
        Attention weights, each (n, l, h) row a distribution over the L' positions.

    Returns
    -------
    penalty: torch.Tensor, shape=(N,)
        Mean entropy (in bits, offset by c) over layers and heads, for each example.
    """
    attention = _check_tensor(attention, "attention")
    if attention.ndim != 4:
        raise ValueError(
            f"attention must have shape (N, n_layers, n_heads, length), but has shape {tuple(attention.shape)}."
        )
    length = attention.shape[-1]
    if length < 1 or attention.shape[1] < 1 or attention.shape[2] < 1:
        raise ValueError(
            "attention must have at least one layer, one head and one position, "
            f"but has shape {tuple(attention.shape)}."
        )
    offset = -math.log2(1.0 / length + 1e-6) / length
    entropy = -(attention * torch.log2(attention + 1e-6)).sum(dim=-1) - offset  # (N, AL, NH)
    return entropy.mean(dim=(1, 2))


# ---------------------------------------------------------------------------------------------
# Schedules (§3.5)
# ---------------------------------------------------------------------------------------------

#: The loss components a schedule may weight, in the order of ``argminn.md`` §3.1.
SCHEDULE_KEYS: tuple[str, ...] = ("filter_overlap", "filter_l1", "attention_entropy")


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def log_ramp_schedule(
    start_exp: float,
    end_exp: float,
    *,
    burn_in: int = 10,
    steps: int = 20,
    burn_out: int = 10,
) -> list[float]:
    """A per-epoch weight schedule: zeros, then a log-linear ramp, then a plateau (§3.5).

    The result is ``burn_in`` zeros, then ``10 ** numpy.linspace(start_exp, end_exp, steps)`` (both
    ends included), then ``10 ** end_exp`` repeated ``burn_out`` times. With the defaults and
    (0.5, 5) it is the paper's 40-epoch overlap schedule: 0 for epochs 0–9, 10^0.5 at epoch 10 up to
    10^5 at epoch 29, and 10^5 for epochs 30–39.

    Parameters
    ----------
    start_exp: float
        Base-10 exponent of the first ramp value.
    end_exp: float
        Base-10 exponent of the last ramp value and of the plateau.
    burn_in: int, optional
        Number of leading epochs with weight 0. Default is 10.
    steps: int, optional
        Number of ramp epochs, at least 2 so that both ends are included. Default is 20.
    burn_out: int, optional
        Number of trailing epochs held at 10 ** end_exp. Default is 10.

    Returns
    -------
    schedule: list of float, length burn_in + steps + burn_out
        One weight per epoch.
    """
    for name, value in (("start_exp", start_exp), ("end_exp", end_exp)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    burn_in = _check_count(burn_in, "burn_in", 0)
    steps = _check_count(steps, "steps", 2)
    burn_out = _check_count(burn_out, "burn_out", 0)
    ramp = [float(10.0**exponent) for exponent in np.linspace(float(start_exp), float(end_exp), steps)]
    plateau = float(10.0 ** float(end_exp))
    return [0.0] * burn_in + ramp + [plateau] * burn_out


def scheduled_weight(weight: float | Sequence[float] | np.ndarray, epoch: int) -> float:
    """The weight of a loss term at one epoch.

    A scalar weight is constant. A sequence (list, tuple or 1-D array) holds one weight per epoch,
    indexed from epoch 0; past its end the last entry is reused, as in the original training loop.

    Parameters
    ----------
    weight: float or sequence of float, shape=(n_epochs,)
        A constant weight or a per-epoch schedule (e.g. from :func:`log_ramp_schedule`).
    epoch: int
        Epoch index, starting at 0.

    Returns
    -------
    value: float
        The weight to use at ``epoch``.
    """
    epoch = _check_count(epoch, "epoch", 0)
    if isinstance(weight, bool):
        raise ValueError(f"weight must be a number or a sequence of numbers, got {weight!r}.")
    if isinstance(weight, numbers.Real):
        return float(weight)
    if isinstance(weight, (str, bytes)) or not isinstance(weight, (Sequence, np.ndarray)):
        raise ValueError(f"weight must be a number or a sequence of numbers, got {type(weight).__name__}.")
    values = np.asarray(weight)
    if values.ndim == 0:
        return float(values)
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"weight must be a scalar or a non-empty 1-D schedule, but has shape {values.shape}.")
    if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
        raise ValueError(f"weight must hold real numbers, got dtype {values.dtype}.")
    return float(values[min(epoch, values.shape[0] - 1)])


#: Named schedules (40 epochs each) for the three regularisers (§3.5 and §11 item 4).
#: "simulation" is the paper's simulated-data schedule, "genomic" the example notebook's, "none"
#: turns every regulariser off. Treat these lists as read-only.
SCHEDULE_PRESETS: dict[str, dict[str, list[float]]] = {
    "simulation": {
        "filter_overlap": log_ramp_schedule(0.5, 5.0),
        "filter_l1": log_ramp_schedule(-3.0, -2.0),
        "attention_entropy": [0.0] * 40,
    },
    "genomic": {
        "filter_overlap": log_ramp_schedule(0.5, 4.0),
        "filter_l1": log_ramp_schedule(-4.0, -3.0),
        "attention_entropy": [0.0] * 40,
    },
    "none": {key: [0.0] * 40 for key in SCHEDULE_KEYS},
}


def schedule_weights(
    schedule: Mapping[str, float | Sequence[float] | np.ndarray] | str,
    epoch: int,
) -> dict[str, float]:
    """The weights of all regularisers at one epoch.

    Parameters
    ----------
    schedule: dict or str
        Either the name of a preset in :data:`SCHEDULE_PRESETS` ("simulation", "genomic", "none"),
        or a mapping from loss-component names (a subset of :data:`SCHEDULE_KEYS`) to a scalar
        weight or a per-epoch schedule. Components left out get weight 0.
    epoch: int
        Epoch index, starting at 0.

    Returns
    -------
    weights: dict of str to float
        One entry per name in :data:`SCHEDULE_KEYS`.
    """
    if isinstance(schedule, str):
        if schedule not in SCHEDULE_PRESETS:
            raise ValueError(f"schedule {schedule!r} is not a preset; choose one of {sorted(SCHEDULE_PRESETS)}.")
        schedule = SCHEDULE_PRESETS[schedule]
    elif not isinstance(schedule, Mapping):
        raise ValueError(f"schedule must be a preset name or a mapping, got {type(schedule).__name__}.")
    unknown = sorted(str(key) for key in schedule if key not in SCHEDULE_KEYS)
    if unknown:
        raise ValueError(f"schedule has unknown keys {unknown}; allowed keys are {list(SCHEDULE_KEYS)}.")
    return {key: scheduled_weight(schedule.get(key, 0.0), epoch) for key in SCHEDULE_KEYS}
