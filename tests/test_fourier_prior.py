"""Tests for argminn_plugin.fourier_prior.

References used here are independent of the module: a numpy implementation of the prior written
below from the definition (``np.convolve``, ``np.fft.rfft``), scipy's Gaussian filter for the
smoothing kernel, the reference values of ``fourier_prior.md`` §1.5 and §1.9, analytic gradients of
a linear model, and attribution gradients computed "the long way" with autograd.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from argminn_plugin.fourier_prior import (
    attribution_tracks,
    fourier_prior,
    fourier_prior_loss,
    frequency_weights,
    smoothing_kernel,
)

# ---------------------------------------------------------------------------------------------
# Independent numpy reference
# ---------------------------------------------------------------------------------------------


def _np_kernel(sigma: float) -> np.ndarray:
    radius = int(sigma + 0.5)
    if radius == 0:
        return np.ones(1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return k / k.sum()


def _np_weights(n_bins: int, K: int, c: float | None) -> np.ndarray:
    k = np.arange(1, n_bins, dtype=np.float64)
    w = np.ones_like(k)
    above = k > K
    if c is None:
        w[above] = 0.0
    else:
        w[above] = 1.0 / (1.0 + (k[above] - K) ** c)
    return w


def _np_spectrum(track: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised rfft moduli (DC included) of one smoothed track."""
    smoothed = np.convolve(track, _np_kernel(sigma), mode="same")
    mag = np.abs(np.fft.rfft(smoothed))
    total = mag.sum()
    return mag / total if total != 0 else mag


def _np_loss(track: np.ndarray, K: int, c: float | None = 0.2, sigma: float = 3) -> float:
    m = _np_spectrum(track, sigma)
    return float(1.0 - np.sum(_np_weights(m.size, K, c) * m[1:]))


def _np_dc_share(track: np.ndarray, sigma: float = 3) -> float:
    return float(_np_spectrum(track, sigma)[0])


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.atleast_2d(x), dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# Toy models
# ---------------------------------------------------------------------------------------------


class _ReLUCNN(torch.nn.Module):
    """Small binary CNN returning logits (N, n_tasks)."""

    def __init__(self, n_tasks: int = 2, batchnorm: bool = False) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv1d(4, 8, kernel_size=7, padding=3)
        self.relu = torch.nn.ReLU()
        self.norm = torch.nn.BatchNorm1d(8) if batchnorm else torch.nn.Identity()
        self.conv2 = torch.nn.Conv1d(8, 8, kernel_size=5, padding=2)
        self.pool = torch.nn.AdaptiveMaxPool1d(4)
        self.linear = torch.nn.Linear(32, n_tasks)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.relu(self.conv1(X)))
        h = self.pool(self.relu(self.conv2(h)))
        return self.linear(h.flatten(1))


class _LinearModel(torch.nn.Module):
    """logits_t = <W_t, X> + b_t, whose input gradient is known in closed form."""

    def __init__(self, length: int, n_tasks: int = 3) -> None:
        super().__init__()
        self.W = torch.nn.Parameter(torch.randn(n_tasks, 4, length))
        self.b = torch.nn.Parameter(torch.randn(n_tasks))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ncl,tcl->nt", X, self.W) + self.b


class _ToyProfile(torch.nn.Module):
    """Profile model following the bpnet-lite contract: ((N, T, O), (N, 1))."""

    def __init__(self, n_outputs: int = 2, trim: int = 5) -> None:
        super().__init__()
        self.trim = trim
        self.conv = torch.nn.Conv1d(4, 6, kernel_size=9, padding=4)
        self.act = torch.nn.Softplus()
        self.head = torch.nn.Conv1d(6, n_outputs, kernel_size=5, padding=2)
        self.count = torch.nn.Linear(6, 1)

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.act(self.conv(X))
        if X_ctl is not None:
            h = h + X_ctl.sum(dim=1, keepdim=True)
        profile = self.head(h)[:, :, self.trim : X.shape[-1] - self.trim]
        return profile, self.count(h.mean(dim=-1))


def _one_hot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=generator)
    return torch.nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()


# ---------------------------------------------------------------------------------------------
# Smoothing kernel and frequency weights
# ---------------------------------------------------------------------------------------------


def test_kernel_sigma3_reference_values():
    k = smoothing_kernel(3)
    assert k.shape == (7,)
    assert k.dtype == torch.float32
    expected = [0.1063, 0.1403, 0.1658, 0.1752, 0.1658, 0.1403, 0.1063]
    np.testing.assert_allclose(k.numpy(), expected, atol=1e-4)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("sigma", [1, 2, 3, 5, 1.5, 2.4, 2.6])
