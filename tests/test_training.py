"""Tests of the training loop: bpnet-lite parity, files, schedules, skipped batches, prior, RC, resume.

Everything runs in memory on tiny models and short sequences; each test works in its own
temporary folder because ``fit`` writes ``{name}.*`` files to the current directory.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from argminn_plugin import ARGMINN
from argminn_plugin.losses import LossComponents
from argminn_plugin.regularizers import SCHEDULE_KEYS, schedule_weights
from argminn_plugin.training import _reverse_complement_batch, compute_loss, fit

bpnetlite = pytest.importorskip("bpnetlite")
from bpnetlite import BPNet  # noqa: E402

MOTIF = "GATAAGATAA"
LENGTH = 160
OUT_WINDOW = 100
TRIMMING = (LENGTH - OUT_WINDOW) // 2

# Log column of every loss component returned by compute_loss.
COMPONENT_COLUMNS = {
    "total": "Training Loss",
    "task": "Training Task Loss",
    "profile": "Training MNLL",
    "count": "Training Count MSE",
    "filter_overlap": "Training Filter Overlap",
    "filter_l1": "Training Filter L1",
    "attention_entropy": "Training Attention Entropy",
    "fourier_prior": "Training Fourier Prior",
}
WEIGHT_COLUMNS = {
    "filter_overlap": "Filter Overlap Weight",
    "filter_l1": "Filter L1 Weight",
    "attention_entropy": "Attention Entropy Weight",
}


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models run far faster on one thread on a shared machine; restore the setting after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# ---------------------------------------------------------------------------------------------
# Synthetic data


def random_one_hot(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    idx = torch.randint(0, 4, (n, length), generator=generator)
    return F.one_hot(idx, 4).permute(0, 2, 1).float()


def motif_one_hot(motif: str = MOTIF) -> torch.Tensor:
    return F.one_hot(torch.tensor(["ACGT".index(c) for c in motif]), 4).T.float()


def planted_binary(n: int, length: int, seed: int, jitter: int = 20):
    """Random sequences; even rows carry ``MOTIF`` near the centre and are labelled 1.

    Returns
    -------
    X: torch.Tensor, shape=(n, 4, length)
    y: torch.Tensor, shape=(n, 1)
    starts: torch.Tensor, shape=(n,)
        Start of the planted motif (-1 for negatives).
    """
    g = torch.Generator().manual_seed(seed)
    X = random_one_hot(n, length, g)
    y = (torch.arange(n) % 2 == 0).float().reshape(-1, 1)
    starts = torch.full((n,), -1)
    motif = motif_one_hot()
    width = motif.shape[1]
    for i in range(0, n, 2):
        start = (length - width) // 2 + int(torch.randint(-jitter, jitter + 1, (1,), generator=g))
        X[i, :, start:start + width] = motif
        starts[i] = start
    return X, y, starts


def planted_profile(n: int, seed: int):
    """Profile data: Poisson counts (n, 2, OUT_WINDOW) with a strand-shifted bump at each motif."""
    X, y_binary, starts = planted_binary(n, LENGTH, seed)
    g = torch.Generator().manual_seed(seed + 1000)
    positions = torch.arange(OUT_WINDOW).float()
    rate = torch.full((n, 2, OUT_WINDOW), 0.05)
    for i in range(n):
        if starts[i] >= 0:
            centre = float(starts[i]) + len(MOTIF) / 2 - TRIMMING
            for strand, shift in ((0, -3.0), (1, 3.0)):
                rate[i, strand] += 4.0 * torch.exp(-0.5 * ((positions - centre - shift) / 4.0) ** 2)
    y = torch.poisson(rate, generator=g)
    labels = y_binary[:, 0].long()
    return X, y, labels


def reference_mixture_loss(logits: torch.Tensor, log_counts: torch.Tensor, y: torch.Tensor):
    """Multinomial NLL over strands x positions and log1p count MSE, written out from their definitions."""
    n = logits.shape[0]
    logp = torch.log_softmax(logits.reshape(n, -1).double(), dim=-1)
    counts = y.reshape(n, -1).double()
    total = counts.sum(-1)
    log_likelihood = torch.lgamma(total + 1) - torch.lgamma(counts + 1).sum(-1) + (counts * logp).sum(-1)
    mse = (torch.log1p(total) - log_counts.reshape(n).double()) ** 2
    return float(-log_likelihood.mean()), float(mse.mean())


def mann_whitney_auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """auROC as the probability that a positive outscores a negative (ties count one half)."""
    pos, neg = scores[truth], scores[~truth]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def read_log(name: str) -> pd.DataFrame:
    return pd.read_csv(f"{name}.log", sep="\t")


def saved_flags(log: pd.DataFrame) -> list[bool]:
    return [str(v) == "True" for v in log["Saved?"]]


def tiny_binary(name: str, seed: int = 0, **kwargs) -> ARGMINN:
    torch.manual_seed(seed)
    options = dict(n_filters=4, filter_width=10, n_attention_layers=1, name=name, verbose=False)
    options.update(kwargs)
    return ARGMINN(**options)


def binary_loader(X, y, batch_size=16, shuffle=True):
    return DataLoader(TensorDataset(X, y, y[:, 0].long()), batch_size=batch_size, shuffle=shuffle)


def state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# (a) the bpnet-lite tutorial script, changing only the class name


def tutorial_script(Model, name, X, y, labels, X_valid, y_valid):
    """The bpnet-lite tutorial's training cell, with an in-memory loader in place of PeakGenerator."""
    training_data = DataLoader(TensorDataset(X, y, labels), batch_size=16, shuffle=True)
    model = Model(n_filters=8, n_outputs=2, n_control_tracks=0, trimming=TRIMMING, name=name, verbose=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.fit(training_data, optimizer, X_valid=X_valid, y_valid=y_valid, max_epochs=2, device="cpu")
    return model


@pytest.fixture(scope="module")
def tutorial_runs(tmp_path_factory):
    """Run the tutorial once with BPNet and once with ARGMINN; return {class name: (model, folder)}."""
    X, y, labels = planted_profile(64, seed=0)
    X_valid, y_valid, _ = planted_profile(24, seed=1)
    runs = {}
    cwd = os.getcwd()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for Model in (BPNet, ARGMINN):
            folder = tmp_path_factory.mktemp(Model.__name__)
            os.chdir(folder)
            torch.manual_seed(0)
            model = tutorial_script(Model, "tutorial", X, y, labels, X_valid, y_valid)
            runs[Model.__name__] = (model, folder)
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)
    return runs, (X_valid, y_valid)


