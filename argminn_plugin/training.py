"""Training loop shaped like ``bpnetlite.BPNet.fit``, with ARGMINN's regularisers and the Fourier prior.

``fit(model, training_data, optimizer, ...)`` takes the same arguments, consumes the same batches
(``(X, y, labels)`` or ``(X, X_ctl, y, labels)`` from bpnet-lite's ``PeakGenerator`` or from
:func:`argminn_plugin.data.binary_dataloader`) and writes the same files as bpnet-lite:

* ``{name}.torch``: the whole model (``torch.save(model)``) at the epoch with the lowest validation
  task loss, the file the ``bpnet`` commands load;
* ``{name}.final.torch``: the whole model after the last epoch;
* ``{name}.log``: one tab-separated row per epoch with every loss component;
* ``{name}.checkpoint.pt``: model, optimizer, scheduler, epoch, schedule position and RNG states,
  rewritten atomically after every epoch, for ``resume=True``.

It works for any model with the bpnet-lite contract, ``bpnetlite.BPNet`` included: the ARGMINN
penalties apply only to models with ``forward_with_interims``, while the Fourier prior applies to
every model. This is the documented way to train a bpnet-lite model with the prior, since
``BPNet.fit`` has no loss hook::

    from bpnetlite import BPNet
    from argminn_plugin.training import fit

    model = BPNet(n_filters=64, n_layers=8, n_control_tracks=0, trimming=557, name="bpnet_prior")
    fit(model, PeakGenerator(...), torch.optim.Adam(model.parameters(), lr=1e-3),
        X_valid=X_valid, y_valid=y_valid, device="cpu", fourier_weight=50.0)

Under ``torchrun`` (when ``torch.distributed`` is initialised) the model is wrapped in
``DistributedDataParallel`` (gloo on CPU, NCCL on GPU) and every process trains on its own slice
of each batch; gradients are averaged, so the step equals a single-process step on the whole
batch, except that BatchNorm uses each process's own batch statistics. Only rank 0 writes files.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
import numpy as np
import pandas as pd
import torch
from torch import nn

from ._validation import resolve_device
from .fourier_prior import fourier_prior_loss, output_tracks
from .io import atomic_write, save_bpnet_compatible
from .losses import LossComponents, binary_task_loss, profile_task_loss, regularizer_terms
from .regularizers import SCHEDULE_PRESETS, schedule_weights, scheduled_weight

CHECKPOINT_VERSION = 1


class _WithInterims(nn.Module):
    """Routes ``forward`` to ``forward_with_interims`` so DistributedDataParallel sees the whole pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, X, X_ctl=None):
        if hasattr(self.model, "forward_with_interims"):
            return self.model.forward_with_interims(X, X_ctl)
        return self.model(X) if X_ctl is None else self.model(X, X_ctl)