def test_kernel_matches_scipy_gaussian_filter_of_delta(sigma):
    radius = int(sigma + 0.5)
    delta = np.zeros(2 * radius + 1)
    delta[radius] = 1.0
    expected = gaussian_filter1d(delta, sigma, truncate=1.0)
    k = smoothing_kernel(sigma)
    assert k.shape == (2 * radius + 1,)
    np.testing.assert_allclose(k.numpy(), expected, atol=1e-7)
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(k.numpy(), k.flip(0).numpy())


def test_sigma_zero_is_identity():
    assert smoothing_kernel(0).tolist() == [1.0]
    rng = np.random.default_rng(1)
    tracks = np.abs(rng.standard_normal((3, 64)))
    # With sigma = 0 the loss equals the unsmoothed numpy computation.
    loss = fourier_prior_loss(_t(tracks), 10, smooth_sigma=0)
    for i in range(3):
        m = np.abs(np.fft.rfft(tracks[i]))
        m = m / m.sum()
        expected = 1.0 - np.sum(_np_weights(m.size, 10, 0.2) * m[1:])
        assert float(loss[i]) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize(
    "excess, expected",
    [(1, 0.500), (2, 0.465), (5, 0.420), (10, 0.387), (50, 0.314), (100, 0.285), (350, 0.237)],
)
def test_soft_weights_reference_values(excess, expected):
    w = frequency_weights(501, 150, 0.2)
    # Entry j belongs to frequency k = j + 1, so frequency K + excess is entry K + excess - 1.
    assert float(w[150 + excess - 1]) == pytest.approx(expected, abs=5e-4)


def test_weights_pass_band_and_hard_cutoff():
    soft = frequency_weights(501, 150, 0.2)
    hard = frequency_weights(501, 150, None)
    assert soft.shape == hard.shape == (500,)
    assert torch.all(soft[:150] == 1) and torch.all(hard[:150] == 1)
    assert torch.all(hard[150:] == 0)
    assert torch.all(soft[150:] < 1) and torch.all(soft[150:] > 0)
    assert torch.all(soft[151:] <= soft[150:-1])  # monotone tail
    np.testing.assert_allclose(soft.numpy(), _np_weights(501, 150, 0.2), atol=1e-7)


@pytest.mark.parametrize("length, n_bins", [(1000, 501), (1346, 674), (999, 500)])
def test_rfft_bin_counts(length, n_bins):
    assert length // 2 + 1 == n_bins
    assert frequency_weights(n_bins, 150).shape == (n_bins - 1,)
    # The highest admissible cut-off is the last non-DC bin, L // 2, where every weight is 1.
    track = torch.rand(2, length, dtype=torch.float64)
    fourier_prior_loss(track, n_bins - 1)
    with pytest.raises(ValueError, match="freq_limit"):
        fourier_prior_loss(track, n_bins)


# ---------------------------------------------------------------------------------------------
# Reference values of the spec (§1.9, §9)
# ---------------------------------------------------------------------------------------------


def _reference_track(name: str) -> np.ndarray:
    L = 1000
    a = np.zeros(L)
    if name == "flat":
        a[:] = 1.0
    elif name == "delta":
        a[500] = 1.0
    elif name == "noise":
        a = np.abs(np.random.default_rng(0).standard_normal(L))
    elif name == "boxes":
        a[480:490] = 1.0
        a[530:538] = 0.7
    elif name == "sinusoid":
        a = 1.0 + np.sin(2 * np.pi * 5 * np.arange(L) / L)
    return a


@pytest.mark.parametrize(
    "name, soft, hard, dc",
    [
        ("flat", 0.8412, 0.8526, 0.8175),
        ("delta", 0.1570, 0.2141, 0.0084),
        ("noise", 0.3945, 0.4358, 0.2867),
        ("boxes", 0.0519, 0.0631, 0.0241),
        ("sinusoid", 0.5988, None, 0.5811),
    ],
)
def test_spec_reference_rows(name, soft, hard, dc):
    track = _t(_reference_track(name))
    assert float(fourier_prior_loss(track, 150, 0.2, 3)[0]) == pytest.approx(soft, abs=1e-3)
    if hard is not None:
        assert float(fourier_prior_loss(track, 150, None, 3)[0]) == pytest.approx(hard, abs=1e-3)
    # With a hard cut-off at the last bin every non-DC weight is 1, so the loss is the DC share.
    assert float(fourier_prior_loss(track, 500, None, 3)[0]) == pytest.approx(dc, abs=1e-3)
    assert _np_dc_share(_reference_track(name)) == pytest.approx(dc, abs=1e-3)