@pytest.mark.parametrize("Model", [BPNet, ARGMINN], ids=["BPNet", "ARGMINN"])
def test_tutorial_script_writes_bpnet_files(tutorial_runs, Model, monkeypatch):
    runs, (X_valid, y_valid) = tutorial_runs
    model, folder = runs[Model.__name__]
    monkeypatch.chdir(folder)
    for suffix in (".torch", ".final.torch", ".log"):
        assert os.path.isfile(f"tutorial{suffix}"), suffix

    log = read_log("tutorial")
    assert list(log["Epoch"]) == [0, 1]
    assert list(log["Iteration"]) == [4, 8]  # 64 examples in batches of 16
    flags = saved_flags(log)
    assert flags[0]

    model.eval()
    with torch.no_grad():
        expected = model(X_valid)
    for suffix in (".torch", ".final.torch"):
        loaded = torch.load(f"tutorial{suffix}", weights_only=False)
        assert type(loaded) is Model
        assert not loaded.training, "bpnet-lite pickles its models in eval mode"
        with torch.no_grad():
            logits, log_counts = loaded(X_valid)
        assert logits.shape == (len(X_valid), 2, OUT_WINDOW)
        assert log_counts.shape == (len(X_valid), 1)
        assert torch.isfinite(logits).all() and torch.isfinite(log_counts).all()
        if suffix == ".final.torch":
            torch.testing.assert_close(logits, expected[0])
            torch.testing.assert_close(log_counts, expected[1])
        else:
            # The best model is the one of the last epoch flagged "Saved?": its validation losses,
            # recomputed from the definitions, are the ones logged for that epoch.
            row = log.iloc[max(i for i, f in enumerate(flags) if f)]
            mnll, mse = reference_mixture_loss(logits, log_counts, y_valid)
            assert mnll == pytest.approx(row["Validation MNLL"], rel=1e-4)
            assert mse == pytest.approx(row["Validation Count MSE"], rel=1e-4)


