"""Tests for argminn_plugin.modisco.

The written file is read back with h5py and compared with values recomputed here: seqlet sequences
are decoded to strings and compared with the sequence text (reverse-complemented with a string
table), and the information-weighted PFM is recomputed from its formula. ``modisco report -l``
runs on the file in a subprocess and must match the planted JASPAR motifs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from memelite.io import read_meme, write_meme

from argminn_plugin.modisco import MODISCO_CLI_DEFAULTS, read_modisco_h5, run_modisco, write_modisco_h5
from argminn_plugin.simulate import DEFAULT_MOTIF_FILE, simulate_sequences

COMPLEMENT = str.maketrans("ACGT", "TGCA")


def _text(X: torch.Tensor) -> list[str]:
    return ["".join("ACGT"[i] for i in x.argmax(0).tolist()) for x in X]


def _decode(onehot_wx4: np.ndarray) -> str:
    return "".join("ACGT"[i] for i in onehot_wx4.argmax(1))


def _ic(pfm: np.ndarray) -> np.ndarray:
    p = (pfm + 0.001) / (pfm + 0.001).sum(0, keepdims=True)
    return (p * np.log2(p / 0.25)).sum(0)


@pytest.fixture(scope="module")
def sim():
    return simulate_sequences("mixture", 30, 0, length=120, center_jitter=10, random_state=0)


@pytest.fixture(scope="module")
def written(sim, tmp_path_factory):
    path = tmp_path_factory.mktemp("modisco") / "argminn.h5"
    write_modisco_h5(path, sim.motifs, sim.instances, sim.X)
    return path


def test_layout_and_seqlets(sim, written):
    text = _text(sim.X)
    names = list(sim.motifs)
    with h5py.File(written, "r") as f:
        assert int(f.attrs["window_size"]) == sim.X.shape[-1]
        assert list(f.keys()) == ["pos_patterns"]
        assert sorted(f["pos_patterns"].keys()) == [f"pattern_{i}" for i in range(len(names))]
        for i, name in enumerate(names):
            g = f[f"pos_patterns/pattern_{i}"]
            assert g.attrs["name"] == name
            width = sim.motifs[name].shape[1]
            truth = sim.instances[sim.instances["motif"] == name].reset_index(drop=True)
            s = g["seqlets"]
            n = int(s["n_seqlets"][0])
            assert n == len(truth) > 0
            for field in ("sequence", "contrib_scores", "hypothetical_contribs"):
                assert g[field].shape == (width, 4) and g[field].dtype == np.float64
                assert s[field].shape == (n, width, 4) and s[field].dtype == np.float32
            assert s["is_revcomp"].dtype == bool
            np.testing.assert_array_equal(s["start"][:], truth["start"])
            np.testing.assert_array_equal(s["end"][:], truth["end"])
            np.testing.assert_array_equal(s["example_idx"][:], truth["example_idx"])
            np.testing.assert_array_equal(s["is_revcomp"][:], truth["strand"] == "-")
            for k, row in truth.iterrows():
                window = text[row.example_idx][row.start : row.end]
                expected = window.translate(COMPLEMENT)[::-1] if row.strand == "-" else window
                assert _decode(s["sequence"][k]) == expected
            # Default contributions: the information-weighted PFM, recomputed here.
            pfm = sim.motifs[name] / sim.motifs[name].sum(0)
            weighted = (pfm * _ic(pfm)).T
            np.testing.assert_allclose(g["sequence"][:], pfm.T)
            np.testing.assert_allclose(g["contrib_scores"][:], weighted, rtol=1e-10)
            np.testing.assert_allclose(g["hypothetical_contribs"][:], weighted, rtol=1e-10)
            np.testing.assert_allclose(s["hypothetical_contribs"][0], weighted, rtol=1e-6)
            # Seqlet contributions keep only the observed bases.
            np.testing.assert_allclose(s["contrib_scores"][:], s["sequence"][:] * s["hypothetical_contribs"][:])


def test_round_trip(sim, written):
    motifs = read_modisco_h5(written)
    assert list(motifs) == list(sim.motifs)
    for name, pfm in sim.motifs.items():
        assert motifs[name].shape == pfm.shape
        np.testing.assert_allclose(motifs[name], pfm / pfm.sum(0))
    tags = read_modisco_h5(written, use_names=False)
    assert list(tags) == ["pos_patterns.pattern_0", "pos_patterns.pattern_1"]
    with pytest.raises(ValueError, match="does not exist"):
        read_modisco_h5(written.parent / "missing.h5")
    with pytest.raises(ValueError, match="HDF5"):
        (written.parent / "not.h5").write_text("plain text")
        read_modisco_h5(written.parent / "not.h5")


def test_window_offsets_and_contrib(tmp_path):
    # One 20-bp sequence, two 8-bp instances of a 4-bp motif, one per strand.
    seq = "ACGTTGCAAGCTTACGGATC"
    X = torch.tensor(np.eye(4, dtype=np.int8)[["ACGT".index(c) for c in seq]].T[None])
    motif = np.full((4, 4), 0.25)
    instances = pd.DataFrame({"example_idx": [0, 0], "start": [2, 10], "end": [10, 18],
                              "motif": ["m", "m"], "strand": ["+", "-"]})
    contrib = torch.arange(80, dtype=torch.float32).reshape(1, 4, 20)
    path = tmp_path / "c.h5"
    write_modisco_h5(path, {"m": motif}, instances, X, contrib=contrib, offsets={"m": 1})
    with h5py.File(path, "r") as f:
        s = f["pos_patterns/pattern_0/seqlets"]
        # '+': columns 1..5 of [2, 10) -> [3, 7); '-': 1 bp in from the end -> [13, 17)
        np.testing.assert_array_equal(s["start"][:], [3, 13])
        assert _decode(s["sequence"][0]) == seq[3:7]
        assert _decode(s["sequence"][1]) == seq[13:17].translate(COMPLEMENT)[::-1]
        hyp0 = contrib[0, :, 3:7].numpy().T
        hyp1 = contrib[0, :, 13:17].flip(0).flip(1).numpy().T
        np.testing.assert_allclose(s["hypothetical_contribs"][:], np.stack([hyp0, hyp1]))
        np.testing.assert_allclose(f["pos_patterns/pattern_0/contrib_scores"][:],
                                   (s["sequence"][:] * s["hypothetical_contribs"][:]).mean(0))
        assert f.attrs["contrib_source"] == "attributions"
    # Centred (no offset): '+' [2, 10) -> [4, 8); '-' [10, 18) -> 2 bp in from the end, [12, 16).
    # A central window of 12 bp is [4, 16), so both fit, shifted by 4; one of 10 bp, [5, 15), drops both.
    write_modisco_h5(path, {"m": motif}, instances, X, window_size=12)
    with h5py.File(path, "r") as f:
        s = f["pos_patterns/pattern_0/seqlets"]
        assert int(f.attrs["window_size"]) == 12 and int(s["n_seqlets"][0]) == 2
        np.testing.assert_array_equal(s["start"][:], [0, 8])
        np.testing.assert_array_equal(s["end"][:], [4, 12])
        assert _decode(s["sequence"][0]) == seq[4:8]
        assert _decode(s["sequence"][1]) == seq[12:16].translate(COMPLEMENT)[::-1]
        assert f.attrs["contrib_source"] == "ic_weighted_pfm"
    write_modisco_h5(path, {"m": motif}, instances, X, window_size=10)
    with h5py.File(path, "r") as f:
        assert int(f["pos_patterns/pattern_0/seqlets/n_seqlets"][0]) == 0
        assert f["pos_patterns/pattern_0/seqlets/sequence"].shape == (0, 4, 4)


def test_strand_key_none_keeps_forward_windows(sim, tmp_path):
    path = tmp_path / "fwd.h5"
    write_modisco_h5(path, sim.motifs, sim.instances, sim.X, strand_key=None)
    text = _text(sim.X)
    with h5py.File(path, "r") as f:
        s = f["pos_patterns/pattern_0/seqlets"]
        assert not s["is_revcomp"][:].any()
        for k, (ex, start, end) in enumerate(zip(s["example_idx"][:], s["start"][:], s["end"][:])):
            assert _decode(s["sequence"][k]) == text[ex][start:end]


def test_errors_leave_no_file(sim, tmp_path):
    path = tmp_path / "bad.h5"
    with pytest.raises(ValueError, match=r"\(4, w\)"):
        write_modisco_h5(path, {"bad": np.ones((3, 5))}, sim.instances, sim.X)
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        write_modisco_h5(path, sim.motifs, sim.instances, sim.X[0])
    with pytest.raises(ValueError, match="missing"):
        write_modisco_h5(path, sim.motifs, sim.instances.drop(columns="end"), sim.X)
    with pytest.raises(ValueError, match="window_size"):
        write_modisco_h5(path, sim.motifs, sim.instances, sim.X, window_size=1000)
    with pytest.raises(ValueError, match="outside X"):
        write_modisco_h5(path, sim.motifs, sim.instances, sim.X[:2])
    with pytest.raises(ValueError, match="strands"):
        write_modisco_h5(path, sim.motifs, sim.instances.assign(strand="."), sim.X)
    with pytest.raises(ValueError, match="shape of X"):
        run_modisco(sim.X, torch.zeros(1, 4, 10))
    assert list(tmp_path.iterdir()) == []


def test_meme_export_reads_the_file(sim, written, tmp_path):
    # modisco-lite's own MEME writer (what `modisco meme -t PFM` does) accepts the file.
    from modiscolite.io import write_meme_from_h5
    from modiscolite.util import MemeDataType

    out = tmp_path / "patterns.meme"
    write_meme_from_h5(str(written), MemeDataType.PFM, str(out), True)
    motifs = read_meme(str(out))
    assert len(motifs) == len(sim.motifs)
    for got, pfm in zip(motifs.values(), sim.motifs.values()):
        np.testing.assert_allclose(got, pfm / pfm.sum(0), atol=1e-5)


def _modisco_executable() -> str | None:
    candidate = Path(sys.executable).parent / "modisco"
    return str(candidate) if candidate.exists() else shutil.which("modisco")


@pytest.mark.cmd
def test_modisco_report_lite(written, tmp_path):
    exe = _modisco_executable()
    if exe is None:
        pytest.skip("the modisco console script is not installed")
    database = read_meme(str(DEFAULT_MOTIF_FILE))
    names = list(database)[:28] + ["MA0035.5 GATA1", "MA0091.2 TAL1::TCF3"]
    meme = tmp_path / "db.meme"
    write_meme(str(meme), {k: database[k] for k in names})
    out = tmp_path / "report"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [exe, "report", "-l", "-i", str(written), "-o", str(out), "-s", "./", "-m", str(meme), "--n_examples", "3"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (out / "report.html").read_text()
    assert "pos_patterns.pattern_0" in html and "pos_patterns.pattern_1" in html
    # The patterns are the planted JASPAR PFMs, so tomtom-lite must name them.
    assert "MA0035.5 GATA1" in html
    assert "MA0091.2 TAL1::TCF3" in html


@pytest.mark.slow
def test_run_modisco_on_planted_data(tmp_path):
    rng = np.random.default_rng(0)
    n, length = 300, 100
    codes = rng.integers(0, 4, (n, length))
    attr = rng.normal(0, 0.02, (n, 4, length))
    planted = ["GATAAG", "CACGTG"]
    for i in range(n):
        pos = int(rng.integers(20, length - 26))
        for k, c in enumerate(planted[i % 2]):
            codes[i, pos + k] = "ACGT".index(c)
            attr[i, "ACGT".index(c), pos + k] += 1.0
    X = torch.tensor(np.eye(4, dtype=np.int8)[codes].transpose(0, 2, 1))
    path = tmp_path / "run.h5"
    result = run_modisco(X, torch.tensor(attr, dtype=torch.float32), path=path)
    for key, value in MODISCO_CLI_DEFAULTS.items():
        assert result.parameters[key] == value
    assert result.window_size == length
    consensus = ["".join("ACGT"[j] for j in ppm.argmax(0)) for ppm in result.motifs.values()]
    both = [c + " " + c.translate(COMPLEMENT)[::-1] for c in consensus]
    assert any("GATAAG" in c for c in both) and any("CACGTG" in c for c in both)
    assert all(ppm.shape[0] == 4 for ppm in result.motifs.values())
    reread = read_modisco_h5(path)
    assert list(reread) == list(result.motifs)
    for name in reread:
        np.testing.assert_allclose(reread[name], result.motifs[name])
