"""Training data for ARGMINN: reading sequences, building labelled sets, and batch loaders.

This module turns files into the tensors the rest of the ecosystem expects: one-hot sequences
of shape (N, 4, L), dtype int8, alphabet A, C, G, T, with an all-zero column for N. It reuses
the ecosystem instead of re-implementing it:

* ``tangermeme.utils.one_hot_encode`` encodes strings;
* ``tangermeme.io.extract_loci`` reads genome windows (through pyfaidx);
* ``tangermeme.ersatz.dinucleotide_shuffle`` makes shuffled negatives;
* ``bpnetlite.io.PeakGenerator`` serves profile (bigWig) data.

Three kinds of binary (peak versus background) data are covered:

1. a genome FASTA plus a peak BED/narrowPeak file (``load_binary_loci``,
   ``load_binary_splits``), with random genomic negatives by default, as in ARGMINN's
   experimental data (``argminn.md`` §6.2, with the intended behaviour of §11 items 7-8);
2. FASTA files of sequences, or DeepBind ``.seq``/``.seq.gz`` tables (``load_binary_fasta``),
   with dinucleotide-shuffled negatives by default;
3. a batch loader with jitter and reverse-complement augmentation (``binary_dataloader``)
   whose batches have bpnet-lite's ``(X, y, labels)`` layout.

Policies (each is repeated in the docstring of the function it concerns):

* FASTA files may be plain text or gzip. pyfaidx reads only plain or BGZF files and this
  environment has no Biopython for BGZF, so gzip genomes are decompressed once into a cache
  directory (``cache_dir``, else ``$ARGMINN_PLUGIN_CACHE``, else ``<tempdir>/argminn_plugin_fasta``)
  and reused while the source file's path, size and modification time are unchanged.
* Sequences read with ``read_fasta`` may hold A, C, G, T and N in either case; lowercase
  (soft-masked) bases are ordinary bases. IUPAC ambiguity codes raise by default, or become N
  with ``iupac="N"``. Genome windows are read like ``PeakGenerator`` reads them: any letter other
  than A, C, G, T becomes an all-zero column; any other character (``-``, digits, ...) raises a
  ValueError naming the file, line, column and chromosome.
* BED records must have ``0 <= start < end`` and end on the FASTA's chromosome (``end`` at most
  its length); otherwise a ValueError names the file and line.
* Genome windows that run off a chromosome end are dropped with a ``UserWarning`` that counts
  them and names the first one (``extract_loci`` drops them silently).
* bigWig tracks must hold every chromosome that the peaks/loci are on (a ValueError names the
  bigWig, the chromosome and the BED line); positions without a value (NaN) read as 0, as in
  tangermeme and bpnet-lite.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import string
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import pyfaidx
import torch
from tangermeme.ersatz import dinucleotide_shuffle
from tangermeme.io import extract_loci
from tangermeme.utils import one_hot_encode

__all__ = [
    "BinaryData",
    "ProfileData",
    "SequenceTable",
    "binary_dataloader",
    "ensure_plain_fasta",
    "load_binary_fasta",
    "load_binary_loci",
    "load_binary_splits",
    "load_profile_data",
    "one_hot_sequences",
    "profile_dataloader",
    "read_fasta",
    "read_sequence_table",
]

PathLike = str | os.PathLike
LociLike = str | os.PathLike | pd.DataFrame

_IUPAC = "RYSWKMBDHVryswkmbdhv"
_IUPAC_TO_N = str.maketrans({c: ("N" if c.isupper() else "n") for c in _IUPAC})
_NOT_ACGTN = re.compile(r"[^ACGTNacgtn]")
# As in bpnet-lite's PeakGenerator: every uppercase letter but A, C, G and T is read as N.
_GENOME_IGNORE = [c for c in string.ascii_uppercase if c not in "ACGT"]
_TABLE_SUFFIXES = (".seq", ".seq.gz")
_EVENT_SUFFIX = re.compile(r"_(peak|shuf)$")
_BIGWIG_MAGIC = (0x888FFC26).to_bytes(4, "little")
_MAX_N_FRACTION = 0.1


class BinaryData(NamedTuple):
    """A labelled binary (bound versus unbound) data set.

    Attributes
    ----------
    X: torch.Tensor, shape=(N, 4, L), dtype=int8
        One-hot sequences in ACGT order; N is an all-zero column. For genome windows
        ``L = in_window + 2 * max_jitter``.
    y: torch.Tensor, shape=(N, 1), dtype=float32
        1 for bound (peak) examples, 0 for background.
    coords: pandas.DataFrame
        One row per example. For genome windows: ``chrom, start, end`` of the un-jittered
        ``in_window`` window (0-based, end exclusive). For sequence files: ``name`` (record
        name or EventID; shuffles get ``<name>_shuf<k>``), ``group`` (examples sharing a group
        are always in the same split) and ``source`` (``"positives"``, ``"negatives"`` or
        ``"shuffle"``).
    """

    X: torch.Tensor
    y: torch.Tensor
    coords: pd.DataFrame


class SequenceTable(NamedTuple):
    """The content of a DeepBind ``.seq``/``.seq.gz`` table.

    Attributes
    ----------
    sequences: list of str, length N
        The ``seq`` column, as written in the file (IUPAC codes replaced by N when asked).
    labels: numpy.ndarray, shape=(N,), dtype=int64
        The ``Bound`` column, 0 or 1.
    names: list of str, length N
        The ``EventID`` column, or the row numbers when the column is absent.
    """

    sequences: list[str]
    labels: np.ndarray
    names: list[str]


class ProfileData(NamedTuple):
    """Sequences and bigWig signal at a set of loci.

    Attributes
    ----------
    X: torch.Tensor, shape=(N, 4, in_window), dtype=int8
        One-hot sequences.
    X_ctl: torch.Tensor or None, shape=(N, n_controls, in_window), dtype=float32
        Control tracks read over the input window, or None without controls.
    y: torch.Tensor, shape=(N, n_signals, out_window), dtype=float32
        Signal tracks read over the output window.
    """

    X: torch.Tensor
    X_ctl: torch.Tensor | None
    y: torch.Tensor


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


def _existing_file(path: PathLike, argname: str) -> Path:
    """Return ``path`` as a Path, raising a clear error when it is not a readable file."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{argname} must be a file path, got {type(path).__name__}.")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{argname}: file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{argname}: {path} is not a regular file.")
    return path


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _open_text(path: Path):
    """Open a plain or gzip text file for reading; latin-1 so that any byte decodes."""
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="latin-1")
    return open(path, encoding="latin-1")


