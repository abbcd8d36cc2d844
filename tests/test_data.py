"""Tests for argminn_plugin.data: readers, one-hot encoding, binary data sets and loaders.

Every expected value is computed independently in the test (string slicing of the FASTA text,
numpy arrays written into the bigWigs, dinucleotide counts), never taken from the code under test.
"""

from __future__ import annotations

import gzip
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyBigWig
import pytest
import torch

from argminn_plugin.data import (
    BinaryData,
    binary_dataloader,
    ensure_plain_fasta,
    load_binary_fasta,
    load_binary_loci,
    load_binary_splits,
    load_profile_data,
    one_hot_sequences,
    profile_dataloader,
    read_fasta,
    read_sequence_table,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared beside the checkout
CE2 = SHARED / "genomes" / "ce2_chrX.fa.gz"
GATA3_TEST = SHARED / "chipseq" / "deepbind_gata3" / "GATA3_SH-SY5Y_USC_test_B.seq.gz"
OCT4_TEST = SHARED / "chipseq" / "oct4_mafk" / "sample_test.fa"

COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


# ----------------------------------------------------------------------------------------------
# Independent helpers
# ----------------------------------------------------------------------------------------------


def decode(X: torch.Tensor) -> list[str]:
    """(N, 4, L) one-hot -> strings, all-zero columns as N (written here, not in the package)."""
    X = X.numpy()
    letters = np.array(list("ACGT"))[X.argmax(axis=1)]
    letters[X.sum(axis=1) == 0] = "N"
    return ["".join(row) for row in letters]


def as_acgtn(seq: str) -> str:
    """Upper-case and map anything but ACGT to N."""
    return re.sub("[^ACGT]", "N", seq.upper())


def dinucleotide_counts(seq: str) -> Counter:
    return Counter(seq[i : i + 2] for i in range(len(seq) - 1))


def write_fasta(path: Path, records: dict[str, str], width: int = 60) -> Path:
    with open(path, "w") as handle:
        for name, seq in records.items():
            handle.write(f">{name} some description\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i : i + width] + "\n")
    return path


def write_bed(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w") as handle:
        for row in rows:
            handle.write("\t".join(str(v) for v in row) + "\n")
    return path


def narrowpeak_row(chrom: str, start: int, end: int, summit: int) -> tuple:
    return (chrom, start, end, ".", 0, ".", 5.0, 3.0, 2.0, summit)


def interval_overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


# ----------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------

PEAKS = {  # chrom -> (start, end, summit offset or -1)
    "chr1": [(1000, 1400, 50), (3000, 3400, 150), (5000, 5400, 200), (7000, 7400, 350), (9000, 9400, -1),
             (2100, 2500, 200)],  # the last one lies in the soft-masked stretch
    "chr2": [(1000, 1400, 100), (2500, 2900, 300), (7000, 7400, 200)],
    "chr3": [(1500, 1900, 10), (3500, 3900, 390)],
}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three random chromosomes with a soft-masked stretch, an N block and an IUPAC code."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(7)
    seqs = {name: "".join(rng.choice(list("ACGT"), size)) for name, size in
            (("chr1", 12000), ("chr2", 9000), ("chr3", 6000))}
    seqs["chr1"] = seqs["chr1"][:2000] + seqs["chr1"][2000:2600].lower() + seqs["chr1"][2600:]
    seqs["chr2"] = seqs["chr2"][:4000] + "N" * 2000 + seqs["chr2"][6000:]
    seqs["chr3"] = seqs["chr3"][:5000] + "R" + seqs["chr3"][5001:]
    fasta = write_fasta(root / "genome.fa", seqs)
    with open(fasta, "rb") as src, gzip.open(root / "genome.fa.gz", "wb") as dst:
        dst.write(src.read())

    rows = [(c, s, e, summit) for c, peaks in PEAKS.items() for s, e, summit in peaks]
    narrow = write_bed(root / "peaks.narrowPeak", [narrowpeak_row(*row) for row in rows])
    bed = write_bed(root / "peaks.bed", [row[:3] for row in rows])

    # Stranded bigWigs: a spike of known height on each strand near each peak midpoint, controls = 1.
    plus = {c: np.zeros(len(s)) for c, s in seqs.items()}
    minus = {c: np.zeros(len(s)) for c, s in seqs.items()}
    for k, (c, s, e, _) in enumerate(rows):
        mid = s + (e - s) // 2
        plus[c][mid - 3] = 10 + k
        minus[c][mid + 3] = 20 + k
    tracks = {}
    constant = {c: np.ones(len(s)) for c, s in seqs.items()}
    chrom_id = {c: np.full(len(s), float(k + 1)) for k, (c, s) in enumerate(seqs.items())}  # chr1 -> 1, ...
    for name, values in (("plus", plus), ("minus", minus), ("control", constant), ("chrom_id", chrom_id)):
        path = root / f"{name}.bw"
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader([(c, len(s)) for c, s in seqs.items()])
        for c in seqs:
            bw.addEntries(c, 0, values=values[c].tolist(), span=1, step=1)
        bw.close()
        tracks[name] = path
    return {"root": root, "seqs": seqs, "fasta": fasta, "fasta_gz": root / "genome.fa.gz", "narrow": narrow,
            "bed": bed, "rows": rows, "plus": plus, "minus": minus, "tracks": tracks}


@pytest.fixture(scope="module")
def ce2(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A four-chromosome FASTA cut from the real C. elegans chrX, with peaks on three of them."""
    if not CE2.exists():
        pytest.skip(f"{CE2} is not available")
    root = tmp_path_factory.mktemp("ce2")
    with gzip.open(CE2, "rt") as handle:
        chrx = "".join(line.strip() for line in handle if not line.startswith(">"))
    seqs = {
        "chrA": chrx[1_000_000:1_040_000],
        "chrB": chrx[2_000_000:2_030_000].lower(),  # soft-masked throughout
        "chrC": chrx[3_000_000:3_025_000],
        "chrD": chrx[4_000_000:4_010_000],
    }
    fasta = write_fasta(root / "ce2_slices.fa", seqs, width=50)
    rng = np.random.default_rng(3)
    rows = []
    for chrom in ("chrA", "chrB", "chrC"):
        for start in rng.choice(np.arange(1000, len(seqs[chrom]) - 2000, 700), size=8, replace=False):
            rows.append(narrowpeak_row(chrom, int(start), int(start) + 300, int(rng.integers(0, 300))))
    narrow = write_bed(root / "peaks.narrowPeak", rows)
    return {"seqs": seqs, "fasta": fasta, "narrow": narrow, "rows": rows, "chrx": chrx}


# ----------------------------------------------------------------------------------------------
# read_fasta
# ----------------------------------------------------------------------------------------------


def test_read_fasta_plain_and_gzip(tmp_path: Path) -> None:
    text = ">a first\nACGT\nacgn\n\n>b\nNNNN\nTTTT\n>c\nG\n"
    plain = tmp_path / "x.fa"
    plain.write_text(text)
    packed = tmp_path / "x.fa.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(text)
    expected = [("a", "ACGTacgn"), ("b", "NNNNTTTT"), ("c", "G")]
    assert read_fasta(plain) == expected
    assert read_fasta(packed) == expected


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("", r"contains no FASTA records"),
        ("\n\n", r"contains no FASTA records"),
        ("ACGT\n>a\nACGT\n", r"line 1 of .* before any '>' header"),
        (">a\nACGT\n>b\n>c\nAC\n", r"record 'b' \(header at line 3 of .*\) has no sequence"),
        (">a\nACGT\n>b\nCC\n>a\nGG\n", r"duplicate record name 'a' at line 5 .*first seen at line 1"),
        (">a\nACGT\nACRT\n", r"invalid character 'R' at line 3, column 3 of .* \(record 'a'\).*iupac='N'"),
        (">a\nAC-T\n", r"invalid character '-' at line 2, column 3.*Only A, C, G, T and N"),
        (">\nACGT\n", r"header without a name at line 1"),
    ],
)
def test_read_fasta_errors(tmp_path: Path, content: str, pattern: str) -> None:
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(ValueError, match=pattern) as info:
        read_fasta(path)
    assert str(path) in str(info.value)


def test_read_fasta_iupac_as_n(tmp_path: Path) -> None:
    path = tmp_path / "iupac.fa"
    path.write_text(">a\nACRTy\n")
    assert read_fasta(path, iupac="N") == [("a", "ACNTn")]
    path.write_text(">a\nACR-T\n")
    with pytest.raises(ValueError, match="'-'"):  # only IUPAC codes become N
        read_fasta(path, iupac="N")
    with pytest.raises(ValueError, match="iupac"):
        read_fasta(path, iupac="drop")


def test_read_fasta_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="path"):
        read_fasta(tmp_path / "absent.fa")


@pytest.mark.skipif(not OCT4_TEST.exists(), reason="oct4_mafk data not available")
def test_real_soft_masked_fasta() -> None:
    records = read_fasta(OCT4_TEST)
    assert len(records) == 100
    assert any(c.islower() for _, seq in records for c in seq)
    X = one_hot_sequences(records)
    assert X.shape == (100, 4, 200) and X.dtype == torch.int8
    assert bool((X.sum(dim=1) == 1).all())  # lowercase is a real base, and there is no N
    assert decode(X) == [seq.upper() for _, seq in records]


# ----------------------------------------------------------------------------------------------
# one_hot_sequences
# ----------------------------------------------------------------------------------------------


def test_one_hot_matches_independent_encoding() -> None:
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGTNacgtn"), 37)) for _ in range(9)]
    X = one_hot_sequences(seqs)
    expected = np.zeros((9, 4, 37), dtype=np.int8)
    for i, seq in enumerate(seqs):
        for j, char in enumerate(seq.upper()):
            if char in "ACGT":
                expected[i, "ACGT".index(char), j] = 1
    assert X.dtype == torch.int8
    np.testing.assert_array_equal(X.numpy(), expected)
    assert bool((X[0, :, [j for j, c in enumerate(seqs[0]) if c in "Nn"]] == 0).all())


def test_one_hot_variable_lengths_need_length() -> None:
    with pytest.raises(ValueError, match=r"record 2 \('c'\) has length 3 .* length="):
        one_hot_sequences([("a", "ACGT"), ("b", "ACGT"), ("c", "ACG")])


@pytest.mark.parametrize(
    "length, expected",
    [
        # hand-made: keep [n//2 - length//2, ... + length); pad length//2 - n//2 Ns on the left
        (3, ["CGT", "CGT", "ACN", "NGN"]),
        (5, ["ACGTN", "ACGTA", "NACNN", "NNGNN"]),
        (1, ["G", "G", "C", "G"]),
        (4, ["ACGT", "ACGT", "NACN", "NNGN"]),
    ],
)
def test_one_hot_crop_and_pad(length: int, expected: list[str]) -> None:
    X = one_hot_sequences(["ACGT", "ACGTA", "AC", "g"], length=length)
    assert X.shape == (4, 4, length)
    assert decode(X) == expected


@pytest.mark.parametrize(
    "seqs, pattern",
    [
        ("ACGT", "single string"),
        ([], "empty"),
        (["ACGT", ""], "record 1 is empty"),
        (["ACGT", "ACYT"], r"invalid character 'Y' at record 1, position 3"),
    ],
)
def test_one_hot_errors(seqs, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        one_hot_sequences(seqs)


# ----------------------------------------------------------------------------------------------
# DeepBind tables
# ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not GATA3_TEST.exists(), reason="DeepBind GATA3 data not available")
def test_read_real_deepbind_table() -> None:
    table = read_sequence_table(GATA3_TEST)
    assert len(table.sequences) == len(table.labels) == len(table.names) == 1000
    assert (table.labels == 1).sum() == 500 and (table.labels == 0).sum() == 500
    assert {len(s) for s in table.sequences} == {101}
    raw = pd.read_csv(GATA3_TEST, sep="\t")
    assert table.sequences == raw["seq"].tolist()
    np.testing.assert_array_equal(table.labels, raw["Bound"].to_numpy())


def test_sequence_table_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.seq"
    path.write_text("FoldID\tEventID\tseq\tBound\nA\tx_peak\tACGT\t1\nA\tx_shuf\tACGT\t2\n")
    with pytest.raises(ValueError, match=r"Bound must be 0 or 1, got '2' at line 3"):
        read_sequence_table(path)
    path.write_text("FoldID\tEventID\tsequence\tBound\nA\tx\tACGT\t1\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['seq'\]"):
        read_sequence_table(path)
    path.write_text("FoldID\tEventID\tseq\tBound\nA\tx\tACGT\t1\nA\ty\tAKGT\t0\n")
    with pytest.raises(ValueError, match=r"'K' at line 3, position 2 .*EventID 'y'"):
        read_sequence_table(path)


# ----------------------------------------------------------------------------------------------
# load_binary_fasta
# ----------------------------------------------------------------------------------------------


def test_shuffled_negatives_keep_dinucleotides_and_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    records = {}
    for i in range(30):
        seq = "".join(rng.choice(list("ACGT"), 60))
        if i % 5 == 0:
            seq = seq[:20] + "NN" + seq[22:]
        if i % 3 == 0:
            seq = seq.lower()
        records[f"p{i}"] = seq
    path = write_fasta(tmp_path / "pos.fa", records)
    splits = load_binary_fasta(path, n_shuffles=2, validation_fraction=0.2, test_fraction=0.2, random_state=4)
    assert set(splits) == {"train", "valid", "test"}

    split_of_group = {}
    n_total = n_shuffled = n_changed = 0
    for key, data in splits.items():
        assert isinstance(data, BinaryData)
        assert data.X.dtype == torch.int8 and data.y.dtype == torch.float32 and data.y.shape == (len(data.X), 1)
        n_total += len(data.X)
        for group in set(data.coords["group"]):
            assert group not in split_of_group, f"group {group} leaked into two splits"
            split_of_group[group] = key
        strings = decode(data.X)
        by_name = dict(zip(data.coords["name"], strings))
        for name, seq, source, label in zip(data.coords["name"], strings, data.coords["source"], data.y[:, 0]):
            if source == "shuffle":
                assert label == 0
                parent = name.rsplit("_shuf", 1)[0]
                assert parent in by_name, "a shuffle is not in its positive's split"
                assert dinucleotide_counts(seq) == dinucleotide_counts(by_name[parent])
                n_shuffled += 1
                n_changed += seq != by_name[parent]
            else:
                assert label == 1 and seq == as_acgtn(records[name])
    assert n_total == 30 * 3
    assert len(splits["test"].coords) == 3 * round(0.2 * 30)

    assert n_shuffled == 60 and n_changed > 0.9 * n_shuffled  # shuffles really shuffle
    train = splits["train"]
    again = load_binary_fasta(path, n_shuffles=2, validation_fraction=0.2, test_fraction=0.2, random_state=4)
    assert torch.equal(again["train"].X, train.X)
    pd.testing.assert_frame_equal(again["valid"].coords, splits["valid"].coords)


@pytest.mark.skipif(not GATA3_TEST.exists(), reason="DeepBind GATA3 data not available")
def test_load_binary_fasta_deepbind_pairs_stay_together() -> None:
    splits = load_binary_fasta(GATA3_TEST, validation_fraction=0.1, test_fraction=0.2, random_state=0)
    raw = pd.read_csv(GATA3_TEST, sep="\t")
    label_of = dict(zip(raw["EventID"], raw["Bound"]))
    seen = {}
    for key, data in splits.items():
        assert (data.coords["source"] != "shuffle").all()  # the table's own negatives are used
        np.testing.assert_array_equal(data.y[:, 0].numpy(), [label_of[n] for n in data.coords["name"]])
        for name in data.coords["name"]:
            number = name.rsplit("_", 1)[0]
            assert seen.setdefault(number, key) == key, f"{number} split across {seen[number]} and {key}"
    assert len(seen) == 500
    assert sum(len(d.X) for d in splits.values()) == 1000
    assert len(splits["test"].X) == 2 * 100 and len(splits["valid"].X) == 2 * 50


def test_load_binary_fasta_explicit_negatives_and_lengths(tmp_path: Path) -> None:
    pos = write_fasta(tmp_path / "pos.fa", {f"p{i}": "ACGTACGTAC"[: 6 + i % 4] for i in range(10)})
    neg = write_fasta(tmp_path / "neg.fa", {f"n{i}": "TTTTGGGGCC" for i in range(10)})
    with pytest.raises(ValueError, match="has length"):
        load_binary_fasta(pos, neg)
    splits = load_binary_fasta(pos, neg, length=8, validation_fraction=0.2, test_fraction=0.0)
    assert set(splits) == {"train", "valid"}
    X = torch.cat([d.X for d in splits.values()])
    y = torch.cat([d.y for d in splits.values()])
    assert X.shape == (20, 4, 8) and y.sum() == 10
    sources = pd.concat([d.coords for d in splits.values()])["source"]
    assert set(sources) == {"positives", "negatives"}  # no shuffles when negatives are given
    assert sorted(decode(X[y[:, 0] == 0])) == ["TTTGGGGC"] * 10


def test_load_binary_fasta_empty_split(tmp_path: Path) -> None:
    pos = write_fasta(tmp_path / "pos.fa", {f"p{i}": "ACGTAGGCTA" for i in range(3)})
    with pytest.raises(ValueError, match="'valid' split is empty"):
        load_binary_fasta(pos, validation_fraction=0.1, test_fraction=0.0)
    with pytest.raises(ValueError, match="below 1"):
        load_binary_fasta(pos, validation_fraction=0.5, test_fraction=0.5)


# ----------------------------------------------------------------------------------------------
# Genome windows: load_binary_loci / load_binary_splits
# ----------------------------------------------------------------------------------------------


def test_windows_equal_fasta_substrings(synthetic: dict) -> None:
    data = load_binary_loci(synthetic["fasta"], synthetic["bed"], in_window=200, random_state=0)
    rows = synthetic["rows"]
    n = len(rows)
    assert data.X.shape == (2 * n, 4, 200) and data.X.dtype == torch.int8
    assert data.y.dtype == torch.float32 and data.y[:n].eq(1).all() and data.y[n:].eq(0).all()
    assert list(data.coords.columns) == ["chrom", "start", "end"]
    for (chrom, start, end, _), row in zip(rows, data.coords.itertuples()):
        mid = start + (end - start) // 2
        assert (row.chrom, row.start, row.end) == (chrom, mid - 100, mid + 100)
    strings = decode(data.X)
    for seq, row in zip(strings, data.coords.itertuples()):
        assert seq == as_acgtn(synthetic["seqs"][row.chrom][row.start : row.end])
    # the window of the peak inside chr1's soft-masked stretch is fully one-hot
    lower = [r for r in data.coords.itertuples() if r.chrom == "chr1" and r.start >= 2000 and r.end <= 2600]
    assert lower and synthetic["seqs"]["chr1"][lower[0].start : lower[0].end].islower()
    for r in lower:
        assert bool((data.X[r.Index].sum(dim=0) == 1).all())


def test_summit_centring(synthetic: dict) -> None:
    data = load_binary_loci(synthetic["fasta"], synthetic["narrow"], in_window=100, n_negatives=2)
    pos = data.coords.iloc[: len(synthetic["rows"])]
    for (chrom, start, end, summit), row in zip(synthetic["rows"], pos.itertuples()):
        centre = start + summit if summit >= 0 else start + (end - start) // 2
        assert (row.chrom, row.start, row.end) == (chrom, centre - 50, centre + 50)
    midpoint = load_binary_loci(synthetic["fasta"], synthetic["narrow"], in_window=100, summits=False, n_negatives=2)
    assert (midpoint.coords["start"][: len(pos)] + 50).tolist() == [s + (e - s) // 2 for _, s, e, _ in
                                                                   synthetic["rows"]]
    for seq, row in zip(decode(data.X), data.coords.itertuples()):
        assert seq == as_acgtn(synthetic["seqs"][row.chrom][row.start : row.end])


def test_random_negatives_avoid_peaks_and_n(synthetic: dict) -> None:
    data = load_binary_loci(synthetic["fasta"], synthetic["bed"], in_window=300, n_negatives=40, random_state=5)
    negatives = data.coords[data.y[:, 0].numpy() == 0]
    assert len(negatives) == 40
    assert len(set(zip(negatives["chrom"], negatives["start"]))) == 40
    assert set(negatives["chrom"]) <= set(PEAKS)
    for row in negatives.itertuples():
        for chrom, start, end, _ in synthetic["rows"]:
            assert not (row.chrom == chrom and interval_overlaps(row.start, row.end, start, end))
        window = synthetic["seqs"][row.chrom][row.start : row.end]
        assert sum(c not in "ACGTacgt" for c in window) <= 0.1 * 300
        assert decode(data.X[row.Index : row.Index + 1])[0] == as_acgtn(window)
    # with the N block, chr2 still yields negatives but none mostly N
    zero_fraction = (data.X[data.y[:, 0] == 0].sum(dim=1) == 0).float().mean(dim=1)
    assert float(zero_fraction.max()) <= 0.1
    other = load_binary_loci(synthetic["fasta"], synthetic["bed"], in_window=300, n_negatives=40, random_state=6)
    assert not other.coords.equals(data.coords)


def test_explicit_negatives_and_chroms(synthetic: dict, tmp_path: Path) -> None:
    negs = write_bed(tmp_path / "neg.bed", [("chr1", 10500, 10700), ("chr3", 2500, 2601), ("chr2", 500, 700)])
    data = load_binary_loci(synthetic["fasta"], synthetic["bed"], negs, in_window=50, chroms=["chr1", "chr3"])
    assert set(data.coords["chrom"]) == {"chr1", "chr3"}
    negatives = data.coords[data.y[:, 0].numpy() == 0]
    assert negatives.values.tolist() == [["chr1", 10600 - 25, 10600 + 25], ["chr3", 2550 - 25, 2550 + 25]]


def test_off_chromosome_windows_are_dropped(synthetic: dict, tmp_path: Path) -> None:
    bed = write_bed(tmp_path / "edge.bed", [("chr3", 100, 200), ("chr3", 3000, 3100), ("chr3", 5900, 5990)])
    with pytest.warns(UserWarning, match="2 of 3 windows"):
        data = load_binary_loci(synthetic["fasta"], bed, in_window=400, n_negatives=1)
    assert data.coords.iloc[0].tolist() == ["chr3", 3050 - 200, 3050 + 200]
    with pytest.warns(UserWarning, match="3 of 3"), pytest.raises(ValueError, match="runs off"):
        load_binary_loci(synthetic["fasta"], bed, in_window=7000)


@pytest.mark.parametrize(
    "rows, pattern",
    [
        ([("chr1", 100, 300), ("chrZ", 10, 20)], r"chromosome 'chrZ' \(line/row 2 of .*edge.bed\) is not in the FASTA"),
        ([("chr1", "1x", 300)], r"start and end must be integers at line 1 of"),
        ([("chr1", 300, 100)], r"invalid interval \[300, 100\) at line 1"),
        ([("chr1", 300)], r"line 1 of .* has 2 column"),
        ([narrowpeak_row("chr1", 100, 200, 150)], r"summit offset 150 lies outside .* line 1"),
    ],
)
def test_bad_bed_files(synthetic: dict, tmp_path: Path, rows: list, pattern: str) -> None:
    bed = write_bed(tmp_path / "edge.bed", rows)
    with pytest.raises(ValueError, match=pattern):
        load_binary_loci(synthetic["fasta"], bed, in_window=50)


def test_bed_errors_without_records_or_fasta(synthetic: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty.bed"
    empty.write_text("track name=x\n# nothing\n")
    with pytest.raises(ValueError, match="contains no intervals"):
        load_binary_loci(synthetic["fasta"], empty)
    with pytest.raises(FileNotFoundError, match="sequences"):
        load_binary_loci(tmp_path / "none.fa", synthetic["bed"])
    with pytest.raises(ValueError, match=r"chroms: chromosome\(s\) \['chr9'\]"):
        load_binary_loci(synthetic["fasta"], synthetic["bed"], chroms=["chr1", "chr9"])


def test_split_errors(synthetic: dict) -> None:
    kwargs = dict(in_window=100, n_negatives=2)
    with pytest.raises(ValueError, match=r"training_chroms and test_chroms overlap: \['chr1'\]"):
        load_binary_splits(synthetic["fasta"], synthetic["bed"], training_chroms=["chr1", "chr2"],
                           validation_chroms=["chr3"], test_chroms=["chr1"], **kwargs)
    bed_12 = pd.DataFrame([r[:3] for r in synthetic["rows"] if r[0] != "chr3"])
    with pytest.raises(ValueError, match=r"'valid' split is empty.*validation_chroms=\['chr3'\]"):
        load_binary_splits(synthetic["fasta"], bed_12, training_chroms=["chr1"], validation_chroms=["chr3"],
                           **kwargs)
    with pytest.raises(ValueError, match="non-empty list"):
        load_binary_splits(synthetic["fasta"], bed_12, training_chroms="chr1", validation_chroms=["chr2"])


def test_splits_on_real_sequence(ce2: dict) -> None:
    splits = load_binary_splits(ce2["fasta"], ce2["narrow"], in_window=200, training_chroms=["chrA"],
                                validation_chroms=["chrB", "chrD"], test_chroms=["chrC"], max_jitter=20,
                                random_state=1)
    assert set(splits) == {"train", "valid", "test"}
    members = {"train": {"chrA"}, "valid": {"chrB", "chrD"}, "test": {"chrC"}}
    rows = ce2["rows"]
    for key, data in splits.items():
        assert set(data.coords["chrom"]) <= members[key], f"{key} holds a chromosome of another split"
        n_pos = sum(r[0] in members[key] for r in rows)
        assert int(data.y.sum()) == n_pos and len(data.y) == 2 * n_pos
        assert data.X.shape[-1] == (240 if key == "train" else 200)
        jitter = 20 if key == "train" else 0
        for seq, row in zip(decode(data.X), data.coords.itertuples()):
            assert row.end - row.start == 200
            assert seq == as_acgtn(ce2["seqs"][row.chrom][row.start - jitter : row.end + jitter])
    # every peak is a positive of exactly its own split, centred on its summit
    train_pos = splits["train"].coords[splits["train"].y[:, 0].numpy() == 1]
    expected = sorted((r[0], r[1] + r[9] - 100) for r in rows if r[0] == "chrA")
    assert sorted(zip(train_pos["chrom"], train_pos["start"])) == expected
    # the soft-masked chromosome is fully one-hot
    valid = splits["valid"]
    assert bool((valid.X[torch.tensor((valid.coords["chrom"] == "chrB").to_numpy())].sum(dim=1) == 1).all())


def test_plain_gzip_genome_is_decompressed_once(ce2: dict, tmp_path: Path) -> None:
    bed = write_bed(tmp_path / "x.bed", [("chrX", 5_000_000, 5_000_400), ("chrX", 9_000_000, 9_000_010)])
    data = load_binary_loci(CE2, bed, in_window=300, n_negatives=3, cache_dir=tmp_path / "cache")
    copies = list((tmp_path / "cache").glob("*.fa"))
    assert len(copies) == 1
    for seq, row in zip(decode(data.X), data.coords.itertuples()):
        assert seq == ce2["chrx"][row.start : row.end]
    stamp = copies[0].stat().st_mtime_ns
    assert ensure_plain_fasta(CE2, cache_dir=tmp_path / "cache") == str(copies[0])
    assert copies[0].stat().st_mtime_ns == stamp  # reused, not rewritten


# ----------------------------------------------------------------------------------------------
# binary_dataloader
# ----------------------------------------------------------------------------------------------


def _indexed_examples(n: int = 40, length: int = 120) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    rng = np.random.default_rng(11)
    seqs = ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]
    X = one_hot_sequences(seqs)
    # task 0 carries the example index (so each item can be traced), task 1 a 0/1 label
    y = torch.stack([torch.arange(n, dtype=torch.float32), torch.tensor([i % 2 for i in range(n)]).float()], 1)
    return X, y, seqs


def test_loader_jitter_and_reverse_complement() -> None:
    X, y, seqs = _indexed_examples()
    loader = binary_dataloader(X, y, batch_size=8, max_jitter=10, in_window=100, reverse_complement=True,
                               random_state=0)
    offsets, flips = [], []
    for _ in range(3):
        for Xb, yb, labels in loader:
            assert Xb.shape[1:] == (4, 100)
            for seq, idx in zip(decode(Xb), yb[:, 0].long().tolist()):
                full = seqs[idx]
                matches = [(o, False) for o in range(21) if full[o : o + 100] == seq]
                matches += [(o, True) for o in range(21) if full[o : o + 100].translate(COMPLEMENT)[::-1] == seq]
                assert matches, "an item is neither a crop nor the reverse complement of a crop within max_jitter"
                offsets.append(matches[0][0])
                flips.append(matches[0][1])
    assert min(offsets) >= 0 and max(offsets) <= 20
    assert min(offsets) <= 2 and max(offsets) >= 18 and abs(np.mean(offsets) - 10) < 2  # symmetric around centre
    assert 0.3 < np.mean(flips) < 0.7


def test_loader_without_augmentation_is_centre_crop() -> None:
    X, y, seqs = _indexed_examples()
    loader = binary_dataloader(X, y, batch_size=16, shuffle=False, in_window=100)
    Xb, yb, _ = next(iter(loader))
    assert yb[:, 0].tolist() == list(range(16))
    assert decode(Xb) == [s[10:110] for s in seqs[:16]]


def test_loader_layout_and_labels() -> None:
    X, y, _ = _indexed_examples()
    soft = torch.stack([torch.linspace(0, 1, 40), torch.linspace(0.8, 0, 40)], 1)
    loader = binary_dataloader(X.numpy(), soft.numpy(), batch_size=7, random_state=1)
    batches = list(loader)
    assert len(batches) == 6 and len(batches[-1][0]) == 40 - 35
    for Xb, yb, labels in batches:
        assert Xb.dtype == torch.int8 and yb.dtype == torch.float32 and labels.dtype == torch.int64
        assert yb.shape == (len(Xb), 2) and labels.shape == (len(Xb),)
        assert labels.tolist() == (yb >= 0.5).any(dim=1).long().tolist()
    one_task = binary_dataloader(X, y[:, 1], batch_size=40, drop_last=True)
    Xb, yb, labels = next(iter(one_task))
    assert yb.shape == (40, 1) and int(labels.sum()) == 20


def test_loader_reproducible_and_epochs_cover_all() -> None:
    X, y, _ = _indexed_examples()
    kwargs = dict(batch_size=8, max_jitter=10, reverse_complement=True, random_state=3)

    def run(loader):
        return [tuple(t.clone() for t in batch) for _ in range(2) for batch in loader]

    a = run(binary_dataloader(X, y, **kwargs))
    b = run(binary_dataloader(X, y, num_workers=2, **kwargs))
    c = run(binary_dataloader(X, y, **{**kwargs, "random_state": 4}))
    assert all(torch.equal(s, t) for p, q in zip(a, b) for s, t in zip(p, q))
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(a, c))
    epoch1 = torch.cat([batch[1][:, 0] for batch in a[:5]]).long().sort().values
    epoch2 = torch.cat([batch[1][:, 0] for batch in a[5:]]).long()
    assert epoch1.tolist() == list(range(40)) and sorted(epoch2.tolist()) == list(range(40))
    assert epoch2.tolist() != torch.cat([batch[1][:, 0] for batch in a[:5]]).long().tolist()


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(X=torch.zeros(5, 3, 20), y=torch.zeros(5)), r"shape \(N, 4, L\)"),
        (dict(X=torch.full((5, 4, 20), 0.5), y=torch.zeros(5)), "one-hot"),
        (dict(X=torch.zeros(5, 4, 20), y=torch.zeros(4)), "N = 5"),
        (dict(X=torch.zeros(5, 4, 20), y=torch.zeros(5), in_window=15, max_jitter=3), "in_window=15"),
        (dict(X=torch.zeros(5, 4, 20), y=torch.zeros(5), batch_size=0), "batch_size"),
    ],
)
def test_loader_errors(kwargs: dict, pattern: str) -> None:
    X, y = kwargs.pop("X"), kwargs.pop("y")
    with pytest.raises(ValueError, match=pattern):
        binary_dataloader(X, y, **kwargs)


# ----------------------------------------------------------------------------------------------
# Profile data
# ----------------------------------------------------------------------------------------------


def test_load_profile_data_reads_known_signal(synthetic: dict) -> None:
    tracks = synthetic["tracks"]
    data = load_profile_data(synthetic["bed"], synthetic["fasta_gz"], [tracks["plus"], tracks["minus"]],
                             [tracks["control"]], chroms=["chr1", "chr2"], in_window=200, out_window=100,
                             cache_dir=synthetic["root"] / "cache")
    rows = [r for r in synthetic["rows"] if r[0] in ("chr1", "chr2")]
    assert data.X.shape == (len(rows), 4, 200) and data.X.dtype == torch.int8
    assert data.y.shape == (len(rows), 2, 100) and data.y.dtype == torch.float32
    assert data.X_ctl.shape == (len(rows), 1, 200) and bool((data.X_ctl == 1).all())
    for i, (chrom, start, end, _) in enumerate(rows):
        mid = start + (end - start) // 2
        np.testing.assert_array_equal(data.y[i, 0].numpy(), synthetic["plus"][chrom][mid - 50 : mid + 50])
        np.testing.assert_array_equal(data.y[i, 1].numpy(), synthetic["minus"][chrom][mid - 50 : mid + 50])
        assert decode(data.X[i : i + 1])[0] == as_acgtn(synthetic["seqs"][chrom][mid - 100 : mid + 100])
    no_ctl = load_profile_data(synthetic["bed"], synthetic["fasta"], [tracks["plus"]], chroms=None,
                               in_window=200, out_window=100)
    assert no_ctl.X_ctl is None and no_ctl.y.shape == (len(synthetic["rows"]), 1, 100)


def test_profile_dataloader_layout(synthetic: dict) -> None:
    tracks = synthetic["tracks"]
    loader = profile_dataloader(synthetic["narrow"], None, synthetic["fasta_gz"], [tracks["plus"], tracks["minus"]],
                                [tracks["control"]], in_window=200, out_window=100, max_jitter=0, negative_ratio=1.0,
                                batch_size=4, random_state=0, cache_dir=synthetic["root"] / "cache")
    labels = []
    for batch in loader:
        assert len(batch) == 4
        X, X_ctl, y, label = batch
        assert X.shape[1:] == (4, 200) and X.dtype == torch.int8
        assert X_ctl.shape[1:] == (1, 200) and y.shape[1:] == (2, 100) and y.dtype == torch.float32
        assert label.dtype == torch.int64 and label.shape == (len(X),)
        labels += label.tolist()
    assert set(labels) == {0, 1}
    assert len(labels) == len(loader.dataset) == 2 * len(synthetic["rows"])


def test_profile_dataloader_matches_peakgenerator(synthetic: dict, tmp_path: Path) -> None:
    from bpnetlite.io import PeakGenerator

    tracks = [str(synthetic["tracks"]["plus"]), str(synthetic["tracks"]["minus"])]
    negs = write_bed(tmp_path / "neg.bed", [("chr1", 10500, 10800), ("chr2", 8000, 8300), ("chr3", 2500, 2800)])
    kwargs = dict(in_window=200, out_window=100, max_jitter=8, negative_ratio=0.5, batch_size=3,
                  random_state=2, pin_memory=False)
    ours = list(profile_dataloader(str(synthetic["bed"]), str(negs), str(synthetic["fasta"]), tracks, **kwargs))
    theirs = list(PeakGenerator(str(synthetic["bed"]), str(negs), str(synthetic["fasta"]), tracks, **kwargs))
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs):
        assert len(a) == 3 and all(torch.equal(s, t) for s, t in zip(a, b))


def test_profile_dataloader_errors(synthetic: dict, tmp_path: Path) -> None:
    tracks = [synthetic["tracks"]["plus"]]
    args = (synthetic["bed"], None, synthetic["fasta"])
    with pytest.raises(FileNotFoundError, match="signals"):
        profile_dataloader(*args, [tmp_path / "absent.bw"], in_window=200, out_window=100)
    with pytest.raises(ValueError, match="signals: .* is not a bigWig"):
        profile_dataloader(*args, [synthetic["bed"]], in_window=200, out_window=100)
    with pytest.raises(ValueError, match="non-empty list"):
        profile_dataloader(*args, [], in_window=200, out_window=100)
    with pytest.raises(ValueError, match="negative_ratio"):
        profile_dataloader(*args, tracks, in_window=200, out_window=100, negative_ratio=0)
    bad = write_bed(tmp_path / "bad.bed", [("chr1", 100, 400), ("chrM", 1, 50)])
    with pytest.raises(ValueError, match=r"peaks: chromosome 'chrM' \(line/row 2"):
        profile_dataloader(bad, None, synthetic["fasta"], tracks, in_window=200, out_window=100)
    with pytest.raises(ValueError, match=r"summits=True but line/row 5 .* summit -1"):
        load_profile_data(synthetic["narrow"], synthetic["fasta"], tracks, chroms=None, in_window=50,
                          out_window=50, summits=True)


@pytest.mark.parametrize("chrom_list, peak_chroms", [(["chr1"], ["chr1", "chr2", "chr3"]), (None, ["chr2"])])
def test_profile_dataloader_chroms(synthetic: dict, chrom_list: list[str] | None, peak_chroms: list[str]) -> None:
    """Peaks and random negatives lie on `chroms`, or on the peaks' chromosomes without it.

    The second signal holds the chromosome number everywhere, so each item tells where it came from.
    """
    peaks = pd.DataFrame([r[:3] for r in synthetic["rows"] if r[0] in peak_chroms])
    tracks = [synthetic["tracks"]["plus"], synthetic["tracks"]["chrom_id"]]
    loader = profile_dataloader(peaks, None, synthetic["fasta"], tracks, chroms=chrom_list, in_window=200,
                                out_window=100, max_jitter=4, reverse_complement=False, negative_ratio=1.0,
                                batch_size=64, random_state=1)
    allowed = set(chrom_list or peak_chroms)
    allowed_ids = {float(k + 1) for k, c in enumerate(synthetic["seqs"]) if c in allowed}
    rows = [r for r in synthetic["rows"] if r[0] in allowed]
    peak_values = {10 + synthetic["rows"].index(r) for r in rows}
    seen = set()
    for X, y, label in loader:
        for yi, li in zip(y, label):
            assert set(yi[1].tolist()) <= allowed_ids and len(set(yi[1].tolist())) == 1
            spikes = set(yi[0][yi[0] > 0].tolist())
            if li == 1:
                assert len(spikes) == 1 and spikes <= peak_values  # each peak carries its own spike
                seen |= spikes
            else:
                assert not spikes  # random negatives avoid the peaks and so their spikes
    assert len(loader.dataset.peak_sequences) == len(rows)
    assert seen <= peak_values