def test_all_zero_track_gives_loss_one_and_finite_gradient():
    zeros = torch.zeros(2, 1000, dtype=torch.float64, requires_grad=True)
    for c in (0.2, None):
        loss = fourier_prior_loss(zeros, 150, c)
        np.testing.assert_allclose(loss.detach().numpy(), [1.0, 1.0])
    loss = fourier_prior_loss(zeros, 150)
    loss.sum().backward()
    assert torch.isfinite(zeros.grad).all()
    assert _np_dc_share(np.zeros(1000)) == 0.0


def test_loss_equals_dc_plus_weighted_high_frequency_share():
    track = _reference_track("boxes")
    m = _np_spectrum(track, 3)
    w = _np_weights(m.size, 150, 0.2)
    decomposed = m[0] + np.sum((1.0 - w) * m[1:])
    assert float(fourier_prior_loss(_t(track), 150)[0]) == pytest.approx(decomposed, abs=1e-9)


def test_ordering_of_shapes():
    # Compact bumps < |noise| < flat, as in §9.
    losses = {n: float(fourier_prior_loss(_t(_reference_track(n)), 150)[0]) for n in ("boxes", "noise", "flat")}
    assert losses["boxes"] < losses["noise"] < losses["flat"]


# ---------------------------------------------------------------------------------------------
# Agreement with the numpy reference, invariances, dtypes
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [64, 101, 1000])
@pytest.mark.parametrize("sigma", [0, 1, 3])
@pytest.mark.parametrize("softness", [0.2, 0.5, None])
def test_matches_numpy_reference_on_random_tracks(length, sigma, softness):
    rng = np.random.default_rng(length + 7 * sigma)
    tracks = np.abs(rng.standard_normal((4, length))) * rng.uniform(0.1, 10.0, size=(4, 1))
    tracks[1, : length // 2] = 0.0
    K = max(1, round(0.15 * length))
    loss = fourier_prior_loss(_t(tracks), K, softness, sigma)
    assert loss.shape == (4,)
    assert loss.dtype == torch.float64
    expected = [_np_loss(tracks[i], K, softness, sigma) for i in range(4)]
    np.testing.assert_allclose(loss.numpy(), expected, atol=1e-10)
    # float32 input gives float32 arithmetic, close to the float64 reference
    loss32 = fourier_prior_loss(torch.tensor(tracks, dtype=torch.float32), K, softness, sigma)
    assert loss32.dtype == torch.float32
    np.testing.assert_allclose(loss32.numpy(), expected, atol=2e-5)


def test_scale_invariance_and_range():
    rng = np.random.default_rng(3)
    tracks = _t(np.abs(rng.standard_normal((5, 200))))
    loss = fourier_prior_loss(tracks, 30)
    np.testing.assert_allclose(fourier_prior_loss(1e3 * tracks, 30).numpy(), loss.numpy(), atol=1e-10)
    assert torch.all(loss >= 0) and torch.all(loss <= 1)


def test_batch_size_invariance():
    rng = np.random.default_rng(4)
    tracks = _t(np.abs(rng.standard_normal((7, 300))))
    full = fourier_prior_loss(tracks, 45)
    singles = torch.cat([fourier_prior_loss(tracks[i : i + 1], 45) for i in range(7)])
    pieces = torch.cat([fourier_prior_loss(tracks[:3], 45), fourier_prior_loss(tracks[3:], 45)])
    np.testing.assert_allclose(full.numpy(), singles.numpy(), atol=1e-12)
    np.testing.assert_allclose(full.numpy(), pieces.numpy(), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64])
def test_low_precision_inputs_are_upcast(dtype):
    rng = np.random.default_rng(5)
    tracks = np.round(np.abs(rng.standard_normal((3, 128))) * 4)
    low = torch.tensor(tracks).to(dtype)
    loss = fourier_prior_loss(low, 20)
    assert loss.dtype == torch.float32
    expected = [_np_loss(low[i].double().numpy(), 20) for i in range(3)]
    np.testing.assert_allclose(loss.numpy(), expected, atol=2e-5)