def ensure_plain_fasta(
    path: PathLike,
    *,
    cache_dir: PathLike | None = None,
    argname: str = "sequences",
) -> str:
    """Return a path to ``path`` that pyfaidx can index, decompressing gzip files once.

    pyfaidx (and so ``tangermeme.io.extract_loci`` and bpnet-lite's ``PeakGenerator``) refuses
    plain-gzip FASTA and needs Biopython for BGZF. Any gzip file (BGZF included) is therefore
    decompressed into ``cache_dir``; the copy is named after the file and a hash of its absolute
    path, size and modification time, so it is reused until the source changes. The copy is
    written to a temporary name and renamed, so concurrent callers never see half a file. The
    ``.fai`` index that pyfaidx builds lands next to the copy. Uncompressed files are returned
    unchanged.

    Parameters
    ----------
    path: str or os.PathLike
        A FASTA file, plain or gzip-compressed.
    cache_dir: str, os.PathLike or None, optional
        Where decompressed copies go. If None, ``$ARGMINN_PLUGIN_CACHE`` when set, else
        ``<tempfile.gettempdir()>/argminn_plugin_fasta``. Default is None.
    argname: str, optional
        The argument name used in error messages. Default is "sequences".

    Returns
    -------
    path: str
        A plain FASTA file with the same content.
    """
    source = _existing_file(path, argname)
    if not _is_gzip(source):
        return str(source)

    if cache_dir is None:
        cache_dir = os.environ.get("ARGMINN_PLUGIN_CACHE") or Path(tempfile.gettempdir()) / "argminn_plugin_fasta"
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)

    stat = source.stat()
    key = f"{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    stem = source.name[:-3] if source.name.endswith(".gz") else source.name
    target = cache_dir / f"{Path(stem).stem}.{digest}.fa"
    if target.exists():
        return str(target)

    handle, partial = tempfile.mkstemp(dir=cache_dir, suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out, gzip.open(source, "rb") as compressed:
            while chunk := compressed.read(1 << 22):
                out.write(chunk)
        os.replace(partial, target)
    except (OSError, EOFError, zlib.error) as err:
        Path(partial).unlink(missing_ok=True)
        raise ValueError(f"{argname}: could not decompress {source}: {err}") from err
    return str(target)


# ----------------------------------------------------------------------------------------------
# Sequence files
# ----------------------------------------------------------------------------------------------


def _check_iupac_option(iupac: str) -> None:
    if iupac not in ("error", "N"):
        raise ValueError(f"iupac must be 'error' or 'N', got {iupac!r}.")


def _clean_sequence(seq: str, iupac: str, argname: str, where: Callable[[int], str]) -> str:
    """Return ``seq`` checked to hold only ACGTN (either case), IUPAC codes optionally set to N.

    ``where(column)`` describes the position of an offending character (1-based column).
    """
    match = _NOT_ACGTN.search(seq)
    if match is None:
        return seq
    if iupac == "N":
        seq = seq.translate(_IUPAC_TO_N)
        match = _NOT_ACGTN.search(seq)
        if match is None:
            return seq
    char = match.group()
    if char in _IUPAC:
        hint = "IUPAC ambiguity codes are rejected by default; pass iupac='N' to read them as N."
    else:
        hint = "Only A, C, G, T and N (upper or lower case) are allowed."
    raise ValueError(f"{argname}: invalid character {char!r} at {where(match.start() + 1)}. {hint}")


def _parse_fasta(path: PathLike, iupac: str, argname: str) -> list[tuple[str, str]]:
    _check_iupac_option(iupac)
    path = _existing_file(path, argname)
    records: list[tuple[str, str]] = []
    header_lines: dict[str, int] = {}
    name: str | None = None
    chunks: list[str] = []

    def close_record() -> None:
        if not chunks:
            raise ValueError(
                f"{argname}: record {name!r} (header at line {header_lines[name]} of {path}) has no sequence."
            )
        records.append((name, "".join(chunks)))

    try:
        with _open_text(path) as handle:
            for lineno, raw in enumerate(handle, start=1):
                line = raw.strip()
                if not line:
                    continue
                if line.startswith(">"):
                    if name is not None:
                        close_record()
                    fields = line[1:].split(maxsplit=1)
                    if not fields:
                        raise ValueError(f"{argname}: header without a name at line {lineno} of {path}.")
                    name = fields[0]
                    if name in header_lines:
                        raise ValueError(
                            f"{argname}: duplicate record name {name!r} at line {lineno} of {path} "
                            f"(first seen at line {header_lines[name]})."
                        )
                    header_lines[name] = lineno
                    chunks = []
                    continue
                if name is None:
                    raise ValueError(
                        f"{argname}: line {lineno} of {path} holds sequence before any '>' header; "
                        "is this a FASTA file?"
                    )
                chunks.append(
                    _clean_sequence(
                        line,
                        iupac,
                        argname,
                        lambda col, n=lineno, r=name: f"line {n}, column {col} of {path} (record {r!r})",
                    )
                )
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{argname}: could not read {path}: {err}") from err

    if name is None:
        raise ValueError(f"{argname}: {path} contains no FASTA records.")
    close_record()
    return records


def read_fasta(path: PathLike, *, iupac: Literal["error", "N"] = "error") -> list[tuple[str, str]]:
    """Read every record of a FASTA file, checking its format and alphabet.

    The file may be plain text or gzip (detected from its first bytes, not its name). The name
    of a record is the header text up to the first whitespace. Blank lines are skipped. Case is
    preserved, so soft-masked (lowercase) bases stay lowercase; ``one_hot_sequences``
    upper-cases them.

    Parameters
    ----------
    path: str or os.PathLike
        The FASTA file.
    iupac: {"error", "N"}, optional
        What to do with IUPAC ambiguity codes (R, Y, S, W, K, M, B, D, H, V, either case):
        raise a ValueError naming the file, line, column and record, or read them as N
        (keeping their case). Any other character outside ACGTN raises in both modes.
        Default is "error".

    Returns
    -------
    records: list of (str, str)
        ``(name, sequence)`` pairs in file order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file holds no record, has sequence before the first header, a header without a
        name, a record without sequence, two records with the same name, or a character outside
        the allowed alphabet.
    """
    return _parse_fasta(path, iupac, "path")


def _is_table(path: Path) -> bool:
    return path.name.lower().endswith(_TABLE_SUFFIXES)


def _parse_table(path: PathLike, iupac: str, argname: str) -> SequenceTable:
    _check_iupac_option(iupac)
    path = _existing_file(path, argname)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, compression="infer")
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{argname}: {path} is empty.") from err
    except (OSError, EOFError, zlib.error, pd.errors.ParserError) as err:
        raise ValueError(f"{argname}: could not read {path} as a tab-separated table: {err}") from err

    missing = [column for column in ("seq", "Bound") if column not in table.columns]
    if missing:
        raise ValueError(
            f"{argname}: {path} lacks the column(s) {missing}; a DeepBind table has the header "
            f"'FoldID EventID seq Bound' (found {list(table.columns)})."
        )
    if len(table) == 0:
        raise ValueError(f"{argname}: {path} has a header but no rows.")

    names = table["EventID"].tolist() if "EventID" in table.columns else [str(i) for i in range(len(table))]
    labels = np.zeros(len(table), dtype=np.int64)
    for i, value in enumerate(table["Bound"]):
        if value.strip() not in ("0", "1"):
            raise ValueError(f"{argname}: Bound must be 0 or 1, got {value!r} at line {i + 2} of {path}.")
        labels[i] = int(value)

    sequences = []
    for i, seq in enumerate(table["seq"]):
        seq = seq.strip()
        if not seq:
            raise ValueError(f"{argname}: empty seq at line {i + 2} of {path}.")
        sequences.append(
            _clean_sequence(
                seq,
                iupac,
                argname,
                lambda col, n=i + 2, r=names[i]: f"line {n}, position {col} of {path} (EventID {r!r})",
            )
        )
    return SequenceTable(sequences, labels, names)


def read_sequence_table(path: PathLike, *, iupac: Literal["error", "N"] = "error") -> SequenceTable:
    """Read a DeepBind-style sequence table (``.seq`` or ``.seq.gz``).

    The format is tab-separated with a header line ``FoldID EventID seq Bound``; ``seq`` is the
    sequence and ``Bound`` is 1 (bound) or 0. Only ``seq`` and ``Bound`` are required.
    Compression is inferred from the file name by pandas.

    Parameters
    ----------
    path: str or os.PathLike
        The table.
    iupac: {"error", "N"}, optional
        As in ``read_fasta``. Default is "error".

    Returns
    -------
    table: SequenceTable
        ``(sequences, labels, names)``: lists of N sequences and EventIDs, and an int64 array of
        shape (N,) with the ``Bound`` values.

    Raises
    ------
    ValueError
        If the file is empty, lacks a required column, has a ``Bound`` value other than 0/1,
        an empty sequence, or a character outside the allowed alphabet (naming the line).
    """
    return _parse_table(path, iupac, "path")


# ----------------------------------------------------------------------------------------------
# One-hot encoding
# ----------------------------------------------------------------------------------------------


def _fit_length(seq: str, length: int) -> str:
    """Centre-crop or N-pad ``seq`` to ``length`` with tangermeme's centring rule."""
    n = len(seq)
    if n >= length:
        offset = n // 2 - length // 2
        return seq[offset : offset + length]
    left = length // 2 - n // 2
    return "N" * left + seq + "N" * (length - n - left)


def one_hot_sequences(
    seqs: Sequence[str] | Sequence[tuple[str, str]],
    length: int | None = None,
    *,
    iupac: Literal["error", "N"] = "error",
) -> torch.Tensor:
    """One-hot encode a list of DNA sequences into an (N, 4, L) int8 tensor.

    Sequences are upper-cased first, so soft-masked (lowercase) bases are ordinary bases; N
    becomes an all-zero column. Encoding is done by ``tangermeme.utils.one_hot_encode`` on the
    concatenation of all sequences.

    Length policy. With ``length=None`` every sequence must have the same length. With
    ``length`` set, each sequence is centred in a window of that length using the rule of
    ``tangermeme.io.extract_loci`` (a window of width ``w`` around the middle ``m = n // 2`` of
    a sequence of length ``n`` covers ``[m - w // 2, m - w // 2 + w)``):

    * a longer sequence keeps ``seq[n // 2 - length // 2 : n // 2 - length // 2 + length]``;
      when the excess is odd, the extra base is removed on the left;
    * a shorter sequence is padded with N, ``length // 2 - n // 2`` on the left and the rest
      on the right (so a pad of odd size puts its extra N on the right).

    For example ``"ACGT"`` to length 1 gives ``"G"``, ``"ACGTA"`` to 3 gives ``"CGT"`` and
    ``"AC"`` to 5 gives ``"NACNN"``.

    Parameters
    ----------
    seqs: list of str, or list of (name, str) pairs
        The sequences, e.g. the output of ``read_fasta``. Names, when given, are used in error
        messages.
    length: int or None, optional
        The output length L. If None, the common length of the sequences. Default is None.
    iupac: {"error", "N"}, optional
        Whether IUPAC ambiguity codes raise or become N. Default is "error".

    Returns
    -------
    X: torch.Tensor, shape=(N, 4, L), dtype=int8
        The one-hot sequences in ACGT order.

    Raises
    ------
    ValueError
        If ``seqs`` is empty or a bare string, a sequence is empty or holds a character outside
        ACGTN, the lengths differ and ``length`` is None, or ``length`` is not positive.
    """
    _check_iupac_option(iupac)
    if isinstance(seqs, str):
        raise ValueError("seqs must be a list of sequences, not a single string; wrap it in a list.")
    if len(seqs) == 0:
        raise ValueError("seqs is empty; at least one sequence is required.")
    if length is not None and (not isinstance(length, (int, np.integer)) or length < 1):
        raise ValueError(f"length must be a positive integer or None, got {length!r}.")

    names: list[str] = []
    upper: list[str] = []
    for i, item in enumerate(seqs):
        if isinstance(item, tuple):
            name, seq = item
            label = f"record {i} ({name!r})"
        else:
            seq, label = item, f"record {i}"
        if not isinstance(seq, str):
            raise ValueError(f"seqs: {label} is a {type(seq).__name__}, not a string.")
        if len(seq) == 0:
            raise ValueError(f"seqs: {label} is empty.")
        seq = _clean_sequence(seq, iupac, "seqs", lambda col, lab=label: f"{lab}, position {col}").upper()
        names.append(label)
        upper.append(seq)

    if length is None:
        length = len(upper[0])
        for label, seq in zip(names, upper):
            if len(seq) != length:
                raise ValueError(
                    f"seqs: {label} has length {len(seq)} but {names[0]} has length {length}; "
                    "pass length= to centre-crop or N-pad every sequence to a common length."
                )
    else:
        upper = [_fit_length(seq, int(length)) for seq in upper]

    encoded = one_hot_encode("".join(upper), dtype=torch.int8)
    return encoded.reshape(4, len(upper), int(length)).permute(1, 0, 2).contiguous()


