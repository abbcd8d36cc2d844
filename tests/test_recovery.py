"""End-to-end recovery of planted motifs and instances by a trained ARGMINN (slow: trains for minutes).

Run with ``pytest -m slow tests/test_recovery.py``. The model is trained as in the paper: fresh
simulated batches every epoch, reverse-complement augmentation, the 40-epoch "simulation"
regulariser schedule; then the read-out is scored against the planted truth of a held-out
simulation (``argminn.md`` §7.1-7.2).
"""

from __future__ import annotations

import pytest
import torch

from argminn_plugin import ARGMINN
from argminn_plugin.readout import run_readout, score_against_truth
from argminn_plugin.simulate import SimulatedBatches, simulate_sequences
from argminn_plugin.training import fit


@pytest.mark.slow
def test_trained_argminn_recovers_the_planted_single_motif(tmp_path):
    torch.set_num_threads(2)
    valid = simulate_sequences("single", 320, 320, length=500, random_state=999)
    model = ARGMINN(n_attention_layers=1, name=str(tmp_path / "single"))
    fit(model, SimulatedBatches("single", n_batches=50, batch_size=128, random_state=1),
        torch.optim.Adam(model.parameters(), lr=1e-3), X_valid=valid.X, y_valid=valid.y.float().reshape(-1, 1),
        max_epochs=40, device="cpu", random_state=1, reverse_complement=True, verbose=False, progress=False)

    held_out = simulate_sequences("single", 500, 500, length=500, random_state=4242)
    positives = held_out.X[:500]  # positives come first
    truth = held_out.instances[held_out.instances["example_idx"] < 500]
    readout = run_readout(model, positives, tmp_path / "readout", statistics_X=held_out.X, attention_threshold=0.5,
                          figures=False, modisco=False)
    scores = score_against_truth(readout, truth, held_out.motifs)
    assert scores["recovered"] == ["SPI1"], scores
    assert scores["unmatched_filters"] == [], scores
    assert scores["instance_precision"] >= 0.9, scores
    assert scores["instance_recall"] >= 0.8, scores
