"""ARGMINN: a mechanistically interpretable network for regulatory genomics (Tseng et al., 2024).

This module holds the :class:`ARGMINN` model. Its import path, ``argminn_plugin.model.ARGMINN``,
is recorded in every whole-model pickle that the ``bpnet`` commands load, so it never moves.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
from torch import nn

from ._validation import check_controls, check_one_hot
from .heads import BinaryHead, ProfileHead
from .motif_scanner import MotifScanner
from .syntax_builder import SyntaxBuilder

HEADS = ("binary", "profile")

# Defaults of the profile head when the bpnet-lite keywords are not given: those of bpnetlite.BPNet.
_BPNET_DEFAULTS = {"n_outputs": 2, "n_control_tracks": 2, "trimming": 557}


class ARGMINNOutput(NamedTuple):
    """Everything one forward pass computes.

    y: torch.Tensor or tuple
        What ``forward`` returns: logits (N, n_tasks) for the binary head, or
        ``(profile_logits (N, n_outputs, out_window), log_counts (N, 1))`` for the profile head.
    activations: torch.Tensor, shape=(N, n_filters, L')
        Motif activations, post-ReLU and pre-BatchNorm, with L' = L - filter_width + 1.
    attention: torch.Tensor, shape=(N, n_attention_layers, n_heads, L')
        Stream-attention weights; each (example, layer, head) row sums to 1 over L'.
    stream: torch.Tensor, shape=(N, stream_dim)
        The final memory stream.
    """

    y: Any
    activations: torch.Tensor
    attention: torch.Tensor
    stream: torch.Tensor


class ARGMINN(nn.Module):
    """ARGMINN: one convolutional motif scanner, a stream-attention syntax builder and a read-out.

    The defaults reproduce the published model: a ``Conv1d(4, n_filters, filter_width)`` with bias,
    ReLU then BatchNorm; tokens ``Linear([activations ; positional encoding])`` computed once and
    shared by every layer; a memory stream of ones that is never trained; stream-attention layers
    whose logits are query·value (keys tied to values) and whose sub-blocks have no residual (only
    the stream does); and a binary logit read from the final stream. With ``n_filters=8,
    filter_width=10`` the model has 13,497 parameters (128 of them the frozen stream) with one
    attention layer and 49,017 with four.

    The same class also meets bpnet-lite's model contract when built with the profile head:
    ``forward(X, X_ctl=None)`` returns ``(profile_logits, log_counts)``, and the attributes
    ``n_outputs``, ``n_control_tracks``, ``trimming``, ``name`` and ``count_loss_weight`` exist, so a
    saved model goes through ``bpnet evaluate``, ``bpnet attribute`` and ``bpnet marginalize``. See
    :class:`argminn_plugin.heads.ProfileHead` for how the profile stays interpretable (per-filter
    footprints placed at attention-weighted motif instances; counts read from the stream).

    Every non-linearity is a module (``nn.ReLU``, ``nn.Softmax``, ``nn.LayerNorm``) and every product
    of two input-dependent tensors is a tangermeme ``BilinearOp``, so ``tangermeme.deep_lift_shap``
    and ``bpnet attribute`` converge with their built-in rules.

    Differences from the original code, each behind an option:

    1. ``attention_scores="query_key"`` adds a separate key projection (the original builds one but
       never uses it); the default ``"query_value"`` is the published behaviour.
    2. ``stream_init="randn"`` draws the stream from a seeded N(0, I) (the original source tree);
       the default ``"ones"`` follows the published example.
    3. ``forward`` returns logits, not sigmoid probabilities; training uses BCE-with-logits.
    4. The profile head is an addition of this package; the published head is binary only.

    Parameters
    ----------
    n_filters: int
        Motif-scanner filters (one per motif). Default is 8.
    filter_width: int
        Filter width in bp (10 for simulations, 15 for genomic data in the paper). Default is 10.
    n_attention_layers: int
        Stream-attention layers. Default is 4 (the published configuration; 1 suffices for simple
        grammars).
    n_heads: int
        Attention heads per layer. Default is 4.
    pos_enc_dim: int
        Positional-encoding width, concatenated to the activations. Default is 16.
    token_dim: int
        Token / attention width. Default is 32.
    stream_dim: int
        Memory-stream width. Default is 128.
    head: str or None
        ``"binary"`` or ``"profile"``. None picks ``"profile"`` when any of the bpnet-lite keywords
        ``n_outputs``, ``n_control_tracks`` or ``trimming`` is given, else ``"binary"``, so that a
        bpnet-lite script works by changing the class name only. Default is None.
    n_tasks: int
        Number of binary logits (binary head). Default is 1.
    n_outputs: int or None
        Profile tracks (profile head). None means 2, as in ``bpnetlite.BPNet``.
    n_control_tracks: int or None
        Control tracks (profile head). None means 2 in profile mode (as ``bpnetlite.BPNet``), 0 in
        binary mode, where controls are not used.
    trimming: int or None
        Bases cropped from each end of the input to form the profile window. None means 557, which
        maps 2,114 bp to 1,000 bp as in ``bpnetlite.BPNet``.
    footprint_width: int
        Width of the per-filter footprint kernels of the profile head. Default is 75.
    count_loss_weight: float
        Weight of the count loss in profile training (bpnet-lite keyword). Default is 1.
    profile_output_bias, count_output_bias: bool
        bpnet-lite keywords for the profile head's biases. Default is True.
    attention_scores: str
        ``"query_value"`` (default) or ``"query_key"``.
    stream_init: str
        ``"ones"`` (default) or ``"randn"``.
    stream_seed: int
        Seed of the random stream. Default is 0.
    batch_norm: bool
        BatchNorm after the scanner's ReLU. Default is True.
    attention_dropout: float
        Dropout on the attention logits. Default is 0.
    name: str or None
        Prefix of the files written by ``fit``. None means ``"argminn"``.
    verbose: bool
        Whether ``fit`` prints its log. Default is True.
    n_layers: int or None
        Accepted for compatibility with ``bpnetlite.BPNet(n_layers=...)`` scripts and ignored with a
        warning: ARGMINN has no dilated layers (see ``n_attention_layers``).
    """

    def __init__(
        self,
        n_filters: int = 8,
        filter_width: int = 10,
        n_attention_layers: int = 4,
        n_heads: int = 4,
        pos_enc_dim: int = 16,
        token_dim: int = 32,
        stream_dim: int = 128,
        *,
        head: str | None = None,
        n_tasks: int = 1,
        n_outputs: int | None = None,
        n_control_tracks: int | None = None,
        trimming: int | None = None,
        footprint_width: int = 75,
        count_loss_weight: float = 1.0,
        profile_output_bias: bool = True,
        count_output_bias: bool = True,
        attention_scores: str = "query_value",
        stream_init: str = "ones",
        stream_seed: int = 0,
        batch_norm: bool = True,
        attention_dropout: float = 0.0,
        name: str | None = None,
        verbose: bool = True,
        n_layers: int | None = None,
    ) -> None:
        super().__init__()
        if head is None:
            head = "profile" if any(v is not None for v in (n_outputs, n_control_tracks, trimming)) else "binary"
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}.")
        for key, value in (("n_filters", n_filters), ("filter_width", filter_width), ("n_heads", n_heads),
                           ("n_tasks", n_tasks), ("token_dim", token_dim), ("stream_dim", stream_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}.")
        if n_layers is not None:
            warnings.warn(
                "n_layers is bpnetlite.BPNet's number of dilated layers; ARGMINN has none and ignores it "
                "(use n_attention_layers).",
                UserWarning,
                stacklevel=2,
            )
        if head == "profile":
            n_outputs = _BPNET_DEFAULTS["n_outputs"] if n_outputs is None else n_outputs
            n_control_tracks = _BPNET_DEFAULTS["n_control_tracks"] if n_control_tracks is None else n_control_tracks
            trimming = _BPNET_DEFAULTS["trimming"] if trimming is None else trimming
            if n_outputs < 1 or n_control_tracks < 0 or trimming < 0:
                raise ValueError(
                    f"n_outputs must be >= 1, n_control_tracks and trimming >= 0; got n_outputs={n_outputs}, "
                    f"n_control_tracks={n_control_tracks}, trimming={trimming}."
                )
        else:
            n_outputs = n_tasks if n_outputs is None else n_outputs
            n_control_tracks = 0 if n_control_tracks is None else n_control_tracks
            trimming = 0 if trimming is None else trimming

        self.head_type = head
        self.n_filters = n_filters
        self.filter_width = filter_width
        self.n_attention_layers = n_attention_layers
        self.n_heads = n_heads
        self.n_tasks = n_tasks
        self.n_outputs = n_outputs
        self.n_control_tracks = n_control_tracks
        self.trimming = trimming
        self.count_loss_weight = count_loss_weight
        self.name = name or "argminn"
        self.verbose = verbose
        self.validate_inputs = True
        self._config = {
            "n_filters": n_filters, "filter_width": filter_width, "n_attention_layers": n_attention_layers,
            "n_heads": n_heads, "pos_enc_dim": pos_enc_dim, "token_dim": token_dim, "stream_dim": stream_dim,
            "head": head, "n_tasks": n_tasks, "n_outputs": n_outputs, "n_control_tracks": n_control_tracks,
            "trimming": trimming, "footprint_width": footprint_width, "count_loss_weight": count_loss_weight,
            "profile_output_bias": profile_output_bias, "count_output_bias": count_output_bias,
            "attention_scores": attention_scores, "stream_init": stream_init, "stream_seed": stream_seed,
            "batch_norm": batch_norm, "attention_dropout": attention_dropout, "name": self.name,
            "verbose": verbose,
        }

        self.scanner = MotifScanner(n_filters, filter_width, batch_norm)
        self.syntax = SyntaxBuilder(
            n_filters, n_attention_layers, n_heads, pos_enc_dim, token_dim, stream_dim,
            attention_scores, stream_init, stream_seed, attention_dropout,
        )
        if head == "binary":
            self.head = BinaryHead(stream_dim, n_tasks)
        else:
            self.head = ProfileHead(
                n_filters, filter_width, stream_dim, n_outputs, n_control_tracks, trimming,
                footprint_width, profile_output_bias, count_output_bias,
            )

    @property
    def config(self) -> dict:
        """The constructor keywords (JSON-serialisable) that rebuild this model."""
        return dict(self._config)

    @property
    def filter_weights(self) -> torch.Tensor:
        """Motif-scanner weights, shape (n_filters, 4, filter_width)."""
        return self.scanner.filter_weights

    def _check_inputs(self, X: torch.Tensor, X_ctl: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        check_one_hot(X, "X", check_values=self.validate_inputs)
        length = X.shape[-1]
        if length < self.filter_width:
            raise ValueError(
                f"filter_width ({self.filter_width}) is longer than the input: X has shape {tuple(X.shape)}."
            )
        dtype = self.scanner.conv.weight.dtype
        X = X.to(dtype)
        if self.head_type == "profile":
            if length - 2 * self.trimming < 1:
                raise ValueError(
                    f"trimming ({self.trimming}) leaves no output window for X of shape {tuple(X.shape)}; "
                    f"the input must be longer than 2 * trimming = {2 * self.trimming}."
                )
            if self.n_control_tracks > 0:
                if X_ctl is None:
                    X_ctl = torch.zeros(X.shape[0], self.n_control_tracks, length, dtype=dtype, device=X.device)
                else:
                    check_controls(X_ctl, X, self.n_control_tracks)
                    X_ctl = X_ctl.to(dtype)
            elif X_ctl is not None and X_ctl.shape[1] != 0:
                check_controls(X_ctl, X, 0)
        return X, X_ctl

    def forward_with_interims(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None) -> ARGMINNOutput:
        """Run the model and return its output together with activations, attention and stream.

        Parameters
        ----------
        X: torch.Tensor, shape=(N, 4, L)
            One-hot sequences (any dtype; cast to the model's dtype).
        X_ctl: torch.Tensor, shape=(N, n_control_tracks, L), optional
            Control tracks for the profile head; zeros when omitted. Ignored by the binary head.

        Returns
        -------
        ARGMINNOutput
            ``(y, activations, attention, stream)``; see :class:`ARGMINNOutput`.
        """
        X, X_ctl = self._check_inputs(X, X_ctl)
        activations, normalized = self.scanner(X)
        stream, attention = self.syntax(normalized)
        if self.head_type == "binary":
            y = self.head(stream)
        else:
            y = self.head(activations, attention, stream, X_ctl, X.shape[-1])
        return ARGMINNOutput(y, activations, attention, stream)

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None):
        """Binary logits (N, n_tasks), or ``(profile_logits (N, n_outputs, L - 2*trimming), log_counts (N, 1))``."""
        return self.forward_with_interims(X, X_ctl).y

    def fit(self, training_data, optimizer, scheduler=None, X_valid=None, X_ctl_valid=None, y_valid=None,
            max_epochs=100, batch_size=64, dtype="float32", device=None, early_stopping=None, **kwargs):
        """Train with the signature of ``bpnetlite.BPNet.fit``; see :func:`argminn_plugin.training.fit`.

        Writes ``{name}.torch`` (best), ``{name}.final.torch``, ``{name}.log`` and
        ``{name}.checkpoint.pt``. Extra keywords (``schedule``, ``fourier_weight``,
        ``reverse_complement``, ``random_state``, ``progress``, ``resume``, ...) are passed on.
        """
        from .training import fit

        return fit(self, training_data, optimizer, scheduler, X_valid, X_ctl_valid, y_valid, max_epochs,
                   batch_size, dtype, device, early_stopping, **kwargs)