# ----------------------------------------------------------------------------------------------
# Loci (BED / narrowPeak)
# ----------------------------------------------------------------------------------------------


def _check_summits_option(summits: bool | str) -> None:
    if summits not in ("auto", True, False):
        raise ValueError(f"summits must be 'auto', True or False, got {summits!r}.")


def _read_loci(loci: LociLike, argname: str, summits: bool | str) -> tuple[pd.DataFrame, str]:
    """Parse BED/narrowPeak records into ``chrom, start, end, summit, centre, line``.

    ``summit`` is the column-10 offset, or -1 when absent or not used. The centre is
    ``start + summit`` when a summit is used and is not -1, else ``start + (end - start) // 2``.
    ``line`` is the 1-based line (file) or row (DataFrame) of each record, for error messages.
    Also returns a description of the source.
    """
    _check_summits_option(summits)
    rows: list[tuple[str, int, int, int, int, int]] = []

    def parse(fields: Sequence[object], lineno: int, where: str) -> None:
        if len(fields) < 3:
            raise ValueError(f"{argname}: {where} has {len(fields)} column(s); BED needs chrom, start and end.")
        try:
            start, end = int(fields[1]), int(fields[2])
        except (TypeError, ValueError):
            raise ValueError(
                f"{argname}: start and end must be integers at {where}, got {fields[1]!r} and {fields[2]!r}."
            ) from None
        if start < 0 or end < 0:
            raise ValueError(
                f"{argname}: invalid interval [{start}, {end}) at {where}: coordinates must not be negative."
            )
        if end <= start:
            raise ValueError(
                f"{argname}: invalid interval [{start}, {end}) at {where}: start must be less than end "
                "(BED intervals are 0-based and half-open)."
            )
        summit = -1
        has_summit = len(fields) >= 10 and str(fields[9]).strip() not in ("", "nan")
        if summits is True and not has_summit:
            raise ValueError(f"{argname}: summits=True but {where} has no summit (narrowPeak column 10).")
        if summits is not False and has_summit:
            try:
                summit = int(fields[9])
            except (TypeError, ValueError):
                raise ValueError(
                    f"{argname}: the summit (column 10) must be an integer at {where}, got {fields[9]!r}."
                ) from None
            if summit != -1 and not 0 <= summit < max(end - start, 1):
                raise ValueError(
                    f"{argname}: summit offset {summit} lies outside the interval [{start}, {end}) at {where}."
                )
        centre = start + summit if summit >= 0 else start + (end - start) // 2
        rows.append((str(fields[0]).strip(), start, end, summit, centre, lineno))

    if isinstance(loci, pd.DataFrame):
        source = f"the DataFrame passed as {argname}"
        for i, record in enumerate(loci.itertuples(index=False), start=1):
            parse(list(record), i, f"row {i} of {source}")
    else:
        path = _existing_file(loci, argname)
        source = str(path)
        try:
            with _open_text(path) as handle:
                for lineno, raw in enumerate(handle, start=1):
                    line = raw.rstrip("\r\n")
                    if not line.strip() or line.startswith(("#", "track", "browser")):
                        continue
                    fields = line.split("\t") if "\t" in line else line.split()
                    parse(fields, lineno, f"line {lineno} of {path}")
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{argname}: could not read {path}: {err}") from err

    if not rows:
        raise ValueError(f"{argname}: {source} contains no intervals.")
    table = pd.DataFrame(rows, columns=["chrom", "start", "end", "summit", "centre", "line"])
    return table, source


def _check_on_genome(table: pd.DataFrame, source: str, argname: str, lengths: dict[str, int], fasta: str) -> None:
    """Raise naming the first record whose chromosome is not in the FASTA or that ends past it."""
    missing = ~table["chrom"].isin(list(lengths))
    if missing.any():
        first = table[missing].iloc[0]
        names = sorted(set(table.loc[missing, "chrom"]))
        raise ValueError(
            f"{argname}: chromosome {first['chrom']!r} (line/row {first['line']} of {source}) is not in "
            f"the FASTA {fasta}; missing chromosomes: {names}. Its chromosomes are: {sorted(lengths)[:20]}."
        )
    beyond = table["end"].to_numpy(np.int64) > table["chrom"].map(lengths).to_numpy(np.int64)
    if beyond.any():
        first = table[beyond].iloc[0]
        raise ValueError(
            f"{argname}: interval {first['chrom']}:{first['start']}-{first['end']} (line/row {first['line']} of "
            f"{source}) ends past the end of {first['chrom']} ({lengths[first['chrom']]} bp in the FASTA {fasta}); "
            f"{int(beyond.sum())} interval(s) do. Are the BED file and the FASTA from the same assembly?"
        )


def _windows_on_genome(
    table: pd.DataFrame,
    lengths: dict[str, int],
    in_window: int,
    max_jitter: int,
    argname: str,
    source: str | None = None,
) -> pd.DataFrame:
    """Centre ``in_window`` windows on each record, dropping (with a warning) those off the ends."""
    start = table["centre"].to_numpy(np.int64) - in_window // 2
    chrom_length = table["chrom"].map(lengths).to_numpy(np.int64)
    fits = (start - max_jitter >= 0) & (start + in_window + max_jitter <= chrom_length)
    n_dropped = int((~fits).sum())
    if n_dropped:
        first = table[~fits].iloc[0]
        where = f"line/row {first['line']}" + (f" of {source}" if source else "")
        warnings.warn(
            f"{argname}: {n_dropped} of {len(table)} windows (in_window={in_window}, max_jitter={max_jitter}) "
            f"run off the end of their chromosome and were dropped; the first is centred at "
            f"{first['chrom']}:{first['centre']} ({where}, chromosome length {lengths[first['chrom']]}).",
            UserWarning,
            stacklevel=3,
        )
    windows = pd.DataFrame(
        {"chrom": table["chrom"].to_numpy()[fits], "start": start[fits], "end": start[fits] + in_window}
    )
    return windows.reset_index(drop=True)


