"""Tests of ``argminn_plugin.compare`` and ``argminn_plugin.report``: ARGMINN vs DeepLIFT-SHAP/MoDISco."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from argminn_plugin.baselines import StandardCNN
from argminn_plugin.compare import (
    instance_overlap,
    match_motif_sets,
    merge_intervals,
    side_by_side,
    write_comparison,
)
from argminn_plugin.model import ARGMINN
from argminn_plugin.motifs import read_motif_database
from argminn_plugin.report import write_html_report

LENGTH = 100


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def jaspar() -> dict[str, np.ndarray]:
    return read_motif_database()


# --------------------------------------------------------------------------------------------------
# Instance sets
# --------------------------------------------------------------------------------------------------


def _random_intervals(n: int, n_examples: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = rng.integers(0, 80, n)
    return pd.DataFrame({"example_idx": rng.integers(0, n_examples, n), "start": start,
                         "end": start + rng.integers(1, 20, n)})


def _brute_force_flags(a: pd.DataFrame, b: pd.DataFrame, fraction: float) -> tuple[list[bool], list[bool]]:
    def hit(x, y):
        if x.example_idx != y.example_idx:
            return False
        shared = min(x.end, y.end) - max(x.start, y.start)
        return shared >= fraction * min(x.end - x.start, y.end - y.start)

    ra, rb = list(a.itertuples()), list(b.itertuples())
    return [any(hit(x, y) for y in rb) for x in ra], [any(hit(x, y) for x in ra) for y in rb]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_instance_overlap_matches_brute_force(seed):
    a, b = _random_intervals(60, 5, seed), _random_intervals(45, 5, seed + 100)
    fa, fb = _brute_force_flags(a, b, 0.5)
    got = instance_overlap(a, b)
    assert got["n_a"] == 60 and got["n_b"] == 45
    assert got["n_a_overlapping"] == sum(fa) and got["n_b_overlapping"] == sum(fb)
    assert got["frac_a_overlapping_b"] == pytest.approx(np.mean(fa))
    assert got["frac_b_overlapping_a"] == pytest.approx(np.mean(fb))
    swapped = instance_overlap(b, a)
    assert swapped["n_a_overlapping"] == got["n_b_overlapping"]


def test_instance_overlap_edge_cases():
    a = pd.DataFrame({"example_idx": [0, 0, 1], "start": [0, 10, 0], "end": [10, 20, 10]})
    b = pd.DataFrame({"example_idx": [0, 1], "start": [5, 6], "end": [15, 16]})  # half of 10 -> overlap; 4 -> not
    got = instance_overlap(a, b)
    assert got["n_a_overlapping"] == 2 and got["n_b_overlapping"] == 1
    empty = instance_overlap(a.iloc[:0], b)
    assert empty["frac_a_overlapping_b"] is None and empty["frac_b_overlapping_a"] == 0.0


def test_merge_intervals_matches_brute_force():
    hits = _random_intervals(80, 4, 7).assign(p=np.random.default_rng(7).random(80), motif="m")
    merged = merge_intervals(hits, score="p")
    for ex in range(4):
        covered = set()
        for r in hits[hits.example_idx == ex].itertuples():
            covered |= set(range(r.start, r.end))
        got = set()
        rows = merged[merged.example_idx == ex].sort_values("start")
        for r in rows.itertuples():
            got |= set(range(r.start, r.end))
        assert got == covered
        # merged intervals are disjoint and not adjacent (bedtools merge -d 0)
        assert (rows["start"].to_numpy()[1:] > rows["end"].to_numpy()[:-1]).all()
        # each keeps the best (lowest) p of the hits inside it
        for r in rows.itertuples():
            inside = hits[(hits.example_idx == ex) & (hits.start >= r.start) & (hits.end <= r.end)]
            assert r.p == inside["p"].min()


# --------------------------------------------------------------------------------------------------
# Motif sets
# --------------------------------------------------------------------------------------------------


def test_motif_set_matched_with_itself_is_one_to_one(jaspar):
    names = ["MA0139.2 CTCF", "MA0035.5 GATA1", "MA0080.7 Spi1", "MA0058.4 MAX"]
    motifs = {n.split()[1]: jaspar[n] for n in names}
    table = match_motif_sets(motifs, motifs, jaspar)
    assert len(table) == 16
    best = table[table["is_best"]]
    assert list(best["query"]) == list(best["target"])  # each motif's best match is itself
    assert (best["q_value"] < 1e-3).all()
    # symmetric: p(a, b) and p(b, a) agree on which pairs are matches
    matched = {(r.query, r.target) for r in table.itertuples() if r.q_value < 0.05}
    assert {(b, a) for a, b in matched} == matched
    # a reverse-complemented copy matches on the minus strand
    rc = match_motif_sets({"ctcf_rc": jaspar[names[0]][::-1, ::-1].copy()}, motifs, jaspar)
    row = rc[rc["is_best"]].iloc[0]
    assert row["target"] == "CTCF" and row["strand"] == "-"
    assert match_motif_sets({}, motifs, jaspar).empty


# --------------------------------------------------------------------------------------------------
# End to end on a tiny simulation
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, jaspar):
    from argminn_plugin.data import binary_dataloader
    from argminn_plugin.simulate import simulate_sequences
    from argminn_plugin.training import fit

    sim = simulate_sequences("single", 120, 120, length=LENGTH, center_jitter=20, random_state=0)
    X, y = sim.X, sim.y.float().reshape(-1, 1)
    loader = binary_dataloader(X, y, batch_size=64, shuffle=True, random_state=0)
    root = tmp_path_factory.mktemp("compare")
    torch.manual_seed(0)
    argminn = ARGMINN(n_filters=4, filter_width=10, n_attention_layers=1, name=str(root / "a"), verbose=False)
    fit(argminn, loader, torch.optim.Adam(argminn.parameters(), lr=5e-3), X_valid=X[:64], y_valid=y[:64],
        max_epochs=1, device="cpu", schedule=None, random_state=0, verbose=False)
    cnn = StandardCNN(LENGTH, name=str(root / "b"))
    fit(cnn, loader, torch.optim.Adam(cnn.parameters(), lr=5e-3), X_valid=X[:64], y_valid=y[:64], max_epochs=1,
        device="cpu", schedule=None, random_state=0, verbose=False)
    n = 30
    truth = sim.instances[sim.instances["example_idx"] < n].reset_index(drop=True)
    result = side_by_side(argminn, cnn, X[:n], truth=truth, planted=sim.motifs, database=jaspar, n_shuffles=3,
                          modisco_kwargs={"max_seqlets": 300}, attention_threshold=0.3)
    files = write_comparison(result, root / "run")
    html = write_html_report(result, root / "run.compare.html")
    return result, files, html, truth


@pytest.mark.slow  # trains two models and runs MoDISco: ~25 s CPU, minutes of wall time on a loaded 2-core machine
def test_side_by_side_tables(comparison):
    result, _, _, truth = comparison
    assert set(result.motifs["method"]) <= {"argminn", "modisco_argminn", "modisco_baseline"}
    assert set(result.instances["source"]) <= {"argminn_calls", "seqlets_argminn", "fimo_modisco_argminn",
                                               "seqlets_baseline", "fimo_modisco_baseline", "fimo_argminn_pfms"}
    assert len(result.overlaps) == 15  # every pair of the six instance sets
    assert list(result.instance_scores["source"]) == list(result.summary["n_instances"])
    assert (result.instance_scores["n_true"] == len(truth)).all()
    assert list(result.motif_scores["method"]) == ["argminn", "modisco_argminn", "modisco_baseline"]
    for key, value in result.summary["n_instances"].items():
        assert value == int((result.instances["source"] == key).sum())
    assert result.attributions["argminn"].shape == result.X.shape
    # projected attributions are zero off the observed bases
    assert (result.attributions["baseline"] * (1 - result.X.float())).abs().max() == 0
    for row in result.instances.itertuples():
        assert 0 <= row.start < row.end <= LENGTH and 0 <= row.example_idx < 30


@pytest.mark.slow  # trains two models and runs MoDISco: ~25 s CPU, minutes of wall time on a loaded 2-core machine
def test_json_numbers_equal_the_tables(comparison):
    result, files, _, _ = comparison
    data = json.loads(open(files["json"]).read())
    for name in ("motifs", "overlaps", "motif_scores", "instance_scores"):
        frame = getattr(result, name)
        records = data["tables"][name]
        assert len(records) == len(frame)
        tsv = pd.read_csv(files[f"{name}_tsv"], sep="\t") if len(frame) else frame
        for rec, (_, row), (_, trow) in zip(records, frame.iterrows(), tsv.iterrows()):
            for key, value in rec.items():
                for other in (row[key], trow[key]):
                    if value is None or value == "":  # an empty string reads back from TSV as NaN
                        assert other is None or other == "" or pd.isna(other)
                    elif isinstance(value, float):
                        assert value == pytest.approx(float(other), rel=1e-9)
                    elif isinstance(value, bool):
                        assert bool(other) == value
                    else:
                        assert str(value) == str(other)
    assert data["n_instances"] == result.summary["n_instances"]
    assert data["n_passing"] == {m: int(((result.motifs["method"] == m) & result.motifs["passes"]).sum())
                                 for m in data["n_passing"]}


@pytest.mark.slow  # trains two models and runs MoDISco: ~25 s CPU, minutes of wall time on a loaded 2-core machine
def test_html_report_is_self_contained(comparison):
    _, _, html_path, _ = comparison
    text = html_path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "data:image/png;base64," in text
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(?!data:)[a-z]+:", text, flags=re.I)
    assert "http://" not in text and "https://" not in text
    assert "Instance-set overlaps" in text and "Example sequences" in text


def test_side_by_side_errors(jaspar):
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (4, LENGTH)), 4).permute(0, 2, 1).to(torch.int8)
    cnn = StandardCNN(LENGTH)
    with pytest.raises(ValueError, match="ARGMINN"):
        side_by_side(cnn, cnn, X, database=jaspar)
    profile = ARGMINN(n_filters=2, filter_width=6, n_attention_layers=1, head="profile", n_control_tracks=0,
                      trimming=10, footprint_width=11, verbose=False)
    with pytest.raises(ValueError, match="binary head"):
        side_by_side(profile, cnn, X, database=jaspar)
    binary = ARGMINN(n_filters=2, filter_width=6, n_attention_layers=1, verbose=False)
    with pytest.raises(ValueError, match="fimo_motifs"):
        side_by_side(binary, cnn, X, database=jaspar, fimo_motifs="some")


@pytest.mark.slow
def test_compare_cli_on_a_simulation(tmp_path):
    from argminn_plugin.cli import main

    params = {"name": "run", "output_dir": str(tmp_path), "simulate": {"grammar": "single", "n_positives": 300,
              "n_negatives": 300, "length": 120, "center_jitter": 20}, "n_filters": 4, "n_attention_layers": 1,
              "max_epochs": 2, "schedule": "none", "device": "cpu", "compare_max_sequences": 30, "n_shuffles": 3,
              "attention_threshold": 0.3, "modisco": {"max_seqlets": 300}}
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    assert main(["compare", "-p", str(path)]) == 0
    for suffix in ("compare.html", "compare.json", "compare.motifs.tsv", "compare.instance_scores.tsv",
                   "baseline.torch", "run.pt"):
        matches = list(tmp_path.glob(f"*{suffix}"))
        assert matches, suffix
    data = json.loads((tmp_path / "run.compare.json").read_text())
    assert data["truth"]["motifs"]["argminn"]["n_motifs"] >= 0
    assert {"argminn", "baseline"} == set(data["performance"])


def test_compare_cli_reports_bad_parameters(tmp_path, capsys):
    from argminn_plugin.cli import main

    path = tmp_path / "p.json"
    path.write_text(json.dumps({"sequences": "x.fa", "baseline": "bpnet"}))
    assert main(["compare", "-p", str(path)]) == 2
    assert "baseline must be" in capsys.readouterr().err
    path.write_text(json.dumps({"sequences": "x.fa", "model": str(tmp_path / "missing.pt")}))
    assert main(["compare", "-p", str(path)]) == 2
    assert "file not found" in capsys.readouterr().err


def test_score_motifs_counts_reverse_complements_as_one_motif():
    from argminn_plugin.compare import score_motifs
    from argminn_plugin.motifs import read_motif_database

    database = read_motif_database()
    ctcf = next(v for k, v in database.items() if k.startswith("MA0139.2"))
    motifs = {"fwd": ctcf, "rc": ctcf[::-1, ::-1].copy(), "fwd_copy": ctcf.copy()}
    scores = score_motifs(motifs, {k: True for k in motifs}, {"CTCF": ctcf}, database)
    assert scores["recovered"] == ["CTCF"] and scores["n_unmatched"] == 0
    assert scores["n_redundant"] == 1  # the forward copy; the reverse complement is the same motif
    only_pair = score_motifs({k: motifs[k] for k in ("fwd", "rc")}, {"fwd": True, "rc": True}, {"CTCF": ctcf}, database)
    assert only_pair["n_redundant"] == 0


def _empty_result(summary_extra: dict):
    from argminn_plugin.compare import ComparisonResult

    motifs = pd.DataFrame(columns=["method", "motif", "group", "length", "mean_ic", "total_ic", "passes", "n_seqlets",
                                   "jaspar_match", "jaspar_p", "jaspar_q", "jaspar_strand"])
    summary = {"n_sequences": 2, "length": LENGTH, "baseline": "StandardCNN",
               "parameters": {"n_shuffles": 3, "fimo_threshold": 1e-4, "q_threshold": 0.05},
               "n_motifs": {"argminn": 0}, "n_passing": {"argminn": 0}, **summary_extra}
    empty = pd.DataFrame()
    return ComparisonResult(motifs, empty, pd.DataFrame(columns=["is_best"]),
                            pd.DataFrame(columns=["source", "example_idx", "start", "end"]), empty, empty, empty,
                            summary, {"argminn": {}}, torch.zeros(2, 4, LENGTH))


def test_html_report_shows_predictive_performance():
    from argminn_plugin.report import render_html

    performance = {"argminn": {"test_auroc": 0.8123, "test_loss": 0.5},
                   "baseline": {"test_auroc": 0.7341, "test_loss": 0.6}}
    text = render_html(_empty_result({"performance": performance, "split": "test"}), n_examples=0)
    assert "Predictive performance (test)" in text
    section = text.split("Predictive performance", 1)[1].split("<h2>", 1)[0]
    assert "0.812" in section and "0.734" in section and "baseline" in section and "test_auroc" in section
    assert "No ARGMINN filter passes" in text
    # without performance numbers (side_by_side alone) there is no such section
    assert "Predictive performance" not in render_html(_empty_result({}), n_examples=0)


@pytest.mark.slow
def test_compare_on_a_fasta_of_positives_gets_shuffled_negatives(tmp_path):
    """The real-data route of ``argminn compare``: a FASTA of peaks only (soft-masked, as the shared
    ChIP-seq sets are), dinucleotide-shuffled negatives, a random test split, no truth."""
    from argminn_plugin.pipeline import run_compare
    from argminn_plugin.simulate import simulate_sequences

    sim = simulate_sequences("single", 200, 0, length=120, center_jitter=20, random_state=3)
    letters = np.array(list("ACGT"))
    with open(tmp_path / "peaks.fa", "w") as handle:
        for i, x in enumerate(sim.X[:200].argmax(dim=1).numpy()):
            seq = "".join(letters[x])
            handle.write(f">chr1:{i * 1000}-{i * 1000 + 120}\n{seq[:30].lower()}{seq[30:]}\n")
    params = {"name": "run", "output_dir": str(tmp_path), "sequences": str(tmp_path / "peaks.fa"),
              "validation_fraction": 0.1, "test_fraction": 0.25, "n_filters": 4, "n_attention_layers": 1,
              "max_epochs": 2, "schedule": "none", "device": "cpu", "baseline_epochs": 2, "baseline_lr": 0.01,
              "compare_max_sequences": 40, "n_shuffles": 3, "attention_threshold": 0.3,
              "modisco": {"max_seqlets": 300}}
    outputs = run_compare(params)
    assert outputs["split"] == "test"
    data = json.loads((tmp_path / "run.compare.json").read_text())
    assert data["n_sequences"] == 40 and data["length"] == 120  # 50 test peaks, 40 compared
    assert "truth" not in data and data["tables"]["instance_scores"] == []
    assert len(data["tables"]["overlaps"]) == 15  # every pair of the six instance sets
    for model in ("argminn", "baseline"):  # finite auROC: the test split holds the peaks' shuffles too
        assert 0.0 <= data["performance"][model]["test_auroc"] <= 1.0
    assert "Predictive performance (test)" in (tmp_path / "run.compare.html").read_text()
