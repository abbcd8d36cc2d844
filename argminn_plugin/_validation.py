"""Input checks shared by the model, the read-outs and the training loop.

Every check raises ``ValueError`` naming the argument and the shape or value it saw, so that a user
feeding the wrong tensor learns which one and why without reading a stack trace.
"""

from __future__ import annotations

import torch


def check_one_hot(X: torch.Tensor, name: str = "X", *, check_values: bool = True) -> None:
    """Check that ``X`` is a batch of one-hot sequences of shape (N, 4, L).

    Parameters
    ----------
    X: torch.Tensor, shape=(N, 4, L)
        Sequences in ACGT order. An all-zero column (an N) is allowed.
    name: str, optional
        The argument name used in error messages. Default is "X".
    check_values: bool, optional
        Whether to check that every entry is 0 or 1 and every column sums to at most 1. Turn it off
        for inputs that are legitimately fractional (e.g. integrated-gradient interpolations).
        Default is True.
    """
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (N, 4, L), got {type(X).__name__}.")
    if X.ndim != 3:
        raise ValueError(f"{name} must have shape (N, 4, L) but has shape {tuple(X.shape)} ({X.ndim} dimensions).")
    if X.shape[1] != 4:
        raise ValueError(
            f"{name} must have 4 channels (A, C, G, T) on axis 1 but has shape {tuple(X.shape)}; "
            "sequences are (N, 4, L) as in tangermeme and bpnet-lite."
        )
    if X.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(X.shape)}); at least one sequence is required.")
    if check_values:
        with torch.no_grad():
            is_binary = ((X == 0) | (X == 1)).all()
            column_ok = (X.sum(dim=1) <= 1).all() if bool(is_binary) else is_binary
        if not bool(is_binary) or not bool(column_ok):
            raise ValueError(
                f"{name} must be one-hot encoded (entries 0 or 1, at most one 1 per position); "
                f"got values in [{float(X.min()):.4g}, {float(X.max()):.4g}] for shape {tuple(X.shape)}. "
                "Set `model.validate_inputs = False` to allow fractional inputs."
            )


def check_controls(X_ctl: torch.Tensor, X: torch.Tensor, n_control_tracks: int, name: str = "X_ctl") -> None:
    """Check that control tracks have shape (N, n_control_tracks, L) matching ``X``."""
    expected = (X.shape[0], n_control_tracks, X.shape[-1])
    if not isinstance(X_ctl, torch.Tensor) or tuple(X_ctl.shape) != expected:
        seen = tuple(X_ctl.shape) if isinstance(X_ctl, torch.Tensor) else type(X_ctl).__name__
        raise ValueError(f"{name} must have shape {expected} (N, n_control_tracks, L) but has shape {seen}.")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Return ``device``, or CUDA when available and ``device`` is None (tangermeme's convention)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