def _merged_intervals(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge half-open intervals into sorted, disjoint ones."""
    order = np.argsort(starts, kind="stable")
    merged_starts: list[int] = []
    merged_ends: list[int] = []
    for s, e in zip(starts[order].tolist(), ends[order].tolist()):
        if merged_ends and s < merged_ends[-1]:
            merged_ends[-1] = max(merged_ends[-1], e)
        else:
            merged_starts.append(s)
            merged_ends.append(e)
    return np.asarray(merged_starts, dtype=np.int64), np.asarray(merged_ends, dtype=np.int64)


def _overlaps(intervals: tuple[np.ndarray, np.ndarray] | None, start: int, end: int) -> bool:
    """Whether [start, end) overlaps one of the merged intervals."""
    if intervals is None or len(intervals[0]) == 0:
        return False
    starts, ends = intervals
    i = int(np.searchsorted(ends, start, side="right"))
    return i < len(starts) and starts[i] < end


def _random_windows(
    fasta: str,
    lengths: dict[str, int],
    chroms: Sequence[str],
    n: int,
    width: int,
    exclude: dict[str, tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    max_n_fraction: float = _MAX_N_FRACTION,
    max_rounds: int = 200,
) -> pd.DataFrame:
    """Draw ``n`` distinct random windows of ``width`` bp from ``chroms``.

    Chromosomes are weighted by their number of possible window starts (about their length),
    starts are uniform. Windows overlapping ``exclude`` or with more than ``max_n_fraction`` of
    non-ACGT bases are rejected. Returns ``chrom, start, end`` of the windows.
    """
    spans = {c: lengths[c] - width + 1 for c in chroms if lengths[c] >= width}
    if not spans:
        raise ValueError(f"No chromosome among {list(chroms)} is at least {width} bp long; cannot sample negatives.")
    names = list(spans)
    weights = np.array([spans[c] for c in names], dtype=np.float64)
    chosen: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()
    limit = int(max_n_fraction * width)

    genome = pyfaidx.Fasta(fasta, as_raw=True)
    try:
        for _ in range(max_rounds):
            need = n - len(chosen)
            if need <= 0:
                break
            draws = max(2 * need, 32)
            chrom_idx = rng.choice(len(names), size=draws, p=weights / weights.sum())
            starts = rng.integers(0, weights[chrom_idx].astype(np.int64))
            for c, s in zip(chrom_idx.tolist(), starts.tolist()):
                chrom = names[c]
                if (chrom, s) in seen or _overlaps(exclude.get(chrom), s, s + width):
                    continue
                seen.add((chrom, s))
                seq = genome[chrom][s : s + width]
                n_acgt = sum(seq.count(base) for base in "ACGTacgt")
                if width - n_acgt > limit:
                    continue
                chosen.append((chrom, s))
                if len(chosen) == n:
                    break
    finally:
        genome.close()

    if len(chosen) < n:
        raise ValueError(
            f"Found only {len(chosen)} of the {n} random negative windows requested on {list(chroms)} "
            f"(width {width}, at most {max_n_fraction:.0%} N, no overlap with peaks). Lower n_negatives "
            "or pass negatives= explicitly."
        )
    return pd.DataFrame(
        {"chrom": [c for c, _ in chosen], "start": [s for _, s in chosen], "end": [s + width for _, s in chosen]}
    )


def _fasta_line_column(fasta: str, chrom: str, pos: int) -> tuple[int, int] | None:
    """1-based line and column of 0-based position ``pos`` of ``chrom`` in a plain FASTA (via its .fai)."""
    try:
        with open(f"{fasta}.fai") as handle:
            for row in handle:
                fields = row.rstrip("\n").split("\t")
                if fields[0] == chrom:
                    offset, line_bases, line_width = int(fields[2]), int(fields[3]), int(fields[4])
                    break
            else:
                return None
        target = offset + (pos // line_bases) * line_width + pos % line_bases
        newlines = 0
        with open(fasta, "rb") as handle:
            while handle.tell() < target:
                chunk = handle.read(min(target - handle.tell(), 1 << 22))
                if not chunk:
                    break
                newlines += chunk.count(b"\n")
        return newlines + 1, pos % line_bases + 1
    except (OSError, ValueError, IndexError, ZeroDivisionError):
        return None


def _genome_character_error(fasta: str, source: str, chrom: str, pos: int, char: str, argname: str) -> ValueError:
    """The error for a genome character that is not a letter, naming file, line, column and chromosome."""
    where = _fasta_line_column(fasta, chrom, pos)
    at = f"line {where[0]}, column {where[1]} of {source}" if where else f"{source}"
    return ValueError(
        f"{argname}: invalid character {char!r} at {at} (chromosome {chrom!r}, 0-based position {pos}). Genome "
        "letters other than A, C, G and T are read as N; other characters are not allowed."
    )


def _extract_windows(fasta: str, windows: pd.DataFrame, in_window: int, max_jitter: int) -> torch.Tensor:
    """Read (n, 4, in_window + 2 * max_jitter) int8 sequences centred on ``windows``."""
    try:
        result = extract_loci(
            windows[["chrom", "start", "end"]],
            fasta,
            in_window=in_window,
            max_jitter=max_jitter,
            ignore=_GENOME_IGNORE,
            return_mask=True,
            n_jobs=1,
        )
    except ValueError as err:
        if "alphabet" not in str(err):
            raise
        # tangermeme does not say where; find the first non-letter in the windows read.
        genome = pyfaidx.Fasta(fasta, as_raw=True)
        try:
            for chrom, start, end in windows[["chrom", "start", "end"]].itertuples(index=False):
                left = int(start) + (int(end) - int(start)) // 2 - in_window // 2 - max_jitter
                seq = genome[chrom][max(left, 0) : left + in_window + 2 * max_jitter]
                bad = re.search(r"[^A-Za-z]", seq)
                if bad is not None:
                    raise _genome_character_error(
                        fasta, fasta, chrom, max(left, 0) + bad.start(), bad.group(), "sequences"
                    ) from None
        finally:
            genome.close()
        raise
    X, kept = result
    if not bool(kept.all()):  # windows are checked beforehand, so this would be a bug
        raise RuntimeError("extract_loci dropped windows that were checked to fit their chromosome.")
    return X


def _check_window_args(in_window: int, max_jitter: int) -> None:
    if not isinstance(in_window, (int, np.integer)) or in_window < 1:
        raise ValueError(f"in_window must be a positive integer, got {in_window!r}.")
    if not isinstance(max_jitter, (int, np.integer)) or max_jitter < 0:
        raise ValueError(f"max_jitter must be a non-negative integer, got {max_jitter!r}.")


def _check_chrom_list(
    chroms: Sequence[str] | None, argname: str, lengths: dict[str, int], fasta: str
) -> list[str] | None:
    if chroms is None:
        return None
    if isinstance(chroms, str) or not isinstance(chroms, (list, tuple)):
        raise ValueError(f"{argname} must be a list of chromosome names, got {chroms!r}.")
    chroms = [str(c) for c in chroms]
    if not chroms:
        raise ValueError(f"{argname} is an empty list.")
    unknown = [c for c in chroms if c not in lengths]
    if unknown:
        raise ValueError(f"{argname}: chromosome(s) {unknown} are not in the FASTA {fasta}.")
    return chroms


def _open_genome(sequences: PathLike, cache_dir: PathLike | None) -> tuple[str, dict[str, int]]:
    fasta = ensure_plain_fasta(sequences, cache_dir=cache_dir, argname="sequences")
    try:
        genome = pyfaidx.Fasta(fasta)
    except Exception as err:  # pyfaidx raises several exception types for malformed files
        raise ValueError(f"sequences: pyfaidx could not index {sequences}: {err}") from err
    try:
        lengths = {str(name): len(record) for name, record in genome.items()}
    finally:
        genome.close()
    return fasta, lengths


def _binary_from_genome(
    fasta: str,
    lengths: dict[str, int],
    peaks: tuple[pd.DataFrame, str],
    negatives: tuple[pd.DataFrame, str] | None,
    chroms: list[str] | None,
    in_window: int,
    max_jitter: int,
    n_negatives: int | None,
    rng: np.random.Generator,
    empty_message: str,
) -> BinaryData:
    peak_table, peak_source = peaks
    selected = peak_table if chroms is None else peak_table[peak_table["chrom"].isin(chroms)]
    if len(selected) == 0:
        raise ValueError(empty_message)
    _check_on_genome(selected, peak_source, "loci", lengths, fasta)
    positives = _windows_on_genome(selected, lengths, in_window, max_jitter, "loci", peak_source)
    if len(positives) == 0:
        raise ValueError(
            f"loci: every window of {peak_source} on {chroms or 'its chromosomes'} runs off a chromosome end."
        )

    if negatives is not None:
        neg_table, neg_source = negatives
        if chroms is not None:
            neg_table = neg_table[neg_table["chrom"].isin(chroms)]
        if len(neg_table) == 0:
            raise ValueError(f"negatives: no interval of {neg_source} lies on {chroms}.")
        _check_on_genome(neg_table, neg_source, "negatives", lengths, fasta)
        background = _windows_on_genome(neg_table, lengths, in_window, max_jitter, "negatives", neg_source)
        if n_negatives is not None:
            if n_negatives > len(background):
                raise ValueError(
                    f"n_negatives={n_negatives} but only {len(background)} usable negative windows are in {neg_source}."
                )
            keep = np.sort(rng.choice(len(background), size=n_negatives, replace=False))
            background = background.iloc[keep].reset_index(drop=True)
    else:
        n = len(positives) if n_negatives is None else int(n_negatives)
        pools = chroms if chroms is not None else [c for c in lengths if c in set(positives["chrom"])]
        exclude = {}
        for chrom in pools:
            on_peaks = peak_table[peak_table["chrom"] == chrom]
            on_windows = positives[positives["chrom"] == chrom]
            starts = np.concatenate([on_peaks["start"].to_numpy(), on_windows["start"].to_numpy() - max_jitter])
            ends = np.concatenate([on_peaks["end"].to_numpy(), on_windows["end"].to_numpy() + max_jitter])
            exclude[chrom] = _merged_intervals(starts.astype(np.int64), ends.astype(np.int64))
        width = in_window + 2 * max_jitter
        drawn = _random_windows(fasta, lengths, pools, n, width, exclude, rng)
        inner = drawn["start"] + max_jitter
        background = pd.DataFrame({"chrom": drawn["chrom"], "start": inner, "end": inner + in_window})

    parts = [positives] + ([background] if len(background) else [])
    X = torch.cat([_extract_windows(fasta, part, in_window, max_jitter) for part in parts])
    y = torch.cat([torch.ones(len(positives), 1), torch.zeros(len(background), 1)]).float()
    coords = pd.concat(parts, ignore_index=True)[["chrom", "start", "end"]]
    coords["start"] = coords["start"].astype(np.int64)
    coords["end"] = coords["end"].astype(np.int64)
    return BinaryData(X, y, coords)


def load_binary_loci(
    sequences: PathLike,
    loci: LociLike,
    negatives: LociLike | None = None,
    *,
    in_window: int = 500,
    chroms: Sequence[str] | None = None,
    summits: bool | Literal["auto"] = "auto",
    max_jitter: int = 0,
    n_negatives: int | None = None,
    random_state: int | None = 0,
    cache_dir: PathLike | None = None,
) -> BinaryData:
    """Build a binary data set from a genome FASTA and a peak BED/narrowPeak file.

    Each peak gives one positive window of ``in_window`` bp centred on its summit
    (``start + column 10``) when the file has one and ``summits`` allows it, else on its
    midpoint ``start + (end - start) // 2``. A summit of -1 (narrowPeak's "none") falls back to
    the midpoint. Sequences are read by ``tangermeme.io.extract_loci``; any letter other than
    A, C, G, T in the genome (N, IUPAC codes) becomes an all-zero column, as in
    ``PeakGenerator``, and lowercase is upper-cased.

    Negatives. Given ``negatives`` (a BED file or DataFrame), its intervals are centred the same
    way (optionally subsampled to ``n_negatives``); they are not checked for overlap with peaks.
    Without it, ``n_negatives`` (default: as many as positives) random windows are drawn from the
    same chromosomes (``chroms`` if given, else those holding peaks), each chromosome weighted
    by its length and the start uniform; a window is rejected when it overlaps any peak interval
    of ``loci`` or any positive window (jitter flanks included), or has more than 10% non-ACGT
    bases (``argminn.md`` §11 items 7-8). This is not GC-matched.

    Windows whose widened extent (``in_window + 2 * max_jitter``) runs off a chromosome end are
    dropped with a ``UserWarning`` counting them.

    Parameters
    ----------
    sequences: str or os.PathLike
        Genome FASTA, plain or gzip (gzip is decompressed once, see ``ensure_plain_fasta``).
    loci: str, os.PathLike or pandas.DataFrame
        Peaks: BED (3+ columns) or narrowPeak (10 columns, summit offset in column 10). A
        DataFrame is read positionally. Lines starting with ``#``, ``track`` or ``browser`` are
        skipped.
    negatives: str, os.PathLike, pandas.DataFrame or None, optional
        Background intervals. If None, random genomic windows (see above). Default is None.
    in_window: int, optional
        The window length. Default is 500 (ARGMINN's L).
    chroms: list of str or None, optional
        Only use peaks (and sample negatives) on these chromosomes. Every name must be in the
        FASTA. If None, all chromosomes of ``loci``. Default is None.
    summits: {"auto", True, False}, optional
        "auto" uses column 10 where present; True requires it on every record; False always
        uses the midpoint. Default is "auto".
    max_jitter: int, optional
        Widen every window by this much on each side so that ``binary_dataloader`` can jitter
        it; ``coords`` still give the un-widened window. Default is 0.
    n_negatives: int or None, optional
        The number of negatives. If None, as many as positives when sampling, all when
        ``negatives`` is given. Default is None.
    random_state: int or None, optional
        Seed for negative sampling. Default is 0.
    cache_dir: str, os.PathLike or None, optional
        Where a gzip FASTA is decompressed (see ``ensure_plain_fasta``). Default is None.

    Returns
    -------
    data: BinaryData
        ``X`` (N, 4, in_window + 2 * max_jitter) int8, ``y`` (N, 1) float32 with the positives
        first, and ``coords`` (chrom, start, end) of the un-widened windows.

    Raises
    ------
    ValueError
        On malformed BED lines (naming file and line), chromosomes absent from the FASTA (naming
        them), no peak left, or too few acceptable random negatives.
    """
    _check_window_args(in_window, max_jitter)
    _check_summits_option(summits)
    fasta, lengths = _open_genome(sequences, cache_dir)
    chroms = _check_chrom_list(chroms, "chroms", lengths, str(sequences))
    peaks = _read_loci(loci, "loci", summits)
    background = None if negatives is None else _read_loci(negatives, "negatives", summits)
    return _binary_from_genome(
        fasta,
        lengths,
        peaks,
        background,
        chroms,
        in_window,
        max_jitter,
        n_negatives,
        np.random.default_rng(random_state),
        f"loci: no interval of {peaks[1]} lies on the chromosomes {chroms}.",
    )


def load_binary_splits(
    sequences: PathLike,
    loci: LociLike,
    negatives: LociLike | None = None,
    *,
    in_window: int = 500,
    training_chroms: Sequence[str],
    validation_chroms: Sequence[str],
    test_chroms: Sequence[str] | None = None,
    max_jitter: int = 0,
    summits: bool | Literal["auto"] = "auto",
    n_negatives: int | None = None,
    random_state: int | None = 0,
    cache_dir: PathLike | None = None,
) -> dict[str, BinaryData]:
    """Build chromosome-split binary data sets (train / valid / test) from a genome and peaks.

    Each split is built as by ``load_binary_loci`` restricted to its chromosomes, so its
    positives, and its negatives (given or sampled), lie only on them. Only the training split
    is widened by ``max_jitter``; validation and test windows are exactly ``in_window`` long.
    Peaks on chromosomes in none of the lists are ignored. ARGMINN's genomic splits were
    validation chr8 + chr10, test chr1, training the rest (``argminn.md`` §6.2).

    Parameters
    ----------
    sequences, loci, negatives, in_window, summits, cache_dir:
        As in ``load_binary_loci``.
    training_chroms: list of str
        Chromosomes of the "train" split.
    validation_chroms: list of str
        Chromosomes of the "valid" split.
    test_chroms: list of str or None, optional
        Chromosomes of the "test" split; no test split when None. Default is None.
    max_jitter: int, optional
        Widening of the training windows only. Default is 0.
    n_negatives: int or None, optional
        Negatives per split, as in ``load_binary_loci``. Default is None.
    random_state: int or None, optional
        Seed; each split draws from its own stream spawned from it. Default is 0.

    Returns
    -------
    splits: dict of str to BinaryData
        Keys "train", "valid" and, with ``test_chroms``, "test". ``X`` of "train" has length
        ``in_window + 2 * max_jitter``, the others ``in_window``.

    Raises
    ------
    ValueError
        If the chromosome lists overlap (naming the shared chromosomes and the two lists), a
        list is empty or names a chromosome absent from the FASTA, or a split has no peak
        (naming the split and its chromosomes).
    """
    _check_window_args(in_window, max_jitter)
    _check_summits_option(summits)
    lists = {"training_chroms": training_chroms, "validation_chroms": validation_chroms}
    if test_chroms is not None:
        lists["test_chroms"] = test_chroms
    for argname, chroms in lists.items():
        if isinstance(chroms, str) or not isinstance(chroms, (list, tuple)) or len(chroms) == 0:
            raise ValueError(f"{argname} must be a non-empty list of chromosome names, got {chroms!r}.")
    names = list(lists)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = sorted({str(c) for c in lists[first]} & {str(c) for c in lists[second]})
            if shared:
                raise ValueError(f"{first} and {second} overlap: {shared}; a chromosome may be in one split only.")

    fasta, lengths = _open_genome(sequences, cache_dir)
    checked = {name: _check_chrom_list(chroms, name, lengths, str(sequences)) for name, chroms in lists.items()}
    peaks = _read_loci(loci, "loci", summits)
    background = None if negatives is None else _read_loci(negatives, "negatives", summits)
    streams = np.random.SeedSequence(random_state).spawn(len(checked))

    splits = {}
    for (argname, chroms), stream in zip(checked.items(), streams):
        key = {"training_chroms": "train", "validation_chroms": "valid", "test_chroms": "test"}[argname]
        splits[key] = _binary_from_genome(
            fasta,
            lengths,
            peaks,
            background,
            chroms,
            in_window,
            max_jitter if key == "train" else 0,
            n_negatives,
            np.random.default_rng(stream),
            f"The {key!r} split is empty: no interval of {peaks[1]} lies on {argname}={chroms}.",
        )
    return splits


# ----------------------------------------------------------------------------------------------
# Binary data from sequence files
# ----------------------------------------------------------------------------------------------


def _read_labelled(
    source: PathLike, argname: str, label: int, iupac: str
) -> tuple[list[str], list[str], list[int], list[str], list[str]]:
    """Read a FASTA (every record gets ``label``) or a DeepBind table (labels from ``Bound``).

    Returns names, sequences, labels, groups and sources. FASTA records form their own groups;
    table rows are grouped by EventID without its ``_peak``/``_shuf`` suffix, which pairs each
    DeepBind shuffle with its positive.
    """
    path = _existing_file(source, argname)
    if _is_table(path):
        table = _parse_table(path, iupac, argname)
        names = list(table.names)
        labels = table.labels.tolist()
        groups = [f"table:{_EVENT_SUFFIX.sub('', name)}" for name in names]
        sources = ["positives" if value == 1 else "negatives" for value in labels]
        return names, list(table.sequences), labels, groups, sources
    records = _parse_fasta(path, iupac, argname)
    names = [name for name, _ in records]
    groups = [f"{argname}:{name}" for name in names]
    sources = [argname] * len(records)
    return names, [seq for _, seq in records], [label] * len(records), groups, sources


def load_binary_fasta(
    positives: PathLike,
    negatives: PathLike | None = None,
    *,
    length: int | None = None,
    n_shuffles: int = 1,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    random_state: int | None = 0,
    iupac: Literal["error", "N"] = "error",
) -> dict[str, BinaryData]:
    """Build randomly split binary data sets from files of sequences.

    ``positives`` and ``negatives`` are FASTA files (plain or gzip; label 1 and 0 respectively)
    or DeepBind tables (``.seq``/``.seq.gz``, whose ``Bound`` column gives the label of each
    row wherever the file is passed). When no negative example results (no ``negatives`` and no
    ``Bound = 0`` row), each positive gets ``n_shuffles`` dinucleotide-shuffled copies made by
    ``tangermeme.ersatz.dinucleotide_shuffle`` with ``allow_N=True``: an N (including N padding
    added by ``length``) is shuffled as a fifth character, so every dinucleotide count, N-pairs
    included, is preserved and the first and last characters stay in place.

    Splitting. Examples are grouped so that related sequences never straddle splits: a positive
    and its own shuffles form one group, and table rows whose EventIDs differ only by a
    ``_peak``/``_shuf`` suffix form one group (DeepBind's test negatives are shuffles of the
    positive with the same number). Groups are permuted with a seeded generator; the first
    ``round(test_fraction * n_groups)`` go to "test", the next
    ``round(validation_fraction * n_groups)`` to "valid", the rest to "train". Within a split,
    examples keep their file order (positives, then negatives or shuffles).

    Parameters
    ----------
    positives: str or os.PathLike
        FASTA of bound sequences, or a DeepBind table.
    negatives: str, os.PathLike or None, optional
        FASTA of unbound sequences, or a DeepBind table. Default is None.
    length: int or None, optional
        Common length; sequences are centre-cropped or N-padded as in ``one_hot_sequences``.
        If None, all sequences must have the same length. Default is None.
    n_shuffles: int, optional
        Shuffled negatives per positive when shuffles are made. Default is 1.
    validation_fraction: float, optional
        Fraction of groups in "valid"; no "valid" key when 0. Default is 0.1.
    test_fraction: float, optional
        Fraction of groups in "test"; no "test" key when 0. Default is 0.1.
    random_state: int or None, optional
        Seed for the shuffles and the split. Default is 0.
    iupac: {"error", "N"}, optional
        As in ``read_fasta``. Default is "error".

    Returns
    -------
    splits: dict of str to BinaryData
        "train", plus "valid" and "test" when their fractions are positive. ``X`` is
        (N, 4, L) int8, ``y`` (N, 1) float32; ``coords`` has ``name``, ``group`` and ``source``.

    Raises
    ------
    ValueError
        On malformed files, mismatched lengths without ``length``, bad fractions or
        ``n_shuffles``, or a split left empty (naming it).
    """
    for argname, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{argname} must be in [0, 1), got {value!r}.")
    if validation_fraction + test_fraction >= 1:
        raise ValueError(
            f"validation_fraction + test_fraction must be below 1 to leave a training split, got "
            f"{validation_fraction} + {test_fraction}."
        )
    if not isinstance(n_shuffles, (int, np.integer)) or n_shuffles < 1:
        raise ValueError(f"n_shuffles must be a positive integer, got {n_shuffles!r}.")
    _check_iupac_option(iupac)

    names, seqs, labels, groups, sources = _read_labelled(positives, "positives", 1, iupac)
    if negatives is not None:
        more = _read_labelled(negatives, "negatives", 0, iupac)
        for column, extra in zip((names, seqs, labels, groups, sources), more):
            column.extend(extra)
    if 1 not in labels:
        raise ValueError(f"positives: {positives} holds no bound (label 1) sequence.")

    labelled = [(f"{source} {name}", seq) for name, seq, source in zip(names, seqs, sources)]
    X = one_hot_sequences(labelled, length=length, iupac=iupac)
    y = torch.tensor(labels, dtype=torch.float32).unsqueeze(1)
    rng = np.random.default_rng(random_state)

    if 0 not in labels:
        bound = np.flatnonzero(np.asarray(labels) == 1)
        seeds = rng.integers(0, 2**31 - 1, size=len(bound)).tolist()
        shuffled = dinucleotide_shuffle(X[bound], n=n_shuffles, random_state=seeds, allow_N=True)
        X = torch.cat([X, shuffled.reshape(-1, 4, X.shape[-1]).to(torch.int8)])
        y = torch.cat([y, torch.zeros(len(bound) * n_shuffles, 1)])
        for i in bound.tolist():
            for k in range(n_shuffles):
                names.append(f"{names[i]}_shuf{k}")
                groups.append(groups[i])
                sources.append("shuffle")

    coords = pd.DataFrame({"name": names, "group": groups, "source": sources})
    codes, uniques = pd.factorize(coords["group"])
    n_groups = len(uniques)
    order = rng.permutation(n_groups)
    n_test = int(round(test_fraction * n_groups))
    n_valid = int(round(validation_fraction * n_groups))
    assignment = np.full(n_groups, "train", dtype=object)
    assignment[order[:n_test]] = "test"
    assignment[order[n_test : n_test + n_valid]] = "valid"

    wanted = {"train": True, "valid": validation_fraction > 0, "test": test_fraction > 0}
    splits = {}
    for key, present in wanted.items():
        if not present:
            continue
        idx = np.flatnonzero(assignment[codes] == key)
        if len(idx) == 0:
            raise ValueError(
                f"The {key!r} split is empty: {n_groups} groups of sequences with validation_fraction="
                f"{validation_fraction} and test_fraction={test_fraction} leave it none."
            )
        index = torch.from_numpy(idx)
        splits[key] = BinaryData(X[index], y[index], coords.iloc[idx].reset_index(drop=True))
    return splits


# ----------------------------------------------------------------------------------------------
# Binary batch loader
# ----------------------------------------------------------------------------------------------


class _SeededSampler(torch.utils.data.Sampler):
    """Yield ``(index, seed)`` pairs: the epoch's order plus one augmentation seed per item.

    All randomness is drawn here, in the main process, so batches do not depend on
    ``num_workers``; the generator persists, so each epoch differs but the sequence of epochs
    is fixed by the seed. ``set_epoch(k)`` (called by ``training.fit`` before every epoch, as for
    ``DistributedSampler``) puts the generator where it stands at the start of epoch ``k``, so a
    run resumed from a checkpoint in a new process sees the same batches as an uninterrupted one.
    """

    def __init__(self, n: int, shuffle: bool, random_state: int | None) -> None:
        self.n = n
        self.shuffle = shuffle
        self.random_state = random_state
        self.rng = np.random.default_rng(random_state)
        self.epoch = 0  # epochs drawn so far

    def _draw(self) -> tuple[np.ndarray, np.ndarray]:
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        return order, self.rng.integers(0, 2**63 - 1, size=self.n)

    def set_epoch(self, epoch: int) -> None:
        """Replay the draws of epochs ``0 .. epoch - 1`` from the seed (no-op when already there)."""
        if epoch == self.epoch or self.random_state is None:
            self.epoch = epoch
            return
        self.rng = np.random.default_rng(self.random_state)
        for _ in range(epoch):
            self._draw()
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, seeds = self._draw()
        self.epoch += 1
        return iter(zip(order.tolist(), seeds.tolist()))

    def __len__(self) -> int:
        return self.n


class _AugmentedBinaryDataset(torch.utils.data.Dataset):
    """Crop (jitter) and optionally reverse-complement one example per ``(index, seed)`` item."""

    def __init__(
        self, X: torch.Tensor, y: torch.Tensor, in_window: int, max_jitter: int, reverse_complement: bool
    ) -> None:
        self.X = X
        self.y = y
        self.labels = (y >= 0.5).any(dim=1).long()
        self.in_window = in_window
        self.max_jitter = max_jitter
        self.centre = (X.shape[-1] - in_window) // 2
        self.reverse_complement = reverse_complement

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if isinstance(item, tuple):
            idx, seed = item
            rng = np.random.default_rng(seed)
            offset = self.centre + int(rng.integers(-self.max_jitter, self.max_jitter + 1))
            flip = self.reverse_complement and bool(rng.random() < 0.5)
        else:
            idx, offset, flip = item, self.centre, False
        Xi = self.X[idx, :, offset : offset + self.in_window]
        if flip:
            Xi = Xi.flip(0).flip(1)
        return Xi, self.y[idx], self.labels[idx]


def binary_dataloader(
    X: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray | Sequence[float],
    *,
    batch_size: int = 64,
    shuffle: bool = True,
    reverse_complement: bool = False,
    max_jitter: int = 0,
    in_window: int | None = None,
    random_state: int | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader of binary training batches in bpnet-lite's ``(X, y, labels)`` layout.

    Each item is a crop of ``in_window`` positions from its (widened) sequence. The crop starts
    at ``(L - in_window) // 2 + j`` with ``j`` drawn uniformly from ``[-max_jitter, max_jitter]``
    (both ends included; bpnet-lite's sampler never draws the last offset). With
    ``reverse_complement`` each item is, with probability 0.5, replaced by its reverse
    complement ``Xi.flip(0).flip(1)`` (valid for ACGT one-hot, N stays N); the binary labels do
    not change. All random draws (order, offsets, flips) come from one generator seeded by
    ``random_state`` in the main process, so batches are reproducible and independent of
    ``num_workers``; successive epochs differ.

    Parameters
    ----------
    X: torch.Tensor or numpy.ndarray, shape=(N, 4, L)
        One-hot sequences, e.g. ``BinaryData.X``; stored as int8.
    y: torch.Tensor, numpy.ndarray or sequence, shape=(N,) or (N, n_tasks)
        Labels (soft labels allowed); returned as float32 (B, n_tasks).
    batch_size: int, optional
        Examples per batch. Default is 64.
    shuffle: bool, optional
        Visit examples in a new random order every epoch. Default is True.
    reverse_complement: bool, optional
        Reverse-complement each item with probability 0.5. Default is False.
    max_jitter: int, optional
        Largest crop shift in either direction. Requires ``L >= in_window + 2 * max_jitter``.
        Default is 0.
    in_window: int or None, optional
        Crop length. If None, ``L - 2 * max_jitter``. Default is None.
    random_state: int or None, optional
        Seed of all random draws. Default is None.
    num_workers: int, optional
        DataLoader worker processes. Default is 0.
    drop_last: bool, optional
        Drop the last incomplete batch. Default is False.
    pin_memory: bool, optional
        Pin batches in page-locked memory (for GPU training). Default is False.

    Returns
    -------
    loader: torch.utils.data.DataLoader
        Yields ``X`` (B, 4, in_window) int8, ``y`` (B, n_tasks) float32 and ``labels`` (B,)
        int64, 1 when any task has ``y >= 0.5``.

    Raises
    ------
    ValueError
        If ``X`` is not (N, 4, L) one-hot, ``y`` does not have N rows, or the window arguments
        do not fit ``L``.
    """
    if isinstance(X, np.ndarray):
        X = torch.from_numpy(X)
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or X.shape[1] != 4 or X.shape[0] == 0:
        shape = tuple(X.shape) if hasattr(X, "shape") else type(X).__name__
        raise ValueError(f"X must be a non-empty one-hot tensor of shape (N, 4, L), got {shape}.")
    if not bool(((X == 0) | (X == 1)).all()) or not bool((X.sum(dim=1) <= 1).all()):
        raise ValueError("X must be one-hot: entries 0 or 1 and at most one 1 per position.")
    X = X.to(torch.int8).contiguous()

    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y, dtype=torch.float32)
    if y.ndim == 1:
        y = y.unsqueeze(1)
    if y.ndim != 2 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape (N,) or (N, n_tasks) with N = {X.shape[0]}, got {tuple(y.shape)}.")

    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not isinstance(max_jitter, (int, np.integer)) or max_jitter < 0:
        raise ValueError(f"max_jitter must be a non-negative integer, got {max_jitter!r}.")
    length = X.shape[-1]
    if in_window is None:
        in_window = length - 2 * max_jitter
    if not isinstance(in_window, (int, np.integer)) or in_window < 1 or in_window + 2 * max_jitter > length:
        raise ValueError(
            f"in_window={in_window} with max_jitter={max_jitter} needs sequences of at least "
            f"in_window + 2 * max_jitter positions, but X has length {length}."
        )

    dataset = _AugmentedBinaryDataset(X, y, int(in_window), int(max_jitter), bool(reverse_complement))
    sampler = _SeededSampler(len(dataset), bool(shuffle), random_state)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=int(batch_size),
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )


