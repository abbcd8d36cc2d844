"""The baseline models of the ARGMINN paper (``argminn.md`` §8.1), built for DeepLIFT.

* :class:`StandardCNN`: three convolutions (4->8, k=10; 8->8, k=5; 8->8, k=5), each followed by
  ReLU then BatchNorm, a max-pool of size and stride 40, two fully connected layers (96->10,
  10->5, each ReLU then BatchNorm) and a linear output. 2,093 parameters for L = 500.
* :class:`ExplaiNN`: eight independent units (Conv1d 4->1, k=19 -> BatchNorm -> exp -> MaxPool 7
  -> Linear 68->100 -> BatchNorm -> ReLU -> Dropout 0.3 -> Linear 100->1 -> BatchNorm -> ReLU) whose
  outputs are combined by a Linear 8->1. 58,265 parameters for L = 500.

Both return **logits** (N, n_tasks) rather than sigmoid probabilities, as ARGMINN does, so
:func:`argminn_plugin.training.fit` trains them with BCE-with-logits and attribution explains the
pre-sigmoid value. Every non-linearity is a module, so ``tangermeme.deep_lift_shap`` places its
rules on them:

* ReLU and MaxPool1d have built-in rules; BatchNorm (eval), convolutions, linear layers and
  reshapes are linear.
* ``exp`` has no built-in rule: tangermeme would silently treat it as linear. ExplaiNN's
  exponential is therefore the module :class:`Exp`, and :data:`DEEPLIFT_RULES` maps it to
  tangermeme's elementwise rescale rule ``_nonlinear`` (``(exp(x) - exp(x0)) / (x - x0)``).
  :func:`argminn_plugin.attribute.deep_lift_shap` adds these rules automatically; pass
  ``additional_nonlinear_ops=DEEPLIFT_RULES`` when calling tangermeme directly.

ExplaiNN's eight units are computed together: the eight 4->1 convolutions form one
``Conv1d(4, 8, 19)`` (each output channel sees the four bases only), and the eight per-unit
``Linear`` layers are grouped 1x1 convolutions, so the parameter count equals that of eight
separate units and the units stay independent.

Both models expose ``first_layer_weights`` (n_filters, 4, width) and :func:`extract_filter_motifs`
reads PFMs off their first convolution with the rule of ``argminn.md`` §7.1 (windows whose
post-ReLU activation exceeds half the filter's maximum), returning the same
:class:`argminn_plugin.motifs.FilterMotifs` as :func:`argminn_plugin.motifs.extract_motifs`.
"""

from __future__ import annotations

import torch
from tangermeme.deep_lift_shap import _nonlinear
from torch import nn

from ._validation import check_one_hot, resolve_device
from .motifs import FilterMotifs

__all__ = ["BASELINES", "DEEPLIFT_RULES", "Exp", "ExplaiNN", "StandardCNN", "build_baseline",
           "extract_filter_motifs", "first_layer_activations"]


class Exp(nn.Module):
    """Elementwise ``exp`` as a module, so DeepLIFT can attach a rule to it (see :data:`DEEPLIFT_RULES`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``exp(x)``."""
        return torch.exp(x)


#: Extra DeepLIFT rules the baselines need, for ``additional_nonlinear_ops``.
DEEPLIFT_RULES: dict = {Exp: _nonlinear}


def _check_length(input_length: int, needed: int, name: str) -> None:
    if not isinstance(input_length, int) or input_length < needed:
        raise ValueError(f"{name} needs input_length >= {needed}, got {input_length!r}.")


class _Baseline(nn.Module):
    """Shared bits: bpnet-lite-like attributes used by :func:`argminn_plugin.training.fit`."""

    n_control_tracks = 0

    def _init_common(self, input_length: int, n_tasks: int, name: str | None, verbose: bool) -> None:
        if not isinstance(n_tasks, int) or n_tasks < 1:
            raise ValueError(f"n_tasks must be a positive integer, got {n_tasks!r}.")
        self.input_length = input_length
        self.n_tasks = n_tasks
        self.n_outputs = n_tasks
        self.name = name or type(self).__name__.lower()
        self.verbose = verbose

    def _check(self, X: torch.Tensor) -> torch.Tensor:
        check_one_hot(X, "X", check_values=False)
        if X.shape[-1] != self.input_length:
            raise ValueError(f"{type(self).__name__} was built for input_length={self.input_length}; "
                             f"X has shape {tuple(X.shape)}.")
        return X.to(self.first_conv.weight.dtype)

    @property
    def first_layer_weights(self) -> torch.Tensor:
        """First-layer convolution weights, shape (n_filters, 4, width)."""
        return self.first_conv.weight

    @property
    def filter_width(self) -> int:
        """Width of the first-layer filters."""
        return int(self.first_conv.kernel_size[0])

    @property
    def n_filters(self) -> int:
        """Number of first-layer filters."""
        return int(self.first_conv.out_channels)


