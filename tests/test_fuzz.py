"""Fuzz tests (hypothesis) of the sequence and BED parsers and of the model's input validation.

The contract under test: whatever the input, a parser either returns a correct result or raises
``ValueError`` (never another exception), valid input round-trips, and the model either returns an
output of the right shape or raises ``ValueError`` exactly when the input is invalid.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from argminn_plugin import ARGMINN
from argminn_plugin.data import _read_loci, read_fasta

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _write(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------------------------
# FASTA
# ----------------------------------------------------------------------------------------------

names = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=">"), min_size=1,
                max_size=12)
valid_sequences = st.text(alphabet="ACGTNacgtn", min_size=1, max_size=200)


@SETTINGS
@given(
    records=st.dictionaries(names, valid_sequences, min_size=1, max_size=6),
    width=st.integers(1, 80),
    descriptions=st.booleans(),
    blank_lines=st.booleans(),
    compress=st.booleans(),
)
def test_valid_fasta_round_trips(folder, records, width, descriptions, blank_lines, compress):
    lines = []
    for name, seq in records.items():
        lines.append(f">{name}" + (" some description\t1" if descriptions else ""))
        lines += [seq[i : i + width] for i in range(0, len(seq), width)]
        if blank_lines:
            lines.append("")
    content = ("\n".join(lines) + "\n").encode()
    path = _write(folder, "valid.fa", gzip.compress(content) if compress else content)
    assert read_fasta(path) == list(records.items())


@SETTINGS
@given(
    header=names,
    seq=st.text(alphabet="ACGTN", min_size=1, max_size=60),
    position=st.integers(0, 59),
    bad=st.characters(min_codepoint=33, max_codepoint=126).filter(lambda c: c not in "ACGTNacgtn>"),
)
def test_one_bad_character_is_reported_where_it_is(folder, header, seq, position, bad):
    position = position % len(seq)
    path = _write(folder, "bad.fa", f">{header}\n{seq[:position]}{bad}{seq[position + 1:]}\n".encode())
    with pytest.raises(ValueError) as info:
        read_fasta(path)
    message = str(info.value)
    assert f"line 2, column {position + 1}" in message and str(path) in message and repr(bad) in message


@SETTINGS
@given(content=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    st.lists(st.sampled_from([">a", ">b c", "ACGT", "acgn", "", ">", "RYK", "AC-T", "\x00", "\r"]), max_size=12).map(
        lambda ls: "\n".join(ls).encode()),
    # mostly well-formed: numbered headers, each followed by lines that are usually sequence
    st.lists(st.lists(st.sampled_from(["ACGT", "nnac", "", "ACGT", "RY", "A*", ">"]), min_size=1, max_size=3),
             min_size=1, max_size=5).map(
        lambda recs: "\n".join(f">r{i}\n" + "\n".join(lines) for i, lines in enumerate(recs)).encode()),
))
def test_fasta_parser_returns_or_raises_value_error(folder, content):
    path = _write(folder, "any.fa", content)
    try:
        records = read_fasta(path, iupac="N")
    except ValueError:
        event("ValueError")
        return
    event("parsed")
    assert records and all(name and seq and set(seq) <= set("ACGTNacgtn") for name, seq in records)
    assert len({name for name, _ in records}) == len(records)


@SETTINGS
@given(content=st.binary(max_size=200))
def test_gzip_looking_garbage_raises_value_error(folder, content):
    path = _write(folder, "garbage.fa.gz", b"\x1f\x8b" + content)
    try:
        read_fasta(path)
    except ValueError:
        pass


# ----------------------------------------------------------------------------------------------
# BED
# ----------------------------------------------------------------------------------------------

# Lines starting with "track" or "browser" are BED header lines, so no chromosome name may start so.
chrom_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzXYM0123456789_", min_size=1, max_size=8).filter(
    lambda name: not name.startswith(("track", "browser")))


@st.composite
def bed_records(draw):
    chrom = draw(chrom_names)
    start = draw(st.integers(0, 10**9))
    end = start + draw(st.integers(1, 10**6))
    summit = draw(st.one_of(st.none(), st.just(-1), st.integers(0, end - start - 1)))
    return chrom, start, end, summit


@SETTINGS
@given(records=st.lists(bed_records(), min_size=1, max_size=20), comments=st.booleans(), spaces=st.booleans())
def test_valid_bed_round_trips(folder, records, comments, spaces):
    sep = " " if spaces else "\t"
    lines = ["track name=x", "# comment"] if comments else []
    for chrom, start, end, summit in records:
        fields = [chrom, str(start), str(end)]
        if summit is not None:
            fields += ["peak", "0", ".", "1.0", "-1", "-1", str(summit)]
        lines.append(sep.join(fields))
    path = _write(folder, "valid.bed", ("\n".join(lines) + "\n").encode())
    table, source = _read_loci(path, "loci", "auto")
    assert source == str(path)
    assert table[["chrom", "start", "end"]].values.tolist() == [[c, s, e] for c, s, e, _ in records]
    expected_centre = [s + x if x is not None and x >= 0 else s + (e - s) // 2 for _, s, e, x in records]
    assert table["centre"].tolist() == expected_centre
    assert (table["start"] <= table["centre"]).all() and (table["centre"] < table["end"]).all()
    first_line = 3 if comments else 1
    assert table["line"].tolist() == list(range(first_line, first_line + len(records)))


field = st.one_of(st.integers(-10**6, 10**6).map(str), chrom_names, st.sampled_from(["", "1e3", "nan", "-1", "3.5"]))


def _mostly_valid_row(values):
    chrom, start, length, extra = values
    return [chrom, str(start), str(start + length)] + extra


@SETTINGS
@given(rows=st.lists(st.one_of(
    st.lists(field, min_size=0, max_size=11),
    st.tuples(chrom_names, st.integers(-2, 100), st.integers(-2, 100), st.lists(field, max_size=8)).map(
        _mostly_valid_row),
), min_size=0, max_size=8))
def test_bed_parser_returns_or_raises_value_error_naming_the_line(folder, rows):
    path = _write(folder, "any.bed", ("\n".join("\t".join(row) for row in rows) + "\n").encode())
    try:
        table, _ = _read_loci(path, "loci", "auto")
    except ValueError as err:
        assert "loci" in str(err) and str(path) in str(err)
        event("ValueError")
        return
    event("parsed")
    assert len(table) > 0
    assert (table["start"] >= 0).all() and (table["start"] < table["end"]).all()
    assert ((table["centre"] >= table["start"]) & (table["centre"] < table["end"])).all()


@SETTINGS
@given(rows=st.lists(st.tuples(chrom_names, st.integers(-5, 50), st.integers(-5, 50)), min_size=1, max_size=6))
def test_bed_dataframe_input_follows_the_same_rules(rows):
    frame = pd.DataFrame(rows)
    bad = [i for i, (_, s, e) in enumerate(rows, start=1) if s < 0 or e < 0 or e <= s]
    if bad:
        with pytest.raises(ValueError, match=f"row {bad[0]} of the DataFrame"):
            _read_loci(frame, "loci", "auto")
    else:
        table, _ = _read_loci(frame, "loci", "auto")
        assert table[["chrom", "start", "end"]].values.tolist() == [list(r) for r in rows]


# ----------------------------------------------------------------------------------------------
# Model input validation
# ----------------------------------------------------------------------------------------------

_MODEL = None


def model() -> ARGMINN:
    global _MODEL
    if _MODEL is None:
        torch.manual_seed(0)
        _MODEL = ARGMINN(n_filters=2, filter_width=5, n_attention_layers=1, n_heads=1, pos_enc_dim=4, token_dim=4,
                         stream_dim=8, n_tasks=2, verbose=False).eval()
    return _MODEL


DTYPES = [torch.int8, torch.int64, torch.uint8, torch.bool, torch.float16, torch.float32, torch.float64]


@st.composite
def model_inputs(draw):
    if draw(st.booleans()):  # the shape the model wants, N >= 1, L >= 1 (L < filter_width is still an error)
        ndim, shape = 3, [draw(st.integers(1, 6)), 4, draw(st.integers(1, 30))]
    else:
        ndim = draw(st.sampled_from([1, 2, 3, 4]))
        shape = [draw(st.integers(0, 6))]
        if ndim >= 2:
            shape.append(draw(st.sampled_from([4, 3, 5, 1])))
        if ndim >= 3:
            shape.append(draw(st.integers(1, 30)))
        if ndim >= 4:
            shape.append(draw(st.integers(1, 3)))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["one_hot", "one_hot_with_n", "one_hot", "random", "nan", "negative",
                                 "two_per_column"]))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    if ndim == 3 and shape[1] == 4 and kind.startswith("one_hot"):
        idx = torch.randint(0, 5 if kind == "one_hot_with_n" else 4, (shape[0], shape[2]), generator=g)
        X = torch.nn.functional.one_hot(idx, 5)[..., :4].permute(0, 2, 1)
    elif kind == "nan":
        X = torch.full(shape, float("nan"))
    elif kind == "negative":
        X = -torch.ones(shape)
    elif kind == "two_per_column":
        X = torch.ones(shape)
    else:
        X = torch.rand(shape, generator=g) * 3
    if dtype.is_floating_point or dtype == torch.bool or not torch.isnan(X).any():
        X = X.to(dtype)
    return X


def is_valid_input(X: torch.Tensor, filter_width: int) -> bool:
    """Independent statement of what ARGMINN accepts: (N>0, 4, L>=filter_width) one-hot, N allowed."""
    if X.ndim != 3 or X.shape[0] == 0 or X.shape[1] != 4 or X.shape[2] < filter_width:
        return False
    values = X.double().numpy()
    if np.isnan(values).any() or not np.isin(values, [0.0, 1.0]).all():
        return False
    return bool((values.sum(axis=1) <= 1).all())


@settings(max_examples=120, deadline=None)
@given(X=model_inputs())
def test_model_returns_the_right_shape_or_raises_value_error(X):
    net = model()
    valid = is_valid_input(X, net.filter_width)
    event("valid" if valid else "invalid")
    if valid:
        with torch.no_grad():
            y = net(X)
        assert y.shape == (X.shape[0], 2) and y.dtype == torch.float32 and torch.isfinite(y).all()
    else:
        with pytest.raises(ValueError, match="X"):
            with torch.no_grad():
                net(X)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 4), length=st.integers(5, 40), seed=st.integers(0, 1000))
def test_valid_inputs_of_any_dtype_agree(n, length, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (n, length), generator=g), 4).permute(0, 2, 1)
    assume(length >= model().filter_width)
    with torch.no_grad():
        reference = model()(X.float())
        for dtype in (torch.int8, torch.bool, torch.float64, torch.uint8):
            torch.testing.assert_close(model()(X.to(dtype)), reference)


# ----------------------------------------------------------------------------------------------
# Genome-scan window layout
# ----------------------------------------------------------------------------------------------


@SETTINGS
@given(lengths=st.lists(st.integers(1, 3000), min_size=1, max_size=4), window=st.integers(10, 200),
       width=st.integers(1, 10), stride_fraction=st.floats(0.05, 1.0))
def test_scan_windows_own_every_instance_start_exactly_once(lengths, window, width, stride_fraction):
    from argminn_plugin.scan import genome_windows

    span = window - width + 1
    stride = max(1, int(stride_fraction * span))
    table = genome_windows({f"c{i}": n for i, n in enumerate(lengths)}, window, stride, span)
    for i, n in enumerate(lengths):
        own = table[table["chrom"] == f"c{i}"]
        if n < window:
            assert own.empty
            continue
        assert (own["start"] >= 0).all() and (own["end"] <= n).all() and (own["end"] - own["start"] == window).all()
        assert own["start"].is_monotonic_increasing and own["end"].iloc[-1] == n
        # the owned ranges lie inside each window's activation positions and tile 0 .. n - width
        assert (own["owned_start"] >= own["start"]).all() and (own["owned_end"] <= own["start"] + span).all()
        assert own["owned_start"].iloc[0] == 0 and own["owned_end"].iloc[-1] == n - width + 1
        assert (own["owned_start"].to_numpy()[1:] == own["owned_end"].to_numpy()[:-1]).all()
        assert (own["owned_end"] >= own["owned_start"]).all()