# ----------------------------------------------------------------------------------------------
# Profile (bigWig) data
# ----------------------------------------------------------------------------------------------


def _check_tracks(tracks: object, argname: str) -> list:
    """Validate a list of bigWig paths (or in-memory tracks) and return it as a list."""
    if isinstance(tracks, (str, os.PathLike)):
        tracks = [tracks]
    if not isinstance(tracks, (list, tuple)) or len(tracks) == 0:
        raise ValueError(f"{argname} must be a non-empty list of bigWig paths, got {tracks!r}.")
    for track in tracks:
        if isinstance(track, (str, os.PathLike)):
            path = _existing_file(track, argname)
            with open(path, "rb") as handle:
                if handle.read(4) != _BIGWIG_MAGIC:
                    raise ValueError(f"{argname}: {path} is not a bigWig file.")
    return list(tracks)


def _check_track_chroms(tracks: list | None, argname: str, table: pd.DataFrame, source: str, loci_argname: str) -> None:
    """Raise when a bigWig lacks the chromosome of a record of ``table``, naming both files.

    tangermeme reads such a locus as zeros with a warning, which hides a mismatch of assemblies or
    of chromosome names ("chr1" against "1"). Positions that a bigWig covers without a value (NaN)
    are not checked: they read as 0, as in tangermeme and bpnet-lite.
    """
    import pyBigWig

    for track in tracks or []:
        if not isinstance(track, (str, os.PathLike)):
            continue
        handle = pyBigWig.open(str(track))
        if handle is None:
            raise ValueError(f"{argname}: pyBigWig could not open {track}.")
        try:
            chrom_sizes = handle.chroms()
        finally:
            handle.close()
        missing = ~table["chrom"].isin(list(chrom_sizes))
        if missing.any():
            first = table[missing].iloc[0]
            raise ValueError(
                f"{argname}: the bigWig {track} has no chromosome {first['chrom']!r}, used by {loci_argname} "
                f"(line/row {first['line']} of {source}); missing: {sorted(set(table.loc[missing, 'chrom']))}. "
                f"Its chromosomes are: {sorted(chrom_sizes)[:20]}."
            )