def set_seed(random_state: int | None) -> None:
    """Seed Python, NumPy and torch so that CPU runs are reproducible."""
    if random_state is None:
        return
    random.seed(random_state)
    np.random.seed(random_state % (2**32))
    torch.manual_seed(random_state)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(state: dict) -> None:
    random.setstate(tuple(state["python"][:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def _restore_buffers(model: nn.Module, saved: list[torch.Tensor]) -> None:
    """Copy ``saved`` (taken from ``model.buffers()``) back into the model's buffers."""
    with torch.no_grad():
        for buffer, value in zip(model.buffers(), saved):
            buffer.copy_(value)


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _on_every_rank(flag: torch.Tensor, world: int) -> bool:
    """Whether ``flag`` holds on every process: all ranks must skip the same batches, or the
    DistributedDataParallel gradient all-reduces of the ranks fall out of step (a hang)."""
    if world > 1:
        flag = flag.detach().float()
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag)


def _unpack(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3, 4):
        raise ValueError(
            "training_data must yield (X, y, labels) or (X, X_ctl, y, labels) batches (bpnet-lite's layout); "
            f"got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}."
        )
    X, y = batch[0], batch[-2] if len(batch) > 2 else batch[1]
    X_ctl = batch[1] if len(batch) == 4 else None
    if len(batch) == 2:
        labels = (y.reshape(y.shape[0], -1) > 0.5).any(dim=1).long()
    else:
        labels = batch[-1]
    return X, X_ctl, y, labels


def _reverse_complement_batch(X, X_ctl, y, labels, profile: bool):
    rc = X.flip(1).flip(2)
    X = torch.cat([X, rc])
    if X_ctl is not None:
        X_ctl = torch.cat([X_ctl, X_ctl.flip(1).flip(2)])
    y = torch.cat([y, y.flip(1).flip(2)]) if profile else torch.cat([y, y])
    return X, X_ctl, y, torch.cat([labels, labels])


def compute_loss(
    model: nn.Module,
    output,
    X: torch.Tensor,
    y: torch.Tensor,
    labels: torch.Tensor,
    weights: dict,
    *,
    fourier_weight: float = 0.0,
    fourier_freq_limit: int | None = None,
    fourier_positives_only: bool = True,
    create_graph: bool = True,
    attribution: tuple | None = None,
) -> LossComponents:
    """All loss components of one batch from one forward pass.

    ``output`` is an ``ARGMINNOutput`` (ARGMINN) or a plain model output. For the Fourier prior,
    ``X`` must have been made to require gradients before that forward pass, so the input gradient
    reuses it (no second forward). Alternatively ``attribution=(output_of_rows, X_rows)`` gives the
    output of a separate forward pass over exactly the rows the prior applies to (see
    :func:`forward_and_loss`); the prior is then computed from those alone.
    """
    y_hat = output.y if hasattr(output, "activations") else output
    zero = torch.zeros((), device=X.device)
    if isinstance(y_hat, (tuple, list)):
        profile, count, task = profile_task_loss(y_hat, y, getattr(model, "count_loss_weight", 1.0), labels)
    else:
        task, profile, count = binary_task_loss(y_hat, y), zero, zero
    if hasattr(output, "activations"):
        overlap, l1, entropy = regularizer_terms(output, model.filter_weights, weights)
    else:
        overlap = l1 = entropy = zero
    prior = zero
    limit = fourier_freq_limit or max(1, round(0.15 * X.shape[-1]))
    if fourier_weight and attribution is not None:
        rows_output, X_rows = attribution
        rows_y = rows_output.y if hasattr(rows_output, "activations") else rows_output
        prior = fourier_prior_loss(output_tracks(rows_y, X_rows, create_graph=create_graph), limit).mean()
    elif fourier_weight:
        status = labels.reshape(-1) == 1
        if not fourier_positives_only:
            status = torch.ones_like(status)
        if status.any():
            tracks = output_tracks(y_hat, X, create_graph=create_graph)
            prior = fourier_prior_loss(tracks[status], limit).mean()
    total = (
        task
        + weights.get("filter_overlap", 0.0) * overlap
        + weights.get("filter_l1", 0.0) * l1
        + weights.get("attention_entropy", 0.0) * entropy
        + fourier_weight * prior
    )
    return LossComponents(total, task, profile, count, overlap, l1, entropy, prior)


def batch_independent(model: nn.Module) -> bool:
    """Whether, in the model's current mode, no example's output depends on another example.

    False when a BatchNorm layer is in training mode (its batch statistics couple the examples, and
    the Fourier prior's input gradient of the batch-summed output then carries cross-example terms
    that change the attributions materially), True otherwise. Dropout keeps examples independent.
    """
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training for m in model.modules())


def _merge_rows(first, second, order: torch.Tensor):
    """Outputs of two forward passes over disjoint rows, put back in the batch's order."""
    if isinstance(first, (tuple, list)):
        return type(first)(_merge_rows(a, b, order) for a, b in zip(first, second))
    return torch.cat([first, second])[order]


def forward_and_loss(
    model: nn.Module,
    forward,
    X: torch.Tensor,
    X_ctl: torch.Tensor | None,
    y: torch.Tensor,
    labels: torch.Tensor,
    weights: dict,
    *,
    fourier_weight: float = 0.0,
    fourier_freq_limit: int | None = None,
    fourier_positives_only: bool = True,
    split: bool | str = "auto",
) -> LossComponents:
    """One batch's forward pass(es) and :func:`compute_loss`, as :func:`fit` runs them.

    With the Fourier prior on positives only, a batch-independent model (no BatchNorm in training
    mode, e.g. ``bpnetlite.BPNet``; see :func:`batch_independent`) is run as two forward passes, one
    over the positives with ``X`` requiring gradients and one over the rest without, so the double
    back-propagation of the prior covers only the rows it applies to. The loss, the prior and every
    gradient are the same as with one pass over the whole batch; only the work changes. Models
    with training-mode BatchNorm (ARGMINN) always take one pass, because the prior's input gradient
    is that of the whole batch's summed output there. ``split`` forces (True) or forbids (False) the
    two passes. ``forward(X, X_ctl)`` runs the model; ``X`` must not already require gradients.
    """
    status = labels.reshape(-1) == 1
    if split == "auto":
        split = fourier_positives_only and batch_independent(model)
    use_split = bool(fourier_weight) and bool(split) and fourier_positives_only and 0 < int(status.sum()) < len(status)
    if not use_split:
        if fourier_weight:
            X = X.detach().requires_grad_(True)
        output = forward(X, X_ctl)
        return compute_loss(model, output, X, y, labels, weights, fourier_weight=fourier_weight,
                            fourier_freq_limit=fourier_freq_limit, fourier_positives_only=fourier_positives_only)
    positives, others = status.nonzero().squeeze(1), (~status).nonzero().squeeze(1)
    order = torch.argsort(torch.cat([positives, others]))
    X_pos = X[positives].detach().requires_grad_(True)
    out_pos = forward(X_pos, None if X_ctl is None else X_ctl[positives])
    out_other = forward(X[others], None if X_ctl is None else X_ctl[others])
    if hasattr(out_pos, "activations"):  # an ARGMINNOutput: merge every field
        output = type(out_pos)(*(_merge_rows(a, b, order) for a, b in zip(out_pos, out_other)))
    else:
        output = _merge_rows(out_pos, out_other, order)
    return compute_loss(model, output, X, y, labels, weights, fourier_weight=fourier_weight,
                        fourier_freq_limit=fourier_freq_limit, fourier_positives_only=True,
                        attribution=(out_pos, X_pos))


def backward_parameters(loss: torch.Tensor, model: nn.Module) -> None:
    """``loss.backward()`` restricted to the trainable parameters (no gradient for the input batch)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    torch.autograd.backward(loss, inputs=parameters)


def _validate(model, X_valid, X_ctl_valid, y_valid, batch_size, device) -> dict:
    from tangermeme.predict import predict

    args = (X_ctl_valid,) if X_ctl_valid is not None else None
    y_hat = predict(model, X_valid, args=args, batch_size=batch_size, device=device)
    if isinstance(y_hat, (tuple, list)):
        from bpnetlite.performance import calculate_performance_measures

        profile, count, loss = profile_task_loss(y_hat, y_valid, getattr(model, "count_loss_weight", 1.0), None)
        measures = calculate_performance_measures(
            y_hat[0].detach(), y_valid, y_hat[1].detach(), kernel_sigma=7, kernel_width=81,
            measures=["profile_pearson", "count_pearson"],
        )
        return {
            "Validation Loss": loss.item(),
            "Validation MNLL": profile.item(),
            "Validation Count MSE": count.item(),
            "Validation Profile Pearson": float(np.nan_to_num(measures["profile_pearson"].numpy()).mean()),
            "Validation Count Pearson": float(np.nan_to_num(measures["count_pearson"].numpy()).mean()),
        }
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = y_valid.reshape(y_hat.shape).float()
    loss = binary_task_loss(y_hat.float(), y_true).item()
    truth, score = y_true.numpy(), y_hat.float().numpy()
    aurocs, auprcs = [], []
    for t in range(truth.shape[1]):
        labels = truth[:, t] > 0.5
        if labels.any() and not labels.all() and np.isfinite(score[:, t]).all():  # NaN scores: metrics NaN
            aurocs.append(roc_auc_score(labels, score[:, t]))
            auprcs.append(average_precision_score(labels, score[:, t]))
    return {
        "Validation Loss": loss,
        "Validation auROC": float(np.mean(aurocs)) if aurocs else float("nan"),
        "Validation auPRC": float(np.mean(auprcs)) if auprcs else float("nan"),
        "Validation Accuracy": float(((score > 0) == (truth > 0.5)).mean()),
    }


def _log_columns(profile: bool) -> list[str]:
    training = ["Training MNLL", "Training Count MSE"] if profile else []
    validation = (
        ["Validation MNLL", "Validation Count MSE", "Validation Profile Pearson", "Validation Count Pearson"]
        if profile
        else ["Validation auROC", "Validation auPRC", "Validation Accuracy"]
    )
    return (
        ["Epoch", "Iteration", "Training Time", "Validation Time", "Training Loss", "Training Task Loss"]
        + training
        + ["Training Filter Overlap", "Training Filter L1", "Training Attention Entropy", "Training Fourier Prior",
           "Filter Overlap Weight", "Filter L1 Weight", "Attention Entropy Weight", "Fourier Prior Weight",
           "Skipped Batches",
           "Validation Loss"]
        + validation
        + ["Saved?"]
    )


def fit(
    model: nn.Module,
    training_data,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    X_valid: torch.Tensor | None = None,
    X_ctl_valid: torch.Tensor | None = None,
    y_valid: torch.Tensor | None = None,
    max_epochs: int = 100,
    batch_size: int = 64,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device | None = None,
    early_stopping: int | None = None,
    *,
    schedule: str | dict | None = "simulation",
    fourier_weight: float | Sequence[float] = 0.0,
    fourier_freq_limit: int | None = None,
    fourier_positives_only: bool = True,
    reverse_complement: bool = False,
    grad_clip: float | None = 1.0,
    max_nonfinite_fraction: float = 0.5,
    random_state: int | None = None,
    verbose: bool | None = None,
    progress: bool | None = None,
    resume: bool = False,
) -> nn.Module:
    """Train ``model`` the way ``bpnetlite.BPNet.fit`` does, adding ARGMINN's objective.

    The first eleven parameters are ``BPNet.fit``'s, in the same order and meaning (except that
    ``device=None`` picks CUDA when available, and validation data are optional: without them the
    best model is chosen by training task loss).

    Parameters
    ----------
    model: torch.nn.Module
        An ARGMINN, or any model with the bpnet-lite contract (``forward(X, X_ctl=None)`` returning
        ``(profile_logits, log_counts)``) or returning binary logits (N, n_tasks).
    training_data: iterable
        Batches ``(X, y, labels)`` or ``(X, X_ctl, y, labels)``; X is (B, 4, L) one-hot, y is
        (B, n_tasks) for binary models or (B, n_outputs, out_window) counts for profile models, and
        labels (B,) is 1 for peaks / positives.
    optimizer: torch.optim.Optimizer
        E.g. ``torch.optim.Adam(model.parameters(), lr=1e-3)``.
    scheduler: optional
        Stepped once per epoch, with the validation loss for ``ReduceLROnPlateau``.
    X_valid, X_ctl_valid, y_valid: torch.Tensor, optional
        Validation sequences (N, 4, L), controls (N, n_control_tracks, L) and targets.
    max_epochs: int
        Epochs to train. Default is 100 (ARGMINN's schedules span 40).
    batch_size: int
        Batch size of the validation predictions. Default is 64.
    dtype: str or torch.dtype
        ``"float32"`` (default) or ``"bfloat16"`` (autocast); the Fourier prior is computed in fp32.
    device: str, torch.device or None
        None means CUDA when available, else CPU.
    early_stopping: int or None
        Stop after this many epochs without a lower validation loss. Default None (never).
    schedule: str, dict or None
        Per-epoch weights of the ARGMINN penalties: ``"simulation"`` (default; the paper's
        simulation schedule: overlap 10^0.5 -> 10^5 and L1 1e-3 -> 1e-2 over epochs 10-29),
        ``"genomic"``, ``"none"``/None, or a dict with keys ``filter_overlap``, ``filter_l1``,
        ``attention_entropy`` mapping to a number or a per-epoch list. Ignored for models without
        ``forward_with_interims``.
    fourier_weight: float or sequence of float
        Weight of the Fourier attribution prior (1 for binary models, 50 for profile models in the
        paper); 0 turns it off. A sequence gives one weight per epoch (the last one is reused after
        its end), e.g. ``[0] * 5 + [1]`` for five warm-up epochs without the prior: a model that
        gets the prior from its first step can stay at chance. The paper used no schedule.
        Default is 0.
    fourier_freq_limit: int or None
        The prior's cut-off as an rfft bin; None means round(0.15 * L).
    fourier_positives_only: bool
        Apply the prior to examples with label 1 only (the paper). Default is True.
    reverse_complement: bool
        Append the reverse complement of every batch (labels duplicated; profiles flipped, which
        swaps strands). Leave it off when the loader already augments (PeakGenerator's default).
    grad_clip: float or None
        Gradient-norm clipping. Default is 1.0, as in both bpnet-lite and ARGMINN.
    max_nonfinite_fraction: float
        Batches whose loss or gradient is not finite are skipped and counted; when more than this
        fraction of an epoch's batches is skipped, training stops with an error. Default is 0.5.
    random_state: int or None
        Seeds Python, NumPy and torch at the start of training (shuffles, dropout, simulated
        batches), so CPU runs from the same initial model are reproducible. The model already
        exists by then: for the same initial weights too, seed before building it
        (``argminn_plugin.training.set_seed(0)`` or ``torch.manual_seed(0)``).
    verbose: bool or None
        Print the log rows; None uses ``model.verbose`` (True when absent).
    progress: bool or None
        Show a tqdm progress bar over batches; None follows ``verbose``.
    resume: bool
        Continue from ``{name}.checkpoint.pt`` if it exists.

    Returns
    -------
    torch.nn.Module
        The trained model (trained in place).
    """
    if max_epochs < 0:
        raise ValueError(f"max_epochs must be >= 0, got {max_epochs}.")
    if not 0 <= max_nonfinite_fraction <= 1:
        raise ValueError(f"max_nonfinite_fraction must be in [0, 1], got {max_nonfinite_fraction}.")
    if isinstance(schedule, str) and schedule not in SCHEDULE_PRESETS:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULE_PRESETS)} or a dict, got {schedule!r}.")
    if (X_valid is None) != (y_valid is None):
        raise ValueError("X_valid and y_valid must be given together.")
    from tqdm.auto import tqdm

    name = getattr(model, "name", None) or "model"
    verbose = getattr(model, "verbose", True) if verbose is None else verbose
    progress = verbose if progress is None else progress
    device = resolve_device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    amp_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    use_autocast = amp_dtype in (torch.bfloat16, torch.float16)
    rank, world = _distributed()
    is_main = rank == 0
    schedule = "none" if schedule is None else schedule
    has_interims = hasattr(model, "forward_with_interims")

    scheduled_weight(fourier_weight, 0)  # a malformed weight fails here, before any work
    if np.any(np.asarray(fourier_weight, dtype=float) < 0):
        raise ValueError(f"fourier_weight must be >= 0 (a number or one number per epoch), got {fourier_weight!r}.")

    set_seed(random_state)
    model.to(device)
    stepper = _WithInterims(model)
    if world > 1:
        stepper = nn.parallel.DistributedDataParallel(stepper, device_ids=[device.index] if device.type == "cuda" else None)

    checkpoint_file = Path(f"{name}.checkpoint.pt")
    columns = None
    rows: list[dict] = []
    start_epoch, iteration, best_loss, early_stop_count = 0, 0, math.inf, 0
    if resume and checkpoint_file.exists():
        state = torch.load(checkpoint_file, map_location=device, weights_only=True)
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{checkpoint_file} has checkpoint version {state.get('version')!r}, "
                             f"expected {CHECKPOINT_VERSION}.")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        start_epoch, iteration = state["epoch"] + 1, state["iteration"]
        best_loss, early_stop_count, rows = state["best_loss"], state["early_stop_count"], state["log"]
        _set_rng_state(state["rng"])

    logger = None
    for epoch in range(start_epoch, max_epochs):
        for source in (training_data, getattr(training_data, "sampler", None)):  # resumable shuffles / simulations
            getattr(source, "set_epoch", lambda _: None)(epoch)
        weights = schedule_weights(schedule, epoch) if has_interims else {}
        prior_weight = scheduled_weight(fourier_weight, epoch)
        sums: dict[str, float] = {}
        n_batches = skipped = 0
        tic = time.time()
        model.train()
        for batch in tqdm(training_data, disable=not (progress and is_main), desc=f"Epoch {epoch}", leave=False):
            X, X_ctl, y, labels = _unpack(batch)
            share = 1.0  # this rank's loss weight; DDP averages gradients over the ranks
            if world > 1 and len(X) >= world:  # a batch too small to split runs whole on every rank
                n_whole = len(X)
                X, y, labels = (torch.tensor_split(t, world)[rank] for t in (X, y, labels))
                X_ctl = None if X_ctl is None else torch.tensor_split(X_ctl, world)[rank]
                share = world * len(X) / n_whole  # uneven slices: weight by size, so the step is the whole batch's
            X = X.to(device).float()
            y, labels = y.to(device), labels.to(device)
            X_ctl = None if X_ctl is None else X_ctl.to(device).float()
            if reverse_complement:
                X, X_ctl, y, labels = _reverse_complement_batch(X, X_ctl, y, labels, y.ndim == 3)
            n_batches += 1
            optimizer.zero_grad(set_to_none=True)
            # A skipped batch must leave no trace: its forward pass has already updated BatchNorm's
            # running statistics (NaN inputs would make every later prediction NaN), so keep a copy.
            saved_buffers = [b.detach().clone() for b in model.buffers()]
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_autocast):
                # DDP allows one forward pass per backward pass, so no split into two passes there.
                components = forward_and_loss(
                    model, stepper, X, X_ctl, y, labels, weights, fourier_weight=prior_weight,
                    fourier_freq_limit=fourier_freq_limit, fourier_positives_only=fourier_positives_only,
                    split="auto" if world == 1 else False,
                )
            if not _on_every_rank(torch.isfinite(components.total), world):
                _restore_buffers(model, saved_buffers)
                skipped += 1
                continue
            backward_parameters(components.total * share, model)
            norm = nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip else math.inf)
            if not torch.isfinite(norm):
                optimizer.zero_grad(set_to_none=True)
                _restore_buffers(model, saved_buffers)
                skipped += 1
                continue
            optimizer.step()
            iteration += 1
            for key, value in components._asdict().items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * share / world
        if world > 1 and sums:  # whole-batch means, the same on every rank: log, model choice, early stopping
            keys = sorted(sums)
            totals = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=device)
            torch.distributed.all_reduce(totals)
            sums = dict(zip(keys, totals.tolist()))
        train_time = time.time() - tic
        if n_batches == 0:
            raise ValueError("training_data yielded no batches.")
        if skipped > max_nonfinite_fraction * n_batches:
            raise RuntimeError(
                f"{skipped} of {n_batches} batches in epoch {epoch} had a non-finite loss or gradient "
                f"(more than max_nonfinite_fraction={max_nonfinite_fraction}). Check the inputs for NaN or "
                "infinite values, and lower the learning rate or the regulariser/prior weights."
            )
        done = max(n_batches - skipped, 1)
        means = {k: v / done for k, v in sums.items()}

        tic = time.time()
        profile = y.ndim == 3  # profile targets are (N, strands, length), binary ones (N, tasks)
        if X_valid is not None:
            valid = _validate(model, X_valid, X_ctl_valid, y_valid, batch_size, device)
            select = valid["Validation Loss"]
        else:
            valid = {"Validation Loss": float("nan")}
            select = means.get("task", math.inf)
        valid_time = time.time() - tic
        improved = select < best_loss

        if columns is None:
            columns = _log_columns(profile)
            from bpnetlite.logging import Logger

            logger = Logger(columns, verbose=verbose and is_main)
            logger.start()
        row = {
            "Epoch": epoch, "Iteration": iteration, "Training Time": train_time, "Validation Time": valid_time,
            "Training Loss": means.get("total", math.nan), "Training Task Loss": means.get("task", math.nan),
            "Training MNLL": means.get("profile", math.nan), "Training Count MSE": means.get("count", math.nan),
            "Training Filter Overlap": means.get("filter_overlap", math.nan),
            "Training Filter L1": means.get("filter_l1", math.nan),
            "Training Attention Entropy": means.get("attention_entropy", math.nan),
            "Training Fourier Prior": means.get("fourier_prior", math.nan),
            "Filter Overlap Weight": weights.get("filter_overlap", 0.0),
            "Filter L1 Weight": weights.get("filter_l1", 0.0),
            "Attention Entropy Weight": weights.get("attention_entropy", 0.0),
            "Fourier Prior Weight": prior_weight,
            "Skipped Batches": skipped, **valid, "Saved?": bool(improved),
        }
        rows.append({c: row.get(c, math.nan) for c in columns})
        logger.add([rows[-1][c] for c in columns])
        if improved:
            best_loss, early_stop_count = select, 0
        else:
            early_stop_count += 1
        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(select)
            else:
                scheduler.step()

        if is_main:
            log = pd.DataFrame(rows, columns=columns)
            atomic_write(f"{name}.log", lambda tmp: log.to_csv(tmp, sep="\t", index=False))
            if improved:
                model.eval()  # pickled in eval mode, as BPNet.fit does (BatchNorm uses running statistics)
                save_bpnet_compatible(model, f"{name}.torch")
            state = {
                "version": CHECKPOINT_VERSION, "epoch": epoch, "iteration": iteration, "best_loss": best_loss,
                "early_stop_count": early_stop_count, "log": rows, "rng": _rng_state(),
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "schedule": schedule, "schedule_position": epoch,
            }
            atomic_write(checkpoint_file, lambda tmp: torch.save(state, tmp))
        if early_stopping is not None and early_stop_count >= early_stopping:
            break

    model.eval()
    if is_main:
        save_bpnet_compatible(model, f"{name}.final.torch")
    return model


__all__ = ["fit", "compute_loss", "set_seed"]
