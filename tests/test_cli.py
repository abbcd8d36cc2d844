"""Tests of the ``argminn`` command line: help, version, pipeline-json, simulate, fit and pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import argminn_plugin
from argminn_plugin.cli import main
from argminn_plugin.config import embedded_default_parameters
from argminn_plugin.io import load_model

PACKAGE_ROOT = str(Path(argminn_plugin.__file__).resolve().parent.parent)
SMALL_MODEL = {"n_filters": 4, "n_attention_layers": 1, "filter_width": 8, "batch_size": 16}
SIM_LENGTH = 100
N_SIM = 40  # positives and negatives each; 8 of each per chromosome


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_json(path: Path, data: dict) -> str:
    path.write_text(json.dumps(data, indent=2))
    return str(path)


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "argminn_plugin.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def read_fasta(path) -> dict[str, str]:
    records, name = {}, None
    for line in Path(path).read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            records[name] = []
        elif line:
            records[name].append(line.strip())
    return {k: "".join(v).upper() for k, v in records.items()}


def one_hot(seqs: list[str]) -> torch.Tensor:
    lookup = {c: i for i, c in enumerate("ACGT")}
    X = torch.zeros(len(seqs), 4, len(seqs[0]))
    for n, seq in enumerate(seqs):
        for i, c in enumerate(seq):
            if c in lookup:
                X[n, lookup[c], i] = 1
    return X


def mann_whitney_auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    pos, neg = scores[truth], scores[~truth]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


# ---------------------------------------------------------------------------------------------
# Help, version, pipeline-json


@pytest.mark.cmd
def test_help_and_version_in_a_subprocess():
    result = run_module("--help")
    assert result.returncode == 0, result.stderr
    for command in ("fit", "simulate", "pipeline", "pipeline-json"):
        assert command in result.stdout
    result = run_module("--version")
    assert result.returncode == 0
    assert argminn_plugin.__version__ in result.stdout


@pytest.mark.cmd
def test_exit_status_reaches_the_shell(tmp_path):
    params = write_json(tmp_path / "p.json", {"name": "x"})
    result = run_module("fit", "-p", params)
    assert result.returncode == 2
    assert "sequences" in result.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage" in capsys.readouterr().out.lower()


def test_fit_needs_parameters(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit"])
    assert info.value.code == 2
    assert "-p" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--parameters" in out and "--resume" in out


def test_pipeline_json_output_parses(capsys, tmp_path):
    assert main(["pipeline-json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == embedded_default_parameters()
    for key in ("sequences", "name", "max_epochs", "n_filters"):
        assert key in printed
    assert main(["pipeline-json", "-o", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text()) == printed


# ---------------------------------------------------------------------------------------------
# simulate


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """``argminn simulate`` output, written once for the module; returns (folder, printed paths)."""
    folder = tmp_path_factory.mktemp("sim")
    params = write_json(folder / "simulate.json", {
        "output_dir": str(folder / "data"), "n_positives": N_SIM, "n_negatives": N_SIM, "length": SIM_LENGTH,
        "center_jitter": 10, "prefix": "toy", "random_state": 3, "verbose": True,
    })
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["simulate", "-p", params])
    assert status == 0
    return folder, json.loads(out.getvalue())


def test_simulate_writes_the_documented_files(simulated):
    folder, paths = simulated
    data = folder / "data"
    expected = {"toy.fa", "toy.fa.fai", "toy.peaks.bed", "toy.negatives.bed", "toy.instances.tsv",
                "toy.motifs.meme", "toy.grammar.json"}
    assert expected <= {p.name for p in data.iterdir()}
    assert {Path(p).name for p in paths.values()} == expected
    assert Path(paths["fasta"]).name == "toy.fa" and Path(paths["peaks"]).name == "toy.peaks.bed"
    for path in paths.values():
        assert Path(path).parent == data

    peaks = pd.read_csv(data / "toy.peaks.bed", sep="\t", header=None)
    negatives = pd.read_csv(data / "toy.negatives.bed", sep="\t", header=None)
    assert peaks.shape == (N_SIM, 10) and negatives.shape == (N_SIM, 3)
    assert ((peaks[2] - peaks[1]) == SIM_LENGTH).all() and ((negatives[2] - negatives[1]) == SIM_LENGTH).all()
    assert set(peaks[0]) == set(negatives[0]) == {f"chr{i}" for i in range(1, 6)}
    genome = read_fasta(data / "toy.fa")
    assert set(genome) == {f"chr{i}" for i in range(1, 6)}
    instances = pd.read_csv(data / "toy.instances.tsv", sep="\t")
    assert set(instances["example_idx"]) == set(range(N_SIM)), "one planted instance per positive"
    grammar = json.loads((data / "toy.grammar.json").read_text())
    assert grammar["grammar"]["name"] == "single"
    assert "MOTIF" in (data / "toy.motifs.meme").read_text()


def test_simulate_missing_output_dir(tmp_path, capsys):
    params = write_json(tmp_path / "s.json", {"n_positives": 5})
    assert main(["simulate", "-p", params]) == 2
    assert "output_dir" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# fit


def fit_parameters(data: Path, name: str, **extra) -> dict:
    return {
        "sequences": str(data / "toy.fa"), "loci": str(data / "toy.peaks.bed"),
        "negatives": str(data / "toy.negatives.bed"), "in_window": SIM_LENGTH,
        "training_chroms": ["chr1", "chr2", "chr3"], "validation_chroms": ["chr4"], "test_chroms": ["chr5"],
        "name": name, "max_epochs": 2, **SMALL_MODEL, **extra,
    }


def test_fit_on_simulated_data_writes_every_file(simulated, tmp_path):
    folder, _ = simulated
    data = folder / "data"
    name = str(tmp_path / "run" / "model")
    params = write_json(tmp_path / "fit.json", fit_parameters(data, name))
    assert main(["fit", "-p", params]) == 0
    for suffix in (".torch", ".final.torch", ".log", ".checkpoint.pt", ".pt", ".pt.json", ".fit.json",
                   ".performance.json"):
        assert os.path.isfile(name + suffix), suffix

    log = pd.read_csv(name + ".log", sep="\t")
    assert list(log["Epoch"]) == [0, 1]
    n_train = 2 * 8 * 3  # 8 positives and 8 negatives on each training chromosome
    assert log["Iteration"].iloc[-1] == 2 * -(-n_train // SMALL_MODEL["batch_size"])

    merged = json.loads(Path(name + ".fit.json").read_text())
    assert merged["max_epochs"] == 2 and merged["lr"] == 0.001 and merged["name"] == name
    assert merged["model"]["n_filters"] == 4 and merged["model"]["head"] == "binary"

    # The state dict, the final pickle and the test metrics all describe the same final model.
    model = load_model(name + ".pt")
    final = torch.load(name + ".final.torch", weights_only=False)
    genome = read_fasta(data / "toy.fa")
    beds = [(pd.read_csv(data / f, sep="\t", header=None, usecols=[0, 1, 2]), label)
            for f, label in (("toy.peaks.bed", 1), ("toy.negatives.bed", 0))]
    seqs, labels = [], []
    for bed, label in beds:
        for chrom, start, end in bed[bed[0] == "chr5"].itertuples(index=False):
            seqs.append(genome[chrom][start:end])
            labels.append(label)
    X_test = one_hot(seqs)
    model.eval()
    final.eval()
    with torch.no_grad():
        scores = model(X_test)[:, 0]
        torch.testing.assert_close(scores, final(X_test)[:, 0])
    performance = json.loads(Path(name + ".performance.json").read_text())
    assert performance["n_test"] == len(seqs) == 16
    truth = np.array(labels) == 1
    assert performance["test_auroc"] == pytest.approx(mann_whitney_auroc(scores.numpy(), truth), abs=1e-6)
    assert performance["test_accuracy"] == pytest.approx(float(((scores.numpy() > 0) == truth).mean()))
    for key in ("test_loss", "test_auprc"):
        assert np.isfinite(performance[key])

    # --resume continues from the checkpoint instead of starting again.
    params = write_json(tmp_path / "fit3.json", fit_parameters(data, name, max_epochs=3))
    assert main(["fit", "-p", params, "--resume"]) == 0
    log = pd.read_csv(name + ".log", sep="\t")
    assert list(log["Epoch"]) == [0, 1, 2]


@pytest.mark.parametrize(
    "content, needle",
    [
        ({"sequences": "x.fa"}, "name"),
        ({"name": "x"}, "sequences"),
        ({"name": "x", "sequences": "x.fa", "max_epochs": "2"}, "max_epochs"),
    ],
)
def test_fit_parameter_errors_exit_2(tmp_path, capsys, content, needle):
    params = write_json(tmp_path / "bad.json", content)
    assert main(["fit", "-p", params]) == 2
    err = capsys.readouterr().err
    assert needle in err and "argminn fit: error" in err
    assert not list(tmp_path.glob("x.*")), "nothing is written when the parameters are wrong"


def test_fit_malformed_or_missing_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "name": "x",\n  "sequences" "x.fa"\n}\n')
    assert main(["fit", "-p", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line 3" in err
    assert main(["fit", "-p", str(tmp_path / "absent.json")]) == 2
    assert "absent.json" in capsys.readouterr().err


def test_fit_from_positive_fasta_uses_shuffled_negatives(tmp_path):
    rng = np.random.default_rng(0)
    n, length = 40, 80
    lines = []
    for i in range(n):
        seq = list(rng.choice(list("ACGT"), size=length))
        start = int(rng.integers(20, 50))
        seq[start:start + 8] = list("GATAAGAT")
        lines += [f">pos{i}", "".join(seq)]
    fasta = tmp_path / "positives.fa"
    fasta.write_text("\n".join(lines) + "\n")
    name = str(tmp_path / "fasta_model")
    params = write_json(tmp_path / "fit.json", {
        "sequences": str(fasta), "name": name, "max_epochs": 2, "validation_fraction": 0.2, "test_fraction": 0.2,
        **SMALL_MODEL,
    })
    assert main(["fit", "-p", params]) == 0
    performance = json.loads(Path(name + ".performance.json").read_text())
    # Each positive and its shuffle form one group; 20% of the 40 groups are test groups.
    assert performance["n_test"] == 2 * 8
    log = pd.read_csv(name + ".log", sep="\t")
    n_train = 2 * (n - 8 - 8)
    assert list(log["Iteration"]) == [k * -(-n_train // SMALL_MODEL["batch_size"]) for k in (1, 2)]
    assert np.isfinite(log["Validation auROC"]).all()
    assert load_model(name + ".pt").config["head"] == "binary"


# ---------------------------------------------------------------------------------------------
# pipeline


def test_pipeline_with_simulate_block_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    params = write_json(tmp_path / "pipeline.json", {
        "output_dir": str(out), "name": "pipe", "max_epochs": 1, "random_state": 1, **SMALL_MODEL,
        "simulate": {"n_positives": 20, "n_negatives": 20, "length": 80, "center_jitter": 5},
    })
    assert main(["pipeline", "-p", params]) == 0
    assert "error" not in capsys.readouterr().err
    summary = json.loads((out / "pipe.pipeline.json").read_text())
    for key in ("model", "final_model", "log", "state_dict"):
        assert Path(summary[key]).exists(), key
        assert Path(summary[key]).parent == out
    for path in summary["simulate"].values():
        assert Path(path).exists()
    assert (out / "simulated.fa").exists() and (out / "pipe.fit.json").exists()
    fit = json.loads((out / "pipe.fit.json").read_text())
    assert fit["in_window"] == 80 and fit["test_chroms"] == ["chr5"]
    assert summary["performance"]["n_test"] == 8  # 4 positives + 4 negatives on chr5
    assert 0.0 <= summary["performance"]["test_auroc"] <= 1.0
    assert load_model(summary["state_dict"]).config["n_filters"] == 4


def test_pipeline_without_sequences_or_simulation_names_the_key(tmp_path, capsys):
    params = write_json(tmp_path / "p.json", {"output_dir": str(tmp_path / "o"), "max_epochs": 1})
    assert main(["pipeline", "-p", params]) == 2
    assert "sequences" in capsys.readouterr().err
