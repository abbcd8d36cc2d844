"""Reliability (issue 7): bad input, interrupted runs, numerical faults and genome-scale scanning.

Every bad-input test checks the exception type *and* that the message names the file and the
line or record, and the "nothing is lost" tests check that files written before a failure are
still there and loadable. The interrupted-training test kills ``argminn fit`` with SIGKILL and
resumes it in a new process; the genome-scan tests compare against ``call_instances`` on windows
cut independently with ``read_fasta``.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from argminn_plugin import ARGMINN, cli
from argminn_plugin.data import load_binary_loci, load_profile_data, one_hot_sequences, read_fasta
from argminn_plugin.instances import activation_statistics, call_instances
from argminn_plugin.io import config_path, load_model, save_model
from argminn_plugin.motifs import read_motif_database
from argminn_plugin.scan import scan_genome
from argminn_plugin.training import fit

REPO = Path(__file__).resolve().parents[1]
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                  "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_fasta(path: Path, records: dict[str, str], width: int = 60) -> Path:
    with open(path, "w") as handle:
        for name, seq in records.items():
            handle.write(f">{name}\n")
            for i in range(0, len(seq), width):
                handle.write(seq[i : i + width] + "\n")
    return path


def write_bed(path: Path, rows: list[tuple]) -> Path:
    path.write_text("".join("\t".join(str(v) for v in row) + "\n" for row in rows))
    return path


def random_dna(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


@pytest.fixture(scope="module")
def genome(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("genome")
    seqs = {"chr1": random_dna(3000, 1), "chr2": random_dna(2000, 2)}
    return {"root": root, "seqs": seqs, "fasta": write_fasta(root / "genome.fa", seqs)}


def tiny_model(seed: int = 0, **kwargs) -> ARGMINN:
    torch.manual_seed(seed)
    config = dict(n_filters=3, filter_width=6, n_attention_layers=1, n_heads=2, pos_enc_dim=4, token_dim=8,
                  stream_dim=16, name="tiny", verbose=False)
    config.update(kwargs)
    return ARGMINN(**config).eval()


# ----------------------------------------------------------------------------------------------
# 1. Bad input: FASTA
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, where",
    [
        ("", "contains no FASTA records"),
        ("ACGTACGT\n>a\nACGT\n", "line 1"),
        (">a\nACGT\nACRT\n", "line 3, column 3"),
        (">a\nACGT\n>b\nAC*T\n", "line 4, column 3"),
        (">a\nACGT\n>b\nCC\n>a\nGG\n", "line 5"),
    ],
    ids=["empty", "no-header", "iupac", "non-dna", "duplicate"],
)
def test_read_fasta_errors_name_file_and_line(tmp_path, content, where):
    path = tmp_path / "bad.fa"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        read_fasta(path)
    assert str(path) in str(info.value) and where in str(info.value)


@pytest.mark.parametrize(
    "content, needle",
    [("", "does not contain a valid sequence"), ("ACGT\n>a\nACGT\n", "line 1"), (">a\nACGTAC\n>a\nACGTAC\n", '"a"')],
    ids=["empty", "no-header", "duplicate"],
)
def test_genome_fasta_errors_name_the_file(tmp_path, content, needle):
    fasta = tmp_path / "genome.fa"
    fasta.write_text(content)
    with pytest.raises(ValueError) as info:
        load_binary_loci(fasta, pd.DataFrame([["a", 0, 4]]), pd.DataFrame([["a", 1, 5]]), in_window=4)
    assert str(fasta) in str(info.value) and needle in str(info.value)


def test_genome_with_non_letters_names_line_column_and_chromosome(tmp_path):
    seq = list(random_dna(300, 3))
    seq[130] = "-"  # 60 bp per line after the header: line 4, column 11
    fasta = write_fasta(tmp_path / "gaps.fa", {"chrA": "".join(seq)})
    with pytest.raises(ValueError, match=r"invalid character '-' at line 4, column 11 of .*gaps.fa.*'chrA'.*130"):
        load_binary_loci(fasta, pd.DataFrame([["chrA", 100, 160]]), pd.DataFrame([["chrA", 200, 260]]), in_window=60)
    # IUPAC letters are N (a zero column) in genomes, as in bpnet-lite's PeakGenerator
    seq[130] = "R"
    fasta = write_fasta(tmp_path / "iupac.fa", {"chrA": "".join(seq)})
    data = load_binary_loci(fasta, pd.DataFrame([["chrA", 100, 160]]), pd.DataFrame([["chrA", 200, 260]]),
                            in_window=60)
    assert data.X[0, :, 30].sum() == 0 and data.X[0].sum() == 59


# ----------------------------------------------------------------------------------------------
# 1. Bad input: BED
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, needle",
    [
        (("chr1", 500, 500), r"invalid interval \[500, 500\) at line 2 of .*start must be less than end"),
        (("chr1", 600, 500), r"invalid interval \[600, 500\) at line 2 of .*start must be less than end"),
        (("chr1", -5, 100), r"invalid interval \[-5, 100\) at line 2 of .*must not be negative"),
        (("chrX", 100, 200), r"chromosome 'chrX' \(line/row 2 of .*\) is not in the FASTA"),
        (("chr2", 1900, 2100), r"chr2:1900-2100 \(line/row 2 of .*\) ends past the end of chr2 \(2000 bp"),
    ],
    ids=["start==end", "start>end", "negative", "absent-chrom", "past-end"],
)
def test_bad_bed_rows_name_file_and_line(genome, tmp_path, row, needle):
    bed = write_bed(tmp_path / "peaks.bed", [("chr1", 1000, 1100), row])
    negatives = write_bed(tmp_path / "neg.bed", [("chr2", 500, 600)])
    with pytest.raises(ValueError, match=needle) as info:
        load_binary_loci(genome["fasta"], bed, negatives, in_window=50)
    assert str(bed) in str(info.value)


def test_window_off_the_chromosome_end_warns_naming_file_and_line(genome, tmp_path):
    bed = write_bed(tmp_path / "edge.bed", [("chr1", 1000, 1100), ("chr2", 1950, 1990), ("chr1", 10, 30)])
    negatives = write_bed(tmp_path / "neg.bed", [("chr2", 500, 600)])
    with pytest.warns(UserWarning, match=r"2 of 3 windows .* first is centred at chr2:1970 \(line/row 2 of .*edge"):
        data = load_binary_loci(genome["fasta"], bed, negatives, in_window=100)
    assert data.coords.values.tolist() == [["chr1", 1000, 1100], ["chr2", 500, 600]]


# ----------------------------------------------------------------------------------------------
# 1. Bad input: bigWig
# ----------------------------------------------------------------------------------------------


def write_bigwig(path: Path, sizes: dict[str, int], covered: dict[str, tuple[int, int, float]]) -> Path:
    import pyBigWig

    bw = pyBigWig.open(str(path), "w")
    bw.addHeader(list(sizes.items()), maxZooms=0)
    for chrom, (start, end, value) in covered.items():
        bw.addEntries(chrom, start, values=np.full(end - start, value, dtype=np.float64), span=1, step=1)
    bw.close()
    return path


def test_bigwig_without_a_chromosome_names_bigwig_chromosome_and_bed_line(genome, tmp_path):
    sizes = {c: len(s) for c, s in genome["seqs"].items()}
    good = write_bigwig(tmp_path / "good.bw", sizes, {"chr1": (0, 3000, 1.0), "chr2": (0, 2000, 1.0)})
    only_chr1 = write_bigwig(tmp_path / "chr1only.bw", {"chr1": 3000}, {"chr1": (0, 3000, 1.0)})
    loci = write_bed(tmp_path / "loci.bed", [("chr1", 1000, 1100), ("chr2", 1000, 1100)])
    with pytest.raises(ValueError) as info:
        load_profile_data(loci, genome["fasta"], [good, only_chr1], chroms=None, in_window=100, out_window=50)
    message = str(info.value)
    assert str(only_chr1) in message and "'chr2'" in message and f"line/row 2 of {loci}" in message
    with pytest.raises(ValueError, match="controls: the bigWig"):
        load_profile_data(loci, genome["fasta"], [good], [only_chr1], chroms=None, in_window=100, out_window=50)


def test_bigwig_nan_reads_as_zero(genome, tmp_path):
    import pyBigWig

    sizes = {c: len(s) for c, s in genome["seqs"].items()}
    # chr1 is covered only up to 1040: the rest of the output window has no value (NaN)
    track = write_bigwig(tmp_path / "holes.bw", sizes, {"chr1": (0, 1040, 2.0), "chr2": (0, 2000, 1.0)})
    handle = pyBigWig.open(str(track))
    assert np.isnan(handle.values("chr1", 1040, 1075)).all()  # the file really holds NaN there
    handle.close()
    loci = write_bed(tmp_path / "loci.bed", [("chr1", 1000, 1100)])
    data = load_profile_data(loci, genome["fasta"], [track], chroms=None, in_window=100, out_window=50)
    y = data.y[0, 0].numpy()  # output window [1025, 1075)
    assert np.isfinite(y).all()
    assert (y[:15] == 2.0).all() and (y[15:] == 0.0).all()


# ----------------------------------------------------------------------------------------------
# 1. Bad input: parameter files
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, needles",
    [
        ('{\n  "sequences": "g.fa",\n  "name": "x",\n  "lr": 0.1,,\n}\n', ["line 4"]),
        ('{\n  "sequences": "g.fa"\n}\n', ["missing required parameter", "name"]),
        ('{\n  "sequences": "g.fa",\n  "name": "x",\n  "max_epochs": "ten"\n}\n', ["'max_epochs'", "line 4", "int"]),
        ('{\n  "sequences": "g.fa",\n  "name": "x",\n  "training_chroms": "chr1"\n}\n',
         ["'training_chroms'", "line 4", "list"]),
        ('{\n  "sequences": 5,\n  "name": "x"\n}\n', ["'sequences'", "line 2"]),
    ],
    ids=["malformed", "missing-key", "wrong-type", "string-for-list", "number-for-path"],
)
def test_parameter_file_errors_name_file_key_and_line(tmp_path, capsys, text, needles):
    path = tmp_path / "params.json"
    path.write_text(text)
    assert cli.main(["fit", "-p", str(path)]) == 2
    message = capsys.readouterr().err
    assert str(path) in message
    for needle in needles:
        assert needle in message


# ----------------------------------------------------------------------------------------------
# 1. Bad input: model files
# ----------------------------------------------------------------------------------------------


@pytest.fixture()
def saved_model(tmp_path) -> Path:
    path = tmp_path / "model.pt"
    save_model(tiny_model(), path)
    return path


def test_truncated_model_file(saved_model):
    data = saved_model.read_bytes()
    saved_model.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="could not read model weights") as info:
        load_model(saved_model)
    assert str(saved_model) in str(info.value)


def test_model_file_from_another_class(saved_model):
    meta = json.loads(config_path(saved_model).read_text())
    meta["class"] = "bpnetlite.bpnet.BPNet"
    config_path(saved_model).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="BPNet") as info:
        load_model(saved_model)
    assert str(config_path(saved_model)) in str(info.value)


def test_model_file_of_an_incompatible_version(saved_model):
    meta = json.loads(config_path(saved_model).read_text())
    meta["format_version"] = 99
    config_path(saved_model).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="format_version 99") as info:
        load_model(saved_model)
    assert str(config_path(saved_model)) in str(info.value)


# ----------------------------------------------------------------------------------------------
# 1. Bad input: MEME files
# ----------------------------------------------------------------------------------------------

MEME_HEADER = "MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n"  # 6 lines
ROW = "0.25 0.25 0.25 0.25\n"


@pytest.mark.parametrize(
    "body, needles",
    [
        ("MOTIF m1\nletter-probability matrix: alength= 4 w= 3\n" + ROW * 2, ["'m1'", "line 8", "truncated"]),
        ("MOTIF m1\nletter-probability matrix: alength= 4 w= 2\n" + ROW + "0.5 0.5 0.0\n",
         ["'m1'", "line 10", "3 values"]),
        ("MOTIF m1\nletter-probability matrix: alength= 4 w= 2\n" + ROW + "0.5 x 0.0 0.5\n", ["'m1'", "line 10",
                                                                                             "not numeric"]),
        ("MOTIF m1\nletter-probability matrix: alength= 4 w= 1\n0.5 0.5 0.5 0.5\n", ["'m1'", "line 9", "probability"]),
        ("MOTIF m1\nletter-probability matrix: alength= 4 w= 2\n" + ROW + "\n" + ROW, ["'m1'", "line 10", "blank"]),
        ("MOTIF m1\nURL x\nMOTIF m2\nletter-probability matrix: alength= 4 w= 1\n" + ROW,
         ["'m1'", "line 7", "line 9"]),
        ("MOTIF m1\nletter-probability matrix: alength= 4 w= 1\n" + ROW + "MOTIF m1\n", ["'m1'", "line 10",
                                                                                       "duplicate"]),
        ("MOTIF m1\nletter-probability matrix: alength= 4\n" + ROW, ["'m1'", "line 8", "w="]),
        ("MOTIF m1\nletter-probability matrix: alength= 20 w= 1\n" + ROW, ["'m1'", "line 8", "alength=20"]),
        ("no motifs here\n", ["contains no motifs"]),
    ],
    ids=["truncated", "short-row", "non-numeric", "not-probabilities", "blank-in-matrix", "no-matrix", "duplicate",
         "no-width", "protein", "empty"],
)
def test_malformed_meme_files_name_file_line_and_motif(tmp_path, body, needles):
    path = tmp_path / "db.meme"
    path.write_text(MEME_HEADER + body)
    with pytest.raises(ValueError) as info:
        read_motif_database(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_binary_meme_file_and_a_valid_one(tmp_path):
    path = tmp_path / "binary.meme"
    path.write_bytes(b"MOTIF a\n\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not UTF-8") as info:
        read_motif_database(path)
    assert str(path) in str(info.value)
    path = tmp_path / "ok.meme"
    path.write_text(MEME_HEADER + "MOTIF m1 NAME\nletter-probability matrix: alength= 4 w= 2 nsites= 5\n"
                    + ROW + "0.7 0.1 0.1 0.1\n\nURL http://x\n")
    motifs = read_motif_database(path)
    assert list(motifs) == ["m1 NAME"] and motifs["m1 NAME"].shape == (4, 2)


# ----------------------------------------------------------------------------------------------
# 1. Nothing already written is lost
# ----------------------------------------------------------------------------------------------


def test_failed_save_model_keeps_the_previous_pair(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    save_model(tiny_model(seed=0), path)
    before = (path.read_bytes(), config_path(path).read_text())

    # The config write fails after the new weights were serialised: nothing may be replaced.
    def full_disk(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="disk full"):
        save_model(tiny_model(seed=1), path)
    monkeypatch.undo()
    # A config that cannot be serialised fails before anything is written.
    broken = tiny_model(seed=2)
    broken._config["name"] = object()
    with pytest.raises(TypeError):
        save_model(broken, path)

    assert (path.read_bytes(), config_path(path).read_text()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json"]
    reference = tiny_model(seed=0)
    X = one_hot_sequences([random_dna(40, 5)])
    torch.testing.assert_close(load_model(path).eval()(X), reference(X))


class _NaNFromSecondEpoch:
    """Clean batches in the first epoch, then batches whose labels are NaN (a non-finite loss)."""

    def __init__(self, X, y):
        self.X, self.y, self.epochs = X, y, 0

    def __iter__(self):
        self.epochs += 1
        for start in range(0, len(self.X), 8):
            y = self.y[start : start + 8].clone()
            if self.epochs > 1:
                y[:] = float("nan")
            yield self.X[start : start + 8], y, torch.zeros(len(y), dtype=torch.long)


def test_too_many_non_finite_batches_stop_and_keep_the_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X = one_hot_sequences([random_dna(40, 100 + i) for i in range(32)])
    y = (torch.arange(32) % 2).float().reshape(-1, 1)
    model = tiny_model(name="nanrun")
    with pytest.raises(RuntimeError) as info:
        fit(model, _NaNFromSecondEpoch(X, y), torch.optim.Adam(model.parameters(), lr=1e-2), max_epochs=5,
            device="cpu", schedule=None, progress=False, verbose=False)
    message = str(info.value)
    assert "4 of 4 batches in epoch 1" in message and "non-finite" in message and "max_nonfinite_fraction" in message

    state = torch.load("nanrun.checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0 and len(state["log"]) == 1
    restored = tiny_model(name="nanrun")
    restored.load_state_dict(state["model"])
    assert all(torch.isfinite(v.float()).all() for v in restored.state_dict().values())
    best = torch.load("nanrun.torch", weights_only=False)
    torch.testing.assert_close(best(X), restored(X))
    assert pd.read_csv("nanrun.log", sep="\t")["Epoch"].tolist() == [0]


# ----------------------------------------------------------------------------------------------
# 2. Interrupted training: SIGKILL, then `argminn fit --resume`
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> dict:
    from argminn_plugin.simulate import simulate_genome

    root = tmp_path_factory.mktemp("simulated")
    return simulate_genome(root, "single", 40, 40, length=100, n_chroms=5, flank=60, center_jitter=10,
                           random_state=0)


def _fit_parameters(paths: dict, name: str, max_epochs: int) -> dict:
    return {
        "sequences": str(paths["fasta"]), "loci": str(paths["peaks"]), "negatives": str(paths["negatives"]),
        "training_chroms": ["chr1", "chr2", "chr3"], "validation_chroms": ["chr4"], "test_chroms": ["chr5"],
        "in_window": 100, "max_jitter": 4, "n_filters": 2, "filter_width": 6, "n_attention_layers": 1, "n_heads": 1,
        "pos_enc_dim": 4, "token_dim": 4, "stream_dim": 8, "batch_size": 8, "max_epochs": max_epochs, "lr": 0.01,
        "schedule": {"filter_l1": [0.001 * k for k in range(max_epochs)]}, "device": "cpu", "random_state": 7,
        "name": name, "verbose": False,
    }


def _start_fit(folder: Path, parameters: dict, *extra: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_text(json.dumps(parameters))
    return subprocess.Popen([sys.executable, "-m", "argminn_plugin.cli", "fit", "-p", "params.json", *extra],
                            cwd=folder, env=SUBPROCESS_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_after_first_checkpoint(victim: subprocess.Popen, folder: Path, outcome: dict) -> None:
    """SIGKILL ``victim`` as soon as its first checkpoint and a log row exist (runs in a thread)."""
    checkpoint, log = folder / "run.checkpoint.pt", folder / "run.log"
    deadline = time.time() + 240
    while not (checkpoint.exists() and log.exists() and len(log.read_text().splitlines()) >= 2):
        if victim.poll() is not None or time.time() > deadline:
            victim.kill()
            outcome["error"] = victim.communicate()[0].decode(errors="replace")
            return
        time.sleep(0.005)
    outcome["alive"] = victim.poll() is None
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    outcome["returncode"] = victim.returncode
    victim.stdout.close()


@pytest.mark.cmd
def test_killed_training_resumes_to_the_uninterrupted_weights(simulated, tmp_path, monkeypatch):
    epochs = 25
    parameters = _fit_parameters(simulated, "run", epochs)
    killed_dir, straight_dir = tmp_path / "killed", tmp_path / "straight"
    victim = _start_fit(killed_dir, parameters)
    outcome: dict = {}
    killer = threading.Thread(target=_kill_after_first_checkpoint, args=(victim, killed_dir, outcome))
    killer.start()
    # Meanwhile the uninterrupted reference runs through the same command-line entry point, here.
    straight_dir.mkdir()
    (straight_dir / "params.json").write_text(json.dumps(parameters))
    monkeypatch.chdir(straight_dir)
    assert cli.main(["fit", "-p", "params.json"]) == 0
    killer.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["alive"], "the run finished before it could be killed; raise max_epochs"
    assert outcome["returncode"] == -signal.SIGKILL
    assert not (killed_dir / "run.pt").exists(), "killed after the end of training"

    state = torch.load(killed_dir / "run.checkpoint.pt", weights_only=True)  # complete and readable
    assert state["epoch"] < epochs - 1
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "schedule", "schedule_position", "log"} <= set(state)

    monkeypatch.chdir(killed_dir)
    torch.manual_seed(12345)  # a different global state: everything must come from the checkpoint
    assert cli.main(["fit", "-p", "params.json", "--resume"]) == 0

    reference, resumed = load_model(straight_dir / "run.pt"), load_model(killed_dir / "run.pt")
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, atol=1e-6, rtol=0, msg=key)
    timeless = lambda frame: frame[[c for c in frame.columns if "Time" not in c]]  # noqa: E731
    pd.testing.assert_frame_equal(timeless(pd.read_csv(killed_dir / "run.log", sep="\t")),
                                  timeless(pd.read_csv(straight_dir / "run.log", sep="\t")))


# ----------------------------------------------------------------------------------------------
# 4. Genome scan
# ----------------------------------------------------------------------------------------------

WINDOW = 60


def sharp_model() -> ARGMINN:
    """A random model whose attention is sharpened so that some positions pass the threshold."""
    model = tiny_model(seed=3)
    with torch.no_grad():
        for layer in model.syntax.layers:
            layer.query.weight.mul_(60.0)
            layer.query.bias.mul_(60.0)
    return model


@pytest.fixture(scope="module")
def scan_genome_files(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("scan")
    rng = np.random.default_rng(11)
    seqs = {"chr1": random_dna(1000, 21), "chr2": random_dna(777, 22), "chrShort": random_dna(40, 23)}
    gap = list(random_dna(400, 24))
    gap[100:250] = "N" * 150  # windows mostly inside the gap are skipped
    seqs["chrGap"] = "".join(gap)
    soft = "".join(c.lower() if rng.random() < 0.3 else c for c in seqs["chr1"])
    fasta = write_fasta(root / "g.fa", seqs)
    soft_fasta = write_fasta(root / "soft.fa", {**seqs, "chr1": soft})
    return {"root": root, "seqs": seqs, "fasta": fasta, "soft": soft_fasta}


def window_starts(length: int, window: int, stride: int) -> list[int]:
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def expected_calls(model, seqs: dict, chroms: list[str], stride: int, statistics, threshold: float) -> pd.DataFrame:
    """``call_instances`` on every window, each position kept from the window where it is most central."""
    span = WINDOW - model.filter_width + 1
    rows = []
    for chrom in chroms:
        starts = window_starts(len(seqs[chrom]), WINDOW, stride)
        X = one_hot_sequences([seqs[chrom][s : s + WINDOW] for s in starts])
        calls = call_instances(model, X, statistics=statistics, attention_threshold=threshold, device="cpu")
        centres = np.array(starts) + (span - 1) / 2
        for call in calls.itertuples(index=False):
            pos = starts[call.example_idx] + call.start
            covering = [k for k, s in enumerate(starts) if s <= pos < s + span]
            distance = [abs(pos - centres[k]) for k in covering]
            owner = [k for k, d in zip(covering, distance) if d == min(distance)][-1]  # ties: the later window
            if owner == call.example_idx:
                rows.append((chrom, pos, pos + model.filter_width, call.motif, call.filter, call.attention))
    return pd.DataFrame(rows, columns=["chrom", "chrom_start", "chrom_end", "motif", "filter", "attention"])


@pytest.mark.parametrize("stride", [None, 17])
def test_scan_equals_call_instances_on_independently_cut_windows(scan_genome_files, tmp_path, stride):
    model = sharp_model()
    seqs = scan_genome_files["seqs"]
    chroms = ["chr1", "chr2"]
    every = [seqs[c][s : s + WINDOW] for c in chroms for s in window_starts(len(seqs[c]), WINDOW, 55)]
    statistics = activation_statistics(model, one_hot_sequences(every), device="cpu")
    threshold = 0.3

    summary = scan_genome(model, scan_genome_files["fasta"], window=WINDOW, stride=stride, chroms=chroms,
                          statistics=statistics, attention_threshold=threshold, batch_size=7, device="cpu")
    expected = expected_calls(model, seqs, chroms, stride or WINDOW - 6 + 1, statistics, threshold)
    assert len(expected) > 20, "the test needs calls"
    got = summary.calls[["chrom", "chrom_start", "chrom_end", "motif", "filter", "attention"]]
    pd.testing.assert_frame_equal(got.reset_index(drop=True).astype(expected.dtypes.to_dict()), expected,
                                  check_exact=False, atol=1e-9, rtol=0)
    assert summary.n_calls == len(expected)
    assert not got.duplicated(["chrom", "chrom_start"]).any()

    bed = tmp_path / "calls.bed"
    written = scan_genome(model, scan_genome_files["fasta"], window=WINDOW, stride=stride, chroms=chroms,
                          statistics=statistics, attention_threshold=threshold, batch_size=64, device="cpu",
                          out_bed=bed)
    table = pd.read_csv(bed, sep="\t", header=None, names=["chrom", "start", "end", "name", "score", "strand"])
    assert written.calls is None and written.n_calls == len(expected)
    assert table[["chrom", "start", "end", "name"]].values.tolist() == \
        expected[["chrom", "chrom_start", "chrom_end", "motif"]].values.tolist()
    assert table["score"].tolist() == (expected["attention"] * 1000).round().astype(int).tolist()


def test_scan_predictions_default_statistics_and_sequence_policy(scan_genome_files, tmp_path):
    model = sharp_model()
    seqs = scan_genome_files["seqs"]
    pred = tmp_path / "pred.bed"
    with pytest.warns(UserWarning, match=r"shorter than window=60 .*chrShort"):
        summary = scan_genome(model, scan_genome_files["fasta"], window=WINDOW, batch_size=5, device="cpu",
                              statistics_windows=10_000, attention_threshold=0.3, predictions_bed=pred)
    assert summary.skipped_chroms == ["chrShort"]

    # Windows skipped for N: independently, those with more than half N.
    span = WINDOW - 5
    windows = [(c, s) for c in ["chr1", "chr2", "chrGap"] for s in window_starts(len(seqs[c]), WINDOW, span)]
    cut = [seqs[c][s : s + WINDOW] for c, s in windows]
    kept = [(w, seq) for w, seq in zip(windows, cut) if seq.count("N") <= WINDOW // 2]
    assert summary.n_skipped_windows == len(windows) - len(kept) > 0
    assert summary.n_windows == len(kept)

    # With a sample as large as the genome, the statistics are those of every scanned window.
    X = one_hot_sequences([seq for _, seq in kept])
    reference = activation_statistics(model, X, device="cpu")
    np.testing.assert_allclose(summary.statistics.mean, reference.mean, rtol=1e-9)
    np.testing.assert_allclose(summary.statistics.std, reference.std, rtol=1e-9)

    table = pd.read_csv(pred, sep="\t")
    assert list(table.columns) == ["#chrom", "start", "end", "logit_0"]
    assert table[["#chrom", "start"]].values.tolist() == [[c, s] for (c, s), _ in kept]
    with torch.no_grad():
        np.testing.assert_allclose(table["logit_0"].to_numpy(), model(X)[:, 0].numpy(), rtol=1e-5, atol=1e-5)

    # Soft-masked and gzip genomes give the same calls.
    plain = scan_genome(model, scan_genome_files["fasta"], window=WINDOW, chroms=["chr1"], device="cpu",
                        statistics=reference, attention_threshold=0.3)
    gz = tmp_path / "soft.fa.gz"
    gz.write_bytes(gzip.compress(Path(scan_genome_files["soft"]).read_bytes()))
    soft = scan_genome(model, gz, window=WINDOW, chroms=["chr1"], device="cpu", statistics=reference,
                       attention_threshold=0.3, cache_dir=tmp_path / "cache")
    assert plain.n_calls > 0
    pd.testing.assert_frame_equal(plain.calls, soft.calls)


def test_scan_errors(scan_genome_files, tmp_path):
    model = sharp_model()
    bad = write_fasta(tmp_path / "bad.fa", {"c1": random_dna(200, 5), "c2": random_dna(100, 6) + "." +
                                            random_dna(99, 7)})
    with pytest.raises(ValueError, match=r"invalid character '\.' at line 8, column 41 of .*bad.fa .*'c2'"):
        scan_genome(model, bad, window=WINDOW, device="cpu", statistics_windows=2)
    with pytest.raises(ValueError, match=r"chroms: chromosome\(s\) \['chr9'\]"):
        scan_genome(model, scan_genome_files["fasta"], window=WINDOW, chroms=["chr9"], device="cpu")
    with pytest.raises(ValueError, match="window"):
        scan_genome(model, scan_genome_files["fasta"], window=4, device="cpu")
    with pytest.raises(ValueError, match="stride"):
        scan_genome(model, scan_genome_files["fasta"], window=WINDOW, stride=0, device="cpu")
    with pytest.raises(ValueError, match="at least window=5000"), pytest.warns(UserWarning, match="shorter than"):
        scan_genome(model, scan_genome_files["fasta"], window=5000, device="cpu")
    with pytest.raises(ValueError, match="model"):
        scan_genome(torch.nn.Linear(2, 2), scan_genome_files["fasta"], device="cpu")


def test_interrupted_scan_leaves_the_previous_output(scan_genome_files, tmp_path, monkeypatch):
    import argminn_plugin.scan as scan_module

    model = sharp_model()
    bed, pred = tmp_path / "calls.bed", tmp_path / "pred.bed"
    bed.write_text("previous\n")
    pred.write_text("previous predictions\n")
    real, calls = scan_module.iter_instances, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_module, "iter_instances", failing)
    with pytest.raises(KeyboardInterrupt):
        scan_genome(model, scan_genome_files["fasta"], window=WINDOW, batch_size=4, chroms=["chr1"], device="cpu",
                    attention_threshold=0.3, out_bed=bed, predictions_bed=pred)
    assert bed.read_text() == "previous\n" and pred.read_text() == "previous predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.bed", "pred.bed"]
    assert model.validate_inputs is True


MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, torch
    import numpy as np
    from argminn_plugin import ARGMINN
    from argminn_plugin.scan import scan_genome

    torch.manual_seed(0)
    model = ARGMINN(n_filters=2, filter_width=10, n_attention_layers=1, n_heads=1, pos_enc_dim=4, token_dim=4,
                    stream_dim=8, verbose=False).eval()
    peaks = []
    for fasta in sys.argv[1:]:
        out = fasta + ".bed"
        summary = scan_genome(model, fasta, window=500, batch_size=64, device="cpu", attention_threshold=0.0025,
                              statistics_windows=64, out_bed=out, predictions_bed=fasta + ".pred")
        peaks.append((summary.n_windows, summary.n_calls, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    print(json.dumps(peaks))
    """
)


