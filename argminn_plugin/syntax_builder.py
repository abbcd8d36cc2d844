"""The syntax builder: a memory stream that reads motif tokens through stream attention.

Tokens are built once from the (normalised) motif activations concatenated with a sinusoidal
positional encoding, and the *same* tokens feed every layer; nothing updates them. Each layer
queries the tokens from the current stream state, so every attention weight points at exactly one
position of the sequence, i.e. at one potential motif instance. Only the stream has a residual
connection.

Every non-linearity is a registered module (``nn.Softmax``, ``nn.LayerNorm``, ``nn.ReLU``) and both
products of input-dependent tensors (query·value and attention·value) are tangermeme
``BilinearOp`` modules, so ``tangermeme.deep_lift_shap`` has a rule for every operation.
"""

from __future__ import annotations

import math

import torch
from tangermeme.deep_lift_shap import BilinearOp
from torch import nn

ATTENTION_SCORES = ("query_value", "query_key")
STREAM_INITS = ("ones", "randn")


def sinusoidal_encoding(length: int, dim: int, base: float = 10000.0, *, dtype=None, device=None) -> torch.Tensor:
    """Sinusoidal positional encoding of shape (length, dim).

    ``PE[i, 2k] = sin(i / base**(2k/dim))`` and ``PE[i, 2k+1] = cos(i / base**(2k/dim))``.
    """
    if dim % 2 != 0:
        raise ValueError(f"pos_enc_dim must be even, got {dim}.")
    positions = torch.arange(length, dtype=torch.float64, device=device).unsqueeze(1)
    frequencies = base ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    angles = positions * frequencies
    encoding = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).reshape(length, dim)
    return encoding.to(dtype or torch.get_default_dtype())