def _check_summits_given(table: pd.DataFrame, source: str, argname: str, summits: bool) -> None:
    """``extract_loci(summits=True)`` rejects narrowPeak's -1 ("no summit"); name the line first."""
    if summits and (table["summit"] < 0).any():
        line = int(table.loc[table["summit"] < 0, "line"].iloc[0])
        raise ValueError(f"{argname}: summits=True but line/row {line} of {source} has summit -1 (none called).")


def _loci_list(loci: object, argname: str) -> list:
    if isinstance(loci, (str, os.PathLike, pd.DataFrame)):
        return [loci]
    if isinstance(loci, (list, tuple)) and loci:
        return list(loci)
    raise ValueError(f"{argname} must be a BED path, a DataFrame or a non-empty list of them, got {loci!r}.")


class _ZeroJitterRandomState(np.random.RandomState):
    """A RandomState whose ``randint(0)`` returns 0 instead of raising.

    bpnet-lite 1.1.0's ``PeakNegativeSampler`` draws each peak's jitter as
    ``randint(max_jitter * 2)``, which raises "high <= 0" when ``max_jitter == 0``. Every other
    draw is unchanged, so with the same seed the stream matches a plain RandomState.
    """

    def randint(self, low, high=None, size=None, dtype=int):  # noqa: D102 - numpy's signature
        if high is None and size is None and low == 0:
            return 0
        return super().randint(low, high, size, dtype)


