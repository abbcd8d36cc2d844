"""DeepLIFT-SHAP attributions of ARGMINN and the baselines through tangermeme, one output at a time.

tangermeme's ``deep_lift_shap`` needs a model returning one tensor (N, n_outputs) whose
non-linearities all have DeepLIFT rules (``ecosystem.md`` §3.3). :class:`OutputSelector` puts the
right wrapper in front of any model of this package (or a bpnet-lite model):

* ``output="logit"``: a binary model's logits (N, n_tasks), column ``target``;
* ``output="profile"``: bpnet-lite's ``ProfileWrapper`` semantics: the profile logits (all tracks
  flattened, or track ``target`` only), mean-centred, then ``sum(logits * softmax(logits))``
  through bpnet-lite's ``_ProfileLogitScaling`` module (registered with tangermeme's rescale
  rule, as ``bpnetlite.attribute`` does);
* ``output="counts"``: the log counts (bpnet-lite's ``CountWrapper``).

Profile models with control tracks get zero controls, as bpnet-lite's ``ControlWrapper`` builds
them. :func:`deep_lift_shap` wraps ``tangermeme.deep_lift_shap.deep_lift_shap`` with
dinucleotide-shuffled references, a fixed seed and the extra rules this package's models need
(:data:`argminn_plugin.baselines.DEEPLIFT_RULES` for ExplaiNN's ``exp``);
:func:`convergence_error` measures how far the per-reference attributions are from summing to the
change in output (DeepLIFT's summation-to-delta), which is ~1e-6 when every non-linearity has a rule.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

OUTPUTS = ("logit", "profile", "counts")


def _nonlinear_ops(extra: dict | None = None) -> dict:
    from bpnetlite.bpnet import _ProfileLogitScaling
    from tangermeme.deep_lift_shap import _nonlinear

    from .baselines import DEEPLIFT_RULES

    ops = {_ProfileLogitScaling: _nonlinear, **DEEPLIFT_RULES}
    ops.update(extra or {})
    return ops


class OutputSelector(nn.Module):
    """Select one scalar output per example, (N, 1), for attribution.

    Parameters
    ----------
    model: torch.nn.Module
        ARGMINN (binary or profile head), a baseline, or any bpnet-lite-style model.
    output: str, optional
        ``"logit"`` (binary models), ``"profile"`` or ``"counts"`` (profile models). Default ``"logit"``.
    target: int or None, optional
        Logit column (``"logit"``), profile track (``"profile"``; None: all tracks flattened, as
        bpnet-lite's ``ProfileWrapper``) or count column (``"counts"``). Default is 0.
    """

    def __init__(self, model: nn.Module, output: str = "logit", target: int | None = 0) -> None:
        super().__init__()
        from bpnetlite.bpnet import ControlWrapper, _ProfileLogitScaling

        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}.")
        if target is not None and (not isinstance(target, int) or target < 0):
            raise ValueError(f"target must be a non-negative int or None, got {target!r}.")
        if output == "logit" and target is None:
            raise ValueError("output='logit' needs an int target (the logit column).")
        self.model = model
        self.output = output
        self.target = target
        self.n_control_tracks = int(getattr(model, "n_control_tracks", 0) or 0)
        self.control = ControlWrapper(model) if self.n_control_tracks else None
        self.flatten = nn.Flatten()
        self.scaling = _ProfileLogitScaling()
        # A new module is in training mode; tangermeme restores the *wrapper's* mode after each call,
        # which would switch the wrapped model (and its BatchNorm) to training mode. Inherit it instead.
        self.train(model.training)

    def _run(self, X: torch.Tensor, X_ctl: torch.Tensor | None):
        if self.control is not None:
            if X_ctl is None:
                X_ctl = torch.zeros(X.shape[0], self.n_control_tracks, X.shape[-1], dtype=X.dtype, device=X.device)
            return self.control(X, X_ctl)
        return self.model(X) if X_ctl is None else self.model(X, X_ctl)

    def forward(self, X: torch.Tensor, X_ctl: torch.Tensor | None = None) -> torch.Tensor:
        """The selected output, shape (N, 1)."""
        y = self._run(X, X_ctl)
        tuple_output = isinstance(y, (tuple, list))
        if self.output == "logit":
            if tuple_output:
                raise ValueError("the model returns (profile, counts); use output='profile' or 'counts'.")
            return y[:, self.target : self.target + 1]
        if not tuple_output:
            raise ValueError(f"output={self.output!r} needs a profile model returning (profile, counts); "
                             "use output='logit'.")
        if self.output == "counts":
            counts = y[1]
            target = 0 if self.target is None else self.target
            return counts[:, target : target + 1]
        logits = y[0]
        if self.target is not None:
            logits = logits[:, self.target : self.target + 1]
        logits = self.flatten(logits)
        logits = logits - logits.mean(dim=-1, keepdim=True)
        return self.scaling(logits).sum(dim=-1, keepdim=True)


def _check_seed(random_state) -> None:
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, int)):
        raise ValueError(f"random_state must be an int or None, got {random_state!r}.")


def deep_lift_shap(
    model: nn.Module,
    X: torch.Tensor,
    *,
    output: str = "logit",
    target: int | None = 0,
    n_shuffles: int = 20,
    hypothetical: bool = False,
    random_state: int | None = 0,
    batch_size: int = 32,
    device=None,
    additional_nonlinear_ops: dict | None = None,
    warning_threshold: float = 1e-3,
    references: torch.Tensor | None = None,
    _raw: bool = False,
) -> torch.Tensor:
    """DeepLIFT-SHAP attributions of one output of ``model`` (tangermeme, dinucleotide-shuffled references).

    Parameters
    ----------
    model: torch.nn.Module
        ARGMINN, a baseline or a bpnet-lite model (wrapped in :class:`OutputSelector`).
    X: torch.Tensor, shape=(N, 4, L)
        One-hot sequences.
    output, target: optional
        Which output to explain; see :class:`OutputSelector`.
    n_shuffles: int, optional
        Dinucleotide-shuffled references per sequence. Default is 20.
    hypothetical: bool, optional
        Return hypothetical contributions (every base; modisco's input) instead of the projected
        ones (``hypothetical * X``). Default is False.
    random_state: int or None, optional
        Reference ``k`` of every sequence is shuffled with seed ``random_state + k``. Default is 0.
    batch_size: int, optional
        Sequence-reference pairs per forward pass. Default is 32.
    device: str or None, optional
        None: CUDA when available.
    additional_nonlinear_ops: dict or None, optional
        More ``{module type: rule}`` entries; this package's own are always included.
    warning_threshold: float, optional
        tangermeme warns when a convergence delta exceeds this. Default is 1e-3.
    references: torch.Tensor or None, optional
        Precomputed references (N, n_shuffles, 4, L) instead of shuffles.

    Returns
    -------
    torch.Tensor, shape=(N, 4, L)
        Attributions on the CPU.
    """
    from tangermeme.deep_lift_shap import deep_lift_shap as _dls

    if not isinstance(n_shuffles, int) or n_shuffles < 1:
        raise ValueError(f"n_shuffles must be a positive int, got {n_shuffles!r}.")
    _check_seed(random_state)
    selector = OutputSelector(model, output, target).eval()
    kwargs = {} if references is None else {"references": references}
    return _dls(selector, X, target=0, batch_size=batch_size, n_shuffles=n_shuffles, hypothetical=hypothetical,
                warning_threshold=warning_threshold, additional_nonlinear_ops=_nonlinear_ops(additional_nonlinear_ops),
                random_state=random_state, device=device, raw_outputs=_raw, **kwargs)


class ConvergenceError(NamedTuple):
    """DeepLIFT summation-to-delta check over every (sequence, reference) pair.

    relative: float
        ``sum |delta| / sum |f(X) - f(ref)|`` over all pairs.
    max_abs: float
        The largest ``|delta|``.
    deltas: torch.Tensor, shape=(N, n_shuffles)
        ``sum(multipliers * (X - ref)) - (f(X) - f(ref))`` per pair.
    differences: torch.Tensor, shape=(N, n_shuffles)
        ``f(X) - f(ref)`` per pair.
    """

    relative: float
    max_abs: float
    deltas: torch.Tensor
    differences: torch.Tensor


def convergence_error(
    model: nn.Module,
    X: torch.Tensor,
    *,
    output: str = "logit",
    target: int | None = 0,
    n_shuffles: int = 8,
    random_state: int | None = 0,
    batch_size: int = 32,
    device=None,
    additional_nonlinear_ops: dict | None = None,
) -> ConvergenceError:
    """How far DeepLIFT's per-reference attributions are from summing to the change in output.

    For each sequence and dinucleotide-shuffled reference, the raw multipliers ``m`` of tangermeme
    satisfy ``sum(m * (X - ref)) = f(X) - f(ref)`` exactly when every non-linearity has a rule;
    operations treated as linear by mistake show up as large deltas. ``f`` is the output chosen
    by :class:`OutputSelector`, evaluated here by a plain forward pass (independently of the hooks).

    Returns
    -------
    ConvergenceError
    """
    from tangermeme.ersatz import dinucleotide_shuffle

    _check_seed(random_state)
    refs = torch.stack([dinucleotide_shuffle(X[i : i + 1], n=n_shuffles, random_state=random_state)[0]
                        for i in range(X.shape[0])])
    multipliers = deep_lift_shap(model, X, output=output, target=target, random_state=random_state,
                                 batch_size=batch_size, device=device, references=refs,
                                 additional_nonlinear_ops=additional_nonlinear_ops, warning_threshold=float("inf"),
                                 _raw=True)
    selector = OutputSelector(model, output, target).eval().cpu()
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        f_x = selector(X.to(dtype))[:, 0].double()
        f_r = selector(refs.reshape(-1, *X.shape[1:]).to(dtype))[:, 0].double().reshape(X.shape[0], n_shuffles)
    diff = f_x[:, None] - f_r
    total = (multipliers.double() * (X[:, None].double() - refs.double())).sum(dim=(2, 3))
    deltas = total - diff
    relative = float(deltas.abs().sum() / diff.abs().sum().clamp_min(1e-12))
    return ConvergenceError(relative, float(deltas.abs().max()), deltas, diff)
