"""Tests of the attribution stability / cleanliness metrics used to compare the Fourier prior."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from argminn_plugin.attribution_metrics import (
    compare_prior,
    compute_attributions,
    continuous_jaccard,
    cosine_similarity,
    importance_in_motifs,
    motif_mask,
    one_sided_wilcoxon,
    pairwise_stability,
    ranked_base_auprc,
    train_prior_pair,
)


class TinyCNN(nn.Module):
    """A small binary CNN (module level, so that ``fit`` can pickle it)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(4, 4, 5)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool1d(4)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(4 * 9, 1)

    def forward(self, X: torch.Tensor) -> torch.Tensor:  # X (N, 4, 40)
        return self.linear(self.flatten(self.pool(self.act(self.conv(X)))))


class LinearModel(nn.Module):
    """f(x) = sum(w * x) + b: its input gradient is w everywhere."""

    def __init__(self, length: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(4, length, generator=g))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return ((X * self.w).sum(dim=(1, 2)) + self.b)[:, None]


def _one_hot(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 4, length))
    X[np.arange(n)[:, None], rng.integers(0, 4, size=(n, length)), np.arange(length)[None, :]] = 1
    return X


# ---------------------------------------------------------------------------------------------
# Continuous Jaccard and cosine
# ---------------------------------------------------------------------------------------------


def _jaccard_loop(u: np.ndarray, v: np.ndarray) -> float:
    """Reference: the spec's definition written position by position for one (4, L) pair."""
    total = 0.0
    for i in range(u.shape[1]):
        a, b = u[:, i].astype(float), v[:, i].astype(float)
        sa, sb = sum(abs(x) for x in a), sum(abs(x) for x in b)
        a = a / sa if sa > 0 else a * 0
        b = b / sb if sb > 0 else b * 0
        inter = sum(min(abs(x), abs(y)) * np.sign(x) * np.sign(y) for x, y in zip(a, b))
        union = sum(max(abs(x), abs(y)) for x, y in zip(a, b))
        total += inter / union if union > 0 else 0.0
    return total


def test_continuous_jaccard_matches_position_loop():
    rng = np.random.default_rng(1)
    U = rng.normal(size=(5, 4, 30))
    V = rng.normal(size=(5, 4, 30))
    U[0, :, 3] = 0.0  # an all-zero position in one track
    U[1, :, 4] = V[1, :, 4] = 0.0  # union 0 there
    V[2, 1, :] = 0.0
    expected = [_jaccard_loop(U[i], V[i]) for i in range(5)]
    np.testing.assert_allclose(continuous_jaccard(U, V), expected, rtol=1e-12, atol=1e-12)
    # torch input and symmetry
    np.testing.assert_allclose(continuous_jaccard(torch.tensor(V), torch.tensor(U)), expected, atol=1e-12)


def test_continuous_jaccard_identical_flipped_and_scaled():
    rng = np.random.default_rng(2)
    U = rng.normal(size=(3, 4, 25))
    U[:, :, 5:8] = 0.0  # three empty positions: they contribute 0
    nonzero = (np.abs(U).sum(axis=1) > 0).sum(axis=1)
    assert list(nonzero) == [22, 22, 22]
    np.testing.assert_allclose(continuous_jaccard(U, U), nonzero)
    np.testing.assert_allclose(continuous_jaccard(U, -U), -nonzero)
    # per-position positive rescaling does not matter (L1 normalisation per position)
    scale = rng.uniform(0.1, 10.0, size=(3, 1, 25))
    np.testing.assert_allclose(continuous_jaccard(U, U * scale), nonzero)
    # a value strictly between the bounds for independent tracks
    V = rng.normal(size=U.shape)
    assert np.all(np.abs(continuous_jaccard(U, V)) < nonzero)


