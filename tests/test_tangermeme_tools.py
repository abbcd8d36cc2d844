"""tangermeme's ISM, marginalisation, ablation, DeepLIFT-SHAP and greedy design run on ARGMINN.

Most checks use :func:`argminn_plugin.design.build_motif_detector`, an ARGMINN whose weights are
set by hand to detect a planted k-mer with sharp attention, so that the answers are known: the ISM
effects lie inside the planted window, marginalising the motif raises the output, shuffling it
lowers it. Convergence of DeepLIFT is checked on random (float64) ARGMINNs with both heads.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from tangermeme.ablate import ablate, ablate_annotations
from tangermeme.deep_lift_shap import _nonlinear, deep_lift_shap
from tangermeme.design import greedy_substitution
from tangermeme.marginalize import marginalize
from tangermeme.saturation_mutagenesis import saturation_mutagenesis
from tangermeme.utils import random_one_hot

from argminn_plugin import ARGMINN
from argminn_plugin.design import (
    AttentionSelector,
    attention_at,
    build_motif_detector,
    implant_configuration,
    select_output,
)
from argminn_plugin.instances import call_instances

MOTIF = "GATAAGGC"
START = 20
LENGTH = 60


@pytest.fixture(scope="module")
def backgrounds():
    return random_one_hot((4, 4, LENGTH), random_state=0)


@pytest.fixture(scope="module")
def planted(backgrounds):
    X, _ = implant_configuration(backgrounds, [MOTIF], start=START)
    return X


@pytest.fixture(scope="module")
def detector():
    return build_motif_detector([MOTIF])


def _random_model(head="binary", seed=0, **kwargs):
    torch.manual_seed(seed)
    if head == "profile":
        kwargs.update(n_outputs=2, n_control_tracks=0, trimming=10, footprint_width=11)
    return ARGMINN(n_filters=4, filter_width=6, n_attention_layers=2, **kwargs).double().eval()


def _observed_effect(attr):
    """Summed |ISM| per position, shape (N, L)."""
    return attr.abs().sum(dim=1)


# ---------------------------------------------------------------------------------------------
# saturation_mutagenesis


def test_ism_peaks_inside_planted_window(detector, planted):
    attr = saturation_mutagenesis(detector, planted, device="cpu", fast=False)
    assert attr.shape == planted.shape and attr.dtype == torch.float32
    effect = _observed_effect(attr)
    inside = effect[:, START : START + len(MOTIF)]
    outside = torch.cat([effect[:, :START], effect[:, START + len(MOTIF):]], dim=1)
    assert ((effect.argmax(dim=1) >= START) & (effect.argmax(dim=1) < START + len(MOTIF))).all()
    # every base of the motif matters more than any base outside it
    assert (inside.min(dim=1).values > 10 * outside.max(dim=1).values).all()


def test_ism_batch_size_invariant():
    model = _random_model()
    X = random_one_hot((2, 4, 16), random_state=1)
    one = saturation_mutagenesis(model, X, batch_size=1, device="cpu", fast=False)
    many = saturation_mutagenesis(model, X, batch_size=97, device="cpu", fast=False)
    torch.testing.assert_close(one, many, rtol=0, atol=1e-10)
    assert one.abs().max() > 0


def test_ism_target_none_averages_the_outputs():
    """The trap of §3.5: target=None averages over outputs rather than picking the first."""
    model = _random_model(n_tasks=2)
    X = random_one_hot((1, 4, 16), random_state=2)
    both = saturation_mutagenesis(model, X, target=None, device="cpu", fast=False)
    first = saturation_mutagenesis(model, X, target=0, device="cpu", fast=False)
    second = saturation_mutagenesis(model, X, target=1, device="cpu", fast=False)
    torch.testing.assert_close(both, (first + second) / 2, rtol=0, atol=1e-10)
    assert (first - second).abs().max() > 1e-6


def test_ism_of_attention_at_the_instance(backgrounds, planted):
    """ISM of an attention output: only the instance's bases hold the attention on it."""
    model = build_motif_detector([MOTIF], mismatches=0)
    selector = AttentionSelector(model, START)
    with torch.no_grad():
        before = selector(planted.float())
    assert before.shape == (planted.shape[0], 1)
    assert (before > 0.99).all()
    attr = saturation_mutagenesis(selector, planted[:2], device="cpu", fast=False)
    effect = _observed_effect(attr)
    assert effect[:, START : START + len(MOTIF)].min() > 0.5
    assert effect[:, :START].max() < 1e-3 and effect[:, START + len(MOTIF):].max() < 1e-3


