"""Fused CPU kernels for the filter-overlap penalty (numba), used by :mod:`argminn_plugin.regularizers`.

The penalty at position i of example n, with a = top[n, i], T = 2K − 1 offsets and the activations
zero-padded by K − 1 on both sides (Ā), is

    out[n, i] = Σ_t S^a[a, t] · (P[t, n, i + t] − S^b[a, t] · Ā[a, n, i + t]),
    P[t, n, j] = Σ_f S^b[f, t] · Ā[f, n, j].

P is one dense matrix product, (T, F) @ (F, N·W), done by PyTorch. Everything else touches each
(n, i, t) once, so it is written as loops that numba compiles: the transposed, padded copy of the
activations and the top filter of every position (one pass), the per-position sums (one pass), and
in the backward pass the gradient pieces (two passes). The gradient with respect to the activations
is again one matrix product, S^b @ Q with Q[t, n, i + t] = g[n, i] · S^a[a, t], plus the top
filter's own window, subtracted position by position.

Compared with the chunked PyTorch path (``regularizers._OverlapTerms``) this avoids the batched
products with one-hot "picked" tensors and the per-offset scatters, and is 2–3× faster on a CPU.
Examples are processed in blocks whose (T, block, L' + T − 1) temporaries hold about 2**19
elements, so a block stays in cache and those temporaries do not grow with the batch; only the
padded activations (the size of the activations) are kept for the backward pass. Only float32 and float64 CPU tensors take this path.
"""

from __future__ import annotations

import torch

import os
import threading

try:  # numba is a dependency, but the PyTorch path must keep working without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None
else:
    # numba's OpenMP layer shares libgomp with PyTorch and, once started, makes PyTorch's own
    # parallel regions run on every core whatever ``torch.set_num_threads`` says. The workqueue
    # layer has its own plain threads and leaves PyTorch's thread count alone; it must not be
    # entered from two Python threads at once, hence the lock below. A layer chosen by the user
    # (NUMBA_THREADING_LAYER) is respected.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"

_LOCK = threading.Lock()

__all__ = ["available", "overlap_per_position"]


def available(activations: torch.Tensor) -> bool:
    """Whether the fused kernels can compute the penalty for these activations."""
    return (
        numba is not None
        and activations.device.type == "cpu"
        and activations.dtype in (torch.float32, torch.float64)
    )


if numba is not None:

    @njit(parallel=True, cache=True)
    def _prepare(activations, pad, ignore_inactive, a_pad, top):  # pragma: no cover - compiled
        # a_pad (F, N, W): activations transposed and zero-padded; top (N, L): argmax over filters
        # (lowest index wins ties), or -1 where ignore_inactive and no filter fires.
        n_examples, n_filters, length = activations.shape
        for n in prange(n_examples):
            for f in range(n_filters):
                for j in range(pad):
                    a_pad[f, n, j] = 0.0
                    a_pad[f, n, pad + length + j] = 0.0
                for i in range(length):
                    a_pad[f, n, pad + i] = activations[n, f, i]
            for i in range(length):
                best = 0
                value = activations[n, 0, i]
                for f in range(1, n_filters):
                    candidate = activations[n, f, i]
                    if candidate > value:
                        best = f
                        value = candidate
                if ignore_inactive and not value > 0:
                    top[n, i] = -1
                else:
                    top[n, i] = best

    @njit(parallel=True, cache=True)
    def _forward(a_pad, projected, top, s_a, s_b, out):  # pragma: no cover - compiled
        n_examples, length = top.shape
        n_offsets = s_a.shape[1]
        for n in prange(n_examples):
            for i in range(length):
                a = top[n, i]
                if a < 0:
                    out[n, i] = 0.0
                    continue
                total = 0.0
                for t in range(n_offsets):
                    own = s_b[a, t] * a_pad[a, n, i + t]
                    total += s_a[a, t] * (projected[t, n, i + t] - own)
                out[n, i] = total

    @njit(parallel=True, cache=True)
    def _backward_positions(a_pad, projected, top, s_a, grad, q, from_shifted, from_window):  # pragma: no cover
        # q (T, N, W): q[t, n, i + t] = grad[n, i] * S^a[a, t], zero elsewhere. from_shifted and
        # from_window (N, F, T) are per-example partial sums (no two threads write the same n).
        n_examples, length = top.shape
        n_offsets = s_a.shape[1]
        width = q.shape[2]
        for n in prange(n_examples):
            for t in range(n_offsets):
                for j in range(t):
                    q[t, n, j] = 0.0
                for j in range(t + length, width):
                    q[t, n, j] = 0.0
            for i in range(length):
                a = top[n, i]
                if a < 0:
                    for t in range(n_offsets):
                        q[t, n, i + t] = 0.0
                    continue
                g = grad[n, i]
                for t in range(n_offsets):
                    q[t, n, i + t] = g * s_a[a, t]
                    from_shifted[n, a, t] += g * projected[t, n, i + t]
                    from_window[n, a, t] += g * a_pad[a, n, i + t]

    @njit(parallel=True, cache=True)
    def _backward_own(top, own_weight, grad, pad, d_a_pad, d_activations):  # pragma: no cover - compiled
        # Subtract the top filter's own window, then copy the unpadded part out as (N, F, L).
        n_examples, length = top.shape
        n_offsets = own_weight.shape[1]
        n_filters = d_a_pad.shape[0]
        for n in prange(n_examples):
            for i in range(length):
                a = top[n, i]
                if a < 0:
                    continue
                g = grad[n, i]
                for t in range(n_offsets):
                    d_a_pad[a, n, i + t] -= g * own_weight[a, t]
            for f in range(n_filters):
                for i in range(length):
                    d_activations[n, f, i] = d_a_pad[f, n, pad + i]