def _checked_track_loci(loci, argname: str, summits: bool, chroms, lengths: dict[str, int], sequences,
                        signals: list, controls: list | None) -> list[pd.DataFrame]:
    """Read every BED of ``loci`` on ``chroms`` and check it against the genome and the bigWigs."""
    tables = []
    for item in _loci_list(loci, argname):
        table, source = _read_loci(item, argname, True if summits else False)
        _check_summits_given(table, source, argname, summits)
        if chroms is not None:
            table = table[table["chrom"].isin(chroms)]
        _check_on_genome(table, source, argname, lengths, str(sequences))
        _check_track_chroms(signals, "signals", table, source, argname)
        _check_track_chroms(controls, "controls", table, source, argname)
        tables.append(table)
    return tables


def profile_dataloader(
    peaks: LociLike | Sequence[LociLike],
    negatives: LociLike | Sequence[LociLike] | None,
    sequences: PathLike,
    signals: Sequence[PathLike] | PathLike,
    controls: Sequence[PathLike] | PathLike | None = None,
    chroms: Sequence[str] | None = None,
    in_window: int = 2114,
    out_window: int = 1000,
    max_jitter: int = 128,
    negative_ratio: float = 0.1,
    reverse_complement: bool = True,
    shuffle: bool = True,
    min_counts: float | None = None,
    max_counts: float | None = None,
    summits: bool = False,
    exclusion_lists: list | None = None,
    random_state: int | None = None,
    pin_memory: bool | None = None,
    num_workers: int = 0,
    batch_size: int = 32,
    verbose: bool = False,
    *,
    cache_dir: PathLike | None = None,
) -> torch.utils.data.DataLoader:
    """A checked front end to ``bpnetlite.io.PeakGenerator`` for profile (bigWig) training.

    Arguments have ``PeakGenerator``'s names, order and meaning, and batches its layout:
    ``(X, y, labels)`` or, with controls, ``(X, X_ctl, y, labels)``; ``X`` (B, 4, in_window)
    int8, ``X_ctl`` (B, n_controls, in_window), ``y`` (B, n_signals, out_window) float32,
    ``labels`` (B,) int64 with 1 = peak. Additions and differences:

    * paths are checked first (missing files raise ``FileNotFoundError`` naming the argument;
      a signal that is not a bigWig, a peak chromosome absent from the FASTA raise
      ``ValueError`` naming file and line);
    * a gzip FASTA is decompressed once (``ensure_plain_fasta``);
    * a single signal/control path is accepted in place of a one-element list;
    * ``negatives=None`` draws one random genomic window per selected peak, of
      ``max(in_window, out_window)`` bp, on the peaks' chromosomes (or ``chroms``), avoiding
      peaks and windows with more than 10% N (``PeakGenerator`` itself requires negatives);
      the draw is seeded by ``random_state``;
    * ``max_jitter=0`` works (bpnet-lite 1.1.0 raises "high <= 0" on it);
    * ``pin_memory=None`` pins only when CUDA is available (PeakGenerator's True warns on CPU).

    Note that ``PeakGenerator`` drops peaks whose counts exceed 1.2 times the 99th percentile,
    and that its reverse complement flips ``y`` on both axes, so stranded tracks swap.

    Parameters
    ----------
    peaks, negatives, sequences, signals, controls, chroms, in_window, out_window, max_jitter,
    negative_ratio, reverse_complement, shuffle, min_counts, max_counts, summits,
    exclusion_lists, random_state, num_workers, batch_size, verbose:
        As in ``bpnetlite.io.PeakGenerator``.
    pin_memory: bool or None, optional
        As in ``PeakGenerator``; None means ``torch.cuda.is_available()``. Default is None.
    cache_dir: str, os.PathLike or None, optional
        Where a gzip FASTA is decompressed. Default is None.

    Returns
    -------
    loader: torch.utils.data.DataLoader
        The loader built by ``PeakGenerator``.
    """
    from bpnetlite.io import PeakGenerator

    _check_window_args(in_window, max_jitter)
    if not isinstance(out_window, (int, np.integer)) or out_window < 1:
        raise ValueError(f"out_window must be a positive integer, got {out_window!r}.")
    if not negative_ratio > 0:
        raise ValueError(f"negative_ratio must be positive, got {negative_ratio!r}.")
    fasta, lengths = _open_genome(sequences, cache_dir)
    chroms = _check_chrom_list(chroms, "chroms", lengths, str(sequences))
    signals = _check_tracks(signals, "signals")
    controls = None if controls is None else _check_tracks(controls, "controls")

    peak_tables = _checked_track_loci(peaks, "peaks", summits, chroms, lengths, sequences, signals, controls)
    peak_table = pd.concat(peak_tables, ignore_index=True)
    if len(peak_table) == 0:
        raise ValueError(f"peaks: no interval lies on the chromosomes {chroms}.")

    if negatives is None:
        width = max(in_window, out_window)
        pools = chroms if chroms is not None else [c for c in lengths if c in set(peak_table["chrom"])]
        exclude = {}
        for chrom, on in peak_table.groupby("chrom"):
            starts = on["start"].to_numpy(np.int64)
            # zero-length BED intervals still mark a position to avoid
            exclude[chrom] = _merged_intervals(starts, np.maximum(on["end"].to_numpy(np.int64), starts + 1))
        negatives = _random_windows(
            fasta, lengths, pools, len(peak_table), width, exclude, np.random.default_rng(random_state)
        )
    else:
        for item in _loci_list(negatives, "negatives"):
            table, source = _read_loci(item, "negatives", False)
            if chroms is not None:
                table = table[table["chrom"].isin(chroms)]
            _check_on_genome(table, source, "negatives", lengths, str(sequences))

    loader = PeakGenerator(
        peaks,
        negatives,
        fasta,
        signals,
        controls=controls,
        chroms=chroms,
        in_window=in_window,
        out_window=out_window,
        max_jitter=max_jitter,
        negative_ratio=negative_ratio,
        reverse_complement=reverse_complement,
        shuffle=shuffle,
        min_counts=min_counts,
        max_counts=max_counts,
        summits=summits,
        exclusion_lists=exclusion_lists,
        random_state=random_state,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        num_workers=num_workers,
        batch_size=batch_size,
        verbose=verbose,
    )
    if max_jitter == 0:
        loader.dataset.random_state = _ZeroJitterRandomState(random_state)
    return loader


