"""Tests for argminn_plugin.regularizers.

The penalties are checked against brute-force references written here from ``argminn.md`` §3
(loops over examples, positions, filters and offsets), against invariants of the formulas, and on
their error paths. The schedules are checked against §3.5 and §12.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from argminn_plugin.regularizers import (
    SCHEDULE_KEYS,
    SCHEDULE_PRESETS,
    attention_entropy_penalty,
    filter_l1_penalty,
    filter_overlap_penalty,
    log_ramp_schedule,
    overlap_kernel,
    schedule_weights,
    scheduled_weight,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# Brute-force references, written from the spec (argminn.md §3.2 and §3.4)
# ---------------------------------------------------------------------------------------------


def _top_filter(column: list[float]) -> int:
    """Hard argmax over filters; the lowest index wins ties (strict > while scanning upwards)."""
    best = 0
    for f in range(1, len(column)):
        if column[f] > column[best]:
            best = f
    return best


def _overlap_loop(activations: torch.Tensor, weights: torch.Tensor, ignore_inactive: bool = False) -> torch.Tensor:
    """§3.2 term by term, in autograd-tracked scalar arithmetic.

    ``activations`` is (N, F, L') and ``weights`` is a Conv1d weight (F, 4, K); the spec's
    W[f, k, c] is ``weights[f, c, k]``.
    """
    n_examples, n_filters, length = activations.shape
    width = weights.shape[2]
    w_spec = weights.permute(0, 2, 1)  # (F, K, 4) as written in the spec

    def mass(f: int, k: int) -> torch.Tensor:
        return sum(w_spec[f, k, c].abs() for c in range(w_spec.shape[2]))

    def s_a(f: int, delta: int) -> torch.Tensor:
        return sum(mass(f, k) for k in range(max(0, delta), width - max(0, -delta)))

    def s_b(f: int, delta: int) -> torch.Tensor:
        return sum(mass(f, k) for k in range(max(0, -delta), width - max(0, delta)))

    z = sum(mass(f, k) for f in range(n_filters) for k in range(width))
    offsets = range(-(width - 1), width)
    s_a_table = {(f, d): s_a(f, d) for f in range(n_filters) for d in offsets}
    s_b_table = {(f, d): s_b(f, d) for f in range(n_filters) for d in offsets}

    values = activations.detach().tolist()
    out = []
    for n in range(n_examples):
        total = activations.new_zeros(())
        for i in range(length):
            column = [values[n][f][i] for f in range(n_filters)]
            if ignore_inactive and max(column) <= 0:
                continue
            a = _top_filter(column)
            for f in range(n_filters):
                if f == a:
                    continue
                for delta in offsets:
                    j = i + delta
                    if j < 0 or j >= length:
                        continue  # out-of-range positions read zero
                    total = total + s_a_table[a, delta] * s_b_table[f, delta] * activations[n, f, j]
        out.append(total / (length * n_filters * (2 * width - 1)) / z)
    return torch.stack(out)


def _random_case(
    n_examples: int, n_filters: int, length: int, width: int, seed: int, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    activations = torch.relu(torch.randn(n_examples, n_filters, length, generator=generator, dtype=dtype))
    weights = torch.randn(n_filters, 4, width, generator=generator, dtype=dtype)
    # One all-zero position (top filter 0), one weakly active position and one exact tie between
    # the two highest filters.
    activations[0, :, length // 2] = 0.0
    if length - 1 != length // 2:
        # A weakly active position: it must count even with ignore_inactive=True.
        activations[0, :, length - 1] = 0.0
        activations[0, 0, length - 1] = 1e-3
    if n_filters >= 2 and length >= 2:
        activations[-1, :, 0] = 0.0
        activations[-1, n_filters - 1, 0] = 2.5
        activations[-1, n_filters - 2, 0] = 2.5
    return activations, weights


# (N, F, L', K): K odd and even, K = 1, K > L' (offsets run off both ends), L' = 1.
OVERLAP_SIZES = [
    (2, 2, 6, 1),
    (3, 3, 7, 2),
    (2, 4, 5, 3),
    (2, 3, 4, 4),
    (2, 5, 3, 5),
    (3, 2, 1, 3),
    (2, 1, 6, 3),
]


# ---------------------------------------------------------------------------------------------
# Filter-overlap penalty
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["fused", "torch"])
def overlap_backend(request, monkeypatch):
    """Run a test with the fused numba kernels and with the chunked PyTorch path."""
    from argminn_plugin import regularizers

    monkeypatch.setattr(regularizers, "_USE_FUSED_KERNELS", request.param == "fused")
    return request.param


def test_fused_overlap_kernels_are_used_on_cpu():
    from argminn_plugin import _overlap_numba

    assert _overlap_numba.available(torch.zeros(1, 2, 3))
    assert _overlap_numba.available(torch.zeros(1, 2, 3, dtype=torch.float64))
    assert not _overlap_numba.available(torch.zeros(1, 2, 3, dtype=torch.float16))


@pytest.mark.parametrize("sizes", OVERLAP_SIZES)
@pytest.mark.parametrize("ignore_inactive", [False, True])
def test_overlap_matches_loop_values_and_gradients(sizes, ignore_inactive, overlap_backend):
    n_examples, n_filters, length, _ = sizes
    activations, weights = _random_case(*sizes, seed=sum(sizes))
    activations.requires_grad_(True)
    weights.requires_grad_(True)

    fast = filter_overlap_penalty(activations, weights, ignore_inactive=ignore_inactive)
    slow = _overlap_loop(activations, weights, ignore_inactive=ignore_inactive)
    assert fast.shape == (n_examples,)
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-12)

    # Different coefficients per example so that each example's gradient is checked.
    coefficients = torch.linspace(0.5, 1.5, n_examples, dtype=torch.float64)
    grads_fast = torch.autograd.grad(
        (fast * coefficients).sum(), (activations, weights), allow_unused=True, materialize_grads=True
    )
    grads_slow = torch.autograd.grad(
        (slow * coefficients).sum(), (activations, weights), allow_unused=True, materialize_grads=True
    )
    for g_fast, g_slow in zip(grads_fast, grads_slow):
        torch.testing.assert_close(g_fast, g_slow, rtol=1e-6, atol=1e-12)
    if n_filters > 1 and length > 1:
        # The reference is not trivially zero, so the comparison means something.
        assert slow.abs().max() > 0
        assert grads_slow[1].abs().max() > 0


def test_overlap_matches_loop_on_larger_batch(overlap_backend):
    # Large enough (N >= 2K-1) to exercise the chunked float64 convolution path.
    sizes = (12, 3, 9, 3)
    activations, weights = _random_case(*sizes, seed=7)
    fast = filter_overlap_penalty(activations, weights)
    slow = _overlap_loop(activations, weights)
    torch.testing.assert_close(fast, slow, rtol=1e-6, atol=1e-12)


def test_overlap_float32_agrees_with_float64(overlap_backend):
    activations, weights = _random_case(16, 8, 120, 10, seed=3)
    reference = filter_overlap_penalty(activations, weights)
    single = filter_overlap_penalty(activations.float(), weights.float())
    assert single.dtype == torch.float32
    torch.testing.assert_close(single.double(), reference, rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ignore_inactive", [False, True])
def test_fused_and_torch_overlap_agree_on_a_training_sized_batch(dtype, ignore_inactive, monkeypatch):
    from argminn_plugin import regularizers

    generator = torch.Generator().manual_seed(11)
    activations = torch.relu(torch.randn(40, 8, 300, generator=generator, dtype=dtype) - 0.5)
    activations[3] = 0  # an example where no filter fires
    weights = torch.randn(8, 4, 10, generator=generator, dtype=dtype)
    results = {}
    for fused in (True, False):
        monkeypatch.setattr(regularizers, "_USE_FUSED_KERNELS", fused)
        acts, w = activations.clone().requires_grad_(True), weights.clone().requires_grad_(True)
        value = filter_overlap_penalty(acts, w, ignore_inactive=ignore_inactive)
        coefficients = torch.linspace(0.5, 1.5, value.shape[0], dtype=dtype)
        results[fused] = (value, *torch.autograd.grad((value * coefficients).sum(), (acts, w)))
    tolerance = {"rtol": 1e-4, "atol": 1e-7} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-14}
    for fused_part, torch_part in zip(results[True], results[False]):
        torch.testing.assert_close(fused_part, torch_part, **tolerance)
    assert results[True][0].abs().max() > 0 and results[True][2].abs().max() > 0


def test_overlap_kernel_entries():
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(3, 4, 4, generator=generator, dtype=torch.float64)
    kernel = overlap_kernel(weights)
    assert kernel.shape == (3, 3, 7)
    mass = weights.abs().sum(dim=1)  # (F, K)
    for a in range(3):
        for f in range(3):
            for t in range(7):
                delta = t - 3
                expected = 0.0
                if a != f:
                    s_a = mass[a, max(0, delta) : 4 - max(0, -delta)].sum()
                    s_b = mass[f, max(0, -delta) : 4 - max(0, delta)].sum()
                    expected = float(s_a * s_b)
                assert kernel[a, f, t].item() == pytest.approx(expected, rel=1e-12, abs=0)


def test_overlap_single_filter_0_firing_is_zero():
    # Only filter 0 is ever active; silent positions also pick filter 0, so no term survives.
    generator = torch.Generator().manual_seed(1)
    activations = torch.zeros(3, 5, 40, dtype=torch.float64)
    activations[:, 0, ::3] = torch.rand(3, 14, generator=generator, dtype=torch.float64) + 0.1
    weights = torch.randn(5, 4, 6, generator=generator, dtype=torch.float64)
    penalty = filter_overlap_penalty(activations, weights)
    assert torch.equal(penalty, torch.zeros(3, dtype=torch.float64))


def test_overlap_never_includes_top_filters_own_term():
    # Filter 2 fires, with varying strength, at every position, and is the top filter everywhere.
    # Every non-zero term would be a self-term (f = a) at some offset, so the penalty must be 0,
    # although the overlap masses S^a_2(δ)·S^b_2(δ) are positive for all 2K-1 offsets.
    generator = torch.Generator().manual_seed(2)
    activations = torch.zeros(2, 4, 30, dtype=torch.float64)
    activations[:, 2, :] = torch.rand(2, 30, generator=generator, dtype=torch.float64) + 0.5
    weights = torch.randn(4, 4, 5, generator=generator, dtype=torch.float64)
    assert filter_overlap_penalty(activations, weights).abs().max() == 0
    assert filter_overlap_penalty(activations, weights, ignore_inactive=True).abs().max() == 0
    # Once a second filter fires next to it, the penalty becomes positive.
    activations[0, 1, 10] = 0.1
    penalty = filter_overlap_penalty(activations, weights)
    assert penalty[0] > 0 and penalty[1] == 0


def test_overlap_single_other_filter_firing_sparsely():
    # Only filter 3 fires, at scattered positions. The silent positions in between select filter 0
    # (the original's behaviour), so filter 3 is penalised against filter 0 by default; dropping
    # silent positions (argminn.md §11 item 5) makes a lone filter free of penalty.
    generator = torch.Generator().manual_seed(4)
    activations = torch.zeros(2, 4, 25, dtype=torch.float64)
    activations[:, 3, ::5] = 1.0
    weights = torch.randn(4, 4, 6, generator=generator, dtype=torch.float64)
    default = filter_overlap_penalty(activations, weights)
    dropped = filter_overlap_penalty(activations, weights, ignore_inactive=True)
    assert (default > 0).all()
    assert torch.equal(dropped, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(default, _overlap_loop(activations, weights), rtol=1e-6, atol=0)


def test_overlap_ignore_inactive_never_larger():
    activations, weights = _random_case(4, 3, 20, 4, seed=11)
    activations[:, :, 5:9] = 0.0
    default = filter_overlap_penalty(activations, weights)
    dropped = filter_overlap_penalty(activations, weights, ignore_inactive=True)
    assert (dropped <= default + 1e-15).all()
    assert (dropped < default).any()


def test_overlap_scaling_invariants():
    activations, weights = _random_case(3, 4, 15, 5, seed=5)
    base = filter_overlap_penalty(activations, weights)
    # S^a·S^b scales with c², Z with c: the penalty is linear in the weight scale...
    torch.testing.assert_close(filter_overlap_penalty(activations, 3.0 * weights), 3.0 * base)
    # ...and linear in the activations (the argmax does not move).
    torch.testing.assert_close(filter_overlap_penalty(2.5 * activations, weights), 2.5 * base)
    # Flipping signs of weights changes nothing: only |W| enters.
    torch.testing.assert_close(filter_overlap_penalty(activations, -weights), base)


def test_overlap_filter_permutation_invariance():
    # Without ties or silent positions, relabelling filters (in A and W together) changes nothing.
    generator = torch.Generator().manual_seed(6)
    activations = torch.rand(3, 5, 18, generator=generator, dtype=torch.float64) + 0.1
    weights = torch.randn(5, 4, 4, generator=generator, dtype=torch.float64)
    permutation = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(
        filter_overlap_penalty(activations[:, permutation], weights[permutation]),
        filter_overlap_penalty(activations, weights),
    )


def test_overlap_batch_independence():
    activations, weights = _random_case(6, 3, 12, 4, seed=8)
    whole = filter_overlap_penalty(activations, weights)
    one_by_one = torch.cat([filter_overlap_penalty(activations[n : n + 1], weights) for n in range(6)])
    torch.testing.assert_close(whole, one_by_one, rtol=1e-12, atol=0)


def test_overlap_gradient_reaches_weights_through_z_only_path():
    # d/dW must include the -penalty/Z · d Z/dW part: check with finite differences in float64.
    activations, weights = _random_case(2, 3, 10, 3, seed=9)
    weights.requires_grad_(True)
    (grad,) = torch.autograd.grad(filter_overlap_penalty(activations, weights).sum(), weights)
    step = 1e-6
    for index in [(0, 0, 0), (1, 2, 1), (2, 3, 2)]:
        bumped_up = weights.detach().clone()
        bumped_up[index] += step
        bumped_down = weights.detach().clone()
        bumped_down[index] -= step
        numeric = (
            filter_overlap_penalty(activations, bumped_up).sum()
            - filter_overlap_penalty(activations, bumped_down).sum()
        ) / (2 * step)
        assert grad[index].item() == pytest.approx(numeric.item(), rel=1e-5)


# --- memory ----------------------------------------------------------------------------------

MEMORY_CASE = (32, 8, 2000, 15)  # N, F, L', K


def _materialised_bytes(element_size: int, n_examples: int, n_filters: int, length: int, width: int) -> int:
    """Size of the (N, F, L', 2K-1) tensor that a direct implementation would build."""
    return n_examples * n_filters * length * (2 * width - 1) * element_size


def _largest_profiled_allocation(function) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        function()
    return max((event.cpu_memory_usage for event in prof.events()), default=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_overlap_largest_allocation_does_not_scale_with_offsets(dtype, overlap_backend):
    n_examples, n_filters, length, width = MEMORY_CASE
    generator = torch.Generator().manual_seed(0)
    activations = torch.relu(torch.randn(n_examples, n_filters, length, generator=generator, dtype=dtype))
    activations.requires_grad_(True)
    weights = torch.randn(n_filters, 4, width, generator=generator, dtype=dtype, requires_grad=True)
    budget = _materialised_bytes(activations.element_size(), *MEMORY_CASE) // 4

    # The measurement can see a tensor of that size (so the assertion below can fail).
    seen = _largest_profiled_allocation(lambda: torch.empty(n_examples, n_filters, length, 2 * width - 1, dtype=dtype))
    assert seen > budget

    def forward_backward() -> None:
        filter_overlap_penalty(activations, weights).sum().backward()

    largest = _largest_profiled_allocation(forward_backward)
    assert 0 < largest < budget


_PEAK_RSS_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from argminn_plugin.regularizers import filter_overlap_penalty

    def peak_rss():
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) * 1024

    n, f, length, width = json.loads(sys.argv[1])
    results = {}
    for name in ("float32", "float64"):
        dtype = getattr(torch, name)
        generator = torch.Generator().manual_seed(0)
        acts = torch.relu(torch.randn(n, f, length, generator=generator, dtype=dtype))
        acts.requires_grad_(True)
        weights = torch.randn(f, 4, width, generator=generator, dtype=dtype, requires_grad=True)
        filter_overlap_penalty(acts[:2, :, :50], weights).sum().backward()  # warm-up
        if name == "float32":
            # Control: a materialised (N, F, L', 2K-1) tensor is visible to this measurement.
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            base = peak_rss()
            big = torch.ones(n, f, length, 2 * width - 1, dtype=dtype)
            results["control"] = peak_rss() - base
            del big
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        base = peak_rss()
        filter_overlap_penalty(acts, weights).sum().backward()
        results[name] = peak_rss() - base
    print(json.dumps(results))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.path.exists("/proc/self/clear_refs")),
    reason="needs Linux /proc/self/clear_refs to reset the peak resident set size",
)
def test_overlap_peak_resident_memory_does_not_scale_with_offsets():
    # Peak RSS of a fresh process also sees buffers allocated outside PyTorch's allocator
    # (e.g. oneDNN scratch space), which the profiler does not. A fixed glibc mmap threshold turns
    # off glibc's dynamic threshold, under which freed multi-megabyte buffers are kept in the heap
    # and later allocations fragment it, so that peak RSS tracks live memory, not allocator history.
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _PEAK_RSS_SCRIPT, json.dumps(MEMORY_CASE)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        if "clear_refs" in error.stderr and "Permission" in error.stderr:
            pytest.skip("cannot reset the peak resident set size here")
        raise
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    float32_budget = _materialised_bytes(4, *MEMORY_CASE) // 4
    assert results["control"] > float32_budget
    assert results["float32"] < float32_budget
    assert results["float64"] < _materialised_bytes(8, *MEMORY_CASE) // 4


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activations", "weights", "match"),
    [
        (torch.rand(4, 10), torch.rand(4, 4, 3), r"activations.*\(4, 10\)"),
        (torch.rand(2, 4, 10, 1), torch.rand(4, 4, 3), r"activations.*\(2, 4, 10, 1\)"),
        (torch.rand(2, 4, 10), torch.rand(4, 12), r"weights.*\(4, 12\)"),
        (torch.rand(2, 4, 10), torch.rand(1, 4, 4, 3), r"weights.*\(1, 4, 4, 3\)"),
        (torch.rand(2, 5, 10), torch.rand(4, 4, 3), r"activations.*\(2, 5, 10\).*weights.*\(4, 4, 3\)"),
        (torch.rand(2, 4, 0), torch.rand(4, 4, 3), r"activations.*\(2, 4, 0\)"),
        (torch.rand(0, 4, 10), torch.rand(4, 4, 3), r"activations.*\(0, 4, 10\)"),
        (torch.rand(2, 4, 10), torch.rand(4, 4, 0), r"weights.*\(4, 4, 0\)"),
        (np.random.rand(2, 4, 10), torch.rand(4, 4, 3), r"activations.*ndarray"),
        (torch.ones(2, 4, 10, dtype=torch.int64), torch.rand(4, 4, 3), r"activations.*dtype"),
    ],
)
def test_overlap_errors(activations, weights, match):
    with pytest.raises(ValueError, match=match):
        filter_overlap_penalty(activations, weights)