class StreamAttentionLayer(nn.Module):
    """One stream-attention layer: the stream queries the tokens, then a feed-forward block updates it.

    Parameters
    ----------
    token_dim: int
        Width H of the tokens and of the attention. Default is 32.
    stream_dim: int
        Width S of the memory stream. Default is 128.
    n_heads: int
        Number of heads; must divide ``token_dim``. Default is 4.
    attention_scores: str
        ``"query_value"`` (the published model: logits are query·value, keys tied to values) or
        ``"query_key"`` (a separate ``Linear(H, H)`` key projection). Default is "query_value".
    attention_dropout: float
        Dropout on the logits before the softmax (0 in the published model). Default is 0.
    """

    def __init__(
        self,
        token_dim: int = 32,
        stream_dim: int = 128,
        n_heads: int = 4,
        attention_scores: str = "query_value",
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if token_dim % n_heads != 0:
            raise ValueError(f"n_heads ({n_heads}) must divide token_dim ({token_dim}).")
        if attention_scores not in ATTENTION_SCORES:
            raise ValueError(f"attention_scores must be one of {ATTENTION_SCORES}, got {attention_scores!r}.")
        self.n_heads = n_heads
        self.head_dim = token_dim // n_heads
        self.attention_scores = attention_scores

        self.query = nn.Linear(stream_dim, token_dim)
        self.value = nn.Linear(token_dim, token_dim)
        self.key = nn.Linear(token_dim, token_dim) if attention_scores == "query_key" else None
        # Both products are batched matrix products on the tokens' own (N, L', H) layout, so neither
        # the values nor their gradients are ever permuted into a head-major copy (see forward).
        self.score_product = BilinearOp()
        self.dropout = nn.Dropout(attention_dropout)
        self.softmax = nn.Softmax(dim=1)
        self.readout_product = BilinearOp()
        self.register_buffer("_head_mask", torch.eye(n_heads), persistent=False)
        self.output = nn.Linear(token_dim, token_dim)
        self.output_norm = nn.LayerNorm(token_dim)
        self.ffn_in = nn.Linear(token_dim, token_dim)
        self.ffn_relu = nn.ReLU()
        self.ffn_out = nn.Linear(token_dim, stream_dim)
        self.ffn_norm = nn.LayerNorm(stream_dim)

    def forward(self, stream: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ``stream`` (N, S) from ``tokens`` (N, L', H); returns the new stream and attention (N, n_heads, L').

        Per head h, ``logits[n, h, l] = q[n, h]·v[n, l, h] / sqrt(d)`` and ``read[n, h] = Σ_l a[n, h, l]·v[n, l, h]``.
        Both are computed as one batched matrix product against all H = heads × d value features: the
        query enters as a block-diagonal (H, heads) matrix, and the read-out takes the diagonal blocks
        of the (heads, H) product. That does heads-fold redundant multiply-adds on tiny matrices but
        keeps every large tensor (values, their gradients) in its contiguous (N, L', H) layout, which
        is several times faster on a CPU than einsum's permuted copies.
        """
        n, length, _ = tokens.shape
        h, d = self.n_heads, self.head_dim
        query = self.query(stream).view(n, h, d)
        values = self.value(tokens)  # (N, L', H)
        keys = values if self.key is None else self.key(tokens)
        mask = self._head_mask.to(query.dtype)
        block_query = (query.unsqueeze(-1) * mask.unsqueeze(1)).reshape(n, h * d, h)  # (N, H, heads)

        logits = self.score_product(keys, block_query) / math.sqrt(d)  # (N, L', heads)
        attention = self.softmax(self.dropout(logits)).transpose(1, 2)  # (N, heads, L'), softmax over L'
        blocks = self.readout_product(attention, values)  # (N, heads, H)
        read = blocks.view(n, h, h, d).diagonal(dim1=1, dim2=2).transpose(1, 2).reshape(n, h * d)

        summary = self.output_norm(self.output(read))
        update = self.ffn_norm(self.ffn_out(self.ffn_relu(self.ffn_in(summary))))
        return stream + update, attention


class SyntaxBuilder(nn.Module):
    """Positional encoding, token projection, memory stream and a stack of stream-attention layers.

    Parameters
    ----------
    n_filters: int
        Number of motif-scanner filters F (the token input has F + pos_enc_dim features).
    n_attention_layers: int
        Number of stream-attention layers. Default is 4.
    n_heads: int
        Attention heads per layer. Default is 4.
    pos_enc_dim: int
        Width of the sinusoidal positional encoding, concatenated (not added). Default is 16.
    token_dim: int
        Token / attention width H. Default is 32.
    stream_dim: int
        Memory-stream width S. Default is 128.
    attention_scores: str
        See :class:`StreamAttentionLayer`. Default is "query_value".
    stream_init: str
        ``"ones"`` (default, deterministic, as in the published example) or ``"randn"`` (a seeded
        standard-normal draw, as in the original source tree). The stream is a parameter with
        ``requires_grad=False``: in the state dict, never trained.
    stream_seed: int
        Seed of the ``"randn"`` stream. Default is 0.
    attention_dropout: float
        Dropout on the attention logits. Default is 0.
    """

    def __init__(
        self,
        n_filters: int,
        n_attention_layers: int = 4,
        n_heads: int = 4,
        pos_enc_dim: int = 16,
        token_dim: int = 32,
        stream_dim: int = 128,
        attention_scores: str = "query_value",
        stream_init: str = "ones",
        stream_seed: int = 0,
        attention_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if stream_init not in STREAM_INITS:
            raise ValueError(f"stream_init must be one of {STREAM_INITS}, got {stream_init!r}.")
        if n_attention_layers < 1:
            raise ValueError(f"n_attention_layers must be at least 1, got {n_attention_layers}.")
        self.pos_enc_dim = pos_enc_dim
        self.token = nn.Linear(n_filters + pos_enc_dim, token_dim)
        if stream_init == "ones":
            initial = torch.ones(stream_dim)
        else:
            initial = torch.randn(stream_dim, generator=torch.Generator().manual_seed(stream_seed))
        self.stream = nn.Parameter(initial, requires_grad=False)
        self.layers = nn.ModuleList(
            StreamAttentionLayer(token_dim, stream_dim, n_heads, attention_scores, attention_dropout)
            for _ in range(n_attention_layers)
        )

    def tokens(self, normalized: torch.Tensor) -> torch.Tensor:
        """Tokens (N, L', H) from normalised activations (N, F, L') and the positional encoding."""
        n, _, length = normalized.shape
        encoding = sinusoidal_encoding(length, self.pos_enc_dim, dtype=normalized.dtype, device=normalized.device)
        features = torch.cat([normalized.transpose(1, 2), encoding.expand(n, length, self.pos_enc_dim)], dim=-1)
        return self.token(features)

    def forward(self, normalized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the final stream (N, S) and the stacked attention (N, n_attention_layers, n_heads, L')."""
        tokens = self.tokens(normalized)
        stream = self.stream.to(tokens.dtype).expand(tokens.shape[0], -1)
        attentions = []
        for layer in self.layers:
            stream, attention = layer(stream, tokens)
            attentions.append(attention)
        return stream, torch.stack(attentions, dim=1)