@pytest.mark.parametrize("output", ["profile", "counts"])
def test_ism_profile_head(planted, output):
    model = build_motif_detector([MOTIF], head="profile", trimming=5)
    X = planted[:2]
    attr = saturation_mutagenesis(select_output(model, output), X, device="cpu", fast=False)
    assert attr.shape == X.shape
    effect = _observed_effect(attr)
    assert ((effect.argmax(dim=1) >= START) & (effect.argmax(dim=1) < START + len(MOTIF))).all()


# ---------------------------------------------------------------------------------------------
# marginalize / ablate


def test_marginalize_motif_raises_logit(detector, backgrounds):
    result = marginalize(detector, backgrounds, MOTIF, device="cpu")
    assert result.y_before.shape == result.y_after.shape == (backgrounds.shape[0], 1)
    assert (result.y_after - result.y_before > 5).all()
    # a scrambled motif does not
    scrambled = marginalize(detector, backgrounds, "GCATGAGA", device="cpu")
    assert (scrambled.y_after - scrambled.y_before).abs().max() < (result.y_after - result.y_before).min()


def test_marginalize_profile_counts(backgrounds):
    model = build_motif_detector([MOTIF], head="profile", trimming=5)
    result = marginalize(select_output(model, "counts"), backgrounds, MOTIF, device="cpu")
    assert (result.y_after > result.y_before).all()


def test_ablate_motif_lowers_logit(detector, planted):
    result = ablate(detector, planted, START, START + len(MOTIF), n=5, random_state=0, device="cpu")
    assert result.y_after.shape == (planted.shape[0], 5, 1)
    assert (result.y_after.mean(dim=1) < result.y_before - 2).all()
    control = ablate(detector, planted, 45, 53, n=5, random_state=0, device="cpu")
    torch.testing.assert_close(control.y_after.mean(dim=1), control.y_before, rtol=0, atol=1e-4)


def test_ablate_annotations_from_instance_calls(detector, planted):
    calls = call_instances(detector, planted, attention_threshold=0.5, device="cpu")
    assert len(calls) == planted.shape[0] and (calls["start"] == START).all()
    annotations = torch.as_tensor(calls[["example_idx", "start", "end"]].to_numpy(dtype=np.int64).copy())
    result = ablate_annotations(detector, planted, annotations, n=4, random_state=0, device="cpu")
    drop = result.y_befores.reshape(-1) - result.y_afters.mean(dim=2).reshape(-1)
    assert (drop > 2).all()


# ---------------------------------------------------------------------------------------------
# deep_lift_shap


def _relative_error(selector, X, attributions, references):
    selector.eval()
    with torch.no_grad():
        fx = selector(X.double())[:, 0]
        fref = torch.stack([selector(references[:, k].double())[:, 0] for k in range(references.shape[1])], 1)
    difference = fx - fref.mean(1)
    assert difference.abs().mean() > 1e-8
    delta = attributions.double().sum(dim=(1, 2)) - difference
    return (delta.abs().mean() / difference.abs().mean()).item()


@pytest.mark.parametrize("head, output", [("binary", "logit"), ("profile", "profile"), ("profile", "counts")])
def test_deep_lift_shap_converges(head, output):
    from bpnetlite.bpnet import _ProfileLogitScaling

    model = _random_model(head)
    selector = select_output(model, output)
    X = random_one_hot((3, 4, 50), random_state=3)
    extra = {_ProfileLogitScaling: _nonlinear} if output == "profile" else None
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "treated as linear" warning
        attr, refs = deep_lift_shap(selector, X, n_shuffles=6, random_state=0, device="cpu",
                                    return_references=True, additional_nonlinear_ops=extra)
    assert attr.shape == X.shape and attr.dtype == torch.float64 and torch.isfinite(attr).all()
    assert not model.training  # the selector mirrors the model's mode, so tangermeme leaves it in eval
    assert _relative_error(selector, X, attr, refs) < 1e-5


