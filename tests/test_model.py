"""Tests of the ARGMINN module: sizes, a functional reference forward pass, invariants, errors, DeepLIFT."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from argminn_plugin import ARGMINN
from argminn_plugin.model import ARGMINNOutput


def random_one_hot(n, length, seed=0, dtype=torch.int8):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return F.one_hot(idx, 4).permute(0, 2, 1).to(dtype)


def relative_convergence_error(model, X, attributions, references, target=0):
    """Mean |sum(attr) - (f(x) - mean_k f(ref_k))| relative to the mean |f(x) - mean_k f(ref_k)|."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        y = model(X.to(dtype))[:, target]
        y_ref = torch.stack([model(references[:, k].to(dtype))[:, target] for k in range(references.shape[1])], 1)
    diff = (y - y_ref.mean(1)).double()
    delta = attributions.double().sum(dim=(1, 2)) - diff
    return (delta.abs().mean() / diff.abs().mean()).item()


# ---------------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(n_filters=8, filter_width=10, n_attention_layers=1), 13497),
        (dict(n_filters=8, filter_width=10, n_attention_layers=2), 25337),
        (dict(n_filters=8, filter_width=10, n_attention_layers=4), 49017),
        (dict(n_filters=8, filter_width=15, n_attention_layers=1, attention_scores="query_key"), 14713),
    ],
)
def test_parameter_counts(kwargs, expected):
    model = ARGMINN(**kwargs)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total == expected
    assert total - trainable == 128  # the frozen memory stream


def test_defaults_are_the_published_model():
    model = ARGMINN()
    assert model.head_type == "binary"
    assert model.n_attention_layers == 4 and model.n_heads == 4 and model.filter_width == 10
    assert torch.equal(model.syntax.stream, torch.ones(128))
    assert not model.syntax.stream.requires_grad
    assert "syntax.stream" in model.state_dict()
    assert all(layer.key is None for layer in model.syntax.layers)


@pytest.mark.parametrize("length, width, expected", [(500, 10, 491), (500, 15, 486)])
def test_output_lengths(length, width, expected):
    model = ARGMINN(filter_width=width, n_attention_layers=1)
    out = model.forward_with_interims(random_one_hot(2, length))
    assert isinstance(out, ARGMINNOutput)
    assert out.activations.shape == (2, 8, expected)
    assert out.attention.shape == (2, 1, 4, expected)
    assert out.y.shape == (2, 1)


# ---------------------------------------------------------------------------------------------
# A functional reference implementation written from the spec, fed with the module's weights.