def test_loss_is_differentiable_against_finite_differences():
    rng = np.random.default_rng(6)
    tracks = torch.tensor(np.abs(rng.standard_normal((2, 24))) + 0.1, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fourier_prior_loss(t, 4), (tracks,), fast_mode=True)


# ---------------------------------------------------------------------------------------------
# Attribution tracks
# ---------------------------------------------------------------------------------------------


def test_tracks_of_linear_model_match_closed_form():
    torch.manual_seed(0)
    model = _LinearModel(50, n_tasks=3).double()
    X = _one_hot(4, 50, seed=1)
    X[0, :, 10] = 0.0  # an N base gets zero attribution
    tracks = attribution_tracks(model, X)
    assert tracks.shape == (4, 50)
    assert tracks.dtype == torch.float64
    summed_w = model.W.detach().sum(dim=0)  # gradient of the summed logits, (4, L)
    expected = (summed_w.unsqueeze(0) * X.double()).abs().sum(dim=1)
    np.testing.assert_allclose(tracks.detach().numpy(), expected.numpy(), atol=1e-12)
    assert float(tracks[0, 10].detach()) == 0.0


def test_tracks_accept_integer_one_hot_and_no_graph_mode():
    torch.manual_seed(0)
    model = _ReLUCNN()
    X = _one_hot(3, 40, seed=2)
    with_graph = attribution_tracks(model, X)
    assert with_graph.requires_grad
    no_graph = attribution_tracks(model, X.long(), create_graph=False)
    assert not no_graph.requires_grad
    np.testing.assert_allclose(no_graph.numpy(), with_graph.detach().numpy(), atol=1e-6)
    assert torch.all(no_graph >= 0)
    with torch.no_grad():  # still works inside no_grad
        inside = attribution_tracks(model, X, create_graph=False)
    np.testing.assert_allclose(inside.numpy(), no_graph.numpy(), atol=1e-6)


def test_return_output_shares_the_forward_pass():
    torch.manual_seed(0)
    model = _ToyProfile()
    X = _one_hot(2, 30, seed=3)
    tracks, (profile, counts) = attribution_tracks(model, X, return_output=True)
    expected_profile, expected_counts = model(X)
    assert tracks.shape == (2, 30)
    torch.testing.assert_close(profile, expected_profile)
    torch.testing.assert_close(counts, expected_counts)


def _long_way_profile_tracks(model, X, weighting, X_ctl=None):
    X = X.clone().requires_grad_(True)
    z = model(X)[0] if X_ctl is None else model(X, X_ctl)[0]
    centred = z - z.mean(dim=-1, keepdim=True)
    weights = torch.log_softmax(z, dim=-1) if weighting == "log_softmax" else torch.softmax(z, dim=-1)
    scalar = (centred * weights.detach()).sum()
    (g,) = torch.autograd.grad(scalar, X)
    return (g * X).abs().sum(dim=1).detach()


@pytest.mark.parametrize("weighting", ["log_softmax", "softmax"])
def test_profile_weighting_equals_long_way(weighting):
    torch.manual_seed(0)
    model = _ToyProfile().double()
    X = _one_hot(3, 40, seed=4).double()
    X_ctl = torch.rand(3, 2, 40, dtype=torch.float64)
    expected = _long_way_profile_tracks(model, X, weighting, X_ctl)
    tracks = attribution_tracks(model, X, X_ctl, profile_weighting=weighting)
    np.testing.assert_allclose(tracks.detach().numpy(), expected.numpy(), atol=1e-10)
    assert float(expected.abs().sum()) > 0
    # the two weightings differ, so the option is not ignored
    other = "softmax" if weighting == "log_softmax" else "log_softmax"
    assert not torch.allclose(tracks, attribution_tracks(model, X, X_ctl, profile_weighting=other))


def test_forced_output_modes():
    torch.manual_seed(0)
    profile_model = _ToyProfile().double()
    X = _one_hot(2, 30, seed=5).double()
    # "logits" on a profile model explains the raw sum of the profile logits
    Xg = X.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(profile_model(Xg)[0].sum(), Xg)
    forced = attribution_tracks(profile_model, X, output="logits")
    np.testing.assert_allclose(forced.detach().numpy(), (g * X).abs().sum(1).numpy(), atol=1e-10)
    # "profile" on a tensor model centres along the last (task) axis
    binary_model = _LinearModel(30, n_tasks=3).double()
    z = binary_model(X).detach()
    zc = z - z.mean(dim=-1, keepdim=True)
    g = torch.einsum("nt,tcl->ncl", zc, binary_model.W.detach())  # sum_t (z_t - mean z) * dz_t/dX
    forced = attribution_tracks(binary_model, X, output="profile")
    np.testing.assert_allclose(forced.detach().numpy(), (g * X).abs().sum(1).numpy(), atol=1e-10)


