"""Tests of ``argminn_plugin.attribute``: output selection, DeepLIFT-SHAP on ARGMINN, convergence."""

from __future__ import annotations

import pytest
import torch

from argminn_plugin.attribute import OutputSelector, convergence_error, deep_lift_shap
from argminn_plugin.model import ARGMINN

LENGTH = 80


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _one_hot(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 4, (n, LENGTH), generator=g)
    return torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).to(torch.int8)


@pytest.fixture(scope="module")
def binary() -> ARGMINN:
    torch.manual_seed(0)
    return ARGMINN(n_filters=4, filter_width=8, n_attention_layers=1, n_tasks=2, verbose=False).eval()


@pytest.fixture(scope="module")
def profile() -> ARGMINN:
    torch.manual_seed(1)
    return ARGMINN(n_filters=4, filter_width=8, n_attention_layers=1, head="profile", n_outputs=2,
                   n_control_tracks=1, trimming=10, footprint_width=15, verbose=False).eval()


@pytest.mark.parametrize("target", [0, 1])
def test_argminn_binary_converges(binary, target):
    err = convergence_error(binary, _one_hot(3), target=target, n_shuffles=4)
    assert err.relative < 1e-3
    assert err.deltas.shape == (3, 4)
    assert err.differences.abs().max() > 1e-5


@pytest.mark.parametrize("output,target", [("profile", None), ("profile", 1), ("counts", 0)])
def test_argminn_profile_converges(profile, output, target):
    err = convergence_error(profile, _one_hot(3, seed=1), output=output, target=target, n_shuffles=4)
    assert err.relative < 1e-3
    assert err.differences.abs().max() > 1e-6


def test_projected_is_hypothetical_times_x(binary):
    X = _one_hot(3, seed=2)
    hyp = deep_lift_shap(binary, X, n_shuffles=4, hypothetical=True)
    proj = deep_lift_shap(binary, X, n_shuffles=4, hypothetical=False)
    assert hyp.shape == proj.shape == X.shape
    torch.testing.assert_close(proj, hyp * X.to(hyp.dtype))
    # hypothetical scores are non-zero on unobserved bases too
    assert (hyp * (1 - X.to(hyp.dtype))).abs().sum() > 0
    # summation to delta on the averaged (projected) attributions
    from tangermeme.ersatz import dinucleotide_shuffle

    refs = torch.stack([dinucleotide_shuffle(X[i : i + 1], n=4, random_state=0)[0] for i in range(len(X))])
    proj2 = deep_lift_shap(binary, X, references=refs)
    with torch.no_grad():
        f_x = binary(X)[:, 0]
        f_r = binary(refs.reshape(-1, 4, LENGTH))[:, 0].reshape(3, 4).mean(dim=1)
    torch.testing.assert_close(proj2.sum(dim=(1, 2)), f_x - f_r, atol=1e-4, rtol=1e-3)


def test_seeded_references_are_reproducible(binary):
    X = _one_hot(2, seed=3)
    a = deep_lift_shap(binary, X, n_shuffles=3, random_state=7)
    b = deep_lift_shap(binary, X, n_shuffles=3, random_state=7)
    c = deep_lift_shap(binary, X, n_shuffles=3, random_state=8)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_output_selector_matches_bpnetlite_wrappers(profile):
    from bpnetlite.bpnet import ControlWrapper, CountWrapper, ProfileWrapper

    X = _one_hot(3, seed=4).float()
    with torch.no_grad():
        ours = OutputSelector(profile, "profile", None)(X)
        theirs = ProfileWrapper(ControlWrapper(profile))(X)
        torch.testing.assert_close(ours, theirs)
        counts = OutputSelector(profile, "counts", 0)(X)
        torch.testing.assert_close(counts, CountWrapper(ControlWrapper(profile))(X))
        assert ours.shape == counts.shape == (3, 1)
        # one track only: the same transform applied to that track's logits
        track = profile(X)[0][:, 1]
        centred = track - track.mean(dim=-1, keepdim=True)
        expected = (centred * torch.softmax(centred, dim=-1)).sum(dim=-1, keepdim=True)
        torch.testing.assert_close(OutputSelector(profile, "profile", 1)(X), expected)


def test_output_selector_logit_column(binary):
    X = _one_hot(2, seed=5).float()
    with torch.no_grad():
        torch.testing.assert_close(OutputSelector(binary, "logit", 1)(X), binary(X)[:, 1:2])


def test_output_selector_errors(binary, profile):
    X = _one_hot(2).float()
    with pytest.raises(ValueError, match="output must be"):
        OutputSelector(binary, "probability")
    with pytest.raises(ValueError, match="target"):
        OutputSelector(binary, "logit", None)
    with pytest.raises(ValueError, match="target"):
        OutputSelector(binary, "logit", -1)
    with pytest.raises(ValueError, match="use output='profile' or 'counts'"):
        OutputSelector(profile, "logit")(X)
    with pytest.raises(ValueError, match="needs a profile model"):
        OutputSelector(binary, "counts")(X)
    with pytest.raises(ValueError, match="n_shuffles"):
        deep_lift_shap(binary, X.to(torch.int8), n_shuffles=0)
    with pytest.raises(ValueError, match="random_state"):
        deep_lift_shap(binary, X.to(torch.int8), random_state=1.5)


def test_output_selector_keeps_the_model_in_eval_mode():
    """tangermeme restores the wrapper's mode after a call; a new wrapper must not flip the model to training."""
    from tangermeme.predict import predict

    from argminn_plugin import ARGMINN
    from argminn_plugin.attribute import OutputSelector

    model = ARGMINN(n_filters=2, filter_width=5, n_attention_layers=1).eval()
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (4, 40)), 4).permute(0, 2, 1).float()
    predict(OutputSelector(model), X, device="cpu")
    assert not model.training and not model.scanner.batch_norm.training
