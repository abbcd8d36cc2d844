"""Multi-process training with ``torchrun`` (DistributedDataParallel over gloo on CPU).

Under torchrun, :func:`argminn_plugin.training.fit` gives every rank one ``tensor_split`` slice
of each batch and DistributedDataParallel averages the gradients, so a step must equal the
single-process step on the whole batch. The checks compare ``argminn fit`` run in one process
with the same job run by ``torchrun --nproc_per_node 2``:

* BatchNorm off: the final weights and the logged epoch means must agree to float rounding
  (the reductions run in another order). The job includes the Fourier prior with
  ``fourier_positives_only: false``, so the prior's double backprop (``torch.autograd.grad``
  with respect to the input, ``create_graph=True``, inside the DDP pass) is covered exactly, and
  35 training examples in batches of 17 give uneven slices (9 + 8) and a one-example batch
  (run whole on both ranks).
* BatchNorm on and the prior on positives only: two known, intended differences remain, so the
  weights only stay close: BatchNorm normalises with each process's own half-batch statistics
  (no SyncBatchNorm), and the prior is averaged over the positives of each rank's half, whose
  counts differ between the halves.
* Only rank 0 writes files; and a batch whose loss is non-finite on one rank only is skipped by
  every rank (otherwise the ranks' gradient all-reduces fall out of step and training hangs).

The four runs go concurrently to keep the wall time down on a small machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from argminn_plugin.io import load_model

pytestmark = [
    pytest.mark.cmd,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
        reason="torch.distributed with the gloo backend is not available in this torch build",
    ),
]

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_ddp_script.py")
TIMEOUT_S = 400
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
# Files `argminn fit` writes for a binary job with a test split (see argminn_plugin.cli).
SUFFIXES = (".torch", ".final.torch", ".log", ".checkpoint.pt", ".pt", ".pt.json", ".fit.json", ".performance.json")

# Weights are O(1) (scale is max |w|, about 1 for the LayerNorm gains). Measured max |difference|
# with BatchNorm off: 3e-7 (float reduction order only; 2e-6 in other configurations tried).
# Dropping the size weighting of uneven slices gave 0.046; a wrong slice, a missing gradient
# all-reduce or a broken input gradient are expected to be as visible.
EXACT_ATOL = 1e-5
# BatchNorm on + prior on positives only: measured max |difference| 0.094 (0.066 with batches of 16;
# the positives-only prior alone, BatchNorm off, gave 0.015). Adam moves a weight by about lr (0.01)
# per step whatever the gradient's size, so two runs whose gradients differ at all drift apart by
# up to ~2 * lr * 6 steps. The bound is loose on purpose: this check guards against crashes,
# non-finite or diverging runs; the BatchNorm-off check above is the equivalence test.
LOOSE_ATOL = 0.15


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"  # as torchrun sets for its workers; also spares the shared CPU
    return env


def _params(data: dict, name: str, **extra) -> dict:
    return {
        "sequences": data["fasta"], "loci": data["peaks"], "negatives": data["negatives"],
        "training_chroms": ["chr1", "chr2", "chr3"], "validation_chroms": ["chr4"], "test_chroms": ["chr5"],
        "in_window": 200, "max_epochs": 2, "batch_size": 17, "max_sequences": 35, "lr": 0.01,
        "n_filters": 4, "filter_width": 8, "n_attention_layers": 1, "n_heads": 2, "pos_enc_dim": 8,
        "token_dim": 16, "stream_dim": 16, "schedule": "simulation", "device": "cpu", "random_state": 3,
        "name": name, **extra,
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from argminn_plugin.simulate import simulate_genome

    root = tmp_path_factory.mktemp("ddp")
    paths = simulate_genome(root / "sim", "single", 40, 40, length=200, n_chroms=5, flank=50, random_state=0)
    data = {k: str(Path(v).resolve()) for k, v in paths.items()}
    exact = {"batch_norm": False, "fourier_weight": 1.0, "fourier_positives_only": False}
    loose = {"batch_norm": True, "fourier_weight": 1.0, "fourier_positives_only": True}
    jobs = {
        "single_exact": (_params(data, "single", **exact), False),
        "ddp_exact": (_params(data, "ddp", **exact), True),
        "single_loose": (_params(data, "single", **loose), False),
        "ddp_loose": (_params(data, "ddp", **loose), True),
    }
    procs = {}
    for job, (params, distributed) in jobs.items():
        folder = root / job
        folder.mkdir()
        param_file = root / f"{job}.json"
        param_file.write_text(json.dumps(params))
        if job == "ddp_loose":  # per-rank folders, then the NaN check (tests/_ddp_script.py)
            cmd = TORCHRUN + [str(WORKER), str(folder), str(param_file)]
        elif distributed:  # exactly what a user types
            cmd = TORCHRUN + ["-m", "argminn_plugin.cli", "fit", "-p", str(param_file)]
        else:
            cmd = [sys.executable, "-m", "argminn_plugin.cli", "fit", "-p", str(param_file)]
        log = open(root / f"{job}.out", "w")
        procs[job] = (subprocess.Popen(cmd, cwd=folder, env=_env(), stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True), log)
    results, deadline = {}, time.monotonic() + TIMEOUT_S  # one deadline for all four runs
    for job, (proc, log) in procs.items():
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session this test started (torchrun and its workers)
            proc.wait()
        log.close()
        results[job] = {"rc": proc.returncode, "dir": root / job,
                        "output": (root / f"{job}.out").read_text()[-6000:]}
    return results


def _check_ok(run: dict) -> None:
    assert run["rc"] == 0, f"exit status {run['rc']} (negative: killed after {TIMEOUT_S} s):\n{run['output']}"


def _max_difference(a_file: Path, b_file: Path) -> tuple[float, str, float]:
    a, b = load_model(a_file).state_dict(), load_model(b_file).state_dict()
    assert a.keys() == b.keys()
    worst, where = max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in a if a[k].is_floating_point())
    scale = max(a[k].abs().max().item() for k in a if a[k].is_floating_point())
    return worst, where, scale


def test_ddp_step_equals_single_process_without_batchnorm(runs):
    single, ddp = runs["single_exact"], runs["ddp_exact"]
    _check_ok(single)
    _check_ok(ddp)
    worst, where, scale = _max_difference(single["dir"] / "single.pt", ddp["dir"] / "ddp.pt")
    assert worst <= EXACT_ATOL * max(1.0, scale), (
        f"2-process DDP weights differ from the single-process ones by {worst:.3g} at {where} "
        f"(weight scale {scale:.3g}); with BatchNorm off the steps must be the same"
    )
    # The log holds whole-batch means (averaged over the ranks), not rank 0's half.
    log_single = pd.read_csv(single["dir"] / "single.log", sep="\t")
    log_ddp = pd.read_csv(ddp["dir"] / "ddp.log", sep="\t")
    assert list(log_single["Iteration"]) == list(log_ddp["Iteration"]) == [3, 6]
    for column in ("Training Loss", "Training Task Loss", "Training Fourier Prior", "Training Filter Overlap",
                   "Validation Loss"):
        a, b = log_single[column].to_numpy(), log_ddp[column].to_numpy()
        assert abs(a - b).max() <= 1e-5 * max(1.0, abs(a).max()), (column, a, b)
    assert (log_ddp["Training Fourier Prior"] > 0).all()
    assert (log_ddp["Skipped Batches"] == 0).all()
    # Rank 0 wrote one set of files (rank 1 would write the same names in the same folder, but
    # no stray temporary or per-rank file may be left).
    assert sorted(p.name for p in ddp["dir"].iterdir()) == sorted(f"ddp{s}" for s in SUFFIXES)


def test_ddp_with_batchnorm_and_prior_stays_close(runs):
    single, ddp = runs["single_loose"], runs["ddp_loose"]
    _check_ok(single)
    _check_ok(ddp)
    worst, where, scale = _max_difference(single["dir"] / "single.pt", ddp["dir"] / "rank0" / "ddp.pt")
    assert worst <= LOOSE_ATOL * max(1.0, scale), f"max |difference| {worst:.3g} at {where}"
    # Per-process BatchNorm statistics (and per-half prior means) must make *some* difference: if
    # they did not, the ranks would not be training on separate halves of each batch.
    assert worst > 1e-4, f"max |difference| {worst:.3g}: was each rank given its own slice?"


def test_only_rank0_writes_files(runs):
    ddp = runs["ddp_loose"]
    _check_ok(ddp)
    assert sorted(p.name for p in (ddp["dir"] / "rank0").iterdir()) == sorted(f"ddp{s}" for s in SUFFIXES)
    assert list((ddp["dir"] / "rank1").iterdir()) == [], "rank 1 wrote files"


def test_batch_nonfinite_on_one_rank_is_skipped_by_all(runs):
    ddp = runs["ddp_loose"]
    _check_ok(ddp)
    r0 = torch.load(ddp["dir"] / "nan" / "rank0.pt", weights_only=True)
    r1 = torch.load(ddp["dir"] / "nan" / "rank1.pt", weights_only=True)
    assert r0["skipped_in_log"] == 1
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), f"ranks disagree on {key}"
        assert torch.isfinite(value).all(), key