def test_bpnetlite_bpnet_tracks_and_gradients():
    bpnetlite = pytest.importorskip("bpnetlite")
    torch.manual_seed(0)
    model = bpnetlite.BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=0, trimming=30, verbose=False)
    X = _one_hot(4, 128, seed=6)
    tracks = attribution_tracks(model, X)
    assert tracks.shape == (4, 128)
    assert torch.isfinite(tracks).all() and torch.all(tracks >= 0)
    assert float(tracks.detach().sum()) > 0
    np.testing.assert_allclose(
        tracks.detach().numpy(), _long_way_profile_tracks(model, X, "log_softmax").numpy(), rtol=1e-4, atol=1e-6
    )
    prior = fourier_prior(model, X, torch.tensor([1, 0, 1, 1]))
    assert prior.ndim == 0 and 0 < float(prior.detach()) < 1
    prior.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert float(model.iconv.weight.grad.abs().sum()) > 0


def test_bpnetlite_bpnet_with_controls():
    bpnetlite = pytest.importorskip("bpnetlite")
    torch.manual_seed(0)
    model = bpnetlite.BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=2, trimming=30, verbose=False)
    X = _one_hot(2, 128, seed=7)
    X_ctl = torch.rand(2, 2, 128)
    tracks = attribution_tracks(model, X, X_ctl)
    np.testing.assert_allclose(
        tracks.detach().numpy(),
        _long_way_profile_tracks(model, X, "log_softmax", X_ctl).numpy(),
        rtol=1e-4,
        atol=1e-6,
    )


# ---------------------------------------------------------------------------------------------
# The prior
# ---------------------------------------------------------------------------------------------


def test_prior_averages_over_positives_only():
    torch.manual_seed(0)
    model = _ReLUCNN()
    X = _one_hot(6, 100, seed=8)
    status = torch.tensor([1, 0, 1, 0, 0, 1])
    tracks = attribution_tracks(model, X, create_graph=False)
    per_example = fourier_prior_loss(tracks, 15)  # round(0.15 * 100) = 15 is the default cut-off
    prior = fourier_prior(model, X, status)
    assert prior.ndim == 0
    assert prior.item() == pytest.approx(float(per_example[status == 1].mean()), abs=1e-6)
    everyone = fourier_prior(model, X, status, positives_only=False)
    assert everyone.item() == pytest.approx(float(per_example.mean()), abs=1e-6)
    assert fourier_prior(model, X).item() == pytest.approx(float(per_example.mean()), abs=1e-6)
    # per_example differs between examples, so the selection matters
    assert prior.item() != pytest.approx(everyone.item(), abs=1e-6)
    # boolean status and numpy status work the same way
    assert fourier_prior(model, X, status.bool()).item() == pytest.approx(prior.item(), abs=1e-6)
    assert fourier_prior(model, X, status.numpy()).item() == pytest.approx(prior.item(), abs=1e-6)


def test_prior_with_explicit_cutoff_options():
    torch.manual_seed(0)
    model = _ReLUCNN()
    X = _one_hot(3, 100, seed=9)
    tracks = attribution_tracks(model, X, create_graph=False)
    expected = fourier_prior_loss(tracks, 20, None, 1).mean()
    prior = fourier_prior(model, X, freq_limit=20, limit_softness=None, smooth_sigma=1)
    assert prior.item() == pytest.approx(expected.item(), abs=1e-6)


def test_prior_is_zero_without_positives():
    torch.manual_seed(0)
    model = _ReLUCNN()
    X = _one_hot(4, 60, seed=10)
    prior = fourier_prior(model, X, torch.zeros(4))
    assert isinstance(prior, torch.Tensor) and prior.ndim == 0
    assert prior.item() == 0.0
    assert not prior.requires_grad  # nothing was computed, so there is no graph to back-propagate
    # ... but positives_only=False still applies it to every example
    assert fourier_prior(model, X, torch.zeros(4), positives_only=False).item() > 0