class StandardCNN(_Baseline):
    """The paper's standard CNN (``src/model/cnn.py``, default configuration), returning logits.

    Parameters
    ----------
    input_length: int
        Sequence length L; fixes the size of the first fully connected layer
        (8 x floor((L - 17) / 40) features). Default is 500.
    n_tasks: int
        Number of logits. Default is 1.
    n_filters: int
        Filters of each convolution (8 in the paper; 20 in its DNase variants). Default is 8.
    name: str or None
        Prefix of the files :func:`argminn_plugin.training.fit` writes. Default ``"standardcnn"``.
    verbose: bool
        Whether ``fit`` prints its log. Default is False.

    Notes
    -----
    With the defaults and L = 500 the model has 2,093 parameters. ``forward`` returns logits; apply
    a sigmoid for probabilities.
    """

    def __init__(self, input_length: int = 500, n_tasks: int = 1, n_filters: int = 8, *,
                 name: str | None = None, verbose: bool = False) -> None:
        super().__init__()
        _check_length(input_length, 57, "StandardCNN")
        self._init_common(input_length, n_tasks, name, verbose)
        self.config = {"input_length": input_length, "n_tasks": n_tasks, "n_filters": n_filters}
        self.first_conv = nn.Conv1d(4, n_filters, 10)
        self.relu1, self.bn1 = nn.ReLU(), nn.BatchNorm1d(n_filters)
        self.conv2 = nn.Conv1d(n_filters, n_filters, 5)
        self.relu2, self.bn2 = nn.ReLU(), nn.BatchNorm1d(n_filters)
        self.conv3 = nn.Conv1d(n_filters, n_filters, 5)
        self.relu3, self.bn3 = nn.ReLU(), nn.BatchNorm1d(n_filters)
        self.pool = nn.MaxPool1d(40, 40)
        self.flatten = nn.Flatten()
        n_features = n_filters * ((input_length - 17 - 40) // 40 + 1)
        self.fc1 = nn.Linear(n_features, 10)
        self.relu4, self.bn4 = nn.ReLU(), nn.BatchNorm1d(10)
        self.fc2 = nn.Linear(10, 5)
        self.relu5, self.bn5 = nn.ReLU(), nn.BatchNorm1d(5)
        self.out = nn.Linear(5, n_tasks)

    def first_layer(self, X: torch.Tensor) -> torch.Tensor:
        """Post-ReLU, pre-BatchNorm activations of the first convolution, (N, n_filters, L - 9)."""
        return self.relu1(self.first_conv(self._check(X)))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (N, n_tasks) for one-hot X (N, 4, L)."""
        h = self.bn1(self.first_layer(X))
        h = self.bn2(self.relu2(self.conv2(h)))
        h = self.bn3(self.relu3(self.conv3(h)))
        h = self.flatten(self.pool(h))
        h = self.bn4(self.relu4(self.fc1(h)))
        h = self.bn5(self.relu5(self.fc2(h)))
        return self.out(h)


class ExplaiNN(_Baseline):
    """ExplaiNN as in the paper's ``src/model/explainn.py``: independent units, linear combination.

    Parameters
    ----------
    input_length: int
        Sequence length L (each unit pools floor((L - 18) / 7) positions). Default is 500.
    n_tasks: int
        Number of logits. Default is 1.
    n_units: int
        Number of independent units. Default is 8.
    filter_width: int
        Width of each unit's filter. Default is 19.
    pool_size: int
        Max-pool size and stride. Default is 7.
    hidden: int
        Width of each unit's hidden layer. Default is 100.
    dropout: float
        Dropout after each unit's hidden layer. Default is 0.3.
    name: str or None
        Prefix of the files ``fit`` writes. Default ``"explainn"``.
    verbose: bool
        Whether ``fit`` prints its log. Default is False.

    Notes
    -----
    With the defaults and L = 500 the model has 58,265 parameters. The exponential activation is
    the module :class:`Exp`; DeepLIFT needs :data:`DEEPLIFT_RULES` for it (added automatically by
    :func:`argminn_plugin.attribute.deep_lift_shap`).
    """

    def __init__(self, input_length: int = 500, n_tasks: int = 1, n_units: int = 8, *, filter_width: int = 19,
                 pool_size: int = 7, hidden: int = 100, dropout: float = 0.3, name: str | None = None,
                 verbose: bool = False) -> None:
        super().__init__()
        _check_length(input_length, filter_width + pool_size - 1, "ExplaiNN")
        self._init_common(input_length, n_tasks, name, verbose)
        self.config = {"input_length": input_length, "n_tasks": n_tasks, "n_units": n_units,
                       "filter_width": filter_width, "pool_size": pool_size, "hidden": hidden, "dropout": dropout}
        self.n_units = n_units
        self.n_pooled = (input_length - filter_width + 1) // pool_size
        self.first_conv = nn.Conv1d(4, n_units, filter_width)
        self.bn1 = nn.BatchNorm1d(n_units)
        self.exp = Exp()
        self.pool = nn.MaxPool1d(pool_size, pool_size)
        self.fc1 = nn.Conv1d(n_units * self.n_pooled, n_units * hidden, 1, groups=n_units)
        self.bn2 = nn.BatchNorm1d(n_units * hidden)
        self.relu2 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Conv1d(n_units * hidden, n_units, 1, groups=n_units)
        self.bn3 = nn.BatchNorm1d(n_units)
        self.relu3 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.out = nn.Linear(n_units, n_tasks)

    def first_layer(self, X: torch.Tensor) -> torch.Tensor:
        """Each unit's exponential activation (N, n_units, L - filter_width + 1)."""
        return self.exp(self.bn1(self.first_conv(self._check(X))))

    def unit_outputs(self, X: torch.Tensor) -> torch.Tensor:
        """The units' outputs (N, n_units), the input of the final linear layer."""
        h = self.pool(self.first_layer(X))[:, :, : self.n_pooled]
        h = h.reshape(h.shape[0], -1, 1)  # unit-major: unit u owns channels u*P .. (u+1)*P
        h = self.dropout(self.relu2(self.bn2(self.fc1(h))))
        return self.flatten(self.relu3(self.bn3(self.fc2(h))))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits (N, n_tasks) for one-hot X (N, 4, L)."""
        return self.out(self.unit_outputs(X))


BASELINES = {"cnn": StandardCNN, "standard_cnn": StandardCNN, "explainn": ExplaiNN}


def build_baseline(kind: str, input_length: int, n_tasks: int = 1, **kwargs) -> _Baseline:
    """Build a baseline by name: ``"cnn"`` (or ``"standard_cnn"``) or ``"explainn"``."""
    key = str(kind).lower()
    if key not in BASELINES:
        raise ValueError(f"baseline must be one of {sorted(BASELINES)}, got {kind!r}.")
    return BASELINES[key](input_length, n_tasks, **kwargs)


def first_layer_activations(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """First-layer activations of a baseline (``model.first_layer``) or of ARGMINN (the scanner's)."""
    if hasattr(model, "scanner"):
        return model.scanner(X.to(model.filter_weights.dtype)).activations
    if hasattr(model, "first_layer"):
        return model.first_layer(X)
    raise ValueError(f"{type(model).__name__} exposes no first layer (first_layer or scanner).")


@torch.no_grad()
def extract_filter_motifs(
    model: nn.Module,
    X: torch.Tensor,
    *,
    threshold: float = 0.5,
    reverse_complement: bool = True,
    batch_size: int = 256,
    device=None,
) -> FilterMotifs:
    """PFMs of the first-layer filters of any model exposing ``first_layer`` and ``first_conv``.

    The rule of ``argminn.md`` §7.1: each filter's PFM is the mean one-hot of the windows where its
    activation exceeds ``threshold`` times its maximum over ``X`` (and its reverse complements).
    For :class:`StandardCNN` the activation is post-ReLU, pre-BatchNorm (as for ARGMINN); for
    :class:`ExplaiNN` it is the unit's exponential activation.

    Parameters
    ----------
    model: StandardCNN, ExplaiNN or ARGMINN
        A trained model.
    X: torch.Tensor, shape=(N, 4, L)
        Evaluation sequences.
    threshold: float, optional
        Fraction of each filter's maximum above which a window counts. Default is 0.5.
    reverse_complement: bool, optional
        Also scan the reverse complements. Default is True.
    batch_size: int, optional
        Sequences per forward pass. Default is 256.
    device: str or None, optional
        None means CUDA when available.

    Returns
    -------
    FilterMotifs
        ``pfms``, ``cwms`` (mean-centred first-layer weights), ``counts``, ``max_activation``.
    """
    check_one_hot(X, "X")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
    if hasattr(model, "first_layer_weights"):
        weights = model.first_layer_weights
    elif hasattr(model, "filter_weights"):
        weights = model.filter_weights
    else:
        raise ValueError(f"{type(model).__name__} exposes no first-layer weights.")
    device = resolve_device(device)
    model = model.to(device).eval()
    n_filters, _, width = weights.shape
    dtype = weights.dtype

    def passes():
        for start in range(0, X.shape[0], batch_size):
            batch = X[start : start + batch_size].to(device).to(dtype)
            yield batch
            if reverse_complement:
                yield batch.flip(1).flip(2)

    best = torch.zeros(n_filters, dtype=torch.float64, device=device)
    for batch in passes():
        best = torch.maximum(best, first_layer_activations(model, batch).amax(dim=(0, 2)).double())
    cutoff = (threshold * best).to(dtype)
    sums = torch.zeros(n_filters, 4, width, dtype=torch.float64, device=device)
    counts = torch.zeros(n_filters, dtype=torch.float64, device=device)
    for batch in passes():
        acts = first_layer_activations(model, batch)
        mask = ((acts > cutoff[None, :, None]) & (best[None, :, None] > 0)).to(dtype)
        windows = batch.unfold(2, width, 1)
        sums += torch.einsum("nfl,nclk->fck", mask, windows).double()
        counts += mask.sum(dim=(0, 2)).double()
    pfms = torch.where(counts[:, None, None] > 0, sums / counts.clamp_min(1)[:, None, None], torch.zeros_like(sums))
    w = weights.detach().double()
    cwms = w - w.mean(dim=1, keepdim=True)
    return FilterMotifs(pfms.cpu().numpy(), cwms.cpu().numpy(), counts.cpu().numpy(), best.cpu().numpy())
