"""Planted-motif simulator: sequences, ground truth and toy genomes.

This module rebuilds the simulated benchmarks of ARGMINN (``specs/argminn.md``
§6.1 and §9). A *grammar* says which motifs are planted into positive and
negative sequences, in which order and with which spacing. Sequences are
drawn from a background (i.i.d. uniform bases or random windows of a genome),
each motif instance is sampled base by base from its position frequency
matrix (PFM) in a random orientation, and the whole arrangement is placed
around the centre of the sequence. Every planted instance is returned as
ground truth, so that motif discovery and instance calling can be scored.

Grammar configurations
----------------------
A configuration ("config") is a recursive JSON-like structure:

* a flat list of motif keys (``str``), hard spacers (``int`` >= 0, that many
  background bases) and soft spacers (``{"min": a, "max": b}``, an integer
  drawn uniformly from ``a..b`` inclusive) is **one arrangement**, laid out
  left to right; motifs written next to each other touch (spacer 0);
* a list of lists is a **uniform choice** among the inner configs;
* a list of ``{"p": float, "configs": config}`` objects is a **weighted
  choice** (the ``p`` must be non-negative and sum to 1);
* an empty list ``[]`` means **no motif** (background only).

Soft spacers are written as a dict rather than a two-element list because a
nested list inside an arrangement would be indistinguishable from a uniform
choice. ``SOFT_SPACER`` (0–20 bp) and ``HARD_SPACER`` (10 bp) are the
conventions of §9.

Motif keys resolve to PFMs through the grammar's ``motifs`` mapping, whose
values are either a motif ID (e.g. ``"MA0080.7"``) or a dict
``{"id": "MA0138.3", "start": 0, "end": 8}`` selecting PFM columns
``start:end`` (used for the REST half-sites). A key missing from the mapping
is itself looked up as an ID. IDs are matched against the MEME file's motif
names (``'MA0080.7 Spi1'``): first the whole name, then the first field (the
matrix ID), then the ID without its version, then the TF name
(case-insensitive); a lookup must be unambiguous.

Orientation
-----------
With ``orientation="independent"`` (the default, as in §6.1) every instance
gets its own random strand. With ``orientation="arrangement"`` the whole
arrangement is laid out on the forward strand and then, with probability 1/2,
reverse-complemented as a block (order reversed and every strand flipped).
The REST grammars use the latter so that positives carry the intact
composite REST site on either strand.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Union

import numpy as np
import pandas as pd
import torch

__all__ = [
    "DEFAULT_MOTIF_FILE",
    "GRAMMARS",
    "HARD_SPACER",
    "SOFT_SPACER",
    "Grammar",
    "SimulationResult",
    "load_grammar",
    "resolve_motifs",
    "reverse_complement",
    "simulate_genome",
    "simulate_sequences",
]

#: The JASPAR 2024 CORE vertebrates non-redundant MEME file shipped with the package.
DEFAULT_MOTIF_FILE: Path = Path(__file__).parent / "resources" / "JASPAR2024_CORE_vertebrates_nonredundant.meme"

#: Soft spacing of §9: a uniform integer gap of 0–20 bp.
SOFT_SPACER: dict[str, int] = {"min": 0, "max": 20}

#: Hard spacing of §9: a fixed gap of 10 bp.
HARD_SPACER: int = 10

_ALPHABET = np.frombuffer(b"ACGT", dtype=np.uint8)
_LUT = np.full(256, 4, dtype=np.uint8)
for _i, _c in enumerate("ACGT"):
    _LUT[ord(_c)] = _i
    _LUT[ord(_c.lower())] = _i
del _i, _c

_ORIENTATIONS = ("independent", "arrangement")

RandomState = Union[int, np.random.Generator, None]


# ---------------------------------------------------------------------------
# Config parsing and sampling
# ---------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class _Arrangement(NamedTuple):
    # items: ("motif", key) or ("spacer", lo, hi)
    items: tuple

    def keys(self) -> list[str]:
        return [item[1] for item in self.items if item[0] == "motif"]


class _Choice(NamedTuple):
    options: tuple
    probs: np.ndarray

    def keys(self) -> list[str]:
        out: list[str] = []
        for option in self.options:
            for key in option.keys():
                if key not in out:
                    out.append(key)
        return out


def _parse_config(config: Any, where: str) -> _Arrangement | _Choice:
    """Parse a config into a tree of arrangements and choices, validating it."""
    if not isinstance(config, (list, tuple)):
        raise ValueError(f"{where}: a config must be a list, got {config!r}")
    if len(config) == 0:
        return _Arrangement(())
    if all(isinstance(c, (list, tuple)) for c in config):
        options = tuple(_parse_config(c, f"{where}[{i}]") for i, c in enumerate(config))
        return _Choice(options, np.full(len(options), 1.0 / len(options)))
    if all(isinstance(c, Mapping) and "configs" in c for c in config):
        options, probs = [], []
        for i, c in enumerate(config):
            if set(c) != {"p", "configs"}:
                raise ValueError(f"{where}[{i}]: a weighted option needs exactly the keys 'p' and 'configs', got {c!r}")
            p = c["p"]
            is_number = isinstance(p, (int, float, np.floating, np.integer)) and not isinstance(p, bool)
            if not is_number or not np.isfinite(p) or p < 0:
                raise ValueError(f"{where}[{i}]: p must be a non-negative number, got {p!r}")
            options.append(_parse_config(c["configs"], f"{where}[{i}].configs"))
            probs.append(float(p))
        total = float(np.sum(probs))
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"{where}: the p of a weighted choice must sum to 1, got {total}")
        return _Choice(tuple(options), np.asarray(probs) / total)
    items = []
    for i, c in enumerate(config):
        if isinstance(c, str):
            if not c:
                raise ValueError(f"{where}[{i}]: motif keys must be non-empty strings")
            items.append(("motif", c))
        elif _is_int(c):
            if c < 0:
                raise ValueError(f"{where}[{i}]: spacers must be >= 0, got {c}")
            items.append(("spacer", int(c), int(c)))
        elif isinstance(c, Mapping) and set(c) == {"min", "max"}:
            lo, hi = c["min"], c["max"]
            if not (_is_int(lo) and _is_int(hi)) or lo < 0 or hi < lo:
                raise ValueError(f"{where}[{i}]: a soft spacer needs integers 0 <= min <= max, got {c!r}")
            items.append(("spacer", int(lo), int(hi)))
        else:
            raise ValueError(
                f"{where}[{i}]: expected a motif key (str), a spacer (int >= 0 or {{'min', 'max'}}) "
                f"in an arrangement, got {c!r}; lists of lists and lists of {{'p', 'configs'}} "
                "cannot be mixed with motif keys"
            )
    return _Arrangement(tuple(items))


def _max_length(node: _Arrangement | _Choice, widths: Mapping[str, int]) -> int:
    if isinstance(node, _Arrangement):
        return sum(widths[item[1]] if item[0] == "motif" else item[2] for item in node.items)
    return max((_max_length(o, widths) for o, p in zip(node.options, node.probs) if p > 0), default=0)


def _sample_arrangement(node: _Arrangement | _Choice, rng: np.random.Generator) -> list[tuple[str, Any]]:
    """Resolve choices and soft spacers: a list of ("motif", key) / ("gap", n)."""
    while isinstance(node, _Choice):
        node = node.options[int(rng.choice(len(node.options), p=node.probs))]
    out: list[tuple[str, Any]] = []
    for item in node.items:
        if item[0] == "motif":
            out.append(("motif", item[1]))
        else:
            lo, hi = item[1], item[2]
            out.append(("gap", lo if lo == hi else int(rng.integers(lo, hi + 1))))
    return out


# ---------------------------------------------------------------------------
# Grammars
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    """A simulation grammar: positive and negative configs plus motif sources.

    Parameters
    ----------
    name : str
        Short name of the grammar.
    positive : list
        Config (see the module docstring) sampled once per positive sequence.
    negative : list, optional
        Config sampled once per negative sequence. ``[]`` (the default) means
        negatives are background only.
    motifs : dict, optional
        Motif key -> source, where a source is a motif ID such as
        ``"MA0080.7"`` or ``{"id": ..., "start": ..., "end": ...}`` to take
        PFM columns ``start:end``. Keys used in the configs but missing here
        are looked up as IDs themselves.
    orientation : {"independent", "arrangement"}, optional
        Whether each instance gets its own random strand (default, §6.1) or
        the arrangement is reverse-complemented as a block.
    description : str, optional
        Free text, written to the grammar JSON.
    """

    name: str
    positive: list
    negative: list = field(default_factory=list)
    motifs: dict = field(default_factory=dict)
    orientation: str = "independent"
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"grammar name must be a non-empty string, got {self.name!r}")
        if self.orientation not in _ORIENTATIONS:
            raise ValueError(f"orientation must be one of {_ORIENTATIONS}, got {self.orientation!r}")
        if not isinstance(self.motifs, Mapping):
            raise ValueError(f"grammar motifs must be a dict of key -> source, got {type(self.motifs).__name__}")
        for key, source in self.motifs.items():
            _check_source(key, source)
        # Parse both configs once to fail early on malformed grammars.
        _parse_config(self.positive, "positive")
        _parse_config(self.negative if self.negative is not None else [], "negative")

    @property
    def motif_keys(self) -> list[str]:
        """Motif keys referenced by the positive or negative config, in first-use order."""
        keys: list[str] = []
        for cfg in (self.positive, self.negative or []):
            for key in _parse_config(cfg, "config").keys():
                if key not in keys:
                    keys.append(key)
        return keys

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable copy of the grammar."""
        return {
            "name": self.name,
            "description": self.description,
            "orientation": self.orientation,
            "motifs": copy.deepcopy(dict(self.motifs)),
            "positive": copy.deepcopy(self.positive),
            "negative": copy.deepcopy(self.negative if self.negative is not None else []),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Grammar:
        """Build a grammar from a dict as written by :meth:`to_dict`.

        ``"configs"`` is accepted as an alias of ``"positive"`` (the key of the
        original grammar files).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"grammar must be a mapping, got {type(data).__name__}")
        allowed = {"name", "description", "orientation", "motifs", "positive", "configs", "negative"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"grammar has unknown keys {sorted(unknown)}; allowed keys are {sorted(allowed)}")
        if "positive" in data and "configs" in data:
            raise ValueError("grammar gives both 'positive' and 'configs'; give one")
        if "positive" not in data and "configs" not in data:
            raise ValueError("grammar needs a 'positive' (or 'configs') config")
        positive = data["positive"] if "positive" in data else data["configs"]
        return cls(
            name=data.get("name", "custom"),
            positive=copy.deepcopy(positive),
            negative=copy.deepcopy(data.get("negative", []) or []),
            motifs=copy.deepcopy(dict(data.get("motifs", {}))),
            orientation=data.get("orientation", "independent"),
            description=data.get("description", ""),
        )


def _check_source(key: Any, source: Any) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"motif keys must be non-empty strings, got {key!r}")
    if isinstance(source, str):
        if not source:
            raise ValueError(f"motif source for {key!r} is empty")
        return
    if isinstance(source, Mapping):
        if "id" not in source or not isinstance(source["id"], str):
            raise ValueError(f"motif source for {key!r} must have a string 'id', got {source!r}")
        extra = set(source) - {"id", "start", "end"}
        if extra:
            raise ValueError(f"motif source for {key!r} has unknown keys {sorted(extra)}")
        for bound in ("start", "end"):
            value = source.get(bound)
            if value is not None and (not _is_int(value) or value < 0):
                raise ValueError(f"motif source for {key!r}: {bound} must be a non-negative int, got {value!r}")
        return
    raise ValueError(f"motif source for {key!r} must be an ID string or a dict with 'id', got {source!r}")


# REST MA0138.3 (20 columns, consensus TCAGCACCATGGACAGCGCC): the two columns
# 8 and 9 (consensus "AT", 0.36 bits each, the only run of columns below
# 0.4 bits in the middle of the matrix) separate the two half-sites. Left =
# columns 0-7 (TCAGCACC), right = columns 10-19 (GGACAGCGCC); the two
# central columns become a 2-bp hard spacer filled with background.
REST_SPLIT: dict[str, Any] = {"left": (0, 8), "right": (10, 20), "spacer": 2}

_REST_MOTIFS = {
    "REST_left": {"id": "MA0138.3", "start": REST_SPLIT["left"][0], "end": REST_SPLIT["left"][1]},
    "REST_right": {"id": "MA0138.3", "start": REST_SPLIT["right"][0], "end": REST_SPLIT["right"][1]},
}


def _gata_run(n: int) -> list:
    arrangement: list = ["GATA1"]
    for _ in range(n - 1):
        arrangement += [dict(SOFT_SPACER), "GATA1"]
    return arrangement


def _builtin_grammars() -> dict[str, Grammar]:
    soft = SOFT_SPACER
    rest_gap = REST_SPLIT["spacer"]
    grammars = [
        Grammar(
            name="single",
            description="One SPI1 instance; negatives are background only (SPI1 benchmark).",
            motifs={"SPI1": "MA0080.7"},
            positive=["SPI1"],
            negative=[],
        ),
        Grammar(
            name="mixture",
            description="Uniform choice among {GATA}, {TAL}, {GATA, soft, TAL}, {TAL, soft, GATA}; "
            "negatives background only (TAL/GATA benchmark).",
            motifs={"TAL1": "MA0091.2", "GATA1": "MA0035.5"},
            positive=[["GATA1"], ["TAL1"], ["GATA1", dict(soft), "TAL1"], ["TAL1", dict(soft), "GATA1"]],
            negative=[],
        ),
        Grammar(
            name="cooperative",
            description="E2F6 AND MAX in either order at a soft gap; negatives carry E2F6 alone, "
            "MAX alone or nothing (E2F6/MAX benchmark).",
            motifs={"E2F6": "MA0471.3", "MAX": "MA0058.4"},
            positive=[["E2F6", dict(soft), "MAX"], ["MAX", dict(soft), "E2F6"]],
            negative=[["E2F6"], ["MAX"], []],
        ),
        Grammar(
            name="fixed_spacing",
            description="JUND, a hard 10-bp gap, then TEAD1; negatives background only (JUND/TEAD benchmark).",
            motifs={"JUND": "MA0491.3", "TEAD1": "MA0090.4"},
            positive=["JUND", HARD_SPACER, "TEAD1"],
            negative=[],
        ),
        Grammar(
            name="fixed_spacing_strict",
            description="As fixed_spacing, but negatives carry the same pair at a wrong gap "
            "(uniform over 0-20 bp except 8-12).",
            motifs={"JUND": "MA0491.3", "TEAD1": "MA0090.4"},
            positive=["JUND", HARD_SPACER, "TEAD1"],
            negative=[["JUND", gap, "TEAD1"] for gap in range(21) if not 8 <= gap <= 12],
        ),
        Grammar(
            name="and_half_sites",
            description="Both REST half-sites (MA0138.3 split around its two central low-information "
            "columns) in canonical order with the canonical 2-bp spacer; negatives carry one half.",
            motifs=copy.deepcopy(_REST_MOTIFS),
            positive=["REST_left", rest_gap, "REST_right"],
            negative=[["REST_left"], ["REST_right"]],
            orientation="arrangement",
        ),
        Grammar(
            name="and_half_sites_v2",
            description="As and_half_sites; negatives carry one half or both halves in swapped order "
            "(REST v2, expressivity test).",
            motifs=copy.deepcopy(_REST_MOTIFS),
            positive=["REST_left", rest_gap, "REST_right"],
            negative=[["REST_left"], ["REST_right"], ["REST_right", rest_gap, "REST_left"]],
            orientation="arrangement",
        ),
        Grammar(
            name="repression",
            description="SPI1 alone in positives; negatives are background or SPI1 followed by CTCF "
            "at a soft gap (CTCF cancels SPI1; SPI1/CTCF benchmark).",
            motifs={"SPI1": "MA0080.7", "CTCF": "MA0139.2"},
            positive=["SPI1"],
            negative=[[], ["SPI1", dict(soft), "CTCF"]],
        ),
        Grammar(
            name="gata_density",
            description="3-5 GATA1 instances at soft gaps; negatives carry 0 or 1 GATA1 (regulariser ablation).",
            motifs={"GATA1": "MA0035.5"},
            positive=[_gata_run(3), _gata_run(4), _gata_run(5)],
            negative=[[], ["GATA1"]],
        ),
        Grammar(
            name="soft_spacing",
            description="Two CTCF instances at a soft gap; negatives carry one CTCF.",
            motifs={"CTCF": "MA0139.2"},
            positive=["CTCF", dict(soft), "CTCF"],
            negative=["CTCF"],
        ),
    ]
    return {g.name: g for g in grammars}


#: Built-in grammars of ``specs/argminn.md`` §9, by name.
GRAMMARS: dict[str, Grammar] = _builtin_grammars()


def load_grammar(grammar: str | os.PathLike | Grammar | Mapping[str, Any]) -> Grammar:
    """Return a :class:`Grammar` from a name, a JSON path, a dict or a grammar.

    Parameters
    ----------
    grammar : str, os.PathLike, Grammar or dict
        A key of ``GRAMMARS``, the path to a JSON file holding a grammar dict
        (as written by ``simulate_genome``, whose ``"grammar"`` entry is used
        if present), a grammar dict, or a :class:`Grammar` (returned as is).

    Returns
    -------
    grammar : Grammar
    """
    if isinstance(grammar, Grammar):
        return grammar
    if isinstance(grammar, Mapping):
        return Grammar.from_dict(grammar)
    if isinstance(grammar, str) and grammar in GRAMMARS:
        return GRAMMARS[grammar]
    if isinstance(grammar, (str, os.PathLike)):
        path = Path(grammar)
        if path.suffix == ".json" and path.is_file():
            with open(path) as handle:
                data = json.load(handle)
            if isinstance(data, Mapping) and "grammar" in data:
                data = data["grammar"]
            return Grammar.from_dict(data)
        raise ValueError(f"unknown grammar {str(grammar)!r}; built-in grammars are {sorted(GRAMMARS)}")
    raise ValueError(f"grammar must be a name, a JSON path, a dict or a Grammar, got {type(grammar).__name__}")


# ---------------------------------------------------------------------------
# Motifs
# ---------------------------------------------------------------------------


def _read_motif_library(motifs: str | os.PathLike | Mapping | None) -> tuple[dict[str, np.ndarray], str]:
    if motifs is None:
        motifs = DEFAULT_MOTIF_FILE
    if isinstance(motifs, Mapping):
        library = {}
        for name, pfm in motifs.items():
            if isinstance(pfm, torch.Tensor):
                pfm = pfm.detach().cpu().numpy()
            library[str(name)] = np.asarray(pfm, dtype=np.float64)
        return library, "<dict>"
    if not isinstance(motifs, (str, os.PathLike)):
        raise ValueError(f"motifs must be a MEME file path, a dict of PFMs or None, got {type(motifs).__name__}")
    path = Path(motifs)
    if not path.is_file():
        raise ValueError(f"motifs file {str(path)!r} does not exist")
    from memelite.io import read_meme

    return {name: np.asarray(pfm, dtype=np.float64) for name, pfm in read_meme(str(path)).items()}, str(path)


def _lookup(motif_id: str, library: Mapping[str, np.ndarray], where: str) -> str:
    if motif_id in library:
        return motif_id
    names = list(library)
    for rule in (
        lambda n: n.split()[0] == motif_id,
        lambda n: "." not in motif_id and n.split()[0].split(".")[0] == motif_id,
        lambda n: len(n.split()) > 1 and n.split(maxsplit=1)[1].lower() == motif_id.lower(),
    ):
        hits = [n for n in names if n.split() and rule(n)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"motif ID {motif_id!r} is ambiguous in {where}: {hits[:5]}")
    raise ValueError(f"unknown motif ID {motif_id!r}: not found in {where}")


def _check_pfm(name: str, pfm: np.ndarray) -> np.ndarray:
    pfm = np.asarray(pfm, dtype=np.float64)
    if pfm.ndim != 2 or pfm.shape[0] != 4 or pfm.shape[1] < 1:
        raise ValueError(f"PFM of motif {name!r} must have shape (4, w) with w >= 1, got {pfm.shape}")
    if not np.all(np.isfinite(pfm)) or np.any(pfm < 0):
        raise ValueError(f"PFM of motif {name!r} must be finite and non-negative")
    sums = pfm.sum(axis=0)
    if np.any(sums <= 0):
        raise ValueError(f"PFM of motif {name!r} has a column summing to 0")
    return pfm / sums


def resolve_motifs(
    grammar: str | os.PathLike | Grammar | Mapping[str, Any],
    motifs: str | os.PathLike | Mapping[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Resolve every motif key of a grammar to a PFM.

    Parameters
    ----------
    grammar : str, os.PathLike, Grammar or dict
        Anything accepted by :func:`load_grammar`.
    motifs : str, os.PathLike, dict or None, optional
        A MEME file, or a dict of name -> PFM of shape (4, w). None (the
        default) uses the shipped JASPAR 2024 file ``DEFAULT_MOTIF_FILE``.

    Returns
    -------
    pfms : dict of str -> numpy.ndarray, shape=(4, w)
        Column-normalised PFMs (ACGT rows) keyed by motif key.
    sources : dict of str -> dict
        For each key: the requested ``id``, the matched ``name`` in the motif
        file, the column slice ``start``/``end`` and the ``width``.
    """
    grammar = load_grammar(grammar)
    library, where = _read_motif_library(motifs)
    pfms: dict[str, np.ndarray] = {}
    sources: dict[str, dict[str, Any]] = {}
    for key in grammar.motif_keys:
        source = grammar.motifs.get(key, key)
        if isinstance(source, str):
            motif_id, start, end = source, None, None
        else:
            motif_id, start, end = source["id"], source.get("start"), source.get("end")
        name = _lookup(motif_id, library, where)
        full = _check_pfm(name, library[name])
        lo = 0 if start is None else start
        hi = full.shape[1] if end is None else end
        if not 0 <= lo < hi <= full.shape[1]:
            raise ValueError(
                f"motif {key!r}: columns {lo}:{hi} are outside {name!r}, which has width {full.shape[1]}"
            )
        pfms[key] = full[:, lo:hi].copy()
        sources[key] = {"id": motif_id, "name": name, "start": lo, "end": hi, "width": hi - lo}
    return pfms, sources


def reverse_complement(X: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Reverse-complement one-hot sequences or PFMs (ACGT order).

    The complement of A, C, G, T is T, G, C, A, i.e. the base axis reversed, so
    the reverse complement flips both the base axis and the length axis
    (``X.flip(1).flip(2)`` for a batch).

    Parameters
    ----------
    X : torch.Tensor or numpy.ndarray, shape=(..., 4, L)
        One-hot sequences, a single sequence of shape (4, L), or a PFM (4, w).

    Returns
    -------
    X_rc : same type as X, shape=(..., 4, L)
    """
    if X.ndim < 2 or X.shape[-2] != 4:
        raise ValueError(f"X must have shape (..., 4, L), got {tuple(X.shape)}")
    if isinstance(X, torch.Tensor):
        return X.flip(-2).flip(-1)
    if isinstance(X, np.ndarray):
        return np.ascontiguousarray(X[..., ::-1, ::-1])
    raise ValueError(f"X must be a torch.Tensor or numpy.ndarray, got {type(X).__name__}")


# ---------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------


def _match_mask(codes: np.ndarray, pfms: Sequence[np.ndarray], threshold: float) -> np.ndarray:
    """Positions covered by a window matching any PFM.

    A window matches a PFM (4, w) when the mean over its w positions of the
    PFM probability of the observed base is >= ``threshold``. Scores are built
    with one gather per PFM column over all windows at once; the caller passes
    both strands of every motif.

    Parameters
    ----------
    codes : numpy.ndarray, shape=(n, L)
        Base indices 0-3 (ACGT).
    pfms : list of numpy.ndarray, shape=(4, w)
    threshold : float

    Returns
    -------
    mask : numpy.ndarray of bool, shape=(n, L)
    """
    n, length = codes.shape
    mask = np.zeros((n, length), dtype=bool)
    for pfm in pfms:
        w = pfm.shape[1]
        n_windows = length - w + 1
        if n_windows <= 0:
            continue
        # Skip motifs whose best possible window cannot reach the threshold.
        if pfm.max(axis=0).sum() < threshold * w - 1e-9:
            continue
        score = np.zeros((n, n_windows))
        for k in range(w):
            score += pfm[:, k][codes[:, k : k + n_windows]]
        hits = score >= threshold * w - 1e-9
        if hits.any():
            for k in range(w):
                mask[:, k : k + n_windows] |= hits
    return mask


def _both_strands(pfms: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    out = []
    for pfm in pfms.values():
        out += [pfm, pfm[::-1, ::-1]]
    return out


def _iid_background(
    n: int,
    length: int,
    reject_pfms: Sequence[np.ndarray],
    reject_threshold: float | None,
    rng: np.random.Generator,
    max_rounds: int = 200,
) -> np.ndarray:
    """Uniform i.i.d. bases with no window matching any rejection PFM.

    Rejection is done by local redraws: every base covered by a matching
    window is redrawn, and only the sequences that had a match are rescored,
    until none is left. For the 0.9 threshold matches are rare, so almost all
    bases keep their first draw.
    """
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    if reject_threshold is None or not reject_pfms or n == 0:
        return codes
    rows = np.arange(n)
    for _ in range(max_rounds):
        mask = _match_mask(codes[rows], reject_pfms, reject_threshold)
        bad = mask.any(axis=1)
        if not bad.any():
            return codes
        rows, mask = rows[bad], mask[bad]
        sub = codes[rows]
        sub[mask] = rng.integers(0, 4, size=int(mask.sum()), dtype=np.uint8)
        codes[rows] = sub
    raise ValueError(
        f"reject_threshold={reject_threshold} is too low: background free of motif matches could not be drawn"
    )


@functools.lru_cache(maxsize=2)
def _read_genome_cached(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, np.ndarray], ...]:
    with open(path, "rb") as handle:
        magic = handle.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    records = []
    for block in data.split(b">")[1:]:
        header, _, body = block.partition(b"\n")
        name = header.decode().split()[0] if header.split() else ""
        if not name:
            raise ValueError(f"background FASTA {path!r} has a record without a name")
        seq = body.replace(b"\n", b"").replace(b"\r", b"").replace(b" ", b"")
        codes = _LUT[np.frombuffer(seq, dtype=np.uint8)]
        codes.setflags(write=False)
        records.append((name, codes))
    if not records:
        raise ValueError(f"background FASTA {path!r} holds no sequences")
    return tuple(records)


def _read_genome(path: str | os.PathLike) -> tuple[tuple[str, np.ndarray], ...]:
    """Read a FASTA (plain, gzip or BGZF) into base codes (0-3 ACGT, 4 other), upper-casing soft-masked bases."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"background {str(path)!r} is neither 'iid' nor an existing FASTA file")
    stat = path.stat()
    return _read_genome_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _genome_windows(
    genome: tuple[tuple[str, np.ndarray], ...],
    n: int,
    length: int,
    rng: np.random.Generator,
    reject_pfms: Sequence[np.ndarray] = (),
    reject_threshold: float | None = None,
    max_rounds: int = 1000,
) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """Draw ``n`` random genome windows of ``length`` bp containing only A/C/G/T."""
    sizes = np.array([len(codes) for _, codes in genome], dtype=np.int64)
    n_starts = np.clip(sizes - length + 1, 0, None)
    if n_starts.sum() == 0:
        raise ValueError(f"background genome has no sequence of at least length={length} bp")
    weights = n_starts / n_starts.sum()
    out = np.empty((n, length), dtype=np.uint8)
    loci: list[tuple[str, int, int]] = []
    filled = 0
    for _ in range(max_rounds):
        if filled == n:
            break
        batch = max(16, 2 * (n - filled))
        chroms = rng.choice(len(genome), size=batch, p=weights)
        starts = (rng.random(batch) * n_starts[chroms]).astype(np.int64)
        windows = np.stack([genome[c][1][s : s + length] for c, s in zip(chroms, starts)])
        ok = (windows < 4).all(axis=1)
        if reject_threshold is not None and reject_pfms:
            ok &= ~_match_mask(np.minimum(windows, 3), reject_pfms, reject_threshold).any(axis=1)
        for i in np.nonzero(ok)[0][: n - filled]:
            out[filled] = windows[i]
            loci.append((genome[chroms[i]][0], int(starts[i]), int(starts[i]) + length))
            filled += 1
    if filled < n:
        raise ValueError(
            f"background genome has too few windows of length={length} bp without N (or motif matches) to draw {n}"
        )
    return out, loci


# ---------------------------------------------------------------------------
# Sequence simulation
# ---------------------------------------------------------------------------


class SimulationResult(NamedTuple):
    """Simulated sequences with their ground truth.

    Attributes
    ----------
    X : torch.Tensor, dtype=torch.int8, shape=(N, 4, L)
        One-hot sequences (ACGT); positives first, then negatives.
    y : torch.Tensor, dtype=torch.int64, shape=(N,)
        1 for positives, 0 for negatives.
    instances : pandas.DataFrame
        One row per planted instance: ``example_idx``, ``start`` (inclusive,
        0-based), ``end`` (exclusive), ``motif`` (grammar key) and ``strand``
        (``'+'``: the PFM reads left to right on the given sequence; ``'-'``:
        the reverse complement of the window matches the PFM).
    motifs : dict of str -> numpy.ndarray, shape=(4, w)
        PFMs of every motif of the grammar (column-normalised).
    background_loci : pandas.DataFrame or None
        For a genome background, ``chrom``, ``start``, ``end`` of the window
        each sequence was drawn from (one row per sequence); None for i.i.d.
    """

    X: torch.Tensor
    y: torch.Tensor
    instances: pd.DataFrame
    motifs: dict[str, np.ndarray]
    background_loci: pd.DataFrame | None = None


def _check_count(name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def _make_rng(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (_is_int(random_state) and random_state >= 0):
        return np.random.default_rng(random_state)
    raise ValueError(f"random_state must be a non-negative int, a numpy Generator or None, got {random_state!r}")


def _codes_to_onehot(codes: np.ndarray) -> torch.Tensor:
    onehot = (codes[:, None, :] == np.arange(4, dtype=np.uint8)[None, :, None]).astype(np.int8)
    return torch.from_numpy(onehot)


def simulate_sequences(
    grammar: str | os.PathLike | Grammar | Mapping[str, Any],
    n_positives: int,
    n_negatives: int,
    *,
    length: int = 500,
    background: str | os.PathLike = "iid",
    motifs: str | os.PathLike | Mapping[str, Any] | None = None,
    center_jitter: int = 50,
    reject_threshold: float | None = 0.9,
    reject_genome: bool = False,
    random_state: RandomState = 0,
) -> SimulationResult:
    """Simulate labelled sequences with planted motif instances.

    Each positive samples one arrangement from the grammar's positive config
    and each negative one from its negative config (``[]``: background
    only). Every motif instance is sampled base by base from its PFM, on a
    random strand (see the module docstring on ``orientation``), and the
    arrangement is placed so that its centre lies at ``length // 2`` plus a
    uniform integer offset in ``[-center_jitter, center_jitter]``; the offset
    range is narrowed where needed so the arrangement stays inside the
    sequence.

    With ``background="iid"`` the background bases are uniform and
    independent, and, as in the original (``background_match_reject_prob =
    1``), no window of background may match any motif of the grammar on either
    strand: a window of width w matches when the mean of the PFM probabilities
    of its bases is >= ``reject_threshold``. The check scores all windows of
    all sequences at once and redraws the bases under matching windows until
    none is left; it is done on the background before planting, so every
    window lying outside the planted instances (spacers included) is
    match-free. Windows that straddle an instance are not checked. Note that
    many JASPAR PFMs cannot reach 0.9 at all (for example CTCF MA0139.2 peaks
    at 0.74), so for them rejection removes nothing.

    With a FASTA path, each sequence is a random genome window (chromosomes
    weighted by length) that contains only A/C/G/T, upper-cased; there is no
    rejection unless ``reject_genome=True``.

    Parameters
    ----------
    grammar : str, os.PathLike, Grammar or dict
        A name from ``GRAMMARS``, a grammar JSON path, a grammar dict or a
        :class:`Grammar`.
    n_positives, n_negatives : int
        Number of positive (y = 1) and negative (y = 0) sequences.
    length : int, optional
        Sequence length L. Default is 500.
    background : str or os.PathLike, optional
        ``"iid"`` or the path to a genome FASTA (``.fa`` or ``.fa.gz``, plain
        gzip or BGZF). Default is ``"iid"``.
    motifs : str, os.PathLike, dict or None, optional
        MEME file or dict of PFMs to resolve motif IDs against. Default is
        None, the shipped JASPAR 2024 CORE vertebrates file.
    center_jitter : int, optional
        Maximum shift of the arrangement centre from L/2. Default is 50.
    reject_threshold : float or None, optional
        Mean-probability threshold for background rejection, in (0, 1]; None
        disables rejection. Default is 0.9.
    reject_genome : bool, optional
        Also reject genome windows holding a match. Default is False.
    random_state : int, numpy.random.Generator or None, optional
        Seed of the numpy Generator; the output is a deterministic function
        of it. Default is 0.

    Returns
    -------
    result : SimulationResult
        ``X`` (N, 4, L) int8, ``y`` (N,) int64, ``instances``, ``motifs`` and
        ``background_loci``.
    """
    grammar = load_grammar(grammar)
    n_positives = _check_count("n_positives", n_positives)
    n_negatives = _check_count("n_negatives", n_negatives)
    if not _is_int(length) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    if not _is_int(center_jitter) or center_jitter < 0:
        raise ValueError(f"center_jitter must be a non-negative int, got {center_jitter!r}")
    if reject_threshold is not None and (
        isinstance(reject_threshold, bool)
        or not isinstance(reject_threshold, (int, float, np.floating))
        or not 0 < reject_threshold <= 1
    ):
        raise ValueError(f"reject_threshold must be in (0, 1] or None, got {reject_threshold!r}")
    is_iid = isinstance(background, str) and background == "iid"
    genome = None if is_iid else _read_genome(background)
    rng = _make_rng(random_state)

    pfms, _ = resolve_motifs(grammar, motifs)
    widths = {key: pfm.shape[1] for key, pfm in pfms.items()}
    positive = _parse_config(grammar.positive, "positive")
    negative = _parse_config(grammar.negative or [], "negative")
    for label, node in (("positive", positive), ("negative", negative)):
        longest = _max_length(node, widths)
        if longest > length:
            raise ValueError(
                f"length={length} is shorter than the longest {label} arrangement of grammar "
                f"{grammar.name!r} ({longest} bp)"
            )

    n = n_positives + n_negatives
    reject_pfms = _both_strands(pfms)
    if is_iid:
        codes = _iid_background(n, length, reject_pfms, reject_threshold, rng)
        background_loci = None
    else:
        codes, loci = _genome_windows(
            genome, n, length, rng, reject_pfms, reject_threshold if reject_genome else None
        )
        background_loci = pd.DataFrame(loci, columns=["chrom", "start", "end"])

    cdfs = {}
    for key, pfm in pfms.items():
        for strand, mat in (("+", pfm), ("-", pfm[::-1, ::-1])):
            cdf = np.cumsum(mat, axis=0)
            cdf[-1] = 1.0
            cdfs[key, strand] = cdf

    rows: list[tuple[int, int, int, str, str]] = []
    for idx in range(n):
        node = positive if idx < n_positives else negative
        layout = _sample_arrangement(node, rng)
        if grammar.orientation == "arrangement":
            flip = bool(rng.integers(2))
            strands = ["-" if flip else "+"] * len(layout)
            if flip:
                layout = layout[::-1]
        else:
            strands = ["+" if rng.integers(2) == 0 else "-" for _ in layout]
        total = sum(widths[v] if kind == "motif" else v for kind, v in layout)
        if total == 0:
            continue
        base = (length - total) // 2
        lo = max(-center_jitter, -base)
        hi = min(center_jitter, length - total - base)
        pos = base + int(rng.integers(lo, hi + 1))
        for (kind, value), strand in zip(layout, strands):
            if kind == "gap":
                pos += value
                continue
            cdf = cdfs[value, strand]
            w = cdf.shape[1]
            u = rng.random(w)
            bases = np.minimum((u[None, :] >= cdf).sum(axis=0), 3)
            codes[idx, pos : pos + w] = bases
            rows.append((idx, pos, pos + w, value, strand))
            pos += w

    instances = pd.DataFrame(rows, columns=["example_idx", "start", "end", "motif", "strand"])
    instances = instances.astype({"example_idx": np.int64, "start": np.int64, "end": np.int64})
    X = _codes_to_onehot(codes)
    y = torch.cat([torch.ones(n_positives, dtype=torch.int64), torch.zeros(n_negatives, dtype=torch.int64)])
    return SimulationResult(X, y, instances, {k: v.copy() for k, v in pfms.items()}, background_loci)


# ---------------------------------------------------------------------------
# Toy genome
# ---------------------------------------------------------------------------


def _write_fasta(path: Path, records: Sequence[tuple[str, np.ndarray]], line_width: int = 60) -> None:
    with open(path, "w") as handle:
        for name, codes in records:
            seq = _ALPHABET[codes].tobytes().decode()
            handle.write(f">{name}\n")
            for i in range(0, len(seq), line_width):
                handle.write(seq[i : i + line_width] + "\n")


def simulate_genome(
    out_dir: str | os.PathLike,
    grammar: str | os.PathLike | Grammar | Mapping[str, Any],
    n_positives: int,
    n_negatives: int,
    *,
    length: int = 500,
    background: str | os.PathLike = "iid",
    n_chroms: int = 5,
    flank: int = 1000,
    motifs: str | os.PathLike | Mapping[str, Any] | None = None,
    center_jitter: int = 50,
    reject_threshold: float | None = 0.9,
    reject_genome: bool = False,
    random_state: RandomState = 0,
    prefix: str = "sim",
) -> dict[str, Path]:
    """Write a toy genome carrying simulated windows, with peaks and ground truth.

    The windows are exactly those of :func:`simulate_sequences` called with
    the same arguments (positives first, then negatives). Positives and
    negatives are each dealt round-robin, in a random order, over the
    chromosomes ``chr1 .. chr{n_chroms}``, so every chromosome receives
    positives and negatives as long as there are at least ``n_chroms`` of
    each; chromosome-based splits (e.g. train chr1-3, valid chr4, test chr5)
    then all have both classes. Each chromosome is ``flank`` background bases,
    then its windows in random order separated by ``flank`` background bases,
    then ``flank`` more: windows never touch, and a model reading
    ``in_window`` bases around a window centre with jitter ``j`` stays inside
    the chromosome while ``(in_window - length) / 2 + j <= flank``. Spacers
    use the same background as the windows (i.i.d. with rejection, or random
    genome windows).

    Files (named ``{prefix}.*`` in ``out_dir``):

    * ``fasta`` ``{prefix}.fa`` (60 bp per line) and ``fai`` ``{prefix}.fa.fai``
      (built by pyfaidx);
    * ``peaks`` ``{prefix}.peaks.bed``: narrowPeak (10 columns) of the
      positive windows in example order; name ``{prefix}_{example_idx}``,
      score 1000, strand ``.``, signalValue = number of planted instances,
      pValue and qValue -1, summit offset ``length // 2``;
    * ``negatives`` ``{prefix}.negatives.bed``: 3-column BED of the negative
      windows in example order;
    * ``instances`` ``{prefix}.instances.tsv``: ``chrom, start, end`` (genomic,
      0-based half-open), ``example_idx, seq_start, seq_end, motif, strand,
      label``;
    * ``motifs`` ``{prefix}.motifs.meme``: the PFMs, named by motif key
      (written by ``memelite.io.write_meme``);
    * ``grammar`` ``{prefix}.grammar.json``: the grammar, the resolved motif
      sources (IDs, column slices), all settings, the seed and the chromosome
      sizes.

    All files are written to a temporary folder inside ``out_dir`` and moved
    into place only once every file has been written, so a failure leaves no
    partial output (existing files with the same names are replaced).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Output folder, created if missing.
    grammar, n_positives, n_negatives, length, background, motifs, center_jitter, reject_threshold, reject_genome
        As for :func:`simulate_sequences`.
    n_chroms : int, optional
        Number of chromosomes. Default is 5.
    flank : int, optional
        Background bases before, between and after the windows. Default is
        1000.
    random_state : int, numpy.random.Generator or None, optional
        Seed; the windows use it exactly as :func:`simulate_sequences` does,
        the layout and spacers use an independent stream spawned from it.
        Default is 0.
    prefix : str, optional
        File-name prefix (letters, digits, ``_``, ``-``, ``.``). Default is
        ``"sim"``.

    Returns
    -------
    paths : dict of str -> pathlib.Path
        Keys ``fasta``, ``fai``, ``peaks``, ``negatives``, ``instances``,
        ``motifs`` and ``grammar``.
    """
    if not _is_int(n_chroms) or n_chroms < 1:
        raise ValueError(f"n_chroms must be a positive int, got {n_chroms!r}")
    if not _is_int(flank) or flank < 0:
        raise ValueError(f"flank must be a non-negative int, got {flank!r}")
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", prefix) or prefix.startswith("."):
        raise ValueError(f"prefix must be a plain file-name prefix, got {prefix!r}")
    grammar = load_grammar(grammar)

    if isinstance(random_state, np.random.Generator):
        sim_rng, layout_rng, seed = random_state, random_state, None
    else:
        sim_rng = _make_rng(random_state)
        layout_rng = np.random.default_rng(np.random.SeedSequence(random_state).spawn(1)[0])
        seed = random_state

    result = simulate_sequences(
        grammar,
        n_positives,
        n_negatives,
        length=length,
        background=background,
        motifs=motifs,
        center_jitter=center_jitter,
        reject_threshold=reject_threshold,
        reject_genome=reject_genome,
        random_state=sim_rng,
    )
    _, sources = resolve_motifs(grammar, motifs)
    codes = result.X.numpy().argmax(axis=1).astype(np.uint8)
    n = codes.shape[0]
    y = result.y.numpy()

    # Deal positives and negatives round-robin over the chromosomes.
    chrom_of = np.empty(n, dtype=np.int64)
    for members in (np.arange(n_positives), np.arange(n_positives, n)):
        order = layout_rng.permutation(members)
        chrom_of[order] = np.arange(len(order)) % n_chroms
    per_chrom = [layout_rng.permutation(np.nonzero(chrom_of == c)[0]) for c in range(n_chroms)]

    is_iid = isinstance(background, str) and background == "iid"
    n_spacers = sum(len(m) + 1 for m in per_chrom)
    reject_pfms = _both_strands(result.motifs)
    if flank == 0:
        spacers = np.zeros((n_spacers, 0), dtype=np.uint8)
    elif is_iid:
        spacers = _iid_background(n_spacers, flank, reject_pfms, reject_threshold, layout_rng)
    else:
        spacers, _ = _genome_windows(
            _read_genome(background), n_spacers, flank, layout_rng, reject_pfms,
            reject_threshold if reject_genome else None,
        )

    records: list[tuple[str, np.ndarray]] = []
    window_loc: dict[int, tuple[str, int]] = {}
    k = 0
    for c, members in enumerate(per_chrom):
        name = f"chr{c + 1}"
        pieces = [spacers[k]]
        k += 1
        pos = flank
        for idx in members:
            window_loc[int(idx)] = (name, pos)
            pieces += [codes[idx], spacers[k]]
            k += 1
            pos += length + flank
        records.append((name, np.concatenate(pieces)))

    inst = result.instances
    n_inst = inst.groupby("example_idx").size().reindex(range(n), fill_value=0).to_numpy()
    peaks = pd.DataFrame(
        [
            (window_loc[i][0], window_loc[i][1], window_loc[i][1] + length, f"{prefix}_{i}", 1000, ".",
             float(n_inst[i]), -1, -1, length // 2)
            for i in range(n_positives)
        ],
        columns=["chrom", "start", "end", "name", "score", "strand", "signalValue", "pValue", "qValue", "peak"],
    )
    negatives = pd.DataFrame(
        [(window_loc[i][0], window_loc[i][1], window_loc[i][1] + length) for i in range(n_positives, n)],
        columns=["chrom", "start", "end"],
    )
    offsets = np.array([window_loc[int(i)][1] for i in inst["example_idx"]], dtype=np.int64)
    instances = pd.DataFrame(
        {
            "chrom": [window_loc[int(i)][0] for i in inst["example_idx"]],
            "start": inst["start"].to_numpy() + offsets,
            "end": inst["end"].to_numpy() + offsets,
            "example_idx": inst["example_idx"].to_numpy(),
            "seq_start": inst["start"].to_numpy(),
            "seq_end": inst["end"].to_numpy(),
            "motif": inst["motif"].to_numpy(),
            "strand": inst["strand"].to_numpy(),
            "label": y[inst["example_idx"].to_numpy()] if len(inst) else np.zeros(0, dtype=np.int64),
        }
    )
    settings = {
        "grammar": grammar.to_dict(),
        "motif_sources": sources,
        "motif_file": "<dict>" if isinstance(motifs, Mapping) else str(DEFAULT_MOTIF_FILE if motifs is None else motifs),
        "n_positives": int(n_positives),
        "n_negatives": int(n_negatives),
        "length": int(length),
        "center_jitter": int(center_jitter),
        "reject_threshold": reject_threshold,
        "reject_genome": bool(reject_genome),
        "background": str(background),
        "n_chroms": int(n_chroms),
        "flank": int(flank),
        "random_state": None if seed is None else int(seed),
        "prefix": prefix,
        "chrom_sizes": {name: int(len(seq)) for name, seq in records},
    }

    from memelite.io import write_meme

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {
        "fasta": f"{prefix}.fa",
        "fai": f"{prefix}.fa.fai",
        "peaks": f"{prefix}.peaks.bed",
        "negatives": f"{prefix}.negatives.bed",
        "instances": f"{prefix}.instances.tsv",
        "motifs": f"{prefix}.motifs.meme",
        "grammar": f"{prefix}.grammar.json",
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{prefix}.tmp", dir=out_dir))
    try:
        _write_fasta(tmp / names["fasta"], records)
        import pyfaidx

        pyfaidx.Faidx(str(tmp / names["fasta"])).close()
        if not (tmp / names["fai"]).is_file():
            raise RuntimeError("pyfaidx did not write the FASTA index")
        peaks.to_csv(tmp / names["peaks"], sep="\t", header=False, index=False)
        negatives.to_csv(tmp / names["negatives"], sep="\t", header=False, index=False)
        instances.to_csv(tmp / names["instances"], sep="\t", header=True, index=False)
        write_meme(str(tmp / names["motifs"]), {key: np.asarray(pfm) for key, pfm in result.motifs.items()})
        with open(tmp / names["grammar"], "w") as handle:
            json.dump(settings, handle, indent=2)
        # The FASTA is moved before its index so the index stays the newer file.
        for key in ("fasta", "fai", "peaks", "negatives", "instances", "motifs", "grammar"):
            os.replace(tmp / names[key], out_dir / names[key])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {key: out_dir / name for key, name in names.items()}


class SimulatedBatches:
    """Fresh simulated training batches every epoch, as in the paper (``argminn.md`` §6.1).

    The paper samples new sequences for every batch (100 training batches of 128 per epoch), so a
    model never sees the same background twice; with a fixed data set the same grammars are learned
    less cleanly (in our runs a single-motif model learned one orientation of the motif as a clean
    filter and the other through a weak, BatchNorm-amplified filter that fails the quality filter).
    Iterating yields ``(X, y, labels)`` batches in bpnet-lite's layout; epoch ``k`` is simulated
    with seed ``random_state * 100003 + k`` so runs are reproducible and resumable
    (``set_epoch`` is called by :func:`argminn_plugin.training.fit`).

    Parameters
    ----------
    grammar: str, Grammar or dict
        A built-in grammar name or a grammar (see :func:`load_grammar`).
    n_batches: int
        Batches per epoch. Default is 100.
    batch_size: int
        Sequences per batch, half positive and half negative. Default is 128.
    length: int
        Sequence length. Default is 500.
    random_state: int
        Base seed. Default is 0.
    **kwargs
        Passed to :func:`simulate_sequences` (``background``, ``motifs``, ``center_jitter``, ...).
    """

    def __init__(self, grammar, n_batches: int = 100, batch_size: int = 128, length: int = 500,
                 random_state: int = 0, **kwargs: Any) -> None:
        if n_batches < 1 or batch_size < 2:
            raise ValueError(f"n_batches must be >= 1 and batch_size >= 2, got {n_batches} and {batch_size}.")
        self.grammar = grammar
        self.n_batches = n_batches
        self.batch_size = batch_size
        self.length = length
        self.random_state = random_state
        self.kwargs = kwargs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Simulate epoch ``epoch`` on the next iteration."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self):
        seed = self.random_state * 100003 + self.epoch
        self.epoch += 1
        n_pos = self.batch_size // 2 * self.n_batches
        n_neg = (self.batch_size - self.batch_size // 2) * self.n_batches
        sim = simulate_sequences(self.grammar, n_pos, n_neg, length=self.length, random_state=seed, **self.kwargs)
        order = torch.randperm(len(sim.X), generator=torch.Generator().manual_seed(seed))
        X, y = sim.X[order], sim.y[order].float().reshape(-1, 1)
        for i in range(self.n_batches):
            rows = slice(i * self.batch_size, (i + 1) * self.batch_size)
            yield X[rows], y[rows], y[rows][:, 0].long()
