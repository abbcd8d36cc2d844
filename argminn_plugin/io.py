"""Saving and loading ARGMINN models.

Two formats:

* ``save_model(model, path)`` writes the state dict to ``path`` and the constructor config to
  ``path`` + ``.json``. ``load_model`` reads them back with ``torch.load(weights_only=True)``, so
  loading never unpickles code. This is the format to share and archive.
* ``save_bpnet_compatible(model, path)`` writes the whole pickled module, the file that
  ``bpnet evaluate``, ``bpnet attribute`` and ``bpnet marginalize`` load with
  ``torch.load(weights_only=False)``. The pickle records the class path
  ``argminn_plugin.model.ARGMINN``, so the package must be importable where it is loaded.

Every write goes to a temporary file in the same folder first and is then renamed into place, so an
interrupted or failed save never leaves a half-written file over a good one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from . import __version__
from .model import ARGMINN

FORMAT_VERSION = 1
CLASS_PATH = "argminn_plugin.model.ARGMINN"


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def config_path(path: str | os.PathLike) -> Path:
    """The JSON config file that accompanies the state-dict file ``path``."""
    return Path(str(path) + ".json")


def save_model(model: ARGMINN, path: str | os.PathLike) -> Path:
    """Save ``model``'s state dict to ``path`` and its config to ``path + ".json"``.

    Parameters
    ----------
    model: ARGMINN
        The model to save.
    path: str or Path
        Destination of the state dict (e.g. ``"model.pt"``).

    Returns
    -------
    Path
        ``path``.
    """
    if not isinstance(model, ARGMINN):
        raise ValueError(f"model must be an ARGMINN, got {type(model).__name__}.")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = {
        "format_version": FORMAT_VERSION,
        "class": CLASS_PATH,
        "argminn_plugin_version": __version__,
        "torch_version": torch.__version__,
        "config": model.config,
    }
    text = json.dumps(meta, indent=2) + "\n"  # a config that cannot be serialised fails before any write

    def write_both(tmp: str) -> None:
        # Both files are complete before either is renamed, so a failure while writing one leaves
        # the previous pair untouched (never new weights beside an old config).
        torch.save(state, tmp)
        atomic_write(config_path(path), lambda tmp_config: Path(tmp_config).write_text(text))

    atomic_write(path, write_both)
    return Path(path)


def load_model(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> ARGMINN:
    """Load a model written by :func:`save_model` (state dict read with ``weights_only=True``).

    Raises ``ValueError`` naming the file when the config is missing or malformed, was written for
    another class or an incompatible format version, or when the state dict does not fit the config
    (e.g. a truncated file).
    """
    path = Path(path)
    meta_file = config_path(path)
    if not path.exists():
        raise ValueError(f"model file {path} does not exist.")
    if not meta_file.exists():
        raise ValueError(f"model config {meta_file} is missing; it is written next to {path} by save_model.")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"model config {meta_file} is not valid JSON (line {err.lineno}): {err.msg}.") from None
    if not isinstance(meta, dict) or meta.get("class") != CLASS_PATH:
        seen = meta.get("class") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{meta_file} describes a {seen!r}, not an {CLASS_PATH}.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{meta_file} has format_version {meta.get('format_version')!r}; this argminn_plugin "
            f"({__version__}) reads format_version {FORMAT_VERSION}."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated or corrupt files raise a variety of errors
        raise ValueError(f"could not read model weights from {path}: {err}") from None
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{meta_file} has no \"config\" object holding the model's constructor keywords.")
    try:
        model = ARGMINN(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the config in {meta_file} does not build an ARGMINN: {err}") from None
    try:
        model.load_state_dict(state)
    except (TypeError, RuntimeError) as err:
        raise ValueError(f"the weights in {path} do not match the config in {meta_file}: {err}") from None
    return model.eval()  # ready for prediction, like the .torch files fit saves; .train() to continue training


def save_bpnet_compatible(model: torch.nn.Module, path: str | os.PathLike) -> Path:
    """Pickle the whole module to ``path`` (``torch.save(model)``), the file the ``bpnet`` CLI loads."""
    return atomic_write(path, lambda tmp: torch.save(model, tmp))


def load_bpnet_compatible(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a whole-module pickle such as ``{name}.torch`` (only for files you trust: it unpickles code)."""
    try:
        model = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise ValueError(f"could not load a model from {path}: {err}") from None
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a torch.nn.Module.")
    return model