def test_overlap_kernel_errors():
    with pytest.raises(ValueError, match=r"weights.*\(4, 3\)"):
        overlap_kernel(torch.rand(4, 3))


# ---------------------------------------------------------------------------------------------
# Filter L1 penalty
# ---------------------------------------------------------------------------------------------


def test_l1_equals_sum_of_absolute_values():
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(5, 4, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    penalty = filter_l1_penalty(weights)
    assert penalty.shape == ()
    expected = sum(abs(value) for value in weights.detach().flatten().tolist())
    assert penalty.item() == pytest.approx(expected, rel=1e-12)
    (grad,) = torch.autograd.grad(penalty, weights)
    torch.testing.assert_close(grad, torch.sign(weights.detach()))


def test_l1_at_default_conv_init_is_about_25():
    # 320 weights ~ U(-1/sqrt(40), 1/sqrt(40)): expected sum of |w| is 320 / (2 sqrt(40)) ≈ 25.3,
    # with a standard deviation of about 0.8.
    values = []
    for seed in range(5):
        torch.manual_seed(seed)
        conv = torch.nn.Conv1d(4, 8, kernel_size=10)
        values.append(filter_l1_penalty(conv.weight.detach()).item())
    expected = 320 * 0.5 / math.sqrt(40)
    assert all(abs(value - expected) < 3.0 for value in values)
    assert abs(np.mean(values) - expected) < 1.5


def test_l1_errors():
    with pytest.raises(ValueError, match=r"weights.*\(8, 40\)"):
        filter_l1_penalty(torch.rand(8, 40))
    with pytest.raises(ValueError, match="weights.*list"):
        filter_l1_penalty([[1.0]])


# ---------------------------------------------------------------------------------------------
# Attention-entropy penalty
# ---------------------------------------------------------------------------------------------


def _entropy_loop(attention: np.ndarray) -> np.ndarray:
    n_examples, n_layers, n_heads, length = attention.shape
    constant = -math.log2(1.0 / length + 1e-6) / length
    out = np.zeros(n_examples)
    for n in range(n_examples):
        total = 0.0
        for layer in range(n_layers):
            for head in range(n_heads):
                entropy = 0.0
                for i in range(length):
                    alpha = float(attention[n, layer, head, i])
                    entropy -= alpha * math.log2(alpha + 1e-6)
                total += entropy - constant
        out[n] = total / (n_layers * n_heads)
    return out


@pytest.mark.parametrize("shape", [(3, 2, 4, 11), (2, 1, 1, 1), (1, 4, 4, 37)])
def test_attention_entropy_matches_loop(shape):
    generator = torch.Generator().manual_seed(shape[-1])
    logits = 3.0 * torch.randn(*shape, generator=generator, dtype=torch.float64)
    attention = torch.softmax(logits, dim=-1)
    penalty = attention_entropy_penalty(attention)
    assert penalty.shape == (shape[0],)
    np.testing.assert_allclose(penalty.numpy(), _entropy_loop(attention.numpy()), rtol=1e-10, atol=1e-12)


def test_attention_entropy_one_hot_lower_than_uniform():
    length = 50
    uniform = torch.full((2, 3, 4, length), 1.0 / length, dtype=torch.float64)
    one_hot = torch.zeros(2, 3, 4, length, dtype=torch.float64)
    one_hot[..., 7] = 1.0
    low = attention_entropy_penalty(one_hot)
    high = attention_entropy_penalty(uniform)
    assert (low < high).all()
    # Uniform attention has entropy ~ log2(L') bits (less the constant c); one-hot about 0.
    constant = -math.log2(1.0 / length + 1e-6) / length
    np.testing.assert_allclose(high.numpy(), math.log2(length) - constant, atol=1e-3)
    np.testing.assert_allclose(low.numpy(), -constant, atol=1e-4)


def test_attention_entropy_gradient_flows():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 2, 9, generator=generator, dtype=torch.float64)
    attention = torch.softmax(logits, dim=-1).requires_grad_(True)
    (grad,) = torch.autograd.grad(attention_entropy_penalty(attention).sum(), attention)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


