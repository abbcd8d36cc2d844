"""Output heads: the published binary head and an interpretable bpnet-lite-compatible profile head."""

from __future__ import annotations

import torch
from tangermeme.deep_lift_shap import BilinearOp
from torch import nn


class BinaryHead(nn.Module):
    """One logit per task read from the final memory stream: ``Linear(LayerNorm(stream))``.

    This is the published ARGMINN output (a single "bound" logit when ``n_tasks=1``); it returns
    logits, never probabilities, so the loss can use ``binary_cross_entropy_with_logits`` and
    attribution explains the pre-sigmoid value.
    """

    def __init__(self, stream_dim: int = 128, n_tasks: int = 1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(stream_dim)
        self.linear = nn.Linear(stream_dim, n_tasks)

    def forward(self, stream: torch.Tensor) -> torch.Tensor:
        """Logits (N, n_tasks) from the stream (N, S)."""
        return self.linear(self.norm(stream))


class ProfileHead(nn.Module):
    """Profile logits and log counts with the bpnet-lite contract, built to stay interpretable.

    Design
    ------
    * **Profile.** Attention is pooled over layers and heads (a mean, rescaled by L' so that uniform
      attention gives 1) and multiplies each filter's motif activation position by position
      (a ``BilinearOp``), giving attention-weighted motif instances (N, F, L'). A transposed
      convolution then places one learned *footprint kernel* per filter and output track
      (``footprint_width`` bp, centred on the motif) at every instance. The predicted profile is
      therefore literally a sum of per-motif footprints at the positions the attention points at,
      and each footprint can be plotted from ``footprint.weight[f, track]``. Control tracks, when
      present, add through a 1x1 convolution (as bpnet-lite feeds them to its last convolution).
      The result is cropped to ``[trimming, L - trimming)`` in input coordinates.
    * **Counts.** Log total counts are read from the memory stream: ``Linear(LayerNorm(stream))``,
      plus a learned multiple of ``log(1 + total control counts)`` when controls are present (the
      bpnet-lite convention).

    Parameters
    ----------
    n_filters, filter_width: int
        Sizes of the motif scanner.
    stream_dim: int
        Width of the memory stream.
    n_outputs: int
        Number of profile tracks (e.g. 2 for the two strands of a ChIP-seq experiment).
    n_control_tracks: int
        Number of control tracks (0 for none).
    trimming: int
        Bases cropped from each end of the input to give the output window.
    footprint_width: int
        Width of each footprint kernel; at least ``filter_width``.
    profile_output_bias, count_output_bias: bool
        Whether the footprint convolution and the count read-out have biases (bpnet-lite keywords).
    """

    def __init__(
        self,
        n_filters: int,
        filter_width: int,
        stream_dim: int,
        n_outputs: int,
        n_control_tracks: int,
        trimming: int,
        footprint_width: int = 75,
        profile_output_bias: bool = True,
        count_output_bias: bool = True,
    ) -> None:
        super().__init__()
        if footprint_width < filter_width:
            raise ValueError(f"footprint_width ({footprint_width}) must be at least filter_width ({filter_width}).")
        self.filter_width = filter_width
        self.trimming = trimming
        self.offset = (footprint_width - filter_width) // 2
        self.gate = BilinearOp("...,...->...")
        self.footprint = nn.ConvTranspose1d(n_filters, n_outputs, footprint_width, bias=profile_output_bias)
        self.control_profile = nn.Conv1d(n_control_tracks, n_outputs, 1, bias=False) if n_control_tracks else None
        self.count_norm = nn.LayerNorm(stream_dim)
        self.count = nn.Linear(stream_dim, 1, bias=count_output_bias)
        self.control_count = nn.Linear(1, 1, bias=False) if n_control_tracks else None

    def instance_weights(self, activations: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """Attention-weighted activations (N, F, L'): ``activations * L' * mean_{layers, heads}(attention)``."""
        pooled = attention.mean(dim=(1, 2)) * attention.shape[-1]
        return self.gate(activations, pooled.unsqueeze(1).expand_as(activations))

    def forward(
        self,
        activations: torch.Tensor,
        attention: torch.Tensor,
        stream: torch.Tensor,
        X_ctl: torch.Tensor | None,
        length: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Profile logits (N, n_outputs, length - 2*trimming) and log counts (N, 1)."""
        placed = self.footprint(self.instance_weights(activations, attention))
        start = self.trimming + self.offset
        profile = placed[:, :, start : start + length - 2 * self.trimming]
        log_counts = self.count(self.count_norm(stream))
        if self.control_profile is not None and X_ctl is not None:
            profile = profile + self.control_profile(X_ctl[:, :, self.trimming : length - self.trimming])
            total = torch.log1p(X_ctl.sum(dim=(1, 2))).unsqueeze(-1)
            log_counts = log_counts + self.control_count(total)
        return profile, log_counts
