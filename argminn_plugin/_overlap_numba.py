"""Fused CPU kernels for the filter-overlap penalty (numba), used by :mod:`argminn_plugin.regularizers`.

The penalty at position i of example n, with a = top[n, i], T = 2K − 1 offsets and the activations
zero-padded by K − 1 on both sides (Ā), is

    out[n, i] = Σ_t S^a[a, t] · (P[t, n, i + t] − S^b[a, t] · Ā[a, n, i + t]),
    P[t, n, j] = Σ_f S^b[f, t] · Ā[f, n, j].

P is one dense matrix product, (T, F) @ (F, N·W), done by PyTorch. Everything else touches each
(n, i, t) once, so it is written as loops that numba compiles: the transposed, padded copy of the
activations and the top filter of every position (one pass), then the per-example sums (one pass).

The per-example sum Σ_i out[n, i] is linear in the activations, Σ_{f, j} A[n, f, j] · G[n, f, j],
with a field G that depends only on S^a, S^b and the top filters: G = S^b @ Q (Q[t, n, i + t] =
S^a[top, t]) minus each top filter's own window. So when a gradient is needed the forward pass
also builds G and, per example and top filter, the sums that the S^a and S^b gradients need, in
the same pass; the backward pass only scales them by each example's incoming gradient. A
filter-overlap step then costs little more than the forward evaluation that the training log makes
anyway. (This is why the function returns per-example sums: the gradient of a per-position output
would not be constant along each example.)

Examples are processed in blocks whose (T, block, L' + T − 1) temporaries hold about 2**19
elements, so a block stays in cache and those temporaries do not grow with the batch; G (the size
of the activations) and (N, F, T) tables are kept for the backward pass. Only float32 and float64
CPU tensors take this path; the chunked PyTorch path (``regularizers._OverlapTerms``) serves the rest.
"""

from __future__ import annotations

import threading

import torch

try:  # numba is a dependency, but the PyTorch path must keep working without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

# The package's __init__ selects numba's "workqueue" threading layer (see there); that layer must not
# be entered from two Python threads at once, hence this lock around every kernel launch.
_LOCK = threading.Lock()

__all__ = ["available", "overlap_per_example"]


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
        # out (N,): the per-example sum over positions, accumulated in float64.
        n_examples, length = top.shape
        n_offsets = s_a.shape[1]
        for n in prange(n_examples):
            total = 0.0
            for i in range(length):
                a = top[n, i]
                if a < 0:
                    continue
                for t in range(n_offsets):
                    own = s_b[a, t] * a_pad[a, n, i + t]
                    total += s_a[a, t] * (projected[t, n, i + t] - own)
            out[n] = total

    @njit(parallel=True, cache=True)
    def _forward_with_pieces(a_pad, projected, top, s_a, s_b, out, q, from_shifted, from_window):  # pragma: no cover
        # As _forward, and the pieces of the gradient: q (T, N, W) with q[t, n, i + t] = S^a[top, t]
        # (zero elsewhere), and per example and top filter c the sums over its positions of the
        # projection (from_shifted) and of its own window (from_window), both (N, F, T).
        n_examples, length = top.shape
        n_offsets = s_a.shape[1]
        width = q.shape[2]
        for n in prange(n_examples):
            for t in range(n_offsets):
                for j in range(t):
                    q[t, n, j] = 0.0
                for j in range(t + length, width):
                    q[t, n, j] = 0.0
            total = 0.0
            for i in range(length):
                a = top[n, i]
                if a < 0:
                    for t in range(n_offsets):
                        q[t, n, i + t] = 0.0
                    continue
                for t in range(n_offsets):
                    shifted = projected[t, n, i + t]
                    window = a_pad[a, n, i + t]
                    total += s_a[a, t] * (shifted - s_b[a, t] * window)
                    q[t, n, i + t] = s_a[a, t]
                    from_shifted[n, a, t] += shifted
                    from_window[n, a, t] += window
            out[n] = total

    @njit(parallel=True, cache=True)
    def _subtract_own(top, own_weight, pad, field_pad, field):  # pragma: no cover - compiled
        # field_pad (F, N, W) holds S^b @ q; subtract the top filter's own window and copy the
        # unpadded part out as field (N, F, L): the gradient of the per-example sum.
        n_examples, length = top.shape
        n_offsets = own_weight.shape[1]
        n_filters = field_pad.shape[0]
        for n in prange(n_examples):
            for i in range(length):
                a = top[n, i]
                if a < 0:
                    continue
                for t in range(n_offsets):
                    field_pad[a, n, i + t] -= own_weight[a, t]
            for f in range(n_filters):
                for i in range(length):
                    field[n, f, i] = field_pad[f, n, pad + i]