def test_tutorial_argminn_log_has_every_loss_component(tutorial_runs, monkeypatch):
    runs, _ = tutorial_runs
    assert set(COMPONENT_COLUMNS) == set(LossComponents._fields)
    monkeypatch.chdir(runs["ARGMINN"][1])
    log = read_log("tutorial")
    bpnet_columns = set(read_log(os.path.join(runs["BPNet"][1], "tutorial")).columns)
    assert bpnet_columns <= set(log.columns), "every bpnet-lite log column is kept"
    for column in list(COMPONENT_COLUMNS.values()) + list(WEIGHT_COLUMNS.values()):
        assert column in log.columns
        assert np.isfinite(log[column]).all(), column
    # Components add up: task = MNLL + count_loss_weight * count MSE, and with the default
    # "simulation" schedule every regulariser is off in epochs 0-1 and no prior is asked for.
    np.testing.assert_allclose(log["Training Task Loss"], log["Training MNLL"] + log["Training Count MSE"], rtol=1e-5)
    np.testing.assert_allclose(log["Training Loss"], log["Training Task Loss"], rtol=1e-6)
    for column in WEIGHT_COLUMNS.values():
        assert (log[column] == 0).all()
    assert (log["Skipped Batches"] == 0).all()
    assert (log["Training Filter L1"] > 0).all() and (log["Training Attention Entropy"] > 0).all()


# ---------------------------------------------------------------------------------------------
# (b) reproducibility