def _use_torch_threads() -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


#: Examples per block: the (T, block, L' + T − 1) temporaries hold about this many elements, so a
#: block's working set stays in cache and memory does not grow with the batch.
_BLOCK_ELEMENTS = 2**19


def _blocks(n_examples: int, n_offsets: int, width: int):
    size = max(1, _BLOCK_ELEMENTS // (n_offsets * width))
    for start in range(0, n_examples, size):
        yield start, min(n_examples, start + size)


class _FusedOverlapTerms(torch.autograd.Function):
    """Per-position overlap terms (N, L') from activations (N, F, L') and the masses S^a, S^b (F, T)."""

    @staticmethod
    def forward(ctx, activations, s_a, s_b, ignore_inactive):
        activations = activations.detach().contiguous()
        s_a, s_b = s_a.detach().contiguous(), s_b.detach().contiguous()
        n, n_filters, length = activations.shape
        n_offsets = s_a.shape[1]
        pad = (n_offsets - 1) // 2
        width = length + 2 * pad
        top = torch.empty(n, length, dtype=torch.int64)
        out = activations.new_empty(n, length)
        s_a_np, s_b_np = s_a.numpy(), s_b.numpy()
        padded_blocks = []
        with _LOCK:
            _use_torch_threads()
            for start, stop in _blocks(n, n_offsets, width):
                m = stop - start
                top_block = top[start:stop].numpy()
                a_pad = activations.new_empty(n_filters, m, width)
                _prepare(activations[start:stop].numpy(), pad, bool(ignore_inactive), a_pad.numpy(), top_block)
                projected = torch.mm(s_b.t(), a_pad.view(n_filters, m * width)).view(n_offsets, m, width)
                _forward(a_pad.numpy(), projected.numpy(), top_block, s_a_np, s_b_np, out[start:stop].numpy())
                padded_blocks.append(a_pad)  # kept for the backward pass (as large as the activations)
        ctx.save_for_backward(top, s_a, s_b, *padded_blocks)
        ctx.shape = (n, n_filters, length)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        top, s_a, s_b, *padded_blocks = ctx.saved_tensors
        n, n_filters, length = ctx.shape
        n_offsets = s_a.shape[1]
        pad = (n_offsets - 1) // 2
        width = length + 2 * pad
        grad = grad.to(s_a.dtype).contiguous()
        from_shifted = s_a.new_zeros(n, n_filters, n_offsets)
        from_window = s_a.new_zeros(n, n_filters, n_offsets)
        from_projected = s_a.new_zeros(n_filters, n_offsets)
        d_activations = s_a.new_empty(n, n_filters, length)
        own_weight = (s_a * s_b).contiguous().numpy()
        with _LOCK:
            _use_torch_threads()
            for (start, stop), a_pad in zip(_blocks(n, n_offsets, width), padded_blocks):
                m = stop - start
                top_block, grad_block = top[start:stop].numpy(), grad[start:stop].numpy()
                flat = a_pad.view(n_filters, m * width)
                projected = torch.mm(s_b.t(), flat).view(n_offsets, m, width)
                q = s_a.new_empty(n_offsets, m, width)
                _backward_positions(a_pad.numpy(), projected.numpy(), top_block, s_a.numpy(), grad_block, q.numpy(),
                                    from_shifted[start:stop].numpy(), from_window[start:stop].numpy())
                q_flat = q.view(n_offsets, m * width)
                d_a_pad = torch.mm(s_b, q_flat).view(n_filters, m, width)
                from_projected += torch.mm(flat, q_flat.t())
                _backward_own(top_block, own_weight, grad_block, pad, d_a_pad.numpy(),
                              d_activations[start:stop].numpy())
        from_shifted, from_window = from_shifted.sum(0), from_window.sum(0)
        grad_s_a = from_shifted - from_window * s_b
        grad_s_b = from_projected - from_window * s_a
        return d_activations, grad_s_a, grad_s_b, None


def overlap_per_position(activations: torch.Tensor, s_a: torch.Tensor, s_b: torch.Tensor,
                         ignore_inactive: bool) -> torch.Tensor:
    """Un-normalised overlap terms of every position, (N, L'); differentiable once."""
    return _FusedOverlapTerms.apply(activations, s_a, s_b, ignore_inactive)