def load_profile_data(
    loci: LociLike | Sequence[LociLike],
    sequences: PathLike,
    signals: Sequence[PathLike] | PathLike,
    controls: Sequence[PathLike] | PathLike | None = None,
    *,
    chroms: Sequence[str] | None,
    in_window: int,
    out_window: int,
    summits: bool = False,
    cache_dir: PathLike | None = None,
) -> ProfileData:
    """Read sequences and signals at fixed loci, for profile validation and test sets.

    A checked wrapper of ``tangermeme.io.extract_loci`` (no jitter, no shuffling) that always
    returns three objects, unlike ``extract_loci`` whose return value depends on its
    arguments. Windows are centred on ``start + (end - start) // 2``, or on the summit with
    ``summits=True``; windows off a chromosome end are dropped by ``extract_loci``. Non-ACGT
    letters become all-zero columns, as in ``PeakGenerator``. A bigWig without a chromosome that
    a locus is on raises a ValueError naming both files; positions a bigWig has no value for (NaN)
    read as 0, as in tangermeme and bpnet-lite.

    Parameters
    ----------
    loci: str, os.PathLike, pandas.DataFrame or a list of them
        BED/narrowPeak loci (several are interleaved, as in ``extract_loci``).
    sequences: str or os.PathLike
        Genome FASTA, plain or gzip.
    signals: list of str or os.PathLike
        bigWig tracks read over the output window (e.g. plus and minus strand).
    controls: list of str or os.PathLike or None, optional
        bigWig tracks read over the input window. Default is None.
    chroms: list of str or None
        Only loci on these chromosomes (None: all), e.g. the validation chromosomes.
    in_window: int
        Input (sequence) window.
    out_window: int
        Output (signal) window.
    summits: bool, optional
        Centre on narrowPeak summits. Default is False.
    cache_dir: str, os.PathLike or None, optional
        Where a gzip FASTA is decompressed. Default is None.

    Returns
    -------
    data: ProfileData
        ``X`` (N, 4, in_window) int8, ``X_ctl`` (N, n_controls, in_window) float32 or None, and
        ``y`` (N, n_signals, out_window) float32.
    """
    _check_window_args(in_window, 0)
    if not isinstance(out_window, (int, np.integer)) or out_window < 1:
        raise ValueError(f"out_window must be a positive integer, got {out_window!r}.")
    fasta, lengths = _open_genome(sequences, cache_dir)
    chroms = _check_chrom_list(chroms, "chroms", lengths, str(sequences))
    signals = _check_tracks(signals, "signals")
    controls = None if controls is None else _check_tracks(controls, "controls")
    _checked_track_loci(loci, "loci", summits, chroms, lengths, sequences, signals, controls)

    result = extract_loci(
        loci,
        fasta,
        signals=signals,
        in_signals=controls,
        chroms=chroms,
        in_window=in_window,
        out_window=out_window,
        summits=summits,
        ignore=_GENOME_IGNORE,
    )
    X, y = result[0], result[1]
    X_ctl = result[2] if controls is not None else None
    return ProfileData(X, X_ctl, y)
