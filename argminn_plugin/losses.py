"""The training objective: task loss + scheduled ARGMINN regularisers + optional Fourier prior."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .regularizers import attention_entropy_penalty, filter_l1_penalty, filter_overlap_penalty


class LossComponents(NamedTuple):
    """Every term of one batch's loss. ``total`` carries the graph; the others are for logging.

    For profile models ``task = profile + count_loss_weight * count`` (bpnet-lite's mixture loss);
    for binary models ``profile`` and ``count`` are zero.
    """

    total: torch.Tensor
    task: torch.Tensor
    profile: torch.Tensor
    count: torch.Tensor
    filter_overlap: torch.Tensor
    filter_l1: torch.Tensor
    attention_entropy: torch.Tensor
    fourier_prior: torch.Tensor


def binary_task_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy on logits (N, T) against labels (N, T) or (N,); soft labels allowed."""
    y = y.to(logits.dtype).reshape(logits.shape)
    return F.binary_cross_entropy_with_logits(logits, y)


def profile_task_loss(y_hat, y: torch.Tensor, count_loss_weight: float, labels: torch.Tensor | None):
    """bpnet-lite's mixture loss: multinomial NLL over strands x positions (peaks only) + log1p count MSE."""
    from bpnetlite.losses import _mixture_loss

    logits, log_counts = y_hat
    return _mixture_loss(y, logits, log_counts, count_loss_weight, labels)


def regularizer_terms(interims, filter_weights: torch.Tensor, weights: dict) -> tuple[torch.Tensor, ...]:
    """The three ARGMINN penalties, batch-averaged.

    A term whose weight is 0 is computed without a graph, for the log only, so it adds no backward
    cost (the original computed and back-propagated every term whatever its weight).
    """
    terms = []
    for key, compute in (
        ("filter_overlap", lambda: filter_overlap_penalty(interims.activations, filter_weights).mean()),
        ("filter_l1", lambda: filter_l1_penalty(filter_weights)),
        ("attention_entropy", lambda: attention_entropy_penalty(interims.attention).mean()),
    ):
        if weights.get(key, 0.0):
            terms.append(compute())
        else:
            with torch.no_grad():
                terms.append(compute())
    return tuple(terms)
