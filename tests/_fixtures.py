"""A small synthetic genome with peaks, negatives and stranded bigWig tracks, for bpnet-lite tests.

``make_synthetic_genome(root)`` writes, under ``root``:

* ``genome.fa``: three chromosomes of uniform random sequence (36, 30 and 24 kb by default);
* ``peaks.narrowPeak``: 500-bp peaks, each with ``GATAAG`` planted at its centre and the summit
  (offset 250) in column 10;
* ``negatives.bed``: 500-bp intervals without a planted motif and without signal;
* ``plus.bw`` / ``minus.bw``: a Poisson(0.05) background plus a Poisson footprint of mean
  ``20 * exp(-((x - centre - shift) / 15)**2)`` within 100 bp of each peak centre, with shift -5 on
  the plus strand and +5 on the minus strand;
* ``control_plus.bw`` / ``control_minus.bw``: a flat Poisson(0.5) background;
* ``motifs.meme``: the planted motif and an unrelated one, in MEME format.

Window centres lie every ``spacing`` bp from ``margin`` bp of each chromosome end, so that every
2,114-bp window (what ``bpnet attribute`` / ``marginalize`` extract) plus some jitter fits on its
chromosome. Every third centre is a negative, the others are peaks. One peak on the last
chromosome gets a run of ``N`` inside its 2,114-bp window but outside its 1,000-bp output window,
so that code dropping windows that contain N can be checked.

Everything is drawn from one seeded ``numpy.random.Generator``; the function returns the
sequences and tables it wrote so that tests can check the files independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MOTIF = "GATAAG"
OTHER_MOTIF = "CACGTG"
PEAK_HALF_WIDTH = 250
FOOTPRINT_HALF_WIDTH = 100
N_RUN = (700, 720)  # offsets from the centre of the N run planted in one peak's input window


@dataclass
class SyntheticGenome:
    """Paths and contents of a synthetic data set (see the module docstring)."""

    root: Path
    fasta: Path
    peaks: Path
    negatives: Path
    signals: list[Path]
    controls: list[Path]
    meme: Path
    sequences: dict[str, str]
    peak_table: pd.DataFrame
    negative_table: pd.DataFrame
    n_peak: tuple[str, int] = field(default=("", -1))  # (chrom, centre) of the peak with an N run

    @property
    def chrom_sizes(self) -> dict[str, int]:
        return {name: len(seq) for name, seq in self.sequences.items()}

    def peaks_on(self, chroms) -> pd.DataFrame:
        """The peak rows on ``chroms``, in file order."""
        return self.peak_table[self.peak_table["chrom"].isin(list(chroms))].reset_index(drop=True)


def _write_fasta(path: Path, sequences: dict[str, str], width: int = 80) -> None:
    with open(path, "w") as handle:
        for name, seq in sequences.items():
            handle.write(f">{name}\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i : i + width] + "\n")


def _write_bigwig(path: Path, tracks: dict[str, np.ndarray]) -> None:
    import pyBigWig

    bw = pyBigWig.open(str(path), "w")
    bw.addHeader([(name, len(values)) for name, values in tracks.items()], maxZooms=0)
    for name, values in tracks.items():
        bw.addEntries(name, 0, values=np.ascontiguousarray(values, dtype=np.float64), span=1, step=1)
    bw.close()


def _write_meme(path: Path, motifs: dict[str, str], pseudo: float = 0.02) -> None:
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for name, consensus in motifs.items():
        lines += [f"MOTIF {name}", "",
                  f"letter-probability matrix: alength= 4 w= {len(consensus)} nsites= 20 E= 0", ]
        for base in consensus:
            row = [1 - 3 * pseudo if b == base else pseudo for b in "ACGT"]
            lines.append("  " + "  ".join(f"{p:.6f}" for p in row))
        lines.append("")
    path.write_text("\n".join(lines))


def make_synthetic_genome(
    root: str | Path,
    *,
    lengths: dict[str, int] | None = None,
    spacing: int = 2000,
    margin: int = 2500,
    seed: int = 0,
) -> SyntheticGenome:
    """Write the synthetic data set under ``root`` and return its description."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    lengths = lengths or {"chr1": 36_000, "chr2": 30_000, "chr3": 24_000}
    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ACGT"))

    sequences: dict[str, list[str]] = {}
    centres: dict[str, list[int]] = {}
    for name, length in lengths.items():
        sequences[name] = list(alphabet[rng.integers(0, 4, length)])
        centres[name] = list(range(margin, length - margin + 1, spacing))

    peak_rows, negative_rows = [], []
    index = 0
    for name, cs in centres.items():
        for c in cs:
            row = (name, c - PEAK_HALF_WIDTH, c + PEAK_HALF_WIDTH)
            if index % 3 == 2:
                negative_rows.append(row)
            else:
                peak_rows.append(row)
                start = c - len(MOTIF) // 2
                sequences[name][start : start + len(MOTIF)] = list(MOTIF)
            index += 1

    # A run of N inside the input window (but outside the output window) of one peak on the last chromosome.
    last = list(lengths)[-1]
    n_chrom, n_start, _ = next(row for row in peak_rows if row[0] == last)
    n_centre = n_start + PEAK_HALF_WIDTH
    sequences[n_chrom][n_centre + N_RUN[0] : n_centre + N_RUN[1]] = ["N"] * (N_RUN[1] - N_RUN[0])

    sequences_str = {name: "".join(seq) for name, seq in sequences.items()}
    fasta = root / "genome.fa"
    _write_fasta(fasta, sequences_str)

    peak_table = pd.DataFrame(peak_rows, columns=["chrom", "start", "end"])
    narrow = peak_table.assign(
        name=[f"peak{i}" for i in range(len(peak_table))], score=0, strand=".", signalValue=1.0,
        pValue=-1, qValue=-1, peak=PEAK_HALF_WIDTH,
    )
    peaks = root / "peaks.narrowPeak"
    narrow.to_csv(peaks, sep="\t", header=False, index=False)
    negative_table = pd.DataFrame(negative_rows, columns=["chrom", "start", "end"])
    negatives = root / "negatives.bed"
    negative_table.to_csv(negatives, sep="\t", header=False, index=False)

    plus, minus, ctl_plus, ctl_minus = {}, {}, {}, {}
    offsets = np.arange(-FOOTPRINT_HALF_WIDTH, FOOTPRINT_HALF_WIDTH + 1)
    for name, length in lengths.items():
        tracks = [rng.poisson(0.05, length).astype(np.float64) for _ in range(2)]
        for chrom, start, _ in peak_rows:
            if chrom != name:
                continue
            c = start + PEAK_HALF_WIDTH
            for track, shift in zip(tracks, (-5, 5)):
                track[c + offsets] += rng.poisson(20 * np.exp(-(((offsets - shift) / 15.0) ** 2)))
        plus[name], minus[name] = tracks
        ctl_plus[name] = rng.poisson(0.5, length).astype(np.float64)
        ctl_minus[name] = rng.poisson(0.5, length).astype(np.float64)
    signals = [root / "plus.bw", root / "minus.bw"]
    controls = [root / "control_plus.bw", root / "control_minus.bw"]
    for path, tracks in zip(signals + controls, (plus, minus, ctl_plus, ctl_minus)):
        _write_bigwig(path, tracks)

    meme = root / "motifs.meme"
    _write_meme(meme, {"planted GATA": MOTIF, "other EBOX": OTHER_MOTIF})

    return SyntheticGenome(
        root=root, fasta=fasta, peaks=peaks, negatives=negatives, signals=signals, controls=controls,
        meme=meme, sequences=sequences_str, peak_table=peak_table, negative_table=negative_table,
        n_peak=(n_chrom, n_centre),
    )


def one_hot(sequence: str) -> np.ndarray:
    """(4, L) int8 one-hot of an ACGTN string, N as an all-zero column (written independently of tangermeme)."""
    codes = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = np.zeros((4, len(sequence)), dtype=np.int8)
    for i, base in enumerate(sequence):
        if base in codes:
            out[codes[base], i] = 1
    return out