@pytest.mark.parametrize("head, output", [("binary", "logit"), ("profile", "counts")])
def test_deep_lift_shap_finds_the_planted_motif(planted, head, output):
    model = build_motif_detector([MOTIF], head=head, trimming=5, dtype=torch.float64)
    selector = select_output(model, output)
    attr, refs = deep_lift_shap(selector, planted, n_shuffles=6, random_state=0, device="cpu",
                                return_references=True)
    mass = attr.abs().sum(dim=1)
    inside = mass[:, START : START + len(MOTIF)].sum(dim=1) / mass.sum(dim=1)
    assert (inside > 0.7).all()
    assert _relative_error(selector, planted, attr, refs) < 1e-6


# ---------------------------------------------------------------------------------------------
# greedy_substitution


def test_greedy_substitution_default_runs_zero_rounds_and_max_iter_designs(detector):
    X = random_one_hot((1, 4, 36), random_state=5)
    unchanged = greedy_substitution(detector, X, device="cpu")  # max_iter=-1: the trap of §3.8
    assert torch.equal(unchanged, X)
    designed = greedy_substitution(detector, X, motifs=[MOTIF], max_iter=1, device="cpu",
                                   loss=torch.nn.MSELoss(reduction="none"))
    assert designed.shape == X.shape and designed.dtype == torch.int8
    with torch.no_grad():
        assert detector(designed).item() > detector(X).item() + 5
    assert 1 <= int((designed != X).any(dim=1).sum()) <= len(MOTIF)


def test_greedy_substitution_profile_head_through_selector():
    model = build_motif_detector([MOTIF], head="profile", trimming=5)
    selector = select_output(model, "counts")
    X = random_one_hot((1, 4, 36), random_state=6)
    designed = greedy_substitution(selector, X, motifs=[MOTIF], max_iter=1, device="cpu")
    with torch.no_grad():
        assert selector(designed).item() > selector(X).item()


# ---------------------------------------------------------------------------------------------
# selectors


def test_selectors_reject_mismatched_outputs():
    binary, profile = _random_model(), _random_model("profile")
    with pytest.raises(ValueError, match="output"):
        select_output(binary, "counts")
    with pytest.raises(ValueError, match="output"):
        select_output(profile, "logit")
    with pytest.raises(ValueError, match="target"):
        select_output(binary, "logit", target=3)
    with pytest.raises(ValueError, match="pool"):
        AttentionSelector(binary, 0, pool="median")
    with pytest.raises(ValueError, match="end"):
        AttentionSelector(binary, 50)(random_one_hot((1, 4, 20), random_state=0).double())


def test_selectors_follow_model_mode():
    model = _random_model()
    assert not select_output(model).training and not AttentionSelector(model, 0).training
    model.train()
    assert select_output(model).training and AttentionSelector(model, 0).training
    model.eval()
    saturation_mutagenesis(select_output(model), random_one_hot((1, 4, 12), random_state=0), device="cpu",
                           fast=False)
    assert not model.training and not model.scanner.batch_norm.training
    saturation_mutagenesis(AttentionSelector(model, 3), random_one_hot((1, 4, 20), random_state=0),
                           device="cpu", fast=False)
    assert not model.training and not model.scanner.batch_norm.training


def test_attention_at_matches_forward(planted):
    model = _random_model()
    positions = np.array([[0, 0], [2, 7], [3, 44]])
    got = attention_at(model, planted, positions)
    with torch.no_grad():
        pooled = model.forward_with_interims(planted.double()).attention.amax(dim=(1, 2))
    np.testing.assert_allclose(got, pooled[positions[:, 0], positions[:, 1]].numpy())
    mean = attention_at(model, planted, positions, pool="mean")
    assert (mean <= got + 1e-12).all()
    with pytest.raises(ValueError, match="positions"):
        attention_at(model, planted, [[9, 0]])
