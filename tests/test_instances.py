"""Tests of instance calling (§7.2): a brute-force reference, batching, genomic output and scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from argminn_plugin import ARGMINN
from argminn_plugin.instances import (
    INSTANCE_COLUMNS,
    activation_statistics,
    call_instances,
    iter_instances,
    score_instances,
    to_genomic,
    write_bed,
)


def random_one_hot(n, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).permute(0, 2, 1).to(torch.int8)


def sharp_model(seed=0):
    """A random model whose attention is sharpened so that some positions pass a threshold."""
    torch.manual_seed(seed)
    model = ARGMINN(n_filters=4, filter_width=6, n_attention_layers=2).eval()
    with torch.no_grad():
        for layer in model.syntax.layers:
            layer.query.weight.mul_(40.0)
            layer.query.bias.mul_(40.0)
    return model.double()


def brute_force_calls(model, X, threshold, allowed):
    with torch.no_grad():
        out = model.forward_with_interims(X)
    acts = out.activations.double().numpy()
    pooled = out.attention.double().amax(dim=(1, 2)).numpy()
    positive = acts.transpose(1, 0, 2).reshape(acts.shape[1], -1)
    mu = np.array([row[row > 0].mean() if (row > 0).any() else 0.0 for row in positive])
    sd = np.array([row[row > 0].std(ddof=1) if (row > 0).sum() > 1 else 0.0 for row in positive])
    rows = []
    for n in range(acts.shape[0]):
        for i in range(acts.shape[2]):
            if pooled[n, i] <= threshold:
                continue
            firing = [f for f in allowed if acts[n, f, i] > mu[f]]
            if not firing:
                continue
            z = {f: (acts[n, f, i] - mu[f]) / max(sd[f], 1e-12) for f in firing}
            best = max(firing, key=lambda f: (z[f], -f))
            rows.append((n, i, i + model.filter_width, best, pooled[n, i], acts[n, best, i]))
    return pd.DataFrame(rows, columns=["example_idx", "start", "end", "filter", "attention", "activation"])


@pytest.mark.parametrize("allowed", [[0, 1, 2, 3], [1, 3]])
def test_calls_match_brute_force(allowed):
    model = sharp_model()
    X = random_one_hot(6, 80, seed=1)
    expected = brute_force_calls(model, X, 0.3, allowed)
    assert len(expected) > 0, "the fixture should produce calls"
    got = call_instances(model, X, attention_threshold=0.3, filters=allowed, batch_size=4, device="cpu")
    assert list(got.columns) == INSTANCE_COLUMNS
    assert got[["example_idx", "start", "end", "filter"]].astype(int).values.tolist() == \
        expected[["example_idx", "start", "end", "filter"]].values.tolist()
    np.testing.assert_allclose(got["attention"], expected["attention"], rtol=1e-6)
    np.testing.assert_allclose(got["activation"], expected["activation"], rtol=1e-6)
    assert set(got["filter"]) <= set(allowed)
    assert (got["attention"] > 0.3).all()


def test_activation_statistics_against_numpy():
    model = sharp_model(1)
    X = random_one_hot(5, 50, seed=2)
    stats = activation_statistics(model, X, batch_size=2, device="cpu")
    with torch.no_grad():
        acts = model.scanner(X.double()).activations.numpy()
    for f in range(4):
        values = acts[:, f][acts[:, f] > 0]
        assert stats.mean[f] == pytest.approx(values.mean())
        assert stats.std[f] == pytest.approx(values.std(ddof=1))
        assert stats.count[f] == values.size


def test_batching_keeps_example_indices():
    model = sharp_model(2)
    X = random_one_hot(9, 70, seed=3)
    stats = activation_statistics(model, X, device="cpu")
    whole = call_instances(model, X, statistics=stats, attention_threshold=0.2, batch_size=9, device="cpu")
    pieces = pd.concat(list(iter_instances(model, X, statistics=stats, attention_threshold=0.2, batch_size=2,
                                           device="cpu")), ignore_index=True)
    assert len(whole) > 0
    pd.testing.assert_frame_equal(whole.reset_index(drop=True), pieces[whole.columns].astype(whole.dtypes),
                                  check_exact=False)


def test_high_threshold_gives_no_calls_and_names_strands():
    model = sharp_model(3)
    X = random_one_hot(3, 60)
    assert len(call_instances(model, X, attention_threshold=0.999999, device="cpu")) == 0
    calls = call_instances(model, X, attention_threshold=0.2, filter_names={0: "GATA"}, filter_strands={0: "-"},
                           device="cpu")
    named = calls[calls["filter"] == 0]
    assert (named["motif"] == "GATA").all() and (named["strand"] == "-").all()
    other = calls[calls["filter"] != 0]
    assert other["motif"].str.startswith("filter_").all()
    with pytest.raises(ValueError, match="attention_threshold"):
        call_instances(model, X, attention_threshold=1.5)


def test_scoring_rule():
    truth = pd.DataFrame({"example_idx": [0, 0, 1], "start": [10, 50, 20], "end": [20, 60, 30]})
    calls = pd.DataFrame({
        "example_idx": [0, 0, 1, 2],
        "start": [14, 56, 30, 10],  # 6/10 overlap: match; 4/10: no; touching: no; other example: no
        "end": [24, 66, 40, 20],
    })
    scores = score_instances(calls, truth)
    assert scores.precision == pytest.approx(1 / 4)
    assert scores.recall == pytest.approx(1 / 3)
    assert score_instances(calls.iloc[:1], truth, min_fraction=0.7).precision == 0.0
    # a short call fully inside a long instance matches
    assert score_instances(pd.DataFrame({"example_idx": [0], "start": [12], "end": [15]}), truth).precision == 1.0


def test_genomic_coordinates_and_bed(tmp_path):
    calls = pd.DataFrame({"example_idx": [0, 1], "start": [5, 7], "end": [15, 17], "motif": ["a", "b"],
                          "filter": [0, 1], "strand": ["+", "-"], "activation": [1.0, 2.0],
                          "attention": [0.95, 0.5], "zscore": [1.0, 1.0]})
    coords = pd.DataFrame({"chrom": ["chr1", "chr2"], "start": [100, 200], "end": [150, 250]})
    genomic = to_genomic(calls, coords)
    assert genomic[["chrom", "chrom_start", "chrom_end"]].values.tolist() == [["chr1", 105, 115], ["chr2", 207, 217]]
    path = write_bed(genomic, tmp_path / "calls.bed")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["chr1", "105", "115", "a", "950", "+"]
    write_bed(genomic.iloc[:1], path, append=True)
    assert len(path.read_text().splitlines()) == 3
    with pytest.raises(ValueError, match="genomic"):
        write_bed(calls, tmp_path / "x.bed")
    with pytest.raises(ValueError, match="chrom"):
        to_genomic(calls, coords.drop(columns="chrom"))
