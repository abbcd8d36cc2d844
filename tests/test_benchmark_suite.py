"""Smoke tests of the benchmark suite's scoring, aggregation and output (``benchmarks/suite.py``).

The heavy run is not a test; these check the logic that turns records into tables on tiny inputs,
and that a ``--tiny`` run of one grammar writes valid JSON and markdown.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _suite_metrics as M  # noqa: E402


def _record(dataset, seed, method, *, auroc=0.9, recovered=1, planted=1, redundant=0, unmatched=0, sources=None,
            simulated=True):
    sources = sources or {}
    return {
        "dataset": dataset, "seed": seed, "method": method, "simulated": simulated,
        "performance": {"auroc": auroc, "auprc": auroc, "accuracy": 0.8},
        "motifs": {"n_planted": planted, "n_recovered": recovered, "n_redundant": redundant, "n_unmatched": unmatched,
                   "interpretability": 2.0, "missed": [] if recovered == planted else ["B"]},
        "instances": {k: {"n_calls": 10, "n_true": 10, "precision": p, "recall": r, "f1": M.f1_score(p, r)}
                      for k, (p, r) in sources.items()},
        "timing": {"train_wall_s": 1.0 + seed, "train_cpu_s": 1.0},
        "n_parameters": 100,
    }


def test_aggregate_matches_numpy_mean_and_sample_sd():
    rng = np.random.default_rng(0)
    values = rng.random(5)
    records = [_record("d", s, "argminn", auroc=float(v)) for s, v in enumerate(values)]
    stat = M.aggregate(records)["d"]["argminn"]["performance.auroc"]
    assert stat["n"] == 5
    assert stat["mean"] == pytest.approx(np.mean(values))
    assert stat["sd"] == pytest.approx(np.std(values, ddof=1))
    assert stat["min"] == pytest.approx(values.min()) and stat["max"] == pytest.approx(values.max())
    timing = M.aggregate(records)["d"]["argminn"]["timing.train_wall_s"]
    assert timing["mean"] == pytest.approx(np.mean([1.0 + s for s in range(5)]))


def test_summarize_skips_undefined_and_single_value_has_no_sd():
    assert M.summarize([None, float("nan"), 2.0]) == {"mean": 2.0, "sd": None, "min": 2.0, "max": 2.0, "n": 1}
    assert M.summarize([None])["mean"] is None
    assert M.mean_sd(M.summarize([1.0, 3.0]), 2) == f"2.00 ± {math.sqrt(2):.2f}"
    assert M.mean_sd(M.summarize([])) == "–"


def test_f1_and_interpretability():
    assert M.f1_score(1.0, 0.5) == pytest.approx(2 / 3)
    assert M.f1_score(0.0, 0.0) == 0.0
    assert M.f1_score(None, 0.5) is None
    # mean of -log10 q with unmatched (None) counted as q = 1
    assert M.interpretability_score([1e-4, None, 1e-2]) == pytest.approx((4 + 0 + 2) / 3)
    assert M.interpretability_score([]) == 0.0


def test_best_instance_source_picks_highest_f1():
    r = _record("d", 0, "cnn_deeplift_modisco", sources={"seqlets": (0.99, 0.5), "fimo_modisco": (0.8, 0.9)})
    name, vals = M.best_instance_source(r)
    assert name == "fimo_modisco" and vals["f1"] == pytest.approx(M.f1_score(0.8, 0.9))


def test_target_checks_met_and_missed():
    records = [
        # seed 0: everything met
        _record("g", 0, "argminn", auroc=0.95, sources={"attention": (0.97, 0.92)}),
        _record("g", 0, "cnn_filters", auroc=0.955, sources={"fimo": (0.9, 0.9)}),
        _record("g", 0, "cnn_deeplift_modisco", auroc=0.955, sources={"seqlets": (0.99, 0.5)}),
        # seed 1: one planted motif missed, recall below the bar, worse than a peer, auROC too low
        _record("g", 1, "argminn", auroc=0.90, recovered=1, planted=2, unmatched=1,
                sources={"attention": (0.99, 0.80)}),
        _record("g", 1, "explainn", auroc=0.92, sources={"fimo": (0.95, 0.95)}),
        # real data are never target-checked
        _record("real", 0, "argminn", simulated=False, sources={}),
    ]
    checks = M.check_targets(records)
    assert [(c["dataset"], c["seed"]) for c in checks] == [("g", 0), ("g", 1)]
    first, second = checks
    assert first["motifs"]["met"] and first["instances"]["met"] and first["instances_vs_peers"]["met"]
    assert first["auroc"]["met"]  # 0.95 >= 0.955 - 0.01
    assert first["instances_vs_peers"]["best_peer"] == "cnn_filters/fimo"
    assert not second["motifs"]["met"] and "missed B" in second["motifs"]["detail"]
    assert not second["instances"]["met"]
    assert not second["instances_vs_peers"]["met"]
    assert not second["auroc"]["met"]  # 0.90 < 0.92 - 0.01
    summary = M.target_summary(checks)["g"]
    assert summary["motifs"] == {"met": 1, "n": 2, "verdict": "missed"}
    table = "\n".join(M.target_table("g", checks, M.target_summary(checks)))
    assert "**missed** (1 of 2 seeds)" in table


def test_no_call_at_all_misses_the_instance_target():
    records = [_record("g", 0, "argminn", sources={"attention": (None, 0.0)})]
    check = M.check_targets(records)[0]
    assert check["instances"]["met"] is False


def test_clean_makes_strict_json():
    data = M.clean({"a": float("nan"), "b": np.float32(1.5), "c": [np.int64(2), np.bool_(True)], "d": float("inf")})
    assert data == {"a": None, "b": 1.5, "c": [2, True], "d": None}
    json.dumps(data, allow_nan=False)


def test_tiny_run_writes_valid_json_and_markdown(tmp_path):
    import torch

    import suite

    threads = torch.get_num_threads()
    try:
        result = suite.main(["--tiny", "--datasets", "single/iid", "--methods", "argminn", "cnn_filters",
                             "--out", str(tmp_path), "--name", "t"])
    finally:
        torch.set_num_threads(threads)  # the suite sets one thread; leave the session as it was
    data = json.loads((tmp_path / "t.json").read_text())  # strict JSON: no NaN
    assert data["settings"]["size"] == "tiny"
    assert {r["method"] for r in data["records"]} == {"argminn", "cnn_filters"}
    for key in ("commit", "nproc", "cpu_model", "torch_threads", "load_average", "versions"):
        assert key in data["machine"]
    assert data["machine"]["versions"]["torch"]
    agg = data["aggregate"]["single/iid"]["argminn"]
    assert agg["motifs.n_planted"]["mean"] == 1
    assert "timing.train_cpu_s" in agg and "performance.auroc" in agg
    assert [c["dataset"] for c in data["targets"]] == ["single/iid"]
    md = (tmp_path / "t.md").read_text()
    assert md.startswith("# Benchmark suite: tiny size")
    assert "## single/iid" in md and "| ARGMINN |" in md and "| CNN, first-layer filters |" in md
    assert "## Headline (simulated data sets)" in md and "| single/iid | " in md
    assert result["records"] == data["records"]
    # --render rewrites the markdown from the JSON alone
    (tmp_path / "t.md").unlink()
    suite.main(["--render", str(tmp_path / "t.json")])
    assert (tmp_path / "t.md").read_text() == md