def _use_torch_threads() -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


#: Examples per block: the (T, block, L' + T − 1) temporaries hold about this many elements, so a
#: block's working set stays in cache and memory does not grow with the batch.
_BLOCK_ELEMENTS = 2**19


def _blocks(n_examples: int, n_offsets: int, width: int):
    size = max(1, _BLOCK_ELEMENTS // (n_offsets * width))
    for start in range(0, n_examples, size):
        yield start, min(n_examples, start + size)


class _FusedOverlapPenalty(torch.autograd.Function):
    """Per-example overlap sums (N,) from activations (N, F, L') and the masses S^a, S^b (F, T).

    The sum is linear in the activations: Σ_{f, j} A[n, f, j] · G[n, f, j], where the field G
    depends only on S^a, S^b and the top filters. When a gradient is needed, the forward pass
    computes G and the per-example pieces of the S^a/S^b gradients alongside the value, in the same
    pass over memory; the backward pass then only scales them by the incoming per-example gradient.
    """

    @staticmethod
    def forward(ctx, activations, s_a, s_b, ignore_inactive):
        activations = activations.detach().contiguous()
        s_a, s_b = s_a.detach().contiguous(), s_b.detach().contiguous()
        n, n_filters, length = activations.shape
        n_offsets = s_a.shape[1]
        pad = (n_offsets - 1) // 2
        width = length + 2 * pad
        pieces = any(ctx.needs_input_grad[:3])
        top = torch.empty(n, length, dtype=torch.int64)
        out = torch.empty(n, dtype=torch.float64)
        s_a_np, s_b_np = s_a.numpy(), s_b.numpy()
        if pieces:
            field = activations.new_empty(n, n_filters, length)
            from_shifted = activations.new_zeros(n, n_filters, n_offsets)
            from_window = activations.new_zeros(n, n_filters, n_offsets)
            from_projected = activations.new_empty(n, n_filters, n_offsets)
            own_weight = (s_a * s_b).contiguous().numpy()
        with _LOCK:
            _use_torch_threads()
            for start, stop in _blocks(n, n_offsets, width):
                m = stop - start
                top_block = top[start:stop].numpy()
                a_pad = activations.new_empty(n_filters, m, width)
                _prepare(activations[start:stop].numpy(), pad, bool(ignore_inactive), a_pad.numpy(), top_block)
                flat = a_pad.view(n_filters, m * width)
                projected = torch.mm(s_b.t(), flat).view(n_offsets, m, width)
                if not pieces:
                    _forward(a_pad.numpy(), projected.numpy(), top_block, s_a_np, s_b_np, out[start:stop].numpy())
                    continue
                q = activations.new_empty(n_offsets, m, width)
                _forward_with_pieces(a_pad.numpy(), projected.numpy(), top_block, s_a_np, s_b_np,
                                     out[start:stop].numpy(), q.numpy(), from_shifted[start:stop].numpy(),
                                     from_window[start:stop].numpy())
                field_pad = torch.mm(s_b, q.view(n_offsets, m * width)).view(n_filters, m, width)
                _subtract_own(top_block, own_weight, pad, field_pad.numpy(), field[start:stop].numpy())
                # per example: a_pad[:, n, :] @ q[:, n, :]^T, (F, T)
                torch.bmm(a_pad.transpose(0, 1), q.permute(1, 2, 0), out=from_projected[start:stop])
        if pieces:
            ctx.save_for_backward(field, from_shifted, from_window, from_projected, s_a, s_b)
        return out.to(activations.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        field, from_shifted, from_window, from_projected, s_a, s_b = ctx.saved_tensors
        grad = grad.to(field.dtype)
        d_activations = field * grad.view(-1, 1, 1)
        weights = grad.view(-1, 1, 1)
        from_shifted = (from_shifted * weights).sum(0)
        from_window = (from_window * weights).sum(0)
        from_projected = (from_projected * weights).sum(0)
        grad_s_a = from_shifted - from_window * s_b
        grad_s_b = from_projected - from_window * s_a
        return d_activations, grad_s_a, grad_s_b, None


def overlap_per_example(activations: torch.Tensor, s_a: torch.Tensor, s_b: torch.Tensor,
                        ignore_inactive: bool) -> torch.Tensor:
    """Un-normalised overlap penalty of every example, (N,): the sum of its positions' terms."""
    return _FusedOverlapPenalty.apply(activations, s_a, s_b, ignore_inactive)