def test_continuous_jaccard_hand_example():
    # one position: u = (1, -1, 0, 2) -> (0.25, -0.25, 0, 0.5); v = (0, -1, 1, 2) -> (0, -0.25, 0.25, 0.5)
    # intersection = 0 + 0.25 + 0 + 0.5 = 0.75; union = 0.25 + 0.25 + 0.25 + 0.5 = 1.25 -> 0.6
    u = np.array([1.0, -1.0, 0.0, 2.0]).reshape(1, 4, 1)
    v = np.array([0.0, -1.0, 1.0, 2.0]).reshape(1, 4, 1)
    assert continuous_jaccard(u, v)[0] == pytest.approx(0.6)


def test_continuous_jaccard_shape_errors():
    with pytest.raises(ValueError):
        continuous_jaccard(np.zeros((2, 4, 5)), np.zeros((2, 4, 6)))
    with pytest.raises(ValueError):
        continuous_jaccard(np.zeros((2, 3, 5)), np.zeros((2, 3, 5)))


def test_cosine_similarity_matches_numpy():
    rng = np.random.default_rng(3)
    U, V = rng.normal(size=(4, 4, 12)), rng.normal(size=(4, 4, 12))
    V[3] = 0.0
    expected = [float(np.dot(U[i].ravel(), V[i].ravel()) / (np.linalg.norm(U[i]) * np.linalg.norm(V[i])))
                for i in range(3)] + [0.0]
    np.testing.assert_allclose(cosine_similarity(U, V), expected, atol=1e-12)
    np.testing.assert_allclose(cosine_similarity(U, 2.5 * U), 1.0)
    np.testing.assert_allclose(cosine_similarity(U, -U), -1.0)


def test_pairwise_stability_is_mean_over_pairs():
    rng = np.random.default_rng(4)
    tracks = [rng.normal(size=(6, 4, 10)) for _ in range(4)]
    for metric, func in (("jaccard", continuous_jaccard), ("cosine", cosine_similarity)):
        pairs = [func(tracks[i], tracks[j]) for i, j in itertools.combinations(range(4), 2)]
        assert len(pairs) == 6
        np.testing.assert_allclose(pairwise_stability(tracks, metric), np.mean(pairs, axis=0))
    np.testing.assert_allclose(pairwise_stability([tracks[0]] * 3, "jaccard"), 10.0)
    custom = pairwise_stability(tracks[:2], lambda a, b: np.ones(len(a)) * 7)
    np.testing.assert_allclose(custom, 7.0)
    with pytest.raises(ValueError):
        pairwise_stability(tracks[:1])
    with pytest.raises(ValueError):
        pairwise_stability(tracks, "pearson")


# ---------------------------------------------------------------------------------------------
# Masks, motif fraction, auPRC
# ---------------------------------------------------------------------------------------------


def test_motif_mask_from_truth_table():
    X = np.zeros((3, 4, 10))
    truth = pd.DataFrame({"example_idx": [0, 0, 2, 2], "start": [1, 6, -2, 8], "end": [3, 8, 1, 12],
                          "motif": ["a"] * 4})
    mask = motif_mask(X, truth)
    expected = np.zeros((3, 10), dtype=bool)
    expected[0, [1, 2, 6, 7]] = True
    expected[2, [0, 8, 9]] = True  # clipped to [0, L)
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(motif_mask(3, truth, length=10), expected)
    with pytest.raises(ValueError):
        motif_mask(X, truth, length=11)
    with pytest.raises(ValueError):
        motif_mask(X, pd.DataFrame({"example_idx": [3], "start": [0], "end": [1]}))
    with pytest.raises(ValueError):
        motif_mask(X, pd.DataFrame({"example_idx": [0], "start": [0]}))


