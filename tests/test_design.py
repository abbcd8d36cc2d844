"""Interpretable design (argminn.md §7.5): implanting, design from learned syntax, checks, greedy comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tangermeme.utils import random_one_hot

from argminn_plugin.design import (
    CHECK_COLUMNS,
    GREEDY_COLUMNS,
    IMPLANT_COLUMNS,
    build_motif_detector,
    check_design,
    compare_with_greedy,
    design_from_syntax,
    implant_configuration,
)
from argminn_plugin.motifs import extract_motifs, motif_quality, trimmed_motifs
from argminn_plugin.syntax import extract_syntax, pairwise_spacings

MOTIFS = ["GATAAGGC", "CACGTGAT"]
COMPLEMENT = str.maketrans("ACGT", "TGCA")


def decode(X, i, start, end):
    codes = X[i, :, start:end].argmax(dim=0).tolist()
    return "".join("ACGT"[c] for c in codes)


def revcomp(seq):
    return seq.translate(COMPLEMENT)[::-1]


@pytest.fixture(scope="module")
def detector():
    return build_motif_detector(MOTIFS)


@pytest.fixture(scope="module")
def backgrounds():
    return random_one_hot((24, 4, 80), random_state=0)


# ---------------------------------------------------------------------------------------------
# implant_configuration


def test_implant_positions_and_orientations(backgrounds):
    X, implanted = implant_configuration(backgrounds, MOTIFS, [5], start=10, orientation=["+", "-"])
    assert list(implanted.columns) == IMPLANT_COLUMNS and len(implanted) == 2 * len(backgrounds)
    assert X.dtype == torch.int8 and X.shape == backgrounds.shape
    first = implanted[implanted["motif"] == MOTIFS[0]]
    second = implanted[implanted["motif"] == MOTIFS[1]]
    assert (first["start"] == 10).all() and (first["end"] == 18).all() and (first["strand"] == "+").all()
    assert (second["start"] == 23).all() and (second["end"] == 31).all() and (second["strand"] == "-").all()
    for i in range(len(backgrounds)):
        assert decode(X, i, 10, 18) == MOTIFS[0]
        assert decode(X, i, 23, 31) == revcomp(MOTIFS[1])
    untouched = torch.ones(80, dtype=torch.bool)
    untouched[10:18] = untouched[23:31] = False
    assert torch.equal(X[:, :, untouched], backgrounds[:, :, untouched])
    assert not torch.equal(backgrounds[:, :, 10:18], X[:, :, 10:18])  # the input was not modified in place


def test_implant_starts(backgrounds):
    span = 8 + 2 + 8
    X, implanted = implant_configuration(backgrounds, MOTIFS, 2)  # centred, as multisubstitute does
    assert (implanted.groupby("example_idx")["start"].min() == 80 // 2 - span // 2).all()
    starts = np.arange(len(backgrounds)) * 2
    X, implanted = implant_configuration(backgrounds, MOTIFS, 2, start=starts)
    np.testing.assert_array_equal(implanted.groupby("example_idx")["start"].min().to_numpy(), starts)
    for i, s in enumerate(starts):
        assert decode(X, i, s, s + 8) == MOTIFS[0] and decode(X, i, s + 10, s + 18) == MOTIFS[1]
    X, implanted = implant_configuration(backgrounds, MOTIFS, 2, start="random", random_state=3)
    first = implanted.groupby("example_idx")["start"].min().to_numpy()
    assert first.min() >= 0 and first.max() <= 80 - span and len(np.unique(first)) > 3
    for i, s in enumerate(first):
        assert decode(X, i, s, s + 8) == MOTIFS[0]


def test_implant_pfm_consensus_and_sampling(backgrounds):
    pfm = np.zeros((4, 4))
    pfm[0, 0] = pfm[1, 1] = pfm[3, 3] = 1.0
    pfm[[0, 2], 2] = 0.5  # position 2: A or G
    X, implanted = implant_configuration(backgrounds, {"m": pfm}, start=5)
    assert (implanted["motif"] == "m").all()
    assert {decode(X, i, 5, 9) for i in range(len(X))} == {"ACAT"}  # argmax takes the first tie
    X, _ = implant_configuration(backgrounds, {"m": pfm}, start=5, sample=True, random_state=0)
    seen = {decode(X, i, 5, 9) for i in range(len(X))}
    assert seen == {"ACAT", "ACGT"}


@pytest.mark.parametrize("kwargs, argument", [
    ({"motifs": ["A" * 81]}, "motifs"),
    ({"motifs": MOTIFS, "spacings": [-1]}, "spacings"),
    ({"motifs": MOTIFS, "spacings": [70]}, "spacings"),
    ({"motifs": MOTIFS, "spacings": [1, 2]}, "spacings"),
    ({"motifs": MOTIFS, "start": 70}, "start"),
    ({"motifs": MOTIFS, "start": [0, 1]}, "start"),
    ({"motifs": MOTIFS, "orientation": ["+", "x"]}, "orientation"),
    ({"motifs": ["GATZ"]}, "motifs"),
    ({"motifs": "GATA"}, "motifs"),
])
def test_implant_errors_name_the_argument(backgrounds, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        implant_configuration(backgrounds, **kwargs)


# ---------------------------------------------------------------------------------------------
# check_design


def test_designs_predicted_active_and_read_back_exactly(detector, backgrounds):
    X, implanted = implant_configuration(backgrounds, MOTIFS, 4, start="random", random_state=1)
    with torch.no_grad():
        before, after = detector(backgrounds)[:, 0], detector(X)[:, 0]
    assert (after > before.max()).all()
    check = check_design(detector, X, implanted, attention_threshold=0.5)
    assert list(check.table.columns) == CHECK_COLUMNS and len(check.table) == len(X)
    assert check.summary["precision"] == 1.0 and check.summary["recall"] == 1.0
    assert check.summary["fraction_exact"] == 1.0 and check.summary["fraction_active"] == 1.0
    assert check.table["min_attention"].min() > 0.9
    assert (check.table["n_calls"] == 2).all()
    # the calls sit exactly on the implants
    merged = check.calls.merge(implanted, on=["example_idx", "start"])
    assert len(merged) == len(implanted)


def test_check_design_detects_wrong_claims(detector, backgrounds):
    X, implanted = implant_configuration(backgrounds, MOTIFS, 4, start=10)
    shifted = implanted.assign(start=implanted["start"] + 30, end=implanted["end"] + 30)
    check = check_design(detector, X, shifted)
    assert check.summary["recall"] == 0.0 and check.summary["precision"] == 0.0
    assert not check.table["exact"].any()
    # designs carrying only one of the two motifs are predicted lower than those carrying both
    one, implanted_one = implant_configuration(backgrounds, MOTIFS[:1], start=10)
    assert check_design(detector, one, implanted_one).summary["mean_logit"] < check.summary["mean_logit"] - 2
    with pytest.raises(ValueError, match="implanted"):
        check_design(detector, X, implanted.drop(columns="end"))


# ---------------------------------------------------------------------------------------------
# design_from_syntax


def test_design_from_learned_syntax_round_trip(detector, backgrounds):
    """Read motifs and syntax off the detector on sequences with a fixed grammar, then design from them."""
    X, _ = implant_configuration(backgrounds, MOTIFS, 3, start="random", random_state=2)
    motifs = extract_motifs(detector, X, device="cpu")
    quality = motif_quality(motifs.pfms)
    pfms = trimmed_motifs(motifs, quality)
    assert sorted(pfms) == ["filter_0", "filter_1"]
    syntax = extract_syntax(detector, X, attention_threshold=0.5, device="cpu")
    assert syntax.effects.iloc[0]["configuration"] == "filter_0|filter_1"
    trims = dict(zip("filter_" + quality["filter"].astype(str), quality["trim_start"]))

    designed, implanted = design_from_syntax(detector, pfms, syntax.effects, syntax.spacings, n=16, length=70,
                                             trim_starts=trims, random_state=0)
    assert designed.shape == (16, 4, 70) and list(implanted["motif"].unique()) == ["filter_0", "filter_1"]
    check = check_design(detector, designed, implanted)
    assert check.summary["precision"] == 1.0 and check.summary["recall"] == 1.0
    assert check.summary["fraction_active"] == 1.0
    # the designs reproduce the learned spacing between the call windows
    spacings = pairwise_spacings(check.calls)
    assert spacings.sort_values("count").iloc[-1]["spacing"] == 3

    # integer spacing in motif units, and shuffled backgrounds
    designed, implanted = design_from_syntax(detector, {"a": MOTIFS[0], "b": MOTIFS[1]}, "a|b", 6, n=5,
                                             background="shuffle", X=backgrounds, spacing_between="motifs",
                                             random_state=0)
    gaps = implanted.groupby("example_idx").apply(lambda g: g["start"].iloc[1] - g["end"].iloc[0],
                                                  include_groups=False)
    assert (gaps == 6).all() and designed.shape == (5, 4, 80)


def test_design_from_syntax_errors(detector):
    motifs = {"filter_0": MOTIFS[0], "filter_1": MOTIFS[1]}
    with pytest.raises(ValueError, match="configuration"):
        design_from_syntax(detector, motifs, "filter_0|filter_9", 0, length=50)
    with pytest.raises(ValueError, match="spacing"):
        design_from_syntax(detector, motifs, (0, 1), -5, length=50)  # window gap -5 puts 8-bp motifs on top
    with pytest.raises(ValueError, match="spacing"):
        design_from_syntax(detector, motifs, (0, 1), pd.DataFrame({"motif_a": ["filter_1"], "motif_b": ["filter_0"],
                                                                   "spacing": [2], "count": [1]}), length=50)
    with pytest.raises(ValueError, match="background"):
        design_from_syntax(detector, motifs, (0, 1), 0, length=50, background="genome")


# ---------------------------------------------------------------------------------------------
# compare_with_greedy


def test_compare_with_greedy(detector):
    X0 = random_one_hot((2, 4, 40), random_state=4)
    designed, _ = implant_configuration(X0, MOTIFS, 3, start=5)
    result = compare_with_greedy(detector, X0, max_iter=2, motifs=MOTIFS, designed=designed)
    assert list(result.table.columns) == GREEDY_COLUMNS
    assert result.table["method"].tolist() == ["start"] * 2 + ["greedy"] * 2 + ["interpretable"] * 2
    assert result.X_greedy.shape == X0.shape and result.X_greedy.dtype == torch.int8
    by = result.summary.set_index("method")
    assert by.loc["start", "mean_edits"] == 0 and by.loc["greedy", "mean_edits"] > 0
    assert by.loc["greedy", "mean_prediction"] > by.loc["start", "mean_prediction"] + 5
    assert by.loc["interpretable", "mean_prediction"] > by.loc["start", "mean_prediction"] + 5
    assert by.loc["interpretable", "fraction_found"] == 1.0
    assert by.loc["greedy", "fraction_found"] == 1.0  # greedy inserted the motifs, and ARGMINN calls them
    with pytest.raises(ValueError, match="max_iter"):
        compare_with_greedy(detector, X0, max_iter=-1)
    with pytest.raises(ValueError, match="designed"):
        compare_with_greedy(detector, X0, max_iter=1, designed=designed[:1])