def reference_forward(model, X):
    """ARGMINN written with plain functional ops, independent of the module code paths."""
    sd = {k: v.double() for k, v in model.state_dict().items()}
    X = X.double()
    A = F.relu(F.conv1d(X, sd["scanner.conv.weight"], sd["scanner.conv.bias"]))
    eps = model.scanner.batch_norm.eps
    A_bn = (A - sd["scanner.batch_norm.running_mean"][None, :, None]) / torch.sqrt(
        sd["scanner.batch_norm.running_var"][None, :, None] + eps
    ) * sd["scanner.batch_norm.weight"][None, :, None] + sd["scanner.batch_norm.bias"][None, :, None]
    n, f, length = A_bn.shape
    d_pe = model.syntax.pos_enc_dim
    pe = torch.zeros(length, d_pe, dtype=torch.float64)
    for i in range(length):
        for k in range(d_pe // 2):
            pe[i, 2 * k] = math.sin(i / 10000 ** (2 * k / d_pe))
            pe[i, 2 * k + 1] = math.cos(i / 10000 ** (2 * k / d_pe))
    T = torch.cat([A_bn.transpose(1, 2), pe.expand(n, length, d_pe)], -1)
    tokens = T @ sd["syntax.token.weight"].T + sd["syntax.token.bias"]
    s = sd["syntax.stream"].expand(n, -1)
    attentions = []
    for li, layer in enumerate(model.syntax.layers):
        p = f"syntax.layers.{li}."
        nh, hd = layer.n_heads, layer.head_dim
        q = (s @ sd[p + "query.weight"].T + sd[p + "query.bias"]).view(n, nh, hd)
        v = (tokens @ sd[p + "value.weight"].T + sd[p + "value.bias"]).view(n, length, nh, hd)
        k = v if layer.key is None else (tokens @ sd[p + "key.weight"].T + sd[p + "key.bias"]).view(n, length, nh, hd)
        e = torch.zeros(n, nh, length, dtype=torch.float64)
        for h in range(nh):
            e[:, h] = (k[:, :, h, :] * q[:, None, h, :]).sum(-1) / math.sqrt(hd)
        alpha = torch.softmax(e, -1)
        z = torch.stack([(alpha[:, h, :, None] * v[:, :, h, :]).sum(1) for h in range(nh)], 1).reshape(n, -1)
        o = F.layer_norm(z @ sd[p + "output.weight"].T + sd[p + "output.bias"], (z.shape[-1],),
                         sd[p + "output_norm.weight"], sd[p + "output_norm.bias"])
        hdn = F.relu(o @ sd[p + "ffn_in.weight"].T + sd[p + "ffn_in.bias"])
        u = F.layer_norm(hdn @ sd[p + "ffn_out.weight"].T + sd[p + "ffn_out.bias"], (s.shape[-1],),
                         sd[p + "ffn_norm.weight"], sd[p + "ffn_norm.bias"])
        s = s + u
        attentions.append(alpha)
    return s, torch.stack(attentions, 1), A


def perturb_batch_norm(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    bn = model.scanner.batch_norm
    with torch.no_grad():
        bn.running_mean.copy_(torch.rand(bn.num_features, generator=g))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        bn.weight.copy_(torch.randn(bn.num_features, generator=g))
        bn.bias.copy_(torch.randn(bn.num_features, generator=g))
        for ln in [m for m in model.modules() if isinstance(m, torch.nn.LayerNorm)]:
            ln.weight.copy_(1 + 0.1 * torch.randn(ln.weight.shape, generator=g))
            ln.bias.copy_(0.1 * torch.randn(ln.bias.shape, generator=g))


@pytest.mark.parametrize("scores", ["query_value", "query_key"])
@pytest.mark.parametrize("stream_init", ["ones", "randn"])
def test_forward_matches_functional_reference(scores, stream_init):
    torch.manual_seed(0)
    model = ARGMINN(n_filters=5, filter_width=7, n_attention_layers=2, attention_scores=scores,
                    stream_init=stream_init).double().eval()
    perturb_batch_norm(model)
    X = random_one_hot(3, 60, seed=2)
    out = model.forward_with_interims(X)
    s_ref, att_ref, A_ref = reference_forward(model, X)
    assert torch.allclose(out.activations, A_ref, atol=1e-10)
    assert torch.allclose(out.attention, att_ref, atol=1e-10)
    assert torch.allclose(out.stream, s_ref, atol=1e-9)
    sd = model.state_dict()
    logits = F.layer_norm(s_ref, (s_ref.shape[-1],), sd["head.norm.weight"], sd["head.norm.bias"])
    logits = logits @ sd["head.linear.weight"].T + sd["head.linear.bias"]
    assert torch.allclose(out.y, logits, atol=1e-9)


def test_query_value_ties_keys_to_values():
    """With tied keys, swapping in a key projection equal to the value projection changes nothing."""
    torch.manual_seed(0)
    tied = ARGMINN(n_filters=4, filter_width=5, n_attention_layers=2).eval()
    untied = ARGMINN(n_filters=4, filter_width=5, n_attention_layers=2, attention_scores="query_key").eval()
    state = tied.state_dict()
    for li in range(2):
        state[f"syntax.layers.{li}.key.weight"] = state[f"syntax.layers.{li}.value.weight"]
        state[f"syntax.layers.{li}.key.bias"] = state[f"syntax.layers.{li}.value.bias"]
    untied.load_state_dict(state)
    X = random_one_hot(4, 80)
    assert torch.allclose(tied(X), untied(X), atol=1e-6)
    with torch.no_grad():
        untied.syntax.layers[0].key.weight.add_(0.5)
    assert not torch.allclose(tied(X), untied(X), atol=1e-4)


def test_tokens_are_shared_by_every_layer():
    model = ARGMINN(n_filters=4, filter_width=5, n_attention_layers=3).eval()
    seen = []
    for layer in model.syntax.layers:
        layer.register_forward_hook(lambda mod, args, out: seen.append(args[1]))
    model(random_one_hot(2, 50))
    assert len(seen) == 3
    assert all(t is seen[0] for t in seen)


def test_attention_is_a_distribution_and_activations_nonnegative():
    out = ARGMINN().forward_with_interims(random_one_hot(4, 200))
    assert (out.attention >= 0).all()
    assert torch.allclose(out.attention.sum(-1), torch.ones(4, 4, 4), atol=1e-5)
    assert (out.activations >= 0).all()


def test_stream_is_not_trained():
    torch.manual_seed(0)
    model = ARGMINN(n_attention_layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    before = model.syntax.stream.clone()
    loss = model(random_one_hot(8, 100)).pow(2).sum()
    loss.backward()
    opt.step()
    assert torch.equal(model.syntax.stream, before)
    assert model.syntax.stream.grad is None


def test_batch_size_invariance_and_dtypes():
    torch.manual_seed(0)
    model = ARGMINN(n_attention_layers=2).eval()
    X = random_one_hot(8, 120)
    full = model(X)
    parts = torch.cat([model(X[:3]), model(X[3:])])
    assert torch.allclose(full, parts, atol=1e-6)
    assert torch.allclose(model(X.float()), full, atol=1e-6)
    assert model.double()(X).dtype == torch.float64


def test_n_as_zero_column_is_accepted():
    X = random_one_hot(2, 100).clone()
    X[:, :, 10:20] = 0
    assert torch.isfinite(ARGMINN()(X)).all()


# ---------------------------------------------------------------------------------------------
# Profile head


def test_head_selection():
    assert ARGMINN().head_type == "binary"
    assert ARGMINN(n_outputs=2).head_type == "profile"
    assert ARGMINN(trimming=10).head_type == "profile"
    prof = ARGMINN(head="profile")
    assert (prof.n_outputs, prof.n_control_tracks, prof.trimming) == (2, 2, 557)
    binary = ARGMINN(n_tasks=3)
    assert binary(random_one_hot(2, 50)).shape == (2, 3)
    with pytest.warns(UserWarning, match="n_layers"):
        ARGMINN(n_layers=8)


def test_profile_contract_shapes():
    model = ARGMINN(n_outputs=2, n_control_tracks=2, trimming=(2114 - 1000) // 2)
    X = random_one_hot(2, 2114)
    X_ctl = torch.rand(2, 2, 2114)
    profile, counts = model(X, X_ctl)
    assert profile.shape == (2, 2, 1000) and counts.shape == (2, 1)
    profile0, _ = model(X)  # controls default to zeros, as bpnet-lite's ControlWrapper does
    assert torch.allclose(profile0, model(X, torch.zeros(2, 2, 2114))[0])
    assert not torch.allclose(profile0, profile)


def test_profile_is_a_sum_of_footprints_at_instances():
    """Place each filter's footprint kernel at each position by hand and compare with the head."""
    torch.manual_seed(0)
    trimming, fw = 6, 11
    model = ARGMINN(n_filters=3, filter_width=5, n_attention_layers=2, n_outputs=2, n_control_tracks=0,
                    trimming=trimming, footprint_width=fw).double().eval()
    X = random_one_hot(2, 40)
    out = model.forward_with_interims(X)
    profile, _ = out.y
    pooled = out.attention.mean(dim=(1, 2)) * out.attention.shape[-1]
    weights = out.activations * pooled[:, None, :]
    kernel = model.head.footprint.weight  # (F, n_outputs, fw)
    offset = (fw - 5) // 2
    expected = torch.zeros(2, 2, 40, dtype=torch.float64) + model.head.footprint.bias[None, :, None]
    for n in range(2):
        for f in range(3):
            for i in range(weights.shape[-1]):
                for j in range(fw):
                    c = i + j - offset
                    if 0 <= c < 40:
                        expected[n, :, c] += weights[n, f, i] * kernel[f, :, j]
    assert torch.allclose(profile, expected[:, :, trimming:40 - trimming], atol=1e-9)


# ---------------------------------------------------------------------------------------------
# Errors at the door


@pytest.mark.parametrize(
    "X, match",
    [
        (torch.zeros(4, 100), r"shape \(N, 4, L\).*\(4, 100\)"),
        (torch.zeros(2, 5, 100), r"4 channels.*\(2, 5, 100\)"),
        (torch.zeros(0, 4, 100), "empty batch"),
        (torch.full((2, 4, 100), 0.25), "one-hot"),
        (torch.zeros(2, 4, 5), r"filter_width \(10\).*\(2, 4, 5\)"),
    ],
)
def test_bad_input_raises(X, match):
    with pytest.raises(ValueError, match=match):
        ARGMINN()(X)


def test_fractional_input_allowed_when_validation_is_off():
    model = ARGMINN()
    model.validate_inputs = False
    assert model(torch.full((2, 4, 100), 0.25)).shape == (2, 1)


def test_bad_controls_and_sizes():
    model = ARGMINN(n_outputs=1, n_control_tracks=2, trimming=10)
    X = random_one_hot(2, 100)
    with pytest.raises(ValueError, match=r"X_ctl must have shape \(2, 2, 100\).*\(2, 1, 100\)"):
        model(X, torch.zeros(2, 1, 100))
    with pytest.raises(ValueError, match="trimming"):
        ARGMINN(n_outputs=1, trimming=60)(X)
    with pytest.raises(ValueError, match="head"):
        ARGMINN(head="counts")
    with pytest.raises(ValueError, match="attention_scores"):
        ARGMINN(attention_scores="dot")
    with pytest.raises(ValueError, match="n_heads"):
        ARGMINN(n_heads=5)
    with pytest.raises(ValueError, match="n_filters"):
        ARGMINN(n_filters=0)


# ---------------------------------------------------------------------------------------------
# DeepLIFT convergence with tangermeme's built-in rules only


def _trained_like(model, seed=0):
    """Give the BatchNorm and LayerNorms non-trivial statistics so the check is not degenerate."""
    torch.manual_seed(seed)
    perturb_batch_norm(model, seed)
    return model.eval()


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-3), (torch.float64, 1e-5)])
def test_deep_lift_shap_converges_binary(dtype, tolerance):
    from tangermeme.deep_lift_shap import deep_lift_shap

    model = _trained_like(ARGMINN(n_attention_layers=2)).to(dtype)
    X = random_one_hot(4, 200, seed=3).to(dtype)
    attr, refs = deep_lift_shap(model, X, target=0, n_shuffles=8, random_state=0, return_references=True,
                                device="cpu", warning_threshold=1e9)
    err = relative_convergence_error(model, X, attr, refs)
    assert err < tolerance, err
    assert attr.abs().sum() > 0


def test_deep_lift_shap_converges_profile_and_counts():
    from bpnetlite.attribute import deep_lift_shap
    from bpnetlite.bpnet import ControlWrapper, CountWrapper, ProfileWrapper

    model = _trained_like(ARGMINN(n_attention_layers=2, n_outputs=2, n_control_tracks=2, trimming=30))
    X = random_one_hot(3, 200, seed=4)
    for wrapper, dtype in ((CountWrapper, torch.float32), (ProfileWrapper, torch.float64)):
        wrapped = wrapper(ControlWrapper(model)).to(dtype).eval()
        attr, refs = deep_lift_shap(wrapped, X.to(dtype), n_shuffles=6, random_state=0, return_references=True,
                                    device="cpu", warning_threshold=1e9)
        err = relative_convergence_error(wrapped, X.to(dtype), attr, refs)
        assert err < 1e-3, (wrapper.__name__, err)