def test_importance_in_motifs_hand_made():
    attr = np.zeros((3, 4, 6))
    attr[0, 0, :] = [1, 1, 4, 4, 0, 0]  # 8 of 10 inside [2, 4)
    attr[0, 1, 5] = -0  # signed zeros do nothing
    attr[1, 2, :] = [-3, 0, 1, 0, 0, 0]  # |.|: 1 of 4 inside
    mask = np.zeros((3, 6), dtype=bool)
    mask[:, 2:4] = True
    fraction = importance_in_motifs(attr, mask)
    np.testing.assert_allclose(fraction[:2], [0.8, 0.25])
    assert math.isnan(fraction[2])  # no importance at all
    # (N, L) tracks give the same as (N, 4, L)
    np.testing.assert_allclose(importance_in_motifs(np.abs(attr).sum(1), mask)[:2], [0.8, 0.25])
    with pytest.raises(ValueError):
        importance_in_motifs(attr, mask[:, :5])


def _average_precision_loop(scores: np.ndarray, labels: np.ndarray) -> float:
    """Reference without ties: mean over positives of the precision at each positive's rank."""
    order = np.argsort(-scores, kind="stable")
    hits, precisions = 0, []
    for rank, idx in enumerate(order, start=1):
        if labels[idx]:
            hits += 1
            precisions.append(hits / rank)
    return float(np.mean(precisions))


def test_ranked_base_auprc():
    mask = np.zeros((2, 8), dtype=bool)
    mask[0, 2:4] = True
    mask[1, 5] = True
    perfect = np.where(mask, 5.0, 0.1)[:, None, :] * np.array([1, 0, 0, 0])[None, :, None]
    assert ranked_base_auprc(perfect, mask) == pytest.approx(1.0)
    rng = np.random.default_rng(5)
    tracks = rng.permutation(16).reshape(2, 8).astype(float) + 1  # distinct scores, no ties
    expected = _average_precision_loop(tracks.ravel(), mask.ravel())
    assert ranked_base_auprc(-tracks, mask) == pytest.approx(expected)  # absolute values rank
    worst = np.where(mask, 0.1, 5.0) + np.arange(16).reshape(2, 8) * 1e-3
    assert ranked_base_auprc(worst, mask) == pytest.approx(_average_precision_loop(worst.ravel(), mask.ravel()))
    assert ranked_base_auprc(worst, mask) < 0.3
    assert math.isnan(ranked_base_auprc(tracks, np.zeros_like(mask)))


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def test_one_sided_wilcoxon_direction():
    rng = np.random.default_rng(6)
    base = rng.normal(size=30)
    better = base + rng.uniform(0.5, 1.5, size=30)
    assert one_sided_wilcoxon(better, base, "greater") < 1e-3
    assert one_sided_wilcoxon(better, base, "less") > 0.5
    assert one_sided_wilcoxon(base, better, "less") < 1e-3
    # NaN pairs are dropped; identical values give NaN
    with_nan = better.copy()
    with_nan[0] = np.nan
    assert one_sided_wilcoxon(with_nan, base) < 1e-3
    assert math.isnan(one_sided_wilcoxon(base, base))
    with pytest.raises(ValueError):
        one_sided_wilcoxon(base, base, "two-sided")


# ---------------------------------------------------------------------------------------------
# compare_prior
# ---------------------------------------------------------------------------------------------


def _hand_made_condition(X, mask, n_models, stable, rng):
    """Hypothetical attributions: a shared motif signal plus model-specific noise."""
    n, _, L = X.shape
    signal = np.where(mask[:, None, :], 3.0, 0.0) * np.array([1, -0.5, 0.2, -0.3])[None, :, None]
    noise_scale = 0.05 if stable else 1.5
    return [signal + noise_scale * rng.normal(size=(n, 4, L)) for _ in range(n_models)]


