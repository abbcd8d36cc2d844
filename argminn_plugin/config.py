"""Default parameters of the ``argminn`` subcommands and the merging of a user's JSON over them.

Key names follow bpnet-lite's ``bpnet`` CLI wherever one exists (``sequences``, ``loci``,
``negatives``, ``signals``, ``controls``, ``in_window``, ``out_window``, ``training_chroms``,
``validation_chroms``, ``test_chroms``, ``name``, ``batch_size``, ``max_epochs``, ``lr``,
``random_state``, ``device``, ``verbose``, ...), so an ARGMINN parameter file reads like a
bpnet-lite one with a few ARGMINN entries added. A key whose default is :data:`REQUIRED` must be
given; a missing one is an error naming it. Unknown keys are kept but warned about, since they are
usually typos.
"""

from __future__ import annotations

import json
import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Any


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()

MODEL_KEYS = (
    "n_filters", "filter_width", "n_attention_layers", "n_heads", "pos_enc_dim", "token_dim", "stream_dim",
    "head", "n_tasks", "footprint_width", "count_loss_weight", "attention_scores", "stream_init", "stream_seed",
    "batch_norm", "attention_dropout",
)

FIT_DEFAULTS: dict[str, Any] = {
    # data (bpnet-lite key names)
    "sequences": REQUIRED,
    "loci": None,
    "negatives": None,
    "signals": None,
    "controls": None,
    "in_window": 500,
    "out_window": 1000,
    "training_chroms": None,
    "validation_chroms": None,
    "test_chroms": None,
    "max_jitter": 0,
    "summits": "auto",
    "reverse_complement": True,
    "negative_ratio": 0.333,
    "validation_fraction": 0.1,
    "test_fraction": 0.1,
    "max_sequences": None,
    # model
    "n_filters": 8,
    "filter_width": 10,
    "n_attention_layers": 4,
    "n_heads": 4,
    "pos_enc_dim": 16,
    "token_dim": 32,
    "stream_dim": 128,
    "head": "binary",
    "n_tasks": 1,
    "footprint_width": 75,
    "count_loss_weight": 1.0,
    "attention_scores": "query_value",
    "stream_init": "ones",
    "stream_seed": 0,
    "batch_norm": True,
    "attention_dropout": 0.0,
    # training
    "name": REQUIRED,
    "batch_size": 64,
    "max_epochs": 40,
    "lr": 0.001,
    "early_stopping": None,
    "schedule": "simulation",
    "fourier_weight": 0.0,
    "fourier_freq_limit": None,
    "fourier_positives_only": True,
    "grad_clip": 1.0,
    "dtype": "float32",
    "device": None,
    "random_state": 0,
    "verbose": False,
    "progress": None,
    "resume": False,
    "skip": False,
}

SIMULATE_DEFAULTS: dict[str, Any] = {
    "grammar": "single",
    "output_dir": REQUIRED,
    "n_positives": 2000,
    "n_negatives": 2000,
    "length": 500,
    "background": "iid",
    "n_chroms": 5,
    "motifs": None,
    "center_jitter": 50,
    "reject_threshold": 0.9,
    "prefix": "sim",
    "random_state": 0,
    "verbose": False,
    "skip": False,
}

# Keys that take more than one type.
_ALLOWED_TYPES: dict[str, tuple[type, ...]] = {
    "summits": (bool, str),
    "schedule": (str, dict),
    "background": (str,),
}

# The keys every argminn subcommand accepts at the top of a pipeline file.
PIPELINE_DEFAULTS: dict[str, Any] = {
    **FIT_DEFAULTS,
    "name": "argminn",
    "output_dir": "argminn_output",
    "simulate": None,
    "fit_parameters": {},
}


def resource_path(*parts: str) -> Path:
    """Path of a file shipped in ``argminn_plugin/resources``."""
    return Path(str(resources.files("argminn_plugin").joinpath("resources", *parts)))


def embedded_default_parameters() -> dict[str, Any]:
    """Parameters of the embedded default job run by ``argminn pipeline`` with no arguments.

    ENCODE GATA3 ChIP-seq peaks in SH-SY5Y cells (101 bp, DeepBind's packaging), positives only,
    with dinucleotide-shuffled negatives; held-out test positives and their shuffles as shipped.
    """
    data = resource_path("gata3")
    return {
        "sequences": str(data / "GATA3_SH-SY5Y_train.seq.gz"),
        "test_sequences": str(data / "GATA3_SH-SY5Y_test.seq.gz"),
        "max_sequences": 6000,
        "n_filters": 8,
        "filter_width": 12,
        "n_attention_layers": 1,
        "schedule": "genomic",
        "max_epochs": 25,
        "batch_size": 128,
        "validation_fraction": 0.1,
        "test_fraction": 0.0,
        "device": "cpu",
        "name": "argminn",
        "output_dir": "argminn_output",
    }


def read_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """Read a JSON parameter file; a malformed file is an error naming the file, line and column."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"parameter file {path} does not exist.")
    try:
        parameters = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.") from None
    if not isinstance(parameters, dict):
        raise ValueError(f"{path} must hold a JSON object (a dict of parameters), got {type(parameters).__name__}.")
    return parameters


def merge_parameters(
    parameters: dict[str, Any] | str | os.PathLike, defaults: dict[str, Any], *, source: str | None = None
) -> dict[str, Any]:
    """Lay ``parameters`` over ``defaults``.

    Raises ``ValueError`` naming every required key that is missing, and a wrong type where the
    default gives one (a number where a string is expected, say); warns about unknown keys.
    """
    if not isinstance(parameters, dict):
        source = source or str(parameters)
        parameters = read_parameters(parameters)
    where = f" in {source}" if source else ""
    unknown = sorted(set(parameters) - set(defaults))
    if unknown:
        warnings.warn(f"unknown parameter(s){where} ignored: {', '.join(unknown)}", UserWarning, stacklevel=2)
    merged = {**defaults, **{k: v for k, v in parameters.items() if k in defaults}}
    missing = [k for k, v in merged.items() if v is REQUIRED]
    if missing:
        raise ValueError(f"missing required parameter(s){where}: {', '.join(missing)}")
    for key, value in merged.items():
        default = defaults[key]
        if value is None or default is None or default is REQUIRED:
            continue
        if key in _ALLOWED_TYPES:
            if not isinstance(value, _ALLOWED_TYPES[key]):
                names = " or ".join(t.__name__ for t in _ALLOWED_TYPES[key])
                raise ValueError(f"parameter {key!r}{where} must be of type {names}, got {type(value).__name__} ({value!r}).")
            continue
        expected = (int, float) if isinstance(default, (int, float)) and not isinstance(default, bool) else type(default)
        if isinstance(default, bool):
            expected = bool
        if not isinstance(value, expected) or (expected == (int, float) and isinstance(value, bool)):
            raise ValueError(
                f"parameter {key!r}{where} must be of type "
                f"{getattr(expected, '__name__', 'number')}, got {type(value).__name__} ({value!r})."
            )
    return merged
