"""Tests for argminn_plugin.simulate.

Checks are independent of the implementation where possible: PFMs are re-read
from the JASPAR file with memelite, planted bases are re-read from X and
compared with the PFMs statistically, background windows are rescored with a
brute-force loop, and genome files are read back with pyfaidx and tangermeme.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyfaidx
import pytest
import torch
from memelite.io import read_meme
from tangermeme.io import extract_loci
from tangermeme.utils import one_hot_encode

from argminn_plugin import simulate as sim
from argminn_plugin.simulate import (
    GRAMMARS,
    Grammar,
    load_grammar,
    resolve_motifs,
    reverse_complement,
    simulate_genome,
    simulate_sequences,
)

JASPAR = Path(sim.__file__).parent / "resources" / "JASPAR2024_CORE_vertebrates_nonredundant.meme"
CE2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "genomes" / "ce2_chrX.fa.gz"
REQUIRED = ["single", "mixture", "cooperative", "fixed_spacing", "and_half_sites", "repression", "gata_density"]


# ---------------------------------------------------------------------------
# Independent helpers
# ---------------------------------------------------------------------------


def _jaspar(motif_id: str) -> np.ndarray:
    hits = [pfm for name, pfm in read_meme(str(JASPAR)).items() if name.split()[0] == motif_id]
    assert len(hits) == 1
    return hits[0] / hits[0].sum(axis=0)


def _codes(X: torch.Tensor) -> np.ndarray:
    return X.numpy().argmax(axis=1)


def _rc_codes(codes: np.ndarray) -> np.ndarray:
    return 3 - codes[..., ::-1]


def _read_instance(codes: np.ndarray, row) -> np.ndarray:
    """The planted bases on the recorded strand, in motif orientation."""
    bases = codes[row.example_idx, row.start : row.end]
    return bases if row.strand == "+" else _rc_codes(bases)


def _brute_max_mean_prob(codes: np.ndarray, pfm: np.ndarray, allowed: np.ndarray) -> float:
    """Largest mean PFM probability over windows fully inside `allowed`, both strands."""
    w = pfm.shape[1]
    best = 0.0
    cols = np.arange(w)
    for mat in (pfm, pfm[::-1, ::-1]):
        for i in range(codes.shape[1] - w + 1):
            ok = allowed[:, i : i + w].all(axis=1)
            if not ok.any():
                continue
            score = mat[codes[ok, i : i + w], cols].mean(axis=1)
            best = max(best, float(score.max()))
    return best


def _background_mask(result) -> np.ndarray:
    allowed = np.ones((result.X.shape[0], result.X.shape[2]), dtype=bool)
    for row in result.instances.itertuples():
        allowed[row.example_idx, row.start : row.end] = False
    return allowed


def _per_example(result) -> dict[int, pd.DataFrame]:
    inst = result.instances.sort_values(["example_idx", "start"])
    return {int(i): g for i, g in inst.groupby("example_idx")}


def _motif_sets(result, label: int) -> list[list[str]]:
    groups = _per_example(result)
    idx = np.nonzero(result.y.numpy() == label)[0]
    return [list(groups[i].motif) if i in groups else [] for i in idx]


def _write_fasta(path: Path, records: dict[str, str], width: int = 50) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt") as handle:
        for name, seq in records.items():
            handle.write(f">{name} some description\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i : i + width] + "\n")


@pytest.fixture(scope="module")
def tiny_genome() -> dict[str, str]:
    rng = np.random.default_rng(123)
    seqs = {}
    for name, n in (("chrA", 3000), ("chrB", 2000), ("chrTiny", 50)):
        s = "".join(np.array(list("ACGT"))[rng.integers(0, 4, n)])
        seqs[name] = s
    # Soft-masked stretch and N stretches that windows must skip.
    a = seqs["chrA"]
    seqs["chrA"] = a[:500] + a[500:900].lower() + "N" * 300 + a[1200:]
    b = seqs["chrB"]
    seqs["chrB"] = b[:1000] + "N" * 10 + b[1010:]
    return seqs


# ---------------------------------------------------------------------------
# Grammars and motifs
# ---------------------------------------------------------------------------


def test_builtin_grammars_use_the_spec_ids():
    expected = {
        "single": {"SPI1": "MA0080.7"},
        "mixture": {"TAL1": "MA0091.2", "GATA1": "MA0035.5"},
        "cooperative": {"E2F6": "MA0471.3", "MAX": "MA0058.4"},
        "fixed_spacing": {"JUND": "MA0491.3", "TEAD1": "MA0090.4"},
        "repression": {"SPI1": "MA0080.7", "CTCF": "MA0139.2"},
        "gata_density": {"GATA1": "MA0035.5"},
    }
    for name in REQUIRED:
        assert name in GRAMMARS
    for name, ids in expected.items():
        _, sources = resolve_motifs(name)
        assert {k: v["id"] for k, v in sources.items()} == ids
        assert set(GRAMMARS[name].motif_keys) == set(ids)


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_resolved_pfms_equal_jaspar(name):
    pfms, sources = resolve_motifs(name)
    for key, pfm in pfms.items():
        src = sources[key]
        full = _jaspar(src["id"])
        assert src["name"].split()[0] == src["id"]
        np.testing.assert_allclose(pfm, full[:, src["start"] : src["end"]])
        np.testing.assert_allclose(pfm.sum(axis=0), 1.0)


def test_rest_split_around_low_information_columns():
    full = _jaspar("MA0138.3")
    pfms, sources = resolve_motifs("and_half_sites")
    left, right = sources["REST_left"], sources["REST_right"]
    gap = GRAMMARS["and_half_sites"].positive[1]
    # The halves and the canonical spacer tile the whole matrix.
    assert left["start"] == 0 and right["end"] == full.shape[1]
    assert left["end"] + gap == right["start"]
    p = (full + 1e-3) / (full + 1e-3).sum(axis=0)
    ic = (p * np.log2(p / 0.25)).sum(axis=0)
    spacer_ic = ic[left["end"] : right["start"]]
    assert gap >= 1 and np.all(spacer_ic < 0.5)
    # The spacer columns are the least informative ones in the middle half.
    middle = ic[5:15]
    assert spacer_ic.max() <= np.sort(middle)[gap - 1] + 1e-12


def test_load_grammar_round_trip(tmp_path):
    g = GRAMMARS["cooperative"]
    path = tmp_path / "g.json"
    path.write_text(json.dumps(g.to_dict()))
    g2 = load_grammar(path)
    assert g2 == g
    a = simulate_sequences(g, 20, 20, length=200, random_state=3)
    b = simulate_sequences(str(path), 20, 20, length=200, random_state=3)
    c = simulate_sequences(g.to_dict(), 20, 20, length=200, random_state=3)
    assert torch.equal(a.X, b.X) and torch.equal(a.X, c.X)
    # "configs" is accepted as in the original grammar files.
    g3 = Grammar.from_dict({"configs": ["MAX"], "motifs": {"MAX": "MA0058.4"}})
    assert g3.positive == ["MAX"] and g3.negative == []


# ---------------------------------------------------------------------------
# simulate_sequences: shapes, determinism, ground truth
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_shapes_dtypes_and_instances(name):
    r = simulate_sequences(name, 30, 25, length=300, center_jitter=20, random_state=1)
    assert r.X.shape == (55, 4, 300) and r.X.dtype == torch.int8
    assert torch.all(r.X.sum(dim=1) == 1) and torch.all((r.X == 0) | (r.X == 1))
    assert r.y.shape == (55,)
    assert r.y[:30].eq(1).all() and r.y[30:].eq(0).all()
    assert list(r.instances.columns) == ["example_idx", "start", "end", "motif", "strand"]
    assert set(r.instances.strand) <= {"+", "-"}
    assert set(r.instances.motif) <= set(r.motifs)
    widths = r.instances.motif.map({k: v.shape[1] for k, v in r.motifs.items()})
    assert (r.instances.end - r.instances.start == widths).all()
    assert (r.instances.start >= 0).all() and (r.instances.end <= 300).all()
    assert r.instances.example_idx.between(0, 54).all()
    for _, g in _per_example(r).items():
        assert (g.start.to_numpy()[1:] >= g.end.to_numpy()[:-1]).all()  # no overlaps
    assert r.background_loci is None
    for pfm in r.motifs.values():
        assert pfm.shape[0] == 4


def test_determinism():
    a = simulate_sequences("mixture", 40, 40, random_state=7)
    b = simulate_sequences("mixture", 40, 40, random_state=7)
    c = simulate_sequences("mixture", 40, 40, random_state=8)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    pd.testing.assert_frame_equal(a.instances, b.instances)
    assert not torch.equal(a.X, c.X)
    d = simulate_sequences("mixture", 40, 40, random_state=np.random.default_rng(7))
    assert torch.equal(a.X, d.X)


def test_planted_bases_follow_the_pfm():
    r = simulate_sequences("single", 800, 0, random_state=2)
    pfm = r.motifs["SPI1"]
    codes = _codes(r.X)
    windows = np.stack([_read_instance(codes, row) for row in r.instances.itertuples()])
    assert windows.shape == (800, pfm.shape[1])
    freq = np.stack([(windows == b).mean(axis=0) for b in range(4)])
    assert np.abs(freq - pfm).max() < 0.08
    # Read on the wrong strand, the planted bases do not follow the PFM.
    wrong = _rc_codes(windows)
    freq_wrong = np.stack([(wrong == b).mean(axis=0) for b in range(4)])
    assert np.abs(freq_wrong - pfm).max() > 0.3
    # No base the PFM forbids, and a log-likelihood far above background.
    cols = np.arange(pfm.shape[1])
    probs = pfm[windows, cols]
    assert np.all(probs > 0)
    llr = np.log2(probs / 0.25).sum(axis=1)
    ic = (pfm * np.log2(np.where(pfm > 0, pfm, 1) / 0.25)).sum()
    assert llr.mean() > 0.8 * ic and (llr > 0).mean() > 0.95
    # A high mean-probability match compared with random background windows.
    rand = np.random.default_rng(0).integers(0, 4, windows.shape)
    assert probs.mean() > pfm[rand, cols].mean() + 0.3
    # Both orientations are used, roughly equally.
    assert 0.4 < (r.instances.strand == "+").mean() < 0.6


def test_placement_is_centred_with_jitter():
    r = simulate_sequences("single", 500, 0, length=400, center_jitter=30, random_state=4)
    centre = (r.instances.start + r.instances.end) / 2 - 200
    assert centre.min() >= -31 and centre.max() <= 31
    assert centre.min() < -25 and centre.max() > 25
    r0 = simulate_sequences("single", 50, 0, length=400, center_jitter=0, random_state=4)
    w = r0.motifs["SPI1"].shape[1]
    assert (r0.instances.start == (400 - w) // 2).all()
    # A jitter larger than the free space is clipped to keep motifs inside.
    r1 = simulate_sequences("single", 200, 0, length=20, center_jitter=50, random_state=4)
    assert (r1.instances.start >= 0).all() and (r1.instances.end <= 20).all()


# ---------------------------------------------------------------------------
# Grammar semantics
# ---------------------------------------------------------------------------


def _gaps(g: pd.DataFrame) -> np.ndarray:
    return g.start.to_numpy()[1:] - g.end.to_numpy()[:-1]


def test_single():
    r = simulate_sequences("single", 100, 100, random_state=0)
    assert all(s == ["SPI1"] for s in _motif_sets(r, 1))
    assert all(s == [] for s in _motif_sets(r, 0))


def test_mixture():
    r = simulate_sequences("mixture", 400, 100, random_state=0)
    seen = set()
    for i, g in _per_example(r).items():
        assert r.y[i] == 1
        seen.add(tuple(g.motif))
        assert ((_gaps(g) >= 0) & (_gaps(g) <= 20)).all()
    assert seen == {("GATA1",), ("TAL1",), ("GATA1", "TAL1"), ("TAL1", "GATA1")}
    assert all(s == [] for s in _motif_sets(r, 0))


def test_cooperative():
    r = simulate_sequences("cooperative", 300, 300, random_state=0)
    groups = _per_example(r)
    orders = set()
    for i in range(300):
        g = groups[i]
        assert sorted(g.motif) == ["E2F6", "MAX"]
        assert 0 <= _gaps(g)[0] <= 20
        orders.add(tuple(g.motif))
    assert orders == {("E2F6", "MAX"), ("MAX", "E2F6")}
    neg = [tuple(s) for s in _motif_sets(r, 0)]
    assert not any(set(s) == {"E2F6", "MAX"} for s in neg)
    assert set(neg) == {(), ("E2F6",), ("MAX",)}


@pytest.mark.parametrize("name", ["fixed_spacing", "fixed_spacing_strict"])
def test_fixed_spacing(name):
    r = simulate_sequences(name, 200, 200, random_state=0)
    groups = _per_example(r)
    for i in range(200):
        g = groups[i]
        assert list(g.motif) == ["JUND", "TEAD1"]
        assert _gaps(g)[0] == 10
    neg = [groups.get(i) for i in range(200, 400)]
    if name == "fixed_spacing":
        assert all(g is None for g in neg)
    else:
        gaps = [int(_gaps(g)[0]) for g in neg]
        assert all(not 8 <= x <= 12 and 0 <= x <= 20 for x in gaps)


def test_and_half_sites_keep_the_composite_site():
    r = simulate_sequences("and_half_sites", 300, 300, random_state=0)
    groups = _per_example(r)
    full = _jaspar("MA0138.3")
    codes = _codes(r.X)
    for i in range(300):
        g = groups[i]
        assert sorted(g.motif) == ["REST_left", "REST_right"]
        assert _gaps(g)[0] == 2
        strands = set(g.strand)
        assert len(strands) == 1
        assert list(g.motif) == (["REST_left", "REST_right"] if strands == {"+"} else ["REST_right", "REST_left"])
        # The 20-bp span on that strand reads as a full REST site.
        span = codes[i, g.start.min() : g.end.max()]
        if strands == {"-"}:
            span = _rc_codes(span)
        halves = np.r_[0:8, 10:20]
        assert np.all(full[span[halves], halves] > 0)
    assert {tuple(g.strand)[0] for i, g in groups.items() if i < 300} == {"+", "-"}
    neg = _motif_sets(r, 0)
    assert all(len(s) == 1 for s in neg) and {s[0] for s in neg} == {"REST_left", "REST_right"}


def test_repression():
    r = simulate_sequences("repression", 200, 300, random_state=0)
    assert all(s == ["SPI1"] for s in _motif_sets(r, 1))
    neg = _motif_sets(r, 0)
    assert all(s in ([], ["SPI1", "CTCF"]) for s in neg)
    assert sum(s == [] for s in neg) > 100 and sum(s == ["SPI1", "CTCF"] for s in neg) > 100


def test_gata_density():
    r = simulate_sequences("gata_density", 300, 300, random_state=0)
    pos_counts = [len(s) for s in _motif_sets(r, 1)]
    neg_counts = [len(s) for s in _motif_sets(r, 0)]
    assert set(pos_counts) == {3, 4, 5}
    assert set(neg_counts) == {0, 1}


def test_weighted_choice_soft_spacer_and_custom_motifs():
    rng = np.random.default_rng(0)
    pfm = rng.dirichlet(np.ones(4) * 0.3, size=7).T
    grammar = {
        "name": "custom",
        "motifs": {"A": "mine", "B": "MA0058.4"},
        "positive": [{"p": 0.75, "configs": ["A", {"min": 3, "max": 5}, "B"]}, {"p": 0.25, "configs": []}],
        "negative": [],
    }
    library = {"mine": pfm, "MA0058.4 MAX": _jaspar("MA0058.4")}
    r = simulate_sequences(grammar, 2000, 10, motifs=library, random_state=0)
    np.testing.assert_allclose(r.motifs["A"], pfm / pfm.sum(axis=0))
    groups = _per_example(r)
    frac = len(groups) / 2000
    assert abs(frac - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 2000)
    gaps = np.array([_gaps(g)[0] for g in groups.values()])
    assert set(gaps) == {3, 4, 5}


# ---------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------


def test_iid_background_has_no_match_outside_instances():
    r = simulate_sequences("cooperative", 150, 150, random_state=5)
    allowed = _background_mask(r)
    codes = _codes(r.X)
    for key in ("E2F6", "MAX"):
        assert _brute_max_mean_prob(codes, r.motifs[key], allowed) < 0.9
    # Without rejection, the MAX consensus shows up by chance: the check can fail.
    r0 = simulate_sequences("cooperative", 150, 150, random_state=5, reject_threshold=None)
    assert _brute_max_mean_prob(_codes(r0.X), r0.motifs["MAX"], _background_mask(r0)) >= 0.9


def test_iid_rejection_at_a_low_threshold():
    # At 0.5 nearly every random 500-bp sequence has an SPI1 match: rejection must work hard.
    r = simulate_sequences("single", 30, 30, random_state=1, reject_threshold=0.5)
    pfm = r.motifs["SPI1"]
    assert _brute_max_mean_prob(_codes(r.X), pfm, _background_mask(r)) < 0.5
    r0 = simulate_sequences("single", 30, 30, random_state=1, reject_threshold=None)
    assert _brute_max_mean_prob(_codes(r0.X), pfm, _background_mask(r0)) >= 0.5
    # Background base composition stays close to uniform.
    freq = np.bincount(_codes(r.X)[_background_mask(r)], minlength=4) / _background_mask(r).sum()
    assert np.abs(freq - 0.25).max() < 0.05


@pytest.mark.parametrize("suffix", [".fa", ".fa.gz"])
def test_genome_background_windows_are_genome_substrings(tmp_path, tiny_genome, suffix):
    path = tmp_path / f"g{suffix}"
    _write_fasta(path, tiny_genome)
    r = simulate_sequences("fixed_spacing", 40, 40, length=100, background=path, random_state=0)
    loci = r.background_loci
    assert list(loci.columns) == ["chrom", "start", "end"] and len(loci) == 80
    assert set(loci.chrom) <= {"chrA", "chrB"}  # chrTiny is shorter than the window
    allowed = _background_mask(r)
    seqs = ["".join("ACGT"[b] for b in row) for row in _codes(r.X)]
    for i, loc in enumerate(loci.itertuples()):
        genome_seq = tiny_genome[loc.chrom][loc.start : loc.end]
        assert "N" not in genome_seq and loc.end - loc.start == 100
        genome_seq = genome_seq.upper()
        assert all(seqs[i][j] == genome_seq[j] for j in np.nonzero(allowed[i])[0])
    # Negatives carry no instance, so they equal the genome window exactly.
    for i in range(40, 80):
        loc = loci.iloc[i]
        assert seqs[i] == tiny_genome[loc.chrom][loc.start : loc.end].upper()
    assert len(r.instances) == 80


@pytest.mark.skipif(not CE2.is_file(), reason="ce2 chrX genome chunk not available")
def test_genome_background_on_ce2():
    r = simulate_sequences("single", 50, 50, background=CE2, random_state=0)
    with gzip.open(CE2, "rt") as handle:
        chrx = "".join(line.strip() for line in handle if not line.startswith(">"))
    seqs = ["".join("ACGT"[b] for b in row) for row in _codes(r.X)]
    for i in range(50, 100):
        loc = r.background_loci.iloc[i]
        assert loc.chrom == "chrX"
        assert seqs[i] == chrx[loc.start : loc.end].upper()
    allowed = _background_mask(r)
    for i in range(50):
        loc = r.background_loci.iloc[i]
        ref = chrx[loc.start : loc.end].upper()
        assert all(seqs[i][j] == ref[j] for j in np.nonzero(allowed[i])[0])


def test_genome_background_errors(tmp_path, tiny_genome):
    path = tmp_path / "g.fa"
    _write_fasta(path, tiny_genome)
    with pytest.raises(ValueError, match="length"):
        simulate_sequences("single", 2, 2, length=5000, background=path)
    with pytest.raises(ValueError, match="background"):
        simulate_sequences("single", 2, 2, background=tmp_path / "missing.fa")


# ---------------------------------------------------------------------------
# simulate_genome
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def genome_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("simgenome")
    kwargs = dict(length=200, center_jitter=20, random_state=11)
    paths = simulate_genome(out, "cooperative", 23, 17, n_chroms=5, flank=150, prefix="toy", **kwargs)
    ref = simulate_sequences("cooperative", 23, 17, **kwargs)
    return out, paths, ref


def test_simulate_genome_files(genome_run):
    out, paths, ref = genome_run
    assert set(paths) == {"fasta", "fai", "peaks", "negatives", "instances", "motifs", "grammar"}
    assert all(p.is_file() for p in paths.values())
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths.values())  # no temp leftovers
    fa = pyfaidx.Fasta(str(paths["fasta"]))
    assert list(fa.keys()) == [f"chr{i}" for i in range(1, 6)]
    peaks = pd.read_csv(paths["peaks"], sep="\t", header=None)
    negs = pd.read_csv(paths["negatives"], sep="\t", header=None)
    assert peaks.shape == (23, 10) and negs.shape == (17, 3)
    assert (peaks[2] - peaks[1] == 200).all() and (peaks[9] == 100).all()
    assert (negs[2] - negs[1] == 200).all()
    # Every chromosome carries positives and negatives.
    assert set(peaks[0]) == set(fa.keys()) and set(negs[0]) == set(fa.keys())
    # Windows never touch and never reach the chromosome ends.
    windows = pd.concat([peaks[[0, 1, 2]], negs[[0, 1, 2]]]).sort_values([0, 1])
    for chrom, g in windows.groupby(0):
        assert g[1].min() >= 150 and len(fa[chrom]) - g[2].max() >= 150
        assert (g[1].to_numpy()[1:] - g[2].to_numpy()[:-1] >= 150).all()
    fa.close()


def test_simulate_genome_windows_extract_to_x(genome_run):
    _, paths, ref = genome_run
    X_pos = extract_loci(str(paths["peaks"]), str(paths["fasta"]), in_window=200, n_jobs=1)
    X_neg = extract_loci(str(paths["negatives"]), str(paths["fasta"]), in_window=200, n_jobs=1)
    assert torch.equal(X_pos, ref.X[ref.y == 1])
    assert torch.equal(X_neg, ref.X[ref.y == 0])


def test_simulate_genome_instances_map_to_planted_bases(genome_run):
    _, paths, ref = genome_run
    inst = pd.read_csv(paths["instances"], sep="\t")
    assert list(inst.columns) == [
        "chrom", "start", "end", "example_idx", "seq_start", "seq_end", "motif", "strand", "label"
    ]
    expected = ref.instances.rename(columns={"start": "seq_start", "end": "seq_end"})
    pd.testing.assert_frame_equal(
        inst[["example_idx", "seq_start", "seq_end", "motif", "strand"]].reset_index(drop=True),
        expected.reset_index(drop=True),
        check_dtype=False,
    )
    assert (inst.label == ref.y.numpy()[inst.example_idx]).all()
    fa = pyfaidx.Fasta(str(paths["fasta"]))
    for row in inst.itertuples():
        genomic = str(fa[row.chrom][row.start : row.end])
        planted = ref.X[row.example_idx, :, row.seq_start : row.seq_end]
        assert torch.equal(one_hot_encode(genomic), planted)
        if row.strand == "-":
            genomic = genomic[::-1].translate(str.maketrans("ACGT", "TGCA"))
        pfm = ref.motifs[row.motif]
        probs = pfm[["ACGT".index(c) for c in genomic], np.arange(len(genomic))]
        assert np.all(probs > 0)
    fa.close()


def test_simulate_genome_meme_and_json(genome_run):
    _, paths, ref = genome_run
    meme = read_meme(str(paths["motifs"]))
    assert set(meme) == set(ref.motifs)
    for key, pfm in ref.motifs.items():
        np.testing.assert_allclose(meme[key], pfm, atol=1e-6)
    settings = json.loads(paths["grammar"].read_text())
    assert settings["random_state"] == 11 and settings["length"] == 200
    assert {k: v["id"] for k, v in settings["motif_sources"].items()} == {"E2F6": "MA0471.3", "MAX": "MA0058.4"}
    assert load_grammar(paths["grammar"]) == GRAMMARS["cooperative"]
    fa = pyfaidx.Fasta(str(paths["fasta"]))
    assert settings["chrom_sizes"] == {k: len(fa[k]) for k in fa.keys()}
    fa.close()


def test_simulate_genome_with_genome_background(tmp_path, tiny_genome):
    path = tmp_path / "g.fa.gz"
    _write_fasta(path, tiny_genome)
    paths = simulate_genome(tmp_path / "out", "single", 6, 6, length=100, flank=40, n_chroms=3,
                            background=path, random_state=2)
    ref = simulate_sequences("single", 6, 6, length=100, background=path, random_state=2)
    X = extract_loci(str(paths["negatives"]), str(paths["fasta"]), in_window=100, n_jobs=1)
    assert torch.equal(X, ref.X[6:])


def test_simulate_genome_failure_leaves_nothing(tmp_path, monkeypatch):
    import memelite.io

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(memelite.io, "write_meme", boom)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        simulate_genome(out, "single", 5, 5, length=100, flank=10)
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------------------
# Reverse complement
# ---------------------------------------------------------------------------


def test_reverse_complement():
    seq = "AACGTTTGCAGGA"
    rc = seq[::-1].translate(str.maketrans("ACGT", "TGCA"))
    X = one_hot_encode(seq)
    assert torch.equal(reverse_complement(X), one_hot_encode(rc))
    batch = torch.stack([X, one_hot_encode(rc)])
    out = reverse_complement(batch)
    assert torch.equal(out, batch.flip(1).flip(2))
    assert torch.equal(reverse_complement(out), batch)
    assert np.array_equal(reverse_complement(batch.numpy()), out.numpy())
    with pytest.raises(ValueError, match="shape"):
        reverse_complement(torch.zeros(2, 5, 10))


# ---------------------------------------------------------------------------
# Error paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(grammar="no_such_grammar"), "no_such_grammar"),
        (dict(grammar={"positive": ["MA9999.1"]}), "MA9999.1"),
        (dict(grammar="soft_spacing", length=40), "length"),
        (dict(n_positives=-1), "n_positives"),
        (dict(n_negatives=2.5), "n_negatives"),
        (dict(n_positives=True), "n_positives"),
        (dict(length=0), "length"),
        (dict(center_jitter=-1), "center_jitter"),
        (dict(reject_threshold=1.5), "reject_threshold"),
        (dict(random_state=-3), "random_state"),
        (dict(background="nonexistent.fa"), "background"),
        (dict(motifs="nonexistent.meme"), "motifs"),
        (dict(grammar={"positive": ["MAX", ["MAX"]]}), "positive"),
        (dict(grammar={"positive": ["MAX", -2, "MAX"]}), "spacer"),
        (dict(grammar={"positive": ["MAX", {"min": 5, "max": 2}]}), "soft spacer"),
        (dict(grammar={"positive": [{"p": 0.5, "configs": ["MAX"]}, {"p": 0.2, "configs": []}]}), "sum to 1"),
        (dict(grammar={"positive": ["MAX"], "bogus": 1}), "bogus"),
        (dict(grammar={"positive": ["R"], "motifs": {"R": {"id": "MA0058.4", "start": 2, "end": 40}}}), "columns"),
        (dict(grammar={"positive": ["MAX"], "orientation": "sideways"}), "orientation"),
    ],
)
def test_errors(kwargs, match):
    args = dict(grammar="single", n_positives=3, n_negatives=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_sequences(args.pop("grammar"), args.pop("n_positives"), args.pop("n_negatives"), **args)


def test_simulate_genome_errors(tmp_path):
    with pytest.raises(ValueError, match="n_chroms"):
        simulate_genome(tmp_path, "single", 3, 3, n_chroms=0)
    with pytest.raises(ValueError, match="flank"):
        simulate_genome(tmp_path, "single", 3, 3, flank=-1)
    with pytest.raises(ValueError, match="prefix"):
        simulate_genome(tmp_path, "single", 3, 3, prefix="../x")
    with pytest.raises(ValueError, match="n_positives"):
        simulate_genome(tmp_path, "single", -1, 3)
    assert list(tmp_path.iterdir()) == []


def test_simulated_batches_are_fresh_reproducible_and_resumable():
    from argminn_plugin.simulate import SimulatedBatches

    batches = SimulatedBatches("single", n_batches=3, batch_size=8, length=120, random_state=5)
    epoch0 = [tuple(t.clone() for t in b) for b in batches]
    epoch1 = [tuple(t.clone() for t in b) for b in batches]
    assert len(epoch0) == len(batches) == 3
    X, y, labels = epoch0[0]
    assert X.shape == (8, 4, 120) and X.dtype == torch.int8 and y.shape == (8, 1)
    assert torch.equal(labels, y[:, 0].long())
    assert sum(int(b[2].sum()) for b in epoch0) == 12  # half of the 24 sequences are positives
    assert not torch.equal(epoch0[0][0], epoch1[0][0])  # a new epoch is new data
    again = SimulatedBatches("single", n_batches=3, batch_size=8, length=120, random_state=5)
    again.set_epoch(1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(next(iter([list(again)])), epoch1))
    with pytest.raises(ValueError, match="n_batches"):
        SimulatedBatches("single", n_batches=0)