def test_compare_prior_on_hand_made_attributions():
    rng = np.random.default_rng(7)
    n, L = 25, 60
    X = _one_hot(n, L, seed=7)
    truth = pd.DataFrame({"example_idx": np.arange(n), "start": rng.integers(5, 40, size=n)})
    truth["end"] = truth["start"] + 10
    mask = motif_mask(X, truth)
    with_prior = _hand_made_condition(X, mask, 3, True, rng)
    without_prior = _hand_made_condition(X, mask, 3, False, rng)

    result = compare_prior(with_prior, without_prior, X, truth=truth, return_attributions=True)
    summary = result["summary"].set_index("metric")
    assert list(summary.index) == ["jaccard", "cosine", "smoothness", "motif_fraction", "auprc"]
    for metric in ("jaccard", "cosine", "motif_fraction"):
        assert summary.loc[metric, "mean_prior"] > summary.loc[metric, "mean_no_prior"]
        assert summary.loc[metric, "p_value"] < 1e-4
        assert summary.loc[metric, "test"] == "wilcoxon"
        assert summary.loc[metric, "n"] == n
    assert summary.loc["smoothness", "mean_prior"] < summary.loc["smoothness", "mean_no_prior"]
    assert summary.loc["smoothness", "p_value"] < 1e-4
    assert summary.loc["auprc", "test"] == "mannwhitney"
    assert summary.loc["auprc", "mean_prior"] > summary.loc["auprc", "mean_no_prior"]
    # 3 vs 3 with complete separation: exact p = 1 / C(6, 3) = 0.05 (scipy's normal approximation when
    # values tie, as here where several auPRCs are 1, is a little lower)
    assert summary.loc["auprc", "p_value"] <= 0.05 + 1e-12

    # per-sample values are the documented functions of the inputs
    per_sample = result["per_sample"]
    prior_rows = per_sample[per_sample.condition == "prior"]
    np.testing.assert_allclose(prior_rows["jaccard"], pairwise_stability(with_prior, "jaccard"))
    actual = [A * X for A in without_prior]
    expected_fraction = np.mean([importance_in_motifs(A, mask) for A in actual], axis=0)
    np.testing.assert_allclose(per_sample[per_sample.condition == "no_prior"]["motif_fraction"], expected_fraction)
    per_model = result["per_model"]
    assert len(per_model) == 6
    assert per_model.loc[0, "auprc"] == pytest.approx(ranked_base_auprc(with_prior[0] * X, mask))
    assert result["attributions"]["prior"][1] is not None

    # swapping the conditions flips the direction of every test
    swapped = compare_prior(without_prior, with_prior, X, truth=mask).get("summary").set_index("metric")
    assert (swapped["p_value"] > 0.5).all()


def test_compare_prior_uses_actual_importance_for_cleanliness():
    # large hypothetical scores on unobserved bases outside the motif must not count
    n, L = 4, 30
    X = _one_hot(n, L, seed=8)
    mask = np.zeros((n, L), dtype=bool)
    mask[:, 10:15] = True
    hyp = np.where(mask[:, None, :], 1.0, 0.0) * X + 100.0 * (1 - X) * ~mask[:, None, :]
    result = compare_prior([hyp, hyp], [hyp, hyp * 2], X, truth=mask)
    per_sample = result["per_sample"]
    np.testing.assert_allclose(per_sample["motif_fraction"], 1.0)
    np.testing.assert_allclose(result["per_model"]["auprc"], 1.0)
    # identical models: the Jaccard is the number of positions with any score (all of them here)
    np.testing.assert_allclose(per_sample.loc[per_sample.condition == "prior", "jaccard"], L)


def test_compare_prior_without_truth_and_errors():
    X = _one_hot(5, 20, seed=9)
    rng = np.random.default_rng(9)
    tracks = [rng.normal(size=(5, 4, 20)) for _ in range(2)]
    summary = compare_prior(tracks, tracks[::-1], X)["summary"]
    assert list(summary.metric) == ["jaccard", "cosine", "smoothness"]
    assert math.isnan(summary.set_index("metric").loc["jaccard", "p_value"])  # identical pair sets
    with pytest.raises(ValueError):
        compare_prior(tracks[:1], tracks, X)
    with pytest.raises(ValueError):
        compare_prior([tracks[0][:, :, :10]] * 2, tracks, X)
    with pytest.raises(ValueError):
        compare_prior([tracks[0], LinearModel(20)], tracks, X)


# ---------------------------------------------------------------------------------------------
# Attributions from models
# ---------------------------------------------------------------------------------------------


