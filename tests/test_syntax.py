"""Tests for argminn_plugin.syntax.

Expected configurations and spacings are written out by hand for a small table and recomputed with
plain Python loops for random tables; co-occurrence and spacing counts are checked against
tangermeme's own ``pairwise_annotations`` / ``pairwise_annotations_spacing`` and a brute-force count.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
import torch
from tangermeme.annotate import pairwise_annotations, pairwise_annotations_spacing

from argminn_plugin.model import ARGMINN
from argminn_plugin.syntax import (
    CONFIGURATION_COLUMNS,
    EFFECT_COLUMNS,
    SPACING_COLUMNS,
    SyntaxResult,
    configuration_effects,
    extract_syntax,
    motif_configurations,
    pairwise_counts,
    pairwise_spacings,
)


@pytest.fixture
def table() -> pd.DataFrame:
    # Rows deliberately out of positional order.
    return pd.DataFrame({
        "example_idx": [0, 0, 0, 2, 2, 3, 3],
        "start": [30, 5, 50, 40, 10, 20, 25],
        "end": [40, 15, 60, 50, 20, 30, 35],
        "motif": ["TAL", "GATA", "GATA", "TAL", "TAL", "GATA", "TAL"],
        "filter": [1, 0, 0, 1, 1, 0, 1],
    })


def _random_table(rng: np.random.Generator, n_examples: int = 30, keys=("A", "B", "C")) -> pd.DataFrame:
    rows = []
    for ex in range(n_examples):
        for _ in range(rng.integers(0, 5)):
            start = int(rng.integers(0, 200))
            rows.append((ex, start, start + int(rng.integers(4, 12)), str(rng.choice(keys))))
    table = pd.DataFrame(rows, columns=["example_idx", "start", "end", "motif"])
    return table.sample(frac=1.0, random_state=1).reset_index(drop=True)  # shuffled rows


def _ordered_hits(table: pd.DataFrame) -> dict[int, list[tuple[int, int, str]]]:
    """Per example, (start, end, key) sorted by position, with plain Python."""
    out: dict[int, list] = {}
    for ex, s, e, k in table[["example_idx", "start", "end", "motif"]].itertuples(index=False):
        out.setdefault(int(ex), []).append((int(s), int(e), k))
    return {ex: sorted(hits, key=lambda h: (h[0], h[1])) for ex, hits in out.items()}


# ---------------------------------------------------------------------------
# motif_configurations
# ---------------------------------------------------------------------------


def test_configurations_hand_built(table):
    out = motif_configurations(table)
    assert list(out.columns) == CONFIGURATION_COLUMNS
    assert out["example_idx"].tolist() == [0, 2, 3]
    assert out["configuration"].tolist() == ["GATA|TAL|GATA", "TAL|TAL", "GATA|TAL"]
    assert out["motifs"].tolist() == [("GATA", "TAL", "GATA"), ("TAL", "TAL"), ("GATA", "TAL")]
    assert out["n_instances"].tolist() == [3, 2, 2]


def test_configurations_with_empty_examples_and_filter_key(table):
    out = motif_configurations(table, key="filter", n_examples=5, sep="-")
    assert out["example_idx"].tolist() == [0, 1, 2, 3, 4]
    assert out["configuration"].tolist() == ["0-1-0", "", "1-1", "0-1", ""]
    assert out["motifs"].iloc[0] == (0, 1, 0) and isinstance(out["motifs"].iloc[0][0], int)
    assert out["n_instances"].tolist() == [3, 0, 2, 2, 0]
    assert out["n_instances"].sum() == len(table)


def test_configurations_match_brute_force_on_random_tables():
    rng = np.random.default_rng(0)
    table = _random_table(rng)
    # Ties in (start, end) would make the order depend on the table; drop them for this check.
    table = table.drop_duplicates(["example_idx", "start", "end"])
    expected = {ex: "|".join(k for _, _, k in hits) for ex, hits in _ordered_hits(table).items()}
    out = motif_configurations(table, n_examples=30)
    got = dict(zip(out["example_idx"], out["configuration"]))
    for ex in range(30):
        assert got[ex] == expected.get(ex, "")


def test_configurations_errors(table):
    with pytest.raises(ValueError, match="missing"):
        motif_configurations(table.drop(columns="start"))
    with pytest.raises(ValueError, match="n_examples"):
        motif_configurations(table, n_examples=3)  # example 3 exists
    with pytest.raises(ValueError, match="DataFrame"):
        motif_configurations(table.to_numpy())
    with pytest.raises(ValueError, match="end < start"):
        motif_configurations(table.assign(end=table["start"] - 1))
    empty = motif_configurations(table.iloc[:0], n_examples=2)
    assert empty["configuration"].tolist() == ["", ""]


# ---------------------------------------------------------------------------
# pairwise_spacings
# ---------------------------------------------------------------------------


def test_spacings_consecutive_hand_built(table):
    out = pairwise_spacings(table)
    assert list(out.columns) == SPACING_COLUMNS
    got = {(a, b, s): c for a, b, s, c in out.itertuples(index=False)}
    # example 0: GATA[5,15) TAL[30,40) GATA[50,60) -> 30-15 = 15, 50-40 = 10
    # example 2: TAL[10,20) TAL[40,50) -> 20;  example 3: GATA[20,30) TAL[25,35) -> 25-30 = -5 (overlap)
    assert got == {("GATA", "TAL", 15): 1, ("TAL", "GATA", 10): 1, ("TAL", "TAL", 20): 1, ("GATA", "TAL", -5): 1}
    # sorted by motif_a, motif_b, spacing
    assert list(out.itertuples(index=False))[0][:3] == ("GATA", "TAL", -5)


def test_spacings_all_pairs_and_max_distance(table):
    out = pairwise_spacings(table, consecutive=False)
    got = {(a, b, s): c for a, b, s, c in out.itertuples(index=False)}
    assert got[("GATA", "GATA", 35)] == 1  # 50 - 15, the non-consecutive pair of example 0
    assert out["count"].sum() == 3 + 1 + 1  # C(3,2) + C(2,2) + C(2,2)
    capped = pairwise_spacings(table, consecutive=False, max_distance=15)
    assert set(capped["spacing"]) == {10, -5}
    everything = pairwise_spacings(table, consecutive=False, max_distance=None)
    assert everything["count"].sum() == 5


def test_spacings_match_brute_force_and_tangermeme():
    rng = np.random.default_rng(1)
    keys = ("A", "B", "C")
    # Non-overlapping hits so that tangermeme's spacing tensor accepts them.
    rows = []
    for ex in range(25):
        pos = 0
        for _ in range(rng.integers(0, 5)):
            pos += int(rng.integers(0, 15))
            width = int(rng.integers(4, 9))
            rows.append((ex, pos, pos + width, str(rng.choice(keys))))
            pos += width
    table = pd.DataFrame(rows, columns=["example_idx", "start", "end", "motif"]).sample(frac=1.0, random_state=2)

    hits = _ordered_hits(table)
    consecutive, all_pairs = Counter(), Counter()
    for seq in hits.values():
        for (s0, e0, k0), (s1, e1, k1) in zip(seq, seq[1:]):
            consecutive[(k0, k1, s1 - e0)] += 1
        for (s0, e0, k0), (s1, e1, k1) in combinations(seq, 2):
            all_pairs[(k0, k1, s1 - e0)] += 1
    for flag, expected in ((True, consecutive), (False, all_pairs)):
        out = pairwise_spacings(table, consecutive=flag, max_distance=None)
        assert {(a, b, s): c for a, b, s, c in out.itertuples(index=False)} == dict(expected)

    # tangermeme: (example_idx, annotation_idx, start, end), row = left hit with symmetric=False.
    index = {k: i for i, k in enumerate(keys)}
    X = torch.tensor([[e, index[k], s, t] for e, s, t, k in table.itertuples(index=False)], dtype=torch.int64)
    reference = pairwise_annotations_spacing(X, max_distance=60, dtype=torch.int64, symmetric=False)
    ours = torch.zeros_like(reference)
    for a, b, s, c in pairwise_spacings(table, consecutive=False, max_distance=60).itertuples(index=False):
        ours[index[a], index[b], s] += c
    assert torch.equal(ours, reference)


def test_spacings_edge_cases(table):
    single = pairwise_spacings(table[table["example_idx"] == 2].iloc[:1])
    assert list(single.columns) == SPACING_COLUMNS and len(single) == 0
    with pytest.raises(ValueError, match="max_distance"):
        pairwise_spacings(table, max_distance=0)
    by_filter = pairwise_spacings(table, key="filter")
    assert set(zip(by_filter["motif_a"], by_filter["motif_b"])) == {(0, 1), (1, 0), (1, 1)}


# ---------------------------------------------------------------------------
# pairwise_counts (tangermeme layout)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("unique,symmetric", [(True, True), (False, True), (True, False), (False, False)])
def test_pairwise_counts_equal_tangermeme(table, unique, symmetric):
    keys = ["GATA", "TAL", "OTHER"]
    ours = pairwise_counts(table, keys, unique=unique, symmetric=symmetric, return_tensor=True)
    # The same annotations built by hand, in positional order within each example.
    ordered = [(0, 0), (0, 1), (0, 0), (2, 1), (2, 1), (3, 0), (3, 1)]
    reference = pairwise_annotations(torch.tensor(ordered), unique=unique, symmetric=symmetric, shape=3)
    assert ours.shape == (3, 3)
    assert torch.equal(ours, reference)


def test_pairwise_counts_brute_force_and_labels(table):
    out = pairwise_counts(table)
    assert list(out.index) == ["GATA", "TAL"] and list(out.columns) == ["GATA", "TAL"]
    # unique + symmetric: off-diagonal = number of examples holding both motifs.
    sets = table.groupby("example_idx")["motif"].apply(set)
    both = sum({"GATA", "TAL"} <= s for s in sets)
    assert out.loc["GATA", "TAL"] == out.loc["TAL", "GATA"] == both == 2
    assert out.loc["GATA", "GATA"] == 0  # unique: a motif repeated in an example is not a pair
    raw = pairwise_counts(table, unique=False, symmetric=False)
    # example 0 (GATA, TAL, GATA): G->T, G->G, T->G; example 2: T->T; example 3: G->T
    assert raw.loc["GATA", "TAL"] == 2 and raw.loc["TAL", "GATA"] == 1
    assert raw.loc["GATA", "GATA"] == 1 and raw.loc["TAL", "TAL"] == 1


def test_pairwise_counts_filter_keys_and_errors(table):
    out = pairwise_counts(table, 4, key="filter")
    assert out.shape == (4, 4) and out.to_numpy()[2:].sum() == 0
    empty = pairwise_counts(table.iloc[:0], ["A", "B"], return_tensor=True)
    assert torch.equal(empty, torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="not in `keys`"):
        pairwise_counts(table, ["GATA"])
    with pytest.raises(ValueError, match="distinct"):
        pairwise_counts(table, ["GATA", "GATA", "TAL"])


# ---------------------------------------------------------------------------
# configuration_effects
# ---------------------------------------------------------------------------


def test_configuration_effects_toy():
    configs = ["A|B", "A", "A|B", "", "A|B", "A"]
    logits = np.array([2.0, 0.0, 4.0, -3.0, 0.0, 1.0])
    labels = np.array([1, 0, 1, 0, 0, 1])
    out = configuration_effects(configs, logits, labels)
    assert list(out.columns) == EFFECT_COLUMNS + ["n_positive", "fraction_positive"]
    assert out["configuration"].tolist() == ["A|B", "A", ""]  # by count, then mean probability
    row = out.set_index("configuration")
    assert row.loc["A|B", "count"] == 3 and row.loc["A", "count"] == 2
    assert row.loc["A|B", "mean_logit"] == pytest.approx(2.0)
    assert row.loc["A|B", "std_logit"] == pytest.approx(np.std([2.0, 4.0, 0.0]))
    sig = lambda v: 1 / (1 + np.exp(-np.asarray(v)))  # noqa: E731
    assert row.loc["A", "mean_probability"] == pytest.approx(sig([0.0, 1.0]).mean())
    assert row.loc["A|B", "fraction_positive"] == pytest.approx(2 / 3)
    assert row.loc["", "n_positive"] == 0
    assert out["fraction"].sum() == pytest.approx(1.0)


def test_configuration_effects_from_table_with_missing_examples(table):
    configs = motif_configurations(table)  # examples 0, 2, 3 only
    preds = torch.tensor([[0.9, 0.0], [0.1, 0.0], [0.8, 0.0], [0.7, 0.0], [0.2, 0.0]])
    out = configuration_effects(configs, preds, logits=False).set_index("configuration")
    assert out.loc["", "count"] == 2  # examples 1 and 4 have no calls
    assert out.loc["", "mean_probability"] == pytest.approx(0.15)
    assert out.loc["GATA|TAL|GATA", "mean_logit"] == pytest.approx(np.log(0.9 / 0.1))
    with pytest.raises(ValueError, match="outside"):
        configuration_effects(configs, preds[:3], logits=False)
    with pytest.raises(ValueError, match="probabilities"):
        configuration_effects(configs, preds * 10, logits=False)
    with pytest.raises(ValueError, match="task"):
        configuration_effects(configs, preds, task=2)
    with pytest.raises(ValueError, match="configurations"):
        configuration_effects(["a", "b"], [0.0, 1.0, 2.0])


# ---------------------------------------------------------------------------
# extract_syntax
# ---------------------------------------------------------------------------


def test_extract_syntax_end_to_end():
    torch.manual_seed(0)
    model = ARGMINN(n_filters=3, filter_width=6, n_attention_layers=1, n_heads=2, stream_dim=16, token_dim=8)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (6, 40)), 4).permute(0, 2, 1).to(torch.int8)
    y = torch.tensor([1, 0, 1, 0, 1, 0])
    # An untrained model spreads attention evenly, so threshold 0 lets activations decide.
    result = extract_syntax(model, X, labels=y, attention_threshold=0.0, device="cpu", batch_size=4)
    assert isinstance(result, SyntaxResult)
    assert len(result.instances) > 0
    assert result.predictions.shape == (6, 1)
    assert result.configurations["example_idx"].tolist() == list(range(6))
    assert result.configurations["n_instances"].sum() == len(result.instances)
    assert result.effects["count"].sum() == 6
    assert list(result.spacings.columns) == SPACING_COLUMNS
    # Reusing the calls gives the same tables.
    again = extract_syntax(model, X, result.instances, labels=y, device="cpu")
    pd.testing.assert_frame_equal(again.effects, result.effects)
    with pytest.raises(ValueError, match="unused"):
        extract_syntax(model, X, result.instances, attention_threshold=0.5, device="cpu")
    with pytest.raises(ValueError):
        extract_syntax(model, X[0], device="cpu")