@pytest.mark.parametrize(
    ("attention", "match"),
    [
        (torch.rand(2, 4, 10), r"attention.*\(2, 4, 10\)"),
        (torch.rand(2, 1, 4, 0), r"attention.*\(2, 1, 4, 0\)"),
        (torch.rand(2, 0, 4, 10), r"attention.*\(2, 0, 4, 10\)"),
        (np.ones((2, 1, 4, 10)), "attention.*ndarray"),
    ],
)
def test_attention_entropy_errors(attention, match):
    with pytest.raises(ValueError, match=match):
        attention_entropy_penalty(attention)


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "component", "start_exp", "end_exp"),
    [
        ("simulation", "filter_overlap", 0.5, 5.0),
        ("simulation", "filter_l1", -3.0, -2.0),
        ("genomic", "filter_overlap", 0.5, 4.0),
        ("genomic", "filter_l1", -4.0, -3.0),
    ],
)
def test_preset_ramps(preset, component, start_exp, end_exp):
    values = SCHEDULE_PRESETS[preset][component]
    assert len(values) == 40
    assert values[:10] == [0.0] * 10
    # Log-linear: equal steps of the exponent, from 10^start at epoch 10 to 10^end at epoch 29.
    exponents = [math.log10(v) for v in values[10:30]]
    step = (end_exp - start_exp) / 19
    for offset, exponent in enumerate(exponents):
        assert exponent == pytest.approx(start_exp + offset * step, abs=1e-12)
    assert values[10] == pytest.approx(10.0**start_exp, rel=1e-12)
    assert values[29] == pytest.approx(10.0**end_exp, rel=1e-12)
    assert all(v == pytest.approx(10.0**end_exp, rel=1e-12) for v in values[29:])
    assert all(later > earlier for earlier, later in itertools.pairwise(values[9:30]))
    # Past the end the last entry is reused.
    for epoch in (40, 41, 1000):
        assert scheduled_weight(values, epoch) == values[-1]