def test_input_gradient_of_linear_model_is_its_weights():
    X = torch.tensor(_one_hot(6, 15, seed=10), dtype=torch.float32)
    models = [LinearModel(15, seed=s) for s in range(2)]
    attrs = compute_attributions(models, X, attribution="input_gradient", batch_size=4)
    for model, A in zip(models, attrs):
        assert model.training  # mode restored
        np.testing.assert_allclose(A, np.broadcast_to(model.w.detach().numpy(), A.shape), rtol=1e-6)


def test_deep_lift_shap_hypothetical_differences_and_determinism():
    # For a linear model, hypothetical scores of two bases at a position differ by the weight
    # difference, whatever the references; and fixed references make repeated calls identical.
    X = torch.tensor(_one_hot(4, 15, seed=11), dtype=torch.float32)
    model = LinearModel(15, seed=3)
    A, B = compute_attributions([model, model], X, n_shuffles=4, random_state=1)
    np.testing.assert_allclose(A, B)
    w = model.w.detach().numpy().astype(np.float64)
    np.testing.assert_allclose(A[:, 1:] - A[:, :1], np.broadcast_to(w[1:] - w[:1], A[:, 1:].shape), atol=1e-5)
    with pytest.raises(ValueError):
        compute_attributions([model], X, attribution="ism")


def test_compare_prior_with_models_end_to_end():
    X = torch.tensor(_one_hot(8, 40, seed=12), dtype=torch.float32)
    torch.manual_seed(0)
    with_prior = [TinyCNN() for _ in range(2)]
    without_prior = [TinyCNN() for _ in range(2)]
    truth = pd.DataFrame({"example_idx": range(8), "start": [10] * 8, "end": [20] * 8})
    for attribution in ("input_gradient", "deep_lift_shap"):
        result = compare_prior(with_prior, without_prior, X, truth=truth, attribution=attribution, n_shuffles=3)
        summary = result["summary"]
        assert len(summary) == 5
        assert np.isfinite(summary[["mean_prior", "mean_no_prior"]].to_numpy()).all()
        assert (summary.loc[summary.metric == "cosine", ["mean_prior", "mean_no_prior"]].abs() <= 1).all().all()


# ---------------------------------------------------------------------------------------------
# Training the pair
# ---------------------------------------------------------------------------------------------


def test_train_prior_pair_shares_initialisation_and_trains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(13)
    X = torch.tensor(_one_hot(32, 40, seed=13), dtype=torch.int8)
    y = torch.tensor(rng.integers(0, 2, size=32))

    untrained = train_prior_pair(TinyCNN, (X, y), seeds=(0, 1), epochs=0)
    assert len(untrained.prior) == len(untrained.no_prior) == 2
    for a, b in zip(untrained.prior, untrained.no_prior):
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)  # same seed -> same initial weights
    assert not torch.equal(untrained.prior[0].conv.weight, untrained.prior[1].conv.weight)

    work = tmp_path / "runs"
    pair = train_prior_pair(TinyCNN, (X, y), (X[:8], y[:8]), seeds=(0,), epochs=1, batch_size=16, workdir=work)
    assert pair.seeds == [0]
    assert len(pair.seconds["prior"]) == len(pair.seconds["no_prior"]) == 1
    assert not pair.prior[0].training
    assert not torch.equal(pair.prior[0].conv.weight, pair.no_prior[0].conv.weight)  # the prior changed training
    assert not torch.equal(pair.no_prior[0].conv.weight, untrained.no_prior[0].conv.weight)
    log = pd.read_csv(work / "prior_seed0.log", sep="\t")
    assert log["Training Fourier Prior"].iloc[0] > 0
    assert pd.read_csv(work / "no_prior_seed0.log", sep="\t")["Training Fourier Prior"].iloc[0] == 0
    assert os.listdir(tmp_path) == ["runs"]  # nothing written to the working directory
    with pytest.raises(ValueError):
        train_prior_pair(TinyCNN, (X, y), seeds=(0,), fourier_weight=0.0)
