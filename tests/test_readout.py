"""Tests of the full read-out (``argminn_plugin.readout``), its CLI subcommands and its pipeline step.

The centre of this file is a hand-built *oracle* ARGMINN whose read-out is known in advance:

* filter 0 holds the one-hot consensus of JASPAR CTCF (MA0139.2, 15 bp) and filter 1 its reverse
  complement, each with bias ``-(K - 8)``, so a filter's activation is ``max(0, matches - 7)``: 8 on
  a planted consensus, at most 4 elsewhere (checked), and small but non-zero in the background
  (so that the mean positive activation of §7.2 lies below the planted value); filter 2 never fires;
* one attention layer with two heads whose logits are ``(A * (act_0 + act_1) +- B * position) / sqrt(2)``
  (token, value and query weights set by hand; the position comes from the slowest sine of the
  positional encoding, which is linear to within 1e-3 over 100 bp): head 0 looks at the rightmost
  planted site, head 1 at the leftmost one, each with a weight above 0.99.

Random sequences get one or two planted consensus sites on either strand, so the expected motifs,
instance calls, configurations and spacings are computed here from the planting alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from argminn_plugin.cli import main
from argminn_plugin.instances import score_instances
from argminn_plugin.io import save_bpnet_compatible, save_model
from argminn_plugin.model import ARGMINN
from argminn_plugin.motifs import JASPAR_2024, read_motif_database
from argminn_plugin.readout import run_readout, score_against_truth

CTCF = "MA0139.2 CTCF"
GATA1 = "MA0035.5 GATA1"
N_SEQ, LENGTH = 24, 100
MIN_MATCHES = 8  # a filter fires (activation >= 1) from this many consensus matches on
HEAD_A, HEAD_B = 25.0, 0.5  # attention logit weights of activation and position
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MOTIF_FILES = ("motifs.tsv", "motifs.meme", "logos.png")
INSTANCE_FILES = ("instances.tsv", "instances.bed", "modisco.h5", "tracks.png")
SYNTAX_FILES = ("syntax.tsv", "spacings.tsv", "spacings.png")


@pytest.fixture(autouse=True, scope="module")
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------
# The oracle model and its planted data
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jaspar() -> dict[str, np.ndarray]:
    return read_motif_database()


@pytest.fixture(scope="module")
def consensus(jaspar) -> tuple[np.ndarray, np.ndarray]:
    """Base codes (0-3, ACGT) of the CTCF consensus and of its reverse complement."""
    fwd = jaspar[CTCF].argmax(axis=0)
    return fwd, (3 - fwd)[::-1].copy()


def build_oracle(fwd: np.ndarray, rc: np.ndarray) -> ARGMINN:
    K = len(fwd)
    torch.manual_seed(0)  # the feed-forward block and head keep a (seeded) default initialisation
    model = ARGMINN(n_filters=3, filter_width=K, n_attention_layers=1, n_heads=2, pos_enc_dim=16, token_dim=4,
                    stream_dim=4, batch_norm=False, verbose=False)
    cols = np.arange(K)
    with torch.no_grad():
        conv = model.scanner.conv
        conv.weight.zero_()
        conv.weight[0, fwd, cols] = 1.0
        conv.weight[1, rc, cols] = 1.0
        conv.bias.copy_(torch.tensor([-(MIN_MATCHES - 1.0), -(MIN_MATCHES - 1.0), -1.0]))
        token = model.syntax.token
        token.weight.zero_()
        token.bias.zero_()
        slowest = 10000.0 ** (-14 / 16)  # frequency of encoding channel 14 (pos_enc_dim=16)
        for head in (0, 1):
            token.weight[2 * head, 0] = token.weight[2 * head, 1] = 1.0  # filters 0 and 1
            token.weight[2 * head + 1, 3 + 14] = 1.0 / slowest  # ~ position in bp
        layer = model.syntax.layers[0]
        layer.value.weight.copy_(torch.eye(4))
        layer.value.bias.zero_()
        layer.query.weight.zero_()
        layer.query.bias.copy_(torch.tensor([HEAD_A, HEAD_B, HEAD_A, -HEAD_B]))
    return model.eval()


def plant(fwd: np.ndarray, rc: np.ndarray, n: int, length: int, seed: int) -> tuple[torch.Tensor, pd.DataFrame]:
    """Random sequences with one or two consensus sites (gap >= 20 bp), each on a random strand."""
    K = len(fwd)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, length))
    rows = []
    for i in range(n):
        if i % 2 == 0:
            starts = [int(rng.integers(0, length - K + 1))]
        else:
            first = int(rng.integers(0, length - 2 * K - 20 + 1))
            starts = [first, int(rng.integers(first + K + 20, length - K + 1))]
        for s in starts:
            strand = "+" if rng.random() < 0.5 else "-"
            codes[i, s : s + K] = fwd if strand == "+" else rc
            rows.append((i, s, s + K, strand))
    X = torch.tensor(np.eye(4, dtype=np.float32)[codes].transpose(0, 2, 1).copy())
    return X, pd.DataFrame(rows, columns=["example_idx", "start", "end", "strand"])


def window_matches(X: torch.Tensor, motif: np.ndarray) -> np.ndarray:
    """Number of positions of every K-window of ``X`` agreeing with the base codes ``motif``, (N, L')."""
    codes = X.numpy().argmax(axis=1)
    K = len(motif)
    windows = np.lib.stride_tricks.sliding_window_view(codes, K, axis=1)
    return (windows == motif[None, None, :]).sum(axis=-1)


def expected_name(strand: str) -> str:
    return f"filter_{0 if strand == '+' else 1}:CTCF"


@pytest.fixture(scope="module")
def oracle(consensus) -> ARGMINN:
    return build_oracle(*consensus)


@pytest.fixture(scope="module")
def planted(consensus):
    X, sites = plant(*consensus, N_SEQ, LENGTH, seed=0)
    coords = pd.DataFrame({"chrom": ["chr2" if i % 3 == 0 else "chr1" for i in range(N_SEQ)],
                           "start": [5000 + 1000 * i + 7 * (i % 4) for i in range(N_SEQ)]})
    coords["end"] = coords["start"] + LENGTH
    return X, sites, coords


@pytest.fixture(scope="module")
def readout(oracle, planted, tmp_path_factory):
    X, _, coords = planted
    prefix = tmp_path_factory.mktemp("oracle") / "out" / "oracle"
    return run_readout(oracle, X, prefix, coords=coords, labels=torch.ones(len(X), 1))


def test_oracle_design(oracle, planted, consensus):
    """The preconditions the other expectations rest on, checked numerically."""
    X, sites, _ = planted
    fwd, rc = consensus
    planted_at = {(i, s): strand for i, s, _, strand in sites.itertuples(index=False)}
    with torch.no_grad():
        out = oracle.forward_with_interims(X)
    acts = out.activations.numpy()
    for f, motif in ((0, fwd), (1, rc)):
        expected = np.maximum(window_matches(X, motif) - (MIN_MATCHES - 1), 0)
        np.testing.assert_allclose(acts[:, f], expected, atol=1e-5)
        site = np.zeros_like(expected, dtype=bool)
        for (i, s), strand in planted_at.items():
            site[i, s] = strand == ("+" if f == 0 else "-")
        assert np.all(expected[site] == 8)
        assert expected[~site].max() <= 4  # 0.5 x max = 4: only planted windows make the PFM
        assert (expected[~site] > 0).sum() > 10  # background firing keeps mu_f below 8
    assert acts[:, 2].max() == 0
    # Attention: > 0.9 exactly at the planted starts, in some head.
    pooled = out.attention.amax(dim=(1, 2)).numpy()
    assert out.attention.shape == (N_SEQ, 1, 2, LENGTH - len(fwd) + 1)
    hot = {tuple(map(int, ix)) for ix in np.argwhere(pooled > 0.9)}
    assert hot == set(planted_at)
    assert min(pooled[i, s] for i, s in planted_at) > 0.99


# --------------------------------------------------------------------------------------------------
# run_readout on the oracle
# --------------------------------------------------------------------------------------------------


def test_all_documented_files_written(readout):
    prefix = readout.files["motifs_tsv"][: -len(".motifs.tsv")]
    for suffix in MOTIF_FILES + INSTANCE_FILES + SYNTAX_FILES:
        path = Path(f"{prefix}.{suffix}")
        assert path.is_file() and path.stat().st_size > 0, suffix
    assert sorted(readout.files.values()) == sorted(f"{prefix}.{s}" for s in MOTIF_FILES + INSTANCE_FILES
                                                    + SYNTAX_FILES)
    assert not list(Path(prefix).parent.glob(".*.tmp"))  # no temporary file left behind


def test_motif_table(readout):
    table = pd.read_csv(readout.files["motifs_tsv"], sep="\t")
    assert list(table["filter"]) == [0, 1, 2]
    assert list(table["used"]) == [True, True, False]
    assert list(table["passes"]) == [True, True, False]
    used = table[table["passes"]].set_index("filter")
    assert list(used["match_id"]) == ["MA0139.2", "MA0139.2"]
    assert list(used["match_name"]) == ["CTCF", "CTCF"]
    assert (used["q_value"] < 0.05).all() and (used["p_value"] <= used["q_value"]).all()
    # filter 1 holds the reverse complement, so TOMTOM aligns it on the other strand
    assert list(used["match_strand"]) == ["+", "-"]
    assert list(used["trim_start"]) == [0, 0] and list(used["trim_end"]) == [15, 15]
    assert pd.isna(table.loc[2, "match_id"])
    pd.testing.assert_frame_equal(table, readout.motifs.reset_index(drop=True), check_dtype=False)


def test_meme_reloads_as_trimmed_pfms(readout, consensus):
    from memelite.io import read_meme

    motifs = read_meme(readout.files["motifs_meme"])
    assert sorted(motifs) == ["filter_0", "filter_1"]
    for name, codes in zip(("filter_0", "filter_1"), consensus):
        np.testing.assert_allclose(motifs[name], np.eye(4)[:, codes], atol=1e-4)
    # The same file is what read_motif_database (the package's checked reader) accepts.
    assert sorted(read_motif_database(readout.files["motifs_meme"])) == ["filter_0", "filter_1"]


def test_instances_recover_planted_sites(readout, planted):
    X, sites, _ = planted
    calls = pd.read_csv(readout.files["instances_tsv"], sep="\t")
    assert list(calls.columns[:3]) == ["example_idx", "start", "end"]
    got = {(r.example_idx, r.start, r.end): (r.strand, r.motif) for r in calls.itertuples()}
    want = {(r.example_idx, r.start, r.end): (r.strand, expected_name(r.strand))
            for r in sites.itertuples()}
    assert got == want
    assert len(calls) == len(sites)
    assert (calls["attention"] > 0.9).all() and np.allclose(calls["activation"], 8.0)
    assert set(calls["filter"]) == {0, 1}
    # independent precision / recall: every call is a planted site and every site is called
    precision = np.mean([k in want for k in got])
    recall = np.mean([k in got for k in want])
    assert precision == recall == 1.0
    scores = score_instances(calls, sites)
    assert (scores.precision, scores.recall, scores.n_calls, scores.n_true) == (1.0, 1.0, len(sites), len(sites))


def test_bed_has_genomic_coordinates(readout, planted):
    _, sites, coords = planted
    bed = pd.read_csv(readout.files["instances_bed"], sep="\t", header=None,
                      names=["chrom", "start", "end", "name", "score", "strand"])
    window = coords.iloc[sites["example_idx"].to_numpy()].reset_index(drop=True)
    want = sorted(zip(window["chrom"], window["start"] + sites["start"], window["start"] + sites["end"],
                      [expected_name(s) for s in sites["strand"]], sites["strand"]))
    got = sorted(zip(bed["chrom"], bed["start"], bed["end"], bed["name"], bed["strand"]))
    assert got == want
    assert bed["score"].between(900, 1000).all()
    calls = pd.read_csv(readout.files["instances_tsv"], sep="\t")
    assert (calls["chrom_end"] - calls["chrom_start"] == calls["end"] - calls["start"]).all()


def test_syntax_matches_planted_configurations(readout, planted, oracle):
    X, sites, _ = planted
    configs = {i: "|".join(expected_name(s) for s in g.sort_values("start")["strand"])
               for i, g in sites.groupby("example_idx")}
    effects = pd.read_csv(readout.files["syntax_tsv"], sep="\t", keep_default_na=False)
    assert dict(zip(effects["configuration"], effects["count"])) == dict(Counter(configs.values()))
    assert effects["count"].sum() == N_SEQ
    assert (effects["n_positive"] == effects["count"]).all()
    # mean logit per configuration, from the model's own output grouped by the planted configuration
    with torch.no_grad():
        logits = oracle(X)[:, 0].double().numpy()
    by_config = pd.Series(logits).groupby(pd.Series([configs[i] for i in range(N_SEQ)])).mean()
    for row in effects.itertuples():
        assert row.mean_logit == pytest.approx(by_config[row.configuration], abs=1e-5)
    # spacings between consecutive planted sites: start of the right one minus end of the left one
    want = Counter()
    for _, g in sites.groupby("example_idx"):
        g = g.sort_values("start").reset_index(drop=True)
        for a in range(len(g) - 1):
            left, right = g.iloc[a], g.iloc[a + 1]
            gap = int(right["start"] - left["end"])
            want[(expected_name(left["strand"]), expected_name(right["strand"]), gap)] += 1
    spacings = pd.read_csv(readout.files["spacings_tsv"], sep="\t")
    assert dict(zip(zip(spacings["motif_a"], spacings["motif_b"], spacings["spacing"]), spacings["count"])) == want


def test_figures_are_png(readout):
    from PIL import Image

    for key in ("logos_png", "tracks_png", "spacings_png"):
        path = readout.files[key]
        assert Path(path).read_bytes()[:8] == PNG_MAGIC, key
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 50 and image.size[1] > 50


def test_modisco_h5_holds_the_calls(readout, planted, consensus):
    import h5py

    from argminn_plugin.modisco import read_modisco_h5

    X, sites, _ = planted
    motifs = read_modisco_h5(readout.files["modisco_h5"])
    assert sorted(motifs) == ["filter_0", "filter_1"]
    n_per_filter = Counter(0 if s == "+" else 1 for s in sites["strand"])
    with h5py.File(readout.files["modisco_h5"], "r") as handle:
        for pattern in handle["pos_patterns"].values():
            f = int(pattern.attrs["name"].split("_")[1])
            seqlets = pattern["seqlets"]
            assert int(seqlets["n_seqlets"][0]) == n_per_filter[f]
            # each seqlet is a planted window read on the filter's own strand
            expected = np.broadcast_to(np.eye(4)[consensus[f]][None], (n_per_filter[f], len(consensus[f]), 4))
            np.testing.assert_allclose(seqlets["sequence"][:], expected)
            np.testing.assert_allclose(motifs[f"filter_{f}"], np.eye(4)[:, consensus[f]], atol=1e-6)


def _modisco_executable() -> str | None:
    candidate = Path(sys.executable).parent / "modisco"
    return str(candidate) if candidate.exists() else shutil.which("modisco")


@pytest.mark.cmd
def test_modisco_report_renders(readout, tmp_path):
    exe = _modisco_executable()
    if exe is None:
        pytest.skip("the modisco console script is not installed")
    out = tmp_path / "report"
    proc = subprocess.run(
        [exe, "report", "-l", "-i", readout.files["modisco_h5"], "-o", str(out), "-s", "./", "-m", str(JASPAR_2024),
         "-n", "1", "--n_examples", "2"],
        capture_output=True, text=True, env=dict(os.environ, MPLBACKEND="Agg"), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (out / "report.html").read_text()
    assert "pos_patterns.pattern_0" in html and "pos_patterns.pattern_1" in html
    assert "MA0139.2 CTCF" in html
    assert any((out / "logos").rglob("*.png"))


def test_score_against_truth(readout, planted, jaspar):
    _, sites, coords = planted
    window = coords.iloc[sites["example_idx"].to_numpy()].reset_index(drop=True)
    truth = pd.DataFrame({"chrom": window["chrom"], "start": window["start"] + sites["start"],
                          "end": window["start"] + sites["end"], "motif": "CTCF"})
    scores = score_against_truth(readout, truth, {"CTCF": jaspar[CTCF]})
    assert scores["recovered"] == ["CTCF"] and scores["missed"] == []
    assert scores["unmatched_filters"] == []
    assert scores["filters_per_planted_motif"] == {"CTCF": [0, 1]}
    # filter 1 is filter 0's reverse complement: one motif on both strands, not a redundant copy
    assert scores["match_strands"] == {"filter_0~CTCF": "+", "filter_1~CTCF": "-"}
    assert scores["n_redundant"] == 0 and scores["n_passing_filters"] == 2
    assert scores["instance_precision"] == 1.0 and scores["instance_recall"] == 1.0
    assert scores["n_calls"] == scores["n_true_instances"] == len(sites)
    assert all(q < 0.05 for q in scores["best_q"].values())
    json.dumps(scores, allow_nan=False)  # what the pipeline writes must be strict JSON

    # Failing cases: a motif that was not planted, and truth that the calls miss.
    wrong = score_against_truth(readout, truth.assign(start=truth["start"] + 500, end=truth["end"] + 500),
                                {"GATA1": jaspar[GATA1]})
    assert wrong["recovered"] == [] and wrong["missed"] == ["GATA1"]
    assert wrong["unmatched_filters"] == [0, 1]
    assert wrong["instance_precision"] == 0.0 and wrong["instance_recall"] == 0.0
    # restricted to windows holding no truth, nothing is left to recall
    none = score_against_truth(readout, truth, {"CTCF": jaspar[CTCF]},
                               windows=pd.DataFrame({"chrom": ["chrX"], "start": [0], "end": [10]}))
    assert none["n_true_instances"] == 0 and none["instance_precision"] == 0.0
    assert none["instance_recall"] is None  # undefined, and JSON-safe
    json.dumps(none, allow_nan=False)


# --------------------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------------------


def test_steps_motifs_only(oracle, planted, consensus, tmp_path):
    X, sites, coords = planted
    # only sequences whose sites are all on the minus strand: filter 0 (the forward consensus) is still
    # used, because PFMs are read from both strands of the sequences (spec 7.1)
    minus = [i for i, g in sites.groupby("example_idx") if (g["strand"] == "-").all()]
    assert len(minus) >= 2
    result = run_readout(oracle, X[minus], tmp_path / "m", coords=coords.iloc[minus], steps=("motifs",))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"m.{s}" for s in MOTIF_FILES)
    assert set(result.files) == {"motifs_tsv", "motifs_meme", "logos_png"}
    assert result.instances.empty and result.configurations.empty
    assert list(result.motifs["passes"]) == [True, True, False]
    assert list(result.motifs["match_strand"].iloc[:2]) == ["+", "-"]
    from memelite.io import read_meme

    motifs = read_meme(result.files["motifs_meme"])
    for name, codes in zip(("filter_0", "filter_1"), consensus):
        np.testing.assert_allclose(motifs[name], np.eye(4)[:, codes], atol=1e-4)


def test_steps_instances_without_coords(oracle, planted, tmp_path):
    X, sites, _ = planted
    result = run_readout(oracle, X, tmp_path / "i", steps=("motifs", "instances"), figures=False, modisco=False)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["i.instances.tsv", "i.motifs.meme", "i.motifs.tsv"]  # no BED without loci
    assert "chrom" not in result.instances.columns
    assert len(result.instances) == len(sites)


@pytest.mark.parametrize("steps", [("motifs", "instance"), ("all",), ("motifs", "syntax", "spacings")])
def test_bad_steps(oracle, planted, tmp_path, steps):
    X, _, _ = planted
    with pytest.raises(ValueError, match="steps") as err:
        run_readout(oracle, X[:2], tmp_path / "bad", steps=steps)
    bad = sorted(set(steps) - {"motifs", "instances", "syntax"})
    assert all(repr(b) in str(err.value) for b in bad)
    assert not any(tmp_path.iterdir())  # nothing written before the check


def test_steps_as_single_string(oracle, planted, tmp_path):
    X, _, _ = planted
    result = run_readout(oracle, X[:4], tmp_path / "s", steps="motifs", figures=False)
    assert set(result.files) == {"motifs_tsv", "motifs_meme"}


# --------------------------------------------------------------------------------------------------
# CLI: argminn motifs | instances | syntax
# --------------------------------------------------------------------------------------------------


def write_json(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def write_fasta(path: Path, X: torch.Tensor) -> Path:
    codes = X.numpy().argmax(axis=1)
    with open(path, "w") as handle:
        for i, row in enumerate(codes):
            handle.write(f">seq{i}\n{''.join('ACGT'[c] for c in row)}\n")
    return path


@pytest.fixture(scope="module")
def saved_models(oracle, tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"pt": save_model(oracle, root / "oracle.pt"), "torch": save_bpnet_compatible(oracle, root / "oracle.torch")}


@pytest.fixture(scope="module")
def genome(consensus, tmp_path_factory):
    """A toy genome from the simulator with exact CTCF consensus sites (a one-hot PFM samples only it)."""
    from argminn_plugin.simulate import simulate_genome

    fwd, _ = consensus
    grammar = {"name": "oracle", "motifs": {"CTCF": "consensus"},
               "positive": [["CTCF"], ["CTCF", {"min": 20, "max": 30}, "CTCF"]], "negative": []}
    return simulate_genome(tmp_path_factory.mktemp("genome"), grammar, 16, 4, length=LENGTH, n_chroms=2,
                           flank=50, motifs={"consensus": np.eye(4)[:, fwd]}, center_jitter=10, random_state=3,
                           prefix="toy")


def test_cli_motifs_from_fasta_and_pt(saved_models, planted, tmp_path):
    X, _, _ = planted
    params = {"model": str(saved_models["pt"]), "sequences": str(write_fasta(tmp_path / "pos.fa", X)),
              "name": str(tmp_path / "out" / "cli")}
    assert main(["motifs", "-p", write_json(tmp_path / "p.json", params)]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"cli.{s}" for s in MOTIF_FILES)
    table = pd.read_csv(tmp_path / "out" / "cli.motifs.tsv", sep="\t")
    assert list(table["passes"]) == [True, True, False] and list(table["match_id"].iloc[:2]) == ["MA0139.2"] * 2


def test_cli_instances_from_loci_and_torch(saved_models, genome, tmp_path):
    params = {"model": str(saved_models["torch"]), "sequences": str(genome["fasta"]), "loci": str(genome["peaks"]),
              "in_window": LENGTH, "name": str(tmp_path / "cli")}
    assert main(["instances", "-p", write_json(tmp_path / "p.json", params)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cli."))
    assert written == sorted(f"cli.{s}" for s in MOTIF_FILES + INSTANCE_FILES)
    truth = pd.read_csv(genome["instances"], sep="\t")
    truth = truth[truth["label"] == 1]
    bed = pd.read_csv(tmp_path / "cli.instances.bed", sep="\t", header=None,
                      names=["chrom", "start", "end", "name", "score", "strand"])
    assert sorted(zip(bed["chrom"], bed["start"], bed["end"], bed["strand"])) == sorted(
        zip(truth["chrom"], truth["start"], truth["end"], truth["strand"]))
    assert set(bed["name"]) <= {"filter_0:CTCF", "filter_1:CTCF"}


def test_cli_syntax_without_figures(saved_models, planted, tmp_path):
    X, sites, _ = planted
    params = {"model": str(saved_models["pt"]), "sequences": str(write_fasta(tmp_path / "pos.fa", X)),
              "name": str(tmp_path / "cli"), "figures": False, "modisco": False}
    assert main(["syntax", "-p", write_json(tmp_path / "p.json", params)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cli."))
    assert written == ["cli.instances.tsv", "cli.motifs.meme", "cli.motifs.tsv", "cli.spacings.tsv", "cli.syntax.tsv"]
    effects = pd.read_csv(tmp_path / "cli.syntax.tsv", sep="\t", keep_default_na=False)
    n_sites = Counter(sites.groupby("example_idx").size())
    by_size = Counter()
    for config, count in zip(effects["configuration"], effects["count"]):
        by_size[len(config.split("|"))] += count
    assert by_size == n_sites


def test_cli_errors(saved_models, planted, tmp_path, capsys):
    X, _, _ = planted
    fasta = str(write_fasta(tmp_path / "pos.fa", X[:3]))
    # missing model key
    path = write_json(tmp_path / "missing.json", {"sequences": fasta, "name": str(tmp_path / "x")})
    assert main(["motifs", "-p", path]) == 2
    err = capsys.readouterr().err
    assert "argminn motifs: error" in err and "model" in err
    # a .torch file holding a module that is not ARGMINN
    other = save_bpnet_compatible(torch.nn.Sequential(torch.nn.Conv1d(4, 2, 3)), tmp_path / "other.torch")
    path = write_json(tmp_path / "other.json", {"model": str(other), "sequences": fasta, "name": str(tmp_path / "x")})
    assert main(["instances", "-p", path]) == 2
    err = capsys.readouterr().err
    assert "Sequential" in err and "ARGMINN" in err and str(other) in err
    # a .torch file holding no module at all
    torch.save({"weights": torch.ones(3)}, tmp_path / "dict.torch")
    path = write_json(tmp_path / "dict.json", {"model": str(tmp_path / "dict.torch"), "sequences": fasta,
                                               "name": str(tmp_path / "x")})
    assert main(["syntax", "-p", path]) == 2
    assert "dict.torch" in capsys.readouterr().err
    # a missing sequences file is an error naming it, not a traceback
    path = write_json(tmp_path / "noseq.json", {"model": str(saved_models["pt"]), "sequences": str(tmp_path / "no.fa"),
                                                "name": str(tmp_path / "x")})
    assert main(["motifs", "-p", path]) == 2
    assert "no.fa" in capsys.readouterr().err
    assert not list(tmp_path.glob("x.*"))


# --------------------------------------------------------------------------------------------------
# argminn pipeline with a simulate block
# --------------------------------------------------------------------------------------------------


TRUTH_KEYS = {"planted_motifs", "recovered", "missed", "filters_per_planted_motif", "n_redundant",
              "n_passing_filters", "unmatched_filters", "best_q", "instance_precision", "instance_recall",
              "n_calls", "n_true_instances", "match_strands"}


def _strict(constant):
    raise ValueError(f"{constant} is not valid JSON")


def test_pipeline_writes_truth_comparison(tmp_path):
    from argminn_plugin.pipeline import run_pipeline

    params = {"name": "run", "output_dir": str(tmp_path),
              "simulate": {"grammar": "single", "n_positives": 20, "n_negatives": 20, "length": 60,
                           "center_jitter": 5},
              "n_filters": 2, "filter_width": 8, "n_attention_layers": 1, "n_heads": 1, "token_dim": 4,
              "stream_dim": 4, "pos_enc_dim": 2, "max_epochs": 1, "batch_size": 16, "device": "cpu",
              "progress": False}
    outputs = run_pipeline(params)
    path = tmp_path / "run.truth_comparison.json"
    scores = json.loads(path.read_text(), parse_constant=_strict)
    assert set(scores) == TRUTH_KEYS
    assert scores["planted_motifs"] == ["SPI1"]
    assert sorted(scores["recovered"] + scores["missed"]) == ["SPI1"]
    assert outputs["truth_comparison"] == scores
    json.loads((tmp_path / "run.pipeline.json").read_text(), parse_constant=_strict)
    # the read-out ran on the held-out (chr5) positives: their truth and the written calls
    truth = pd.read_csv(tmp_path / "simulated.instances.tsv", sep="\t")
    assert outputs["readout_split"] == "test"
    assert scores["n_true_instances"] == int(((truth["chrom"] == "chr5") & (truth["label"] == 1)).sum())
    calls = pd.read_csv(tmp_path / "run.instances.tsv", sep="\t")
    assert scores["n_calls"] == len(calls)
    for key in ("motifs_tsv", "motifs_meme", "instances_tsv", "syntax_tsv"):
        assert Path(outputs["readout"][key]).is_file()


def test_pipeline_rejects_prefix_equal_to_name(tmp_path):
    from argminn_plugin.pipeline import run_pipeline

    params = {"name": "same", "output_dir": str(tmp_path), "simulate": {"prefix": "same", "n_positives": 5,
                                                                       "n_negatives": 5, "length": 60}}
    with pytest.raises(ValueError) as err:
        run_pipeline(params)
    assert "simulate.prefix" in str(err.value) and "name" in str(err.value) and "'same'" in str(err.value)
    assert not list(tmp_path.glob("same.*"))  # nothing simulated, nothing overwritten
