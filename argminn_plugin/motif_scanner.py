"""The motif scanner: ARGMINN's single convolutional layer, where one filter is meant to be one motif."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class ScannerOutput(NamedTuple):
    """Outputs of :class:`MotifScanner`.

    activations: torch.Tensor, shape=(N, n_filters, L')
        Post-ReLU, pre-BatchNorm motif activations; what the overlap penalty and every read-out use.
    normalized: torch.Tensor, shape=(N, n_filters, L')
        The activations after BatchNorm (identical to ``activations`` without BatchNorm); what the
        syntax builder consumes.
    """

    activations: torch.Tensor
    normalized: torch.Tensor


class MotifScanner(nn.Module):
    """``Conv1d(4 -> n_filters, filter_width)`` with bias, then ``nn.ReLU``, then optional BatchNorm.

    The weights are unconstrained and use PyTorch's default initialisation, as in the published
    model; interpretability comes from the filter-overlap and L1 penalties applied during training
    (:mod:`argminn_plugin.regularizers`), not from a parametrisation. BatchNorm comes *after* the
    ReLU, so the activations read out for motifs and instances are the non-negative ReLU outputs.

    Parameters
    ----------
    n_filters: int
        Number of filters (motifs). Default is 8.
    filter_width: int
        Width of each filter in bp. Default is 10.
    batch_norm: bool
        Whether to apply ``BatchNorm1d`` after the ReLU. Default is True.
    """

    def __init__(self, n_filters: int = 8, filter_width: int = 10, batch_norm: bool = True) -> None:
        super().__init__()
        self.n_filters = n_filters
        self.filter_width = filter_width
        self.conv = nn.Conv1d(4, n_filters, filter_width)
        self.relu = nn.ReLU()
        self.batch_norm = nn.BatchNorm1d(n_filters) if batch_norm else nn.Identity()

    @property
    def filter_weights(self) -> torch.Tensor:
        """The convolution weights, shape (n_filters, 4, filter_width)."""
        return self.conv.weight

    def forward(self, X: torch.Tensor) -> ScannerOutput:
        """Scan one-hot sequences ``X`` of shape (N, 4, L); returns activations of length L - filter_width + 1."""
        activations = self.relu(self.conv(X))
        return ScannerOutput(activations, self.batch_norm(activations))