def test_presets_attention_and_none():
    for preset in ("simulation", "genomic"):
        assert SCHEDULE_PRESETS[preset]["attention_entropy"] == [0.0] * 40
    assert set(SCHEDULE_PRESETS["none"]) == set(SCHEDULE_KEYS)
    for values in SCHEDULE_PRESETS["none"].values():
        assert values == [0.0] * 40
    for preset in SCHEDULE_PRESETS:
        assert set(SCHEDULE_PRESETS[preset]) == set(SCHEDULE_KEYS)


def test_log_ramp_schedule_shape_and_values():
    values = log_ramp_schedule(1.0, 3.0, burn_in=2, steps=3, burn_out=1)
    assert values == pytest.approx([0.0, 0.0, 10.0, 100.0, 1000.0, 1000.0], rel=1e-12)
    assert all(isinstance(v, float) for v in values)
    assert len(log_ramp_schedule(0.5, 5)) == 40
    assert log_ramp_schedule(0.5, 5) == SCHEDULE_PRESETS["simulation"]["filter_overlap"]
    # A decreasing ramp is allowed too.
    down = log_ramp_schedule(2.0, 0.0, burn_in=0, steps=3, burn_out=0)
    assert down == pytest.approx([100.0, 10.0, 1.0], rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 1}, "steps"),
        ({"burn_in": -1}, "burn_in"),
        ({"burn_out": 2.5}, "burn_out"),
        ({"start_exp": float("nan")}, "start_exp"),
        ({"end_exp": "5"}, "end_exp"),
    ],
)
def test_log_ramp_schedule_errors(kwargs, match):
    arguments = {"start_exp": 0.5, "end_exp": 5.0}
    arguments.update(kwargs)
    start_exp = arguments.pop("start_exp")
    end_exp = arguments.pop("end_exp")
    with pytest.raises(ValueError, match=match):
        log_ramp_schedule(start_exp, end_exp, **arguments)


