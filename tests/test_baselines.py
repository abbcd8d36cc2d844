"""Tests of the paper's baselines (``argminn_plugin.baselines``): sizes, shapes, DeepLIFT, filter motifs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from argminn_plugin.attribute import convergence_error
from argminn_plugin.baselines import (
    DEEPLIFT_RULES,
    Exp,
    ExplaiNN,
    StandardCNN,
    build_baseline,
    extract_filter_motifs,
)

GATA = "AGATAAGA"


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _random_one_hot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (n, length), generator=g)
    return torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).to(torch.int8)


def _randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.3)
    return model.eval()


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_spec():
    assert _n_params(StandardCNN(500)) == 2093
    assert _n_params(ExplaiNN(500)) == 58265
    # layer by layer for the CNN (spec 8.1): three convs + BN, fc 96->10->5->1, each fc but the last with BN
    expected_cnn = (4 * 8 * 10 + 8) + 2 * (8 * 8 * 5 + 8) + 3 * 16 + (96 * 10 + 10) + 20 + (10 * 5 + 5) + 10 + 6
    assert expected_cnn == 2093
    # ExplaiNN: 8 units of conv(77) + BN(2) + Linear 68->100 (6900) + BN(200) + Linear 100->1 (101) + BN(2); + 9
    assert 8 * (77 + 2 + 6900 + 200 + 101 + 2) + 9 == 58265


@pytest.mark.parametrize("length", [500, 101])
def test_output_shapes_are_logits(length):
    X = _random_one_hot(3, length)
    for model in (StandardCNN(length), ExplaiNN(length), StandardCNN(length, n_tasks=2)):
        y = model.eval()(X)
        assert y.shape == (3, model.n_tasks)
        assert y.dtype == torch.float32
    assert StandardCNN(500).first_layer_weights.shape == (8, 4, 10)
    assert ExplaiNN(500).first_layer_weights.shape == (8, 4, 19)


def test_wrong_input_length_and_bad_arguments_raise():
    with pytest.raises(ValueError, match="input_length=500"):
        StandardCNN(500)(_random_one_hot(2, 400))
    with pytest.raises(ValueError, match="input_length"):
        StandardCNN(40)
    with pytest.raises(ValueError, match="input_length"):
        ExplaiNN(20)
    with pytest.raises(ValueError, match="baseline must be"):
        build_baseline("bpnet", 500)
    assert isinstance(build_baseline("explainn", 200), ExplaiNN)


def test_explainn_units_are_independent():
    torch.manual_seed(0)
    model = _randomise_batchnorm(ExplaiNN(120))
    with torch.no_grad():
        model.bn3.bias[3] = 5.0  # keep unit 3 above its final ReLU so a change shows
    X = _random_one_hot(4, 120)
    before = model.unit_outputs(X).detach()
    with torch.no_grad():
        model.first_conv.weight[3] += 1.0  # touch unit 3's filter only
        model.fc1.weight[3 * 100 : 4 * 100] *= 2.0  # and its hidden layer
    after = model.unit_outputs(X).detach()
    others = [u for u in range(8) if u != 3]
    torch.testing.assert_close(after[:, others], before[:, others])
    assert not torch.allclose(after[:, 3], before[:, 3])


def test_standard_cnn_deeplift_converges():
    torch.manual_seed(0)
    model = _randomise_batchnorm(StandardCNN(200))
    err = convergence_error(model, _random_one_hot(4, 200, seed=1), n_shuffles=4)
    assert err.relative < 1e-3
    assert err.differences.abs().max() > 1e-4  # the check is not vacuous


def test_explainn_needs_the_exp_rule():
    from tangermeme.deep_lift_shap import _nonlinear

    assert DEEPLIFT_RULES[Exp] is _nonlinear
    torch.manual_seed(0)
    model = _randomise_batchnorm(ExplaiNN(120))
    X = _random_one_hot(4, 120, seed=2)
    with_rule = convergence_error(model, X, n_shuffles=4)
    assert with_rule.relative < 1e-3
    # Without the rule (exp treated as linear) the summation-to-delta property breaks.
    from tangermeme.deep_lift_shap import deep_lift_shap
    from tangermeme.ersatz import dinucleotide_shuffle

    refs = torch.stack([dinucleotide_shuffle(X[i : i + 1], n=4, random_state=0)[0] for i in range(len(X))])
    with pytest.warns(RuntimeWarning):
        raw = deep_lift_shap(model, X, references=refs, raw_outputs=True, device="cpu")
    with torch.no_grad():
        diff = model(X.float())[:, 0, None] - model(refs.reshape(-1, 4, 120).float())[:, 0].reshape(4, 4)
    total = (raw.double() * (X[:, None].double() - refs.double())).sum(dim=(2, 3))
    assert float((total - diff).abs().sum() / diff.abs().sum()) > 10 * max(with_rule.relative, 1e-6)


def _planted(n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    X = _random_one_hot(n, length, seed)
    rng = np.random.default_rng(seed)
    positions = []
    codes = torch.tensor(["ACGT".index(c) for c in GATA])
    for i in range(n):
        pos = int(rng.integers(1, length - len(GATA) - 1))
        X[i, :, pos : pos + len(GATA)] = torch.nn.functional.one_hot(codes, 4).T.to(torch.int8)
        positions.append(pos)
    return X, positions


def test_filter_motifs_read_the_planted_site():
    model = StandardCNN(120).eval()
    with torch.no_grad():
        model.first_conv.weight.zero_()
        model.first_conv.bias.fill_(-7.0)  # fires (> 0) only on >= 8 matching bases of the 10-bp window
        for k, c in enumerate(GATA):
            model.first_conv.weight[0, "ACGT".index(c), k + 1] = 1.0
        model.first_conv.bias[1:] = -100.0  # the other filters never fire
    X, _ = _planted(30, 120)
    motifs = extract_filter_motifs(model, X, reverse_complement=False)
    assert motifs.counts[0] == 30 and (motifs.counts[1:] == 0).all()
    consensus = "".join("ACGT"[i] for i in motifs.pfms[0][:, 1:9].argmax(axis=0))
    assert consensus == GATA
    assert np.allclose(motifs.pfms[0][:, 1:9].max(axis=0), 1.0)
    assert (motifs.pfms[1:] == 0).all()

    # independent brute-force check of the same rule on all windows
    acts = model.first_layer(X).detach()
    best = acts[:, 0].max()
    windows = [X[n, :, i : i + 10].double().numpy() for n in range(30) for i in range(acts.shape[2])
               if acts[n, 0, i] > 0.5 * best]
    np.testing.assert_allclose(motifs.pfms[0], np.mean(windows, axis=0))


def test_filter_motifs_reverse_complement_and_errors():
    model = StandardCNN(120).eval()
    X, _ = _planted(5, 120)
    rc = extract_filter_motifs(model, X, reverse_complement=True)
    fwd = extract_filter_motifs(model, X, reverse_complement=False)
    assert (rc.counts >= fwd.counts).all()
    with pytest.raises(ValueError, match="threshold"):
        extract_filter_motifs(model, X, threshold=1.5)
    with pytest.raises(ValueError, match="first-layer"):
        extract_filter_motifs(torch.nn.Linear(2, 2), X)


def test_baseline_trains_with_the_package_fit(tmp_path):
    from argminn_plugin.data import binary_dataloader
    from argminn_plugin.training import fit

    X, _ = _planted(64, 100)
    X = torch.cat([X, _random_one_hot(64, 100, seed=5)])
    y = torch.cat([torch.ones(64, 1), torch.zeros(64, 1)])
    loader = binary_dataloader(X, y, batch_size=32, shuffle=True, random_state=0)
    model = StandardCNN(100, name=str(tmp_path / "cnn"))
    fit(model, loader, torch.optim.Adam(model.parameters(), lr=1e-2), X_valid=X, y_valid=y, max_epochs=2,
        device="cpu", schedule=None, random_state=0, verbose=False)
    assert (tmp_path / "cnn.torch").exists() and (tmp_path / "cnn.log").exists()
    loaded = torch.load(tmp_path / "cnn.torch", weights_only=False)
    assert isinstance(loaded, StandardCNN)