def _train_reproducible(tmp_path, tag, random_state):
    os.chdir(tmp_path)
    X, y, _ = planted_binary(64, 100, seed=3)
    model = tiny_binary(f"repro_{tag}", seed=0, attention_dropout=0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.fit(binary_loader(X, y), optimizer, X_valid=X[:16], y_valid=y[:16], max_epochs=2, device="cpu",
              random_state=random_state, progress=False)
    return {k: v.clone() for k, v in model.state_dict().items()}, read_log(f"repro_{tag}")


def test_same_random_state_gives_identical_weights(tmp_path):
    first, log_a = _train_reproducible(tmp_path, "a", 7)
    second, log_b = _train_reproducible(tmp_path, "b", 7)
    third, _ = _train_reproducible(tmp_path, "c", 8)
    assert state_equal(first, second)
    timeless = [c for c in log_a.columns if "Time" not in c]
    pd.testing.assert_frame_equal(log_a[timeless], log_b[timeless])
    # Same initial weights, different shuffling and dropout draws: the result must differ.
    assert not state_equal(first, third)


# ---------------------------------------------------------------------------------------------
# (c) regulariser schedule and weights


def test_schedule_advances_once_per_epoch():
    schedule = {"filter_overlap": [0.0, 1.0, 10.0], "filter_l1": [1e-3, 0.0, 1e-2], "attention_entropy": 0.05}
    X, y, _ = planted_binary(32, 100, seed=4)
    model = tiny_binary("schedule")
    fit(model, binary_loader(X, y), torch.optim.Adam(model.parameters(), lr=1e-3), max_epochs=4,
        device="cpu", schedule=schedule, progress=False)
    log = read_log("schedule")
    assert list(log["Epoch"]) == [0, 1, 2, 3]
    for _, row in log.iterrows():
        expected = schedule_weights(schedule, int(row["Epoch"]))
        for key, column in WEIGHT_COLUMNS.items():
            assert row[column] == pytest.approx(expected[key], rel=1e-12, abs=0), (key, row["Epoch"])
        # The logged total is the weighted sum of the logged components (means are linear).
        recombined = row["Training Task Loss"] + sum(
            expected[key] * row[COMPONENT_COLUMNS[key]] for key in SCHEDULE_KEYS
        )
        assert row["Training Loss"] == pytest.approx(recombined, rel=1e-5)
    # Past the end of a list the last entry is reused.
    assert log["Filter Overlap Weight"].iloc[3] == 10.0


def test_schedule_presets_and_errors():
    X, y, _ = planted_binary(16, 100, seed=5)
    model = tiny_binary("preset")
    fit(model, binary_loader(X, y), torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu",
        schedule="genomic", progress=False)
    row = read_log("preset").iloc[0]
    expected = schedule_weights("genomic", 0)
    assert row["Filter L1 Weight"] == expected["filter_l1"]
    with pytest.raises(ValueError, match="schedule"):
        fit(model, binary_loader(X, y), torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu",
            schedule="no-such-schedule", progress=False)


def _batch_output(model, X):
    model.train()
    return model.forward_with_interims(X)


def test_zero_weight_terms_add_nothing_and_get_no_gradient():
    X, y, _ = planted_binary(16, 100, seed=6)
    labels = y[:, 0].long()
    model = tiny_binary("grad")
    zero = {key: 0.0 for key in SCHEDULE_KEYS}

    out = _batch_output(model, X)
    components = compute_loss(model, out, X, y, labels, zero)
    expected_task = F.binary_cross_entropy_with_logits(out.y, y)
    torch.testing.assert_close(components.task, expected_task)
    assert torch.equal(components.total, components.task)
    for key in SCHEDULE_KEYS:
        assert not getattr(components, key).requires_grad, key
    # The L1 term is the summed absolute conv weight, whatever its weight.
    torch.testing.assert_close(components.filter_l1, model.filter_weights.detach().abs().sum())
    components.total.backward()
    grad_zero = model.filter_weights.grad.clone()

    model.zero_grad()
    out = _batch_output(model, X)
    F.binary_cross_entropy_with_logits(out.y, y).backward()
    torch.testing.assert_close(grad_zero, model.filter_weights.grad)

    # A positive weight adds its term and changes the gradient.
    model.zero_grad()
    weights = {"filter_overlap": 0.0, "filter_l1": 0.5, "attention_entropy": 0.0}
    out = _batch_output(model, X)
    components = compute_loss(model, out, X, y, labels, weights)
    torch.testing.assert_close(components.total, components.task + 0.5 * components.filter_l1)
    components.total.backward()
    torch.testing.assert_close(model.filter_weights.grad - grad_zero, 0.5 * torch.sign(model.filter_weights.detach()))


# ---------------------------------------------------------------------------------------------
# (d) non-finite batches


def _batches_with_nan(n_bad: int, where: str, n_batches: int = 4, batch_size: int = 8):
    X, y, _ = planted_binary(n_batches * batch_size, 100, seed=9)
    batches = []
    for b in range(n_batches):
        Xb, yb = X[b * batch_size:(b + 1) * batch_size].clone(), y[b * batch_size:(b + 1) * batch_size].clone()
        if 1 <= b <= n_bad:
            if where == "X":
                Xb[0, 0, 5] = float("nan")
            else:
                yb[1, 0] = float("nan")
        batches.append((Xb, yb, yb[:, 0].long()))
    return batches, X, y


@pytest.mark.parametrize("where", ["X", "y"])
def test_non_finite_batch_is_skipped_counted_and_leaves_no_trace(where):
    batches, X, y = _batches_with_nan(1, where)
    model = tiny_binary("nan")
    model.validate_inputs = False
    fit(model, batches, torch.optim.Adam(model.parameters(), lr=1e-2), X_valid=X, y_valid=y, max_epochs=2,
        device="cpu", progress=False)
    log = read_log("nan")
    assert list(log["Skipped Batches"]) == [1, 1]
    assert list(log["Iteration"]) == [3, 6]
    assert np.isfinite(log["Training Loss"]).all() and np.isfinite(log["Validation auROC"]).all()
    for key, value in model.state_dict().items():
        assert torch.isfinite(value.float()).all(), key

    # The skipped batch changes nothing: not the weights, not the optimizer, not BatchNorm's statistics.
    clean = tiny_binary("clean")
    fit(clean, [b for i, b in enumerate(batches) if i != 1], torch.optim.Adam(clean.parameters(), lr=1e-2),
        X_valid=X, y_valid=y, max_epochs=2, device="cpu", progress=False)
    assert state_equal(model.state_dict(), clean.state_dict())


def test_too_many_non_finite_batches_raise():
    batches, _, _ = _batches_with_nan(2, "y")  # 2 of 4 is exactly the default limit of one half
    model = tiny_binary("half")
    fit(model, batches, torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu", progress=False)
    assert read_log("half")["Skipped Batches"].iloc[0] == 2

    batches, _, _ = _batches_with_nan(3, "y")
    model = tiny_binary("many")
    with pytest.raises(RuntimeError, match="non-finite"):
        fit(model, batches, torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu", progress=False)
    batches, _, _ = _batches_with_nan(1, "y")
    with pytest.raises(RuntimeError, match="non-finite"):
        fit(model, batches, torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu", progress=False,
            max_nonfinite_fraction=0.0)
    with pytest.raises(ValueError, match="max_nonfinite_fraction"):
        fit(model, batches, torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu", progress=False,
            max_nonfinite_fraction=1.5)


def test_nan_inputs_are_rejected_while_validation_is_on():
    batches, _, _ = _batches_with_nan(1, "X")
    model = tiny_binary("strict")
    with pytest.raises(ValueError, match="one-hot"):
        fit(model, batches, torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu", progress=False)


def test_fit_argument_errors():
    X, y, _ = planted_binary(16, 100, seed=2)
    model = tiny_binary("errors")
    opt = torch.optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="together"):
        fit(model, binary_loader(X, y), opt, X_valid=X, max_epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="max_epochs"):
        fit(model, binary_loader(X, y), opt, max_epochs=-1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], opt, max_epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="X, y, labels"):
        fit(model, [X], opt, max_epochs=1, device="cpu", progress=False)


# ---------------------------------------------------------------------------------------------
# (e) Fourier prior


def test_fourier_prior_is_logged_and_changes_training():
    X, y, _ = planted_binary(48, 100, seed=10)
    states = {}
    for weight in (0.0, 1.0):
        name = f"prior_{weight:g}"
        model = tiny_binary(name, seed=0)
        fit(model, binary_loader(X, y, shuffle=False), torch.optim.Adam(model.parameters(), lr=1e-2),
            max_epochs=2, device="cpu", schedule="none", fourier_weight=weight, random_state=0, progress=False)
        states[weight] = {k: v.clone() for k, v in model.state_dict().items()}
        log = read_log(name)
        prior = log["Training Fourier Prior"]
        if weight:
            assert np.isfinite(prior).all() and (prior > 0).all() and (prior <= 1).all()
            np.testing.assert_allclose(log["Training Loss"], log["Training Task Loss"] + weight * prior, rtol=1e-5)
        else:
            assert (prior == 0).all()
            np.testing.assert_allclose(log["Training Loss"], log["Training Task Loss"], rtol=1e-6)
    assert not state_equal(states[0.0], states[1.0])


def test_fourier_weight_schedule_warms_up_without_the_prior():
    X, y, _ = planted_binary(48, 100, seed=10)
    model = tiny_binary("prior_schedule", seed=0)
    fit(model, binary_loader(X, y, shuffle=False), torch.optim.Adam(model.parameters(), lr=1e-2),
        max_epochs=4, device="cpu", schedule="none", fourier_weight=[0.0, 0.0, 2.0], random_state=0, progress=False)
    log = read_log("prior_schedule")
    np.testing.assert_array_equal(log["Fourier Prior Weight"], [0.0, 0.0, 2.0, 2.0])  # last entry reused
    prior = log["Training Fourier Prior"].to_numpy()
    assert (prior[:2] == 0).all() and (prior[2:] > 0).all()
    np.testing.assert_allclose(log["Training Loss"], log["Training Task Loss"] + log["Fourier Prior Weight"] * prior,
                               rtol=1e-5)


@pytest.mark.parametrize("weight, match", [(-1.0, "fourier_weight"), ([0.0, -1.0], "fourier_weight"),
                                           ("high", "weight"), ([], "weight")])
def test_fourier_weight_errors(weight, match):
    X, y, _ = planted_binary(8, 60, seed=1)
    model = tiny_binary("bad_prior", seed=0)
    with pytest.raises(ValueError, match=match):
        fit(model, binary_loader(X, y), torch.optim.Adam(model.parameters()), max_epochs=1, device="cpu",
            fourier_weight=weight, progress=False)


def _prior(model, X, labels, **kwargs):
    X = X.clone().requires_grad_(True)
    out = model.forward_with_interims(X)
    y = labels.float().reshape(-1, 1)
    return compute_loss(model, out, X, y, labels, {}, fourier_weight=1.0, **kwargs).fourier_prior.detach()


def test_fourier_prior_only_on_positives():
    X, _, _ = planted_binary(12, 100, seed=11)
    model = tiny_binary("positives").eval()  # eval: BatchNorm makes each example independent of the others
    negatives = torch.zeros(12, dtype=torch.long)
    assert float(_prior(model, X, negatives)) == 0.0
    assert float(_prior(model, X, negatives, fourier_positives_only=False)) > 0.0

    mixed = torch.tensor([1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0])
    on_mixed = _prior(model, X, mixed)
    on_positives_only = _prior(model, X[mixed == 1], torch.ones(4, dtype=torch.long))
    assert float(on_mixed) > 0
    torch.testing.assert_close(on_mixed, on_positives_only)
    everything = _prior(model, X, mixed, fourier_positives_only=False)
    assert not torch.allclose(everything, on_mixed)


# ---------------------------------------------------------------------------------------------
# (f) a bpnet-lite BPNet trained with the prior through the same fit


def test_bpnet_trains_with_fourier_prior():
    X, y, labels = planted_profile(32, seed=12)
    torch.manual_seed(0)
    model = BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=0, trimming=TRIMMING,
                  name="bpnet_prior", verbose=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = DataLoader(TensorDataset(X, y, labels), batch_size=16, shuffle=False)
    returned = fit(model, loader, torch.optim.Adam(model.parameters(), lr=1e-3), X_valid=X[:8], y_valid=y[:8],
                   max_epochs=1, device="cpu", fourier_weight=50.0, progress=False)
    assert returned is model
    for suffix in (".torch", ".final.torch", ".log", ".checkpoint.pt"):
        assert os.path.isfile(f"bpnet_prior{suffix}")
    assert type(torch.load("bpnet_prior.final.torch", weights_only=False)) is BPNet
    log = read_log("bpnet_prior")
    row = log.iloc[0]
    assert 0 < row["Training Fourier Prior"] <= 1
    assert row["Training Loss"] == pytest.approx(row["Training Task Loss"] + 50.0 * row["Training Fourier Prior"],
                                                 rel=1e-5)
    # ARGMINN's penalties need forward_with_interims: they are neither computed nor weighted for BPNet.
    for column in WEIGHT_COLUMNS.values():
        assert row[column] == 0
    assert not state_equal(before, model.state_dict())


# ---------------------------------------------------------------------------------------------
# (g) reverse-complement augmentation


class _InputSpy:
    """Forward pre-hook recording the training-mode inputs (a module-level class: fit pickles the model)."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, module, inputs) -> None:
        if module.training:
            self.seen.append(inputs[0].detach().clone())


@pytest.mark.parametrize("reverse_complement", [False, True])
def test_reverse_complement_doubles_the_batch(reverse_complement):
    X, y, _ = planted_binary(24, 100, seed=13)
    model = tiny_binary("rc")
    spy = _InputSpy()
    seen = spy.seen
    handle = model.scanner.register_forward_pre_hook(spy)
    try:
        fit(model, binary_loader(X, y, batch_size=8, shuffle=False), torch.optim.Adam(model.parameters()),
            max_epochs=1, device="cpu", reverse_complement=reverse_complement, progress=False)
    finally:
        handle.remove()
    assert len(seen) == 3
    for b, batch in enumerate(seen):
        original = X[b * 8:(b + 1) * 8]
        if reverse_complement:
            assert batch.shape[0] == 16
            torch.testing.assert_close(batch[:8], original)
            # Reverse complement of ACGT one-hot: reverse the positions and swap A<->T, C<->G.
            complement = original[:, [3, 2, 1, 0], :]
            torch.testing.assert_close(batch[8:], complement.flip(-1))
        else:
            assert batch.shape[0] == 8
            torch.testing.assert_close(batch, original)


def test_reverse_complement_of_profile_batches():
    X, y, labels = planted_profile(4, seed=14)
    X_ctl = torch.rand(4, 2, LENGTH)
    Xa, Xc, ya, la = _reverse_complement_batch(X, X_ctl, y, labels, True)
    assert Xa.shape == (8, 4, LENGTH) and ya.shape == (8, 2, OUT_WINDOW)
    torch.testing.assert_close(la, torch.cat([labels, labels]))
    # Strands swap and positions reverse, for both the counts and the controls.
    torch.testing.assert_close(ya[4:, 0], y[:, 1].flip(-1))
    torch.testing.assert_close(ya[4:, 1], y[:, 0].flip(-1))
    torch.testing.assert_close(Xc[4:, 0], X_ctl[:, 1].flip(-1))
    # Binary targets are duplicated unchanged.
    yb = torch.tensor([[1.0], [0.0], [1.0], [0.0]])
    _, none, yd, _ = _reverse_complement_batch(X, None, yb, labels, False)
    assert none is None
    torch.testing.assert_close(yd, torch.cat([yb, yb]))


# ---------------------------------------------------------------------------------------------
# (h) it learns


def test_argminn_learns_a_planted_kmer():
    X, y, _ = planted_binary(800, 100, seed=0, jitter=20)
    X_train, y_train, X_valid, y_valid = X[:640], y[:640], X[640:], y[640:]
    model = tiny_binary("learn", seed=0, n_filters=8)
    fit(model, binary_loader(X_train, y_train, batch_size=32), torch.optim.Adam(model.parameters(), lr=3e-3),
        X_valid=X_valid, y_valid=y_valid, max_epochs=5, device="cpu", schedule="none", random_state=0,
        progress=False)
    log = read_log("learn")
    with torch.no_grad():
        scores = model(X_valid)[:, 0].numpy()
    auroc = mann_whitney_auroc(scores, y_valid[:, 0].numpy() > 0.5)
    assert auroc == pytest.approx(log["Validation auROC"].iloc[-1], abs=1e-6)
    assert auroc > 0.8
    assert log["Validation Loss"].iloc[-1] < log["Validation Loss"].iloc[0]
    best = torch.load("learn.torch", weights_only=False)
    with torch.no_grad():
        best_scores = best(X_valid)[:, 0].numpy()
    best_epoch = max(i for i, f in enumerate(saved_flags(log)) if f)
    assert mann_whitney_auroc(best_scores, y_valid[:, 0].numpy() > 0.5) == pytest.approx(
        log["Validation auROC"].iloc[best_epoch], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# (i) resume


def _resume_run(folder, epochs, resume, init_seed=0):
    os.makedirs(folder, exist_ok=True)
    os.chdir(folder)
    X, y, _ = planted_binary(48, 100, seed=15)
    model = tiny_binary("resume", seed=init_seed, attention_dropout=0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    fit(model, binary_loader(X, y), optimizer, scheduler, X_valid=X[:16], y_valid=y[:16], max_epochs=epochs,
        device="cpu", schedule={"filter_l1": [0.0, 0.01, 0.1]}, random_state=3, progress=False, resume=resume)
    return model, optimizer


def test_resume_matches_an_uninterrupted_run(tmp_path):
    straight, straight_opt = _resume_run(tmp_path / "straight", 3, resume=False)
    straight_log = read_log("resume")

    _resume_run(tmp_path / "split", 2, resume=False)
    checkpoint = torch.load("resume.checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    # A different initialisation proves that the weights come from the checkpoint.
    resumed, resumed_opt = _resume_run(tmp_path / "split", 3, resume=True, init_seed=99)
    resumed_log = read_log("resume")

    assert state_equal(straight.state_dict(), resumed.state_dict())
    assert straight_opt.param_groups[0]["lr"] == resumed_opt.param_groups[0]["lr"] == pytest.approx(5e-3 / 8)
    timeless = [c for c in straight_log.columns if "Time" not in c]
    pd.testing.assert_frame_equal(straight_log[timeless], resumed_log[timeless])
    assert list(resumed_log["Epoch"]) == [0, 1, 2]
    final = torch.load("resume.final.torch", weights_only=False)
    assert state_equal(final.state_dict(), resumed.state_dict())


def test_resume_without_checkpoint_starts_fresh_and_bad_version_is_rejected(tmp_path):
    model, _ = _resume_run(tmp_path / "fresh", 1, resume=True)
    assert list(read_log("resume")["Epoch"]) == [0]
    state = torch.load("resume.checkpoint.pt", weights_only=True)
    state["version"] = 999
    torch.save(state, "resume.checkpoint.pt")
    with pytest.raises(ValueError, match="checkpoint version"):
        _resume_run(tmp_path / "fresh", 2, resume=True)


def test_no_validation_data_selects_by_training_loss():
    X, y, _ = planted_binary(32, 100, seed=16)
    model = tiny_binary("novalid")
    fit(model, binary_loader(X, y), torch.optim.Adam(model.parameters(), lr=1e-2), max_epochs=2, device="cpu",
        progress=False)
    log = read_log("novalid")
    assert log["Validation Loss"].isna().all()
    task = list(log["Training Task Loss"])
    assert saved_flags(log) == [True, task[1] < task[0]]
    assert math.isfinite(task[-1])


# ---------------------------------------------------------------------------------------------
# Fourier prior on positives only: two forward passes for batch-independent models


def _prior_case(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    X = random_one_hot(10, 120, generator).double()
    labels = torch.tensor([1, 0, 0, 1, 1, 0, 1, 0, 0, 1])
    return X, labels


def _loss_and_grads(model, X, X_ctl, y, labels, fourier_weight, split):
    from argminn_plugin.training import backward_parameters, forward_and_loss

    model.zero_grad(set_to_none=True)
    components = forward_and_loss(model, lambda a, b: model(a) if b is None else model(a, b), X, X_ctl, y, labels,
                                  {}, fourier_weight=fourier_weight, split=split)
    backward_parameters(components.total, model)
    return components, [p.grad.clone() for p in model.parameters() if p.requires_grad]


def test_split_prior_equals_one_pass_for_bpnet():
    torch.manual_seed(0)
    model = BPNet(n_filters=8, n_layers=2, n_outputs=2, n_control_tracks=0, trimming=20, verbose=False).double()
    X, labels = _prior_case(model)
    y = torch.poisson(torch.full((10, 2, 80), 2.0), generator=torch.Generator().manual_seed(1)).double()
    one, grads_one = _loss_and_grads(model, X, None, y, labels, 50.0, split=False)
    two, grads_two = _loss_and_grads(model, X, None, y, labels, 50.0, split=True)
    assert one.fourier_prior > 0
    for a, b in zip(one, two):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads_one, grads_two):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
    # The prior contributes to the gradients, so the comparison above covers its double back-propagation.
    _, grads_task = _loss_and_grads(model, X, None, y, labels, 0.0, split=False)
    assert max((a - b).abs().max() for a, b in zip(grads_one, grads_task)) > 1e-6


def test_batch_independence_decides_the_split():
    from argminn_plugin.training import batch_independent

    argminn = ARGMINN(n_filters=4, filter_width=5, n_attention_layers=1)
    bpnet = BPNet(n_filters=4, n_layers=1, n_outputs=1, n_control_tracks=0, trimming=10, verbose=False)
    assert not batch_independent(argminn.train())
    assert batch_independent(argminn.eval())
    assert batch_independent(bpnet.train())


def test_argminn_prior_is_not_split_because_batchnorm_couples_the_rows():
    # With training-mode BatchNorm the whole batch's summed output is what the prior explains; a
    # split into positive and negative passes would change it, which is why "auto" never splits here.
    torch.manual_seed(0)
    model = ARGMINN(n_filters=4, filter_width=5, n_attention_layers=1).double().train()
    X, labels = _prior_case(model)
    y = labels.double().reshape(-1, 1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    auto, _ = _loss_and_grads(model, X, None, y, labels, 1.0, split="auto")
    model.load_state_dict(state)
    one, _ = _loss_and_grads(model, X, None, y, labels, 1.0, split=False)
    model.load_state_dict(state)
    forced, _ = _loss_and_grads(model, X, None, y, labels, 1.0, split=True)
    torch.testing.assert_close(auto.fourier_prior, one.fourier_prior)
    assert not torch.isclose(forced.fourier_prior, one.fourier_prior, rtol=1e-6)