def test_scheduled_weight():
    assert scheduled_weight(0.25, 0) == 0.25
    assert scheduled_weight(3, 17) == 3.0
    assert scheduled_weight(np.float32(0.5), 2) == 0.5
    schedule = [0.0, 1.0, 2.0]
    assert [scheduled_weight(schedule, e) for e in range(5)] == [0.0, 1.0, 2.0, 2.0, 2.0]
    assert scheduled_weight((4.0,), 9) == 4.0
    assert scheduled_weight(np.array([1.0, 2.0]), np.int64(1)) == 2.0
    assert isinstance(scheduled_weight(np.array([1.0, 2.0]), 0), float)


@pytest.mark.parametrize(
    ("weight", "epoch", "match"),
    [
        (1.0, -1, "epoch"),
        ([1.0, 2.0], -3, "epoch"),
        (1.0, 1.5, "epoch"),
        (1.0, True, "epoch"),
        ([], 0, "weight"),
        (np.ones((2, 2)), 0, r"weight.*\(2, 2\)"),
        ("0.5", 0, "weight"),
        (None, 0, "weight"),
        (["a", "b"], 0, "weight"),
    ],
)
def test_scheduled_weight_errors(weight, epoch, match):
    with pytest.raises(ValueError, match=match):
        scheduled_weight(weight, epoch)


