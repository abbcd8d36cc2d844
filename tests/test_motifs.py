"""Tests of motif read-out: PFMs from activations, information content, quality filter, TOMTOM annotation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from argminn_plugin import ARGMINN
from argminn_plugin.motifs import (
    annotate_motifs,
    benjamini_hochberg,
    extract_motifs,
    information_content,
    motif_quality,
    read_motif_database,
    trim_motif,
    trimmed_motifs,
    write_meme,
)


def random_one_hot(n, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).permute(0, 2, 1).to(torch.int8)


def brute_force_pfms(model, X, threshold, reverse_complement):
    """PFMs written as loops over sequences, positions and filters."""
    seqs = torch.cat([X, X.flip(1).flip(2)]) if reverse_complement else X
    with torch.no_grad():
        acts = model.scanner(seqs.float()).activations.double()
    k = model.filter_width
    pfms = np.zeros((model.n_filters, 4, k))
    for f in range(model.n_filters):
        cut = threshold * acts[:, f].max().item()
        windows = []
        for n in range(seqs.shape[0]):
            for i in range(acts.shape[-1]):
                if acts[n, f, i].item() > cut and acts[:, f].max().item() > 0:
                    windows.append(seqs[n, :, i : i + k].double().numpy())
        if windows:
            pfms[f] = np.mean(windows, axis=0)
    return pfms


@pytest.mark.parametrize("reverse_complement", [False, True])
def test_extract_motifs_matches_brute_force(reverse_complement):
    torch.manual_seed(0)
    model = ARGMINN(n_filters=3, filter_width=5, n_attention_layers=1).eval()
    X = random_one_hot(6, 40)
    got = extract_motifs(model, X, threshold=0.5, reverse_complement=reverse_complement, batch_size=4, device="cpu")
    expected = brute_force_pfms(model, X, 0.5, reverse_complement)
    np.testing.assert_allclose(got.pfms, expected, atol=1e-12)
    weights = model.filter_weights.detach().double().numpy()
    np.testing.assert_allclose(got.cwms, weights - weights.mean(axis=1, keepdims=True), atol=1e-12)
    assert got.pfms.shape == (3, 4, 5)


def planted_filter_model(consensus: str, width: int):
    """An ARGMINN whose filter 0 scores a perfect match of ``consensus`` and filter 1 never fires."""
    model = ARGMINN(n_filters=2, filter_width=width, n_attention_layers=1, batch_norm=False).eval()
    idx = torch.tensor(["ACGT".index(c) for c in consensus])
    with torch.no_grad():
        model.scanner.conv.weight.zero_()
        model.scanner.conv.weight[0, idx, torch.arange(width)] = 1.0
        model.scanner.conv.bias[0] = -(width - 2)  # fires on >= width-1 matching bases
        model.scanner.conv.bias[1] = -100.0
    return model


def test_planted_motif_is_recovered_and_silent_filter_is_unused():
    consensus = "GATAAGCT"
    model = planted_filter_model(consensus, len(consensus))
    X = random_one_hot(50, 100, seed=1).clone()
    planted = F.one_hot(torch.tensor(["ACGT".index(c) for c in consensus]), 4).T.to(torch.int8)
    X[:, :, 40:48] = planted
    motifs = extract_motifs(model, X, reverse_complement=False, device="cpu")
    assert "".join("ACGT"[i] for i in motifs.pfms[0].argmax(0)) == consensus
    assert motifs.pfms[0].max(axis=0).min() > 0.8
    assert motifs.pfms[1].sum() == 0 and motifs.counts[1] == 0
    quality = motif_quality(motifs.pfms)
    assert quality.loc[0, "used"] and quality.loc[0, "passes"]
    assert not quality.loc[1, "used"] and not quality.loc[1, "passes"]
    assert list(trimmed_motifs(motifs, quality)) == ["filter_0"]


def test_batch_size_invariance():
    torch.manual_seed(3)
    model = ARGMINN(n_filters=4, filter_width=6, n_attention_layers=1).eval()
    X = random_one_hot(10, 60, seed=2)
    a = extract_motifs(model, X, batch_size=3, device="cpu")
    b = extract_motifs(model, X, batch_size=10, device="cpu")
    np.testing.assert_allclose(a.pfms, b.pfms, atol=1e-12)
    np.testing.assert_array_equal(a.counts, b.counts)


def test_information_content_and_trimming():
    pfm = np.array([[0.25, 1.0, 0.0, 0.25], [0.25, 0.0, 1.0, 0.25], [0.25, 0.0, 0.0, 0.25], [0.25, 0.0, 0.0, 0.25]])
    ic = information_content(pfm)
    p = (pfm + 0.001) / (pfm + 0.001).sum(0)
    expected = [sum(p[c, k] * np.log2(p[c, k] / 0.25) for c in range(4)) for k in range(4)]
    np.testing.assert_allclose(ic, expected)
    assert ic[0] == pytest.approx(0, abs=1e-9) and ic[1] > 1.9
    assert trim_motif(pfm) == (1, 3)
    assert trim_motif(np.full((4, 5), 0.25)) == (0, 0)
    assert information_content(np.zeros((4, 3))).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="shape"):
        information_content(np.zeros((3, 4)))


def test_quality_filter_rules():
    strong = np.eye(4)[:, [0, 1, 2, 3, 0, 1]]  # 6 bp, ~2 bits each
    short = np.eye(4)[:, [0, 1, 2]]  # too short
    weak = np.full((4, 8), 0.25)
    weak[:, 2:7] = [[0.55], [0.15], [0.15], [0.15]]  # 5 bp of ~0.4 bits
    table = motif_quality(np.stack([strong, np.pad(short, ((0, 0), (0, 3))), weak[:, :6]]))
    assert table["passes"].tolist() == [True, False, False]
    assert table.loc[0, "length"] == 6 and table.loc[1, "length"] == 3


def test_benjamini_hochberg_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(3, 50)) ** 3
    expected = np.stack([scipy_stats.false_discovery_control(row, method="bh") for row in p])
    np.testing.assert_allclose(benjamini_hochberg(p), expected, atol=1e-12)


def test_annotation_finds_jaspar_motifs_on_both_strands(tmp_path):
    database = read_motif_database()
    assert len(database) == 879
    ctcf = next(v for k, v in database.items() if k.startswith("MA0139.2"))
    gata = next(v for k, v in database.items() if k.startswith("MA0035.5"))
    queries = {"ctcf_fwd": ctcf, "gata_rc": gata[::-1, ::-1].copy()}
    table = annotate_motifs(queries, database, n_matches=2)
    best = table[table["rank"] == 0].set_index("motif")
    assert best.loc["ctcf_fwd", "target_id"] == "MA0139.2"
    assert best.loc["ctcf_fwd", "strand"] == "+"
    assert best.loc["gata_rc", "strand"] == "-"
    assert "GATA" in best.loc["gata_rc", "target_name"].upper()
    assert (best["q_value"] < 0.05).all()
    path = write_meme(queries, tmp_path / "q.meme")
    reread = read_motif_database(path)
    np.testing.assert_allclose(reread["ctcf_fwd"], ctcf)


def test_bad_inputs():
    model = ARGMINN(n_filters=2, filter_width=5, n_attention_layers=1)
    with pytest.raises(ValueError, match="threshold"):
        extract_motifs(model, random_one_hot(2, 20), threshold=1.5)
    with pytest.raises(ValueError, match="4 channels"):
        extract_motifs(model, torch.zeros(2, 3, 20))
    with pytest.raises(ValueError, match="does not exist"):
        read_motif_database("/nonexistent/file.meme")