def _random_genome(path: Path, n_chroms: int, length: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with open(path, "wb") as handle:
        for c in range(n_chroms):
            seq = letters[rng.integers(0, 4, length)]
            handle.write(f">chr{c + 1}\n".encode())
            lines = np.concatenate([seq.reshape(-1, 100), np.full((length // 100, 1), ord("\n"), np.uint8)], axis=1)
            handle.write(lines.tobytes())
    return path


@pytest.mark.cmd
def test_scan_memory_stays_flat_as_the_genome_grows(tmp_path):
    small = _random_genome(tmp_path / "small.fa", 2, 400_000, 1)  # ~1,630 windows
    large = _random_genome(tmp_path / "large.fa", 8, 400_000, 2)  # ~6,520 windows
    # The small genome runs twice first so that allocator pools and caches are warm; the peak RSS
    # (a high-water mark) may then barely rise while scanning a genome four times larger. Holding
    # every window of the large genome as float32 one-hot alone would take 4 * 6,520 * 500 * 4 B = 52 MB.
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(small), str(small), str(large)],
                            env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (n_small, calls_small, _), (_, _, peak_small), (n_large, calls_large, peak_large) = json.loads(
        result.stdout.strip().splitlines()[-1])
    assert n_large == 4 * n_small and calls_large > 3 * calls_small > 0
    rise_mb = (peak_large - peak_small) / 1024  # ru_maxrss is in KiB on Linux
    assert rise_mb < 15, f"peak RSS rose by {rise_mb:.1f} MB for 4x more windows"
    assert Path(str(large) + ".bed").stat().st_size > 4 * Path(str(small) + ".bed").stat().st_size * 0.9