def test_schedule_weights():
    at_zero = schedule_weights("simulation", 0)
    assert at_zero == {key: 0.0 for key in SCHEDULE_KEYS}
    at_ten = schedule_weights("simulation", 10)
    assert at_ten["filter_overlap"] == pytest.approx(10.0**0.5)
    assert at_ten["filter_l1"] == pytest.approx(1e-3)
    assert at_ten["attention_entropy"] == 0.0
    late = schedule_weights("genomic", 100)
    assert late["filter_overlap"] == pytest.approx(1e4) and late["filter_l1"] == pytest.approx(1e-3)
    assert schedule_weights("none", 35) == {key: 0.0 for key in SCHEDULE_KEYS}

    custom = schedule_weights({"filter_l1": [0.0, 0.5], "attention_entropy": 1e-3}, 5)
    assert custom == {"filter_overlap": 0.0, "filter_l1": 0.5, "attention_entropy": 1e-3}


@pytest.mark.parametrize(
    ("schedule", "epoch", "match"),
    [
        ("paper", 0, "preset"),
        ({"filter_overlapp": 1.0}, 0, "filter_overlapp"),
        (["simulation"], 0, "schedule"),
        ("simulation", -1, "epoch"),
    ],
)
def test_schedule_weights_errors(schedule, epoch, match):
    with pytest.raises(ValueError, match=match):
        schedule_weights(schedule, epoch)


@pytest.mark.parametrize("user_layer", [None, "omp"])
def test_importing_the_package_selects_numbas_workqueue_layer(user_layer):
    # numba's OpenMP layer, once started by any parallel numba function (ours, tangermeme's,
    # memelite's), shares libgomp with PyTorch and can put it on every core; the package selects
    # "workqueue" unless the user chose a layer.
    script = textwrap.dedent(
        """
        import torch
        import argminn_plugin
        import numba
        from argminn_plugin.regularizers import filter_overlap_penalty
        filter_overlap_penalty(torch.rand(8, 8, 300), torch.rand(8, 4, 10))
        print(numba.threading_layer())
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if user_layer:
        env["NUMBA_THREADING_LAYER"] = user_layer
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                               timeout=300, check=True)
    assert completed.stdout.split()[-1] == (user_layer or "workqueue")