def test_prior_gradients_reach_cnn_parameters():
    torch.manual_seed(0)
    model = _ReLUCNN(batchnorm=True)
    model.train()
    X = _one_hot(5, 80, seed=11)
    prior = fourier_prior(model, X, torch.tensor([1, 1, 0, 1, 0]))
    prior.backward()
    for name in ("conv1.weight", "conv2.weight", "linear.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None, name
        assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0, name
    assert model.training  # the mode is not changed


def test_prior_parameter_gradient_matches_finite_differences():
    # Double back-propagation checked numerically on a smooth (softplus) binary model. (For profile
    # models the weighting is detached by definition, so the prior's gradient deliberately differs
    # from the finite difference of its value.)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(4, 3, kernel_size=5, padding=2),
        torch.nn.Softplus(),
        torch.nn.Conv1d(3, 2, kernel_size=5),
        torch.nn.Softplus(),
        torch.nn.Flatten(),
        torch.nn.Linear(2 * 20, 2),
    ).double()
    X = _one_hot(2, 24, seed=12).double()

    def prior_of(w: torch.Tensor) -> torch.Tensor:
        params = dict(model.named_parameters())
        params["0.weight"] = w
        return fourier_prior(_Functional(model, params), X, freq_limit=4)

    w0 = model[0].weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(prior_of, (w0,), atol=1e-6, rtol=1e-4, fast_mode=True)


class _Functional(torch.nn.Module):
    """Calls ``model`` with substituted parameters (for gradcheck through the prior)."""

    def __init__(self, model: torch.nn.Module, params: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self.params = params

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(self.model, self.params, (X,))


# ---------------------------------------------------------------------------------------------
# Error paths
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(100,), (2, 3, 100)])
def test_loss_rejects_wrong_rank(shape):
    with pytest.raises(ValueError, match="tracks"):
        fourier_prior_loss(torch.rand(shape), 10)


@pytest.mark.parametrize("freq_limit", [0, -3, 51, 10.0, 1.5, True, "10"])
def test_loss_rejects_bad_freq_limit(freq_limit):
    with pytest.raises(ValueError, match="freq_limit"):
        fourier_prior_loss(torch.rand(2, 100), freq_limit)


def test_loss_rejects_bad_options():
    with pytest.raises(ValueError, match="limit_softness"):
        fourier_prior_loss(torch.rand(2, 100), 10, limit_softness=0)
    with pytest.raises(ValueError, match="limit_softness"):
        fourier_prior_loss(torch.rand(2, 100), 10, limit_softness=-0.2)
    with pytest.raises(ValueError, match="smooth_sigma"):
        fourier_prior_loss(torch.rand(2, 100), 10, smooth_sigma=-1)
    with pytest.raises(ValueError, match="smooth_sigma"):
        fourier_prior_loss(torch.rand(2, 100), 10, smooth_sigma=math.nan)
    with pytest.raises(ValueError, match="sigma"):
        smoothing_kernel(-0.5)
    with pytest.raises(ValueError, match="n_bins"):
        frequency_weights(1, 1)
    with pytest.raises(ValueError, match="freq_limit"):
        frequency_weights(10, 10)
    with pytest.raises(ValueError, match="tracks"):
        fourier_prior_loss(torch.rand(2, 1), 1)


def test_attribution_rejects_bad_arguments():
    model = _ReLUCNN()
    X = _one_hot(2, 40)
    with pytest.raises(ValueError, match="output"):
        attribution_tracks(model, X, output="counts")
    with pytest.raises(ValueError, match="profile_weighting"):
        attribution_tracks(model, X, profile_weighting="probs")
    with pytest.raises(ValueError, match="X"):
        attribution_tracks(model, X[0])
    with pytest.raises(ValueError, match="X"):
        attribution_tracks(model, X[:, :3])
    with pytest.raises(ValueError, match="X_ctl"):
        attribution_tracks(_ToyProfile(), X, torch.rand(3, 2, 40))
    scalar_model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(160, 1), torch.nn.Flatten(0))
    with pytest.raises(ValueError, match="profile"):  # output (N,) has no profile axis
        attribution_tracks(scalar_model, X, output="profile")


def test_prior_rejects_bad_arguments():
    model = _ReLUCNN()
    X = _one_hot(3, 40)
    with pytest.raises(ValueError, match="status"):
        fourier_prior(model, X, torch.ones(4))
    with pytest.raises(ValueError, match="status"):
        fourier_prior(model, X, torch.ones(3, 1))
    with pytest.raises(ValueError, match="freq_limit"):
        fourier_prior(model, X, freq_limit=21)
    with pytest.raises(ValueError, match="output"):
        attribution_tracks(model, X, output="auto-ish")
    with pytest.raises(ValueError, match="X"):
        fourier_prior(model, X.flatten(1))
