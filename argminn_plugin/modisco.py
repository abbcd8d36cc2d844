"""Bridges to modisco-lite 3.0: ARGMINN motifs as a modisco results file, and running TF-MoDISco.

* :func:`write_modisco_h5` writes ARGMINN's motifs and their instance calls in the ``.h5`` layout of
  modisco-lite 3.0 (``ecosystem.md`` §5.3), so that ``modisco report -l``, ``modisco meme`` and any
  code reading modisco results take them as they are. One pattern per motif, its instances as the
  seqlets.
* :func:`run_modisco` runs ``modiscolite.tfmodisco.TFMoDISco`` on attributions (e.g. for the
  MoDISco baseline of ``argminn.md`` §7.1) with every parameter set explicitly. It is the only
  place in the package that turns (N, 4, L) tensors into modisco's length-first (N, L, 4) arrays.
* :func:`read_modisco_h5` reads the patterns of any modisco-lite 3.0 results file back as
  ``{name: PPM (4, w)}``, the layout of memelite and tangermeme.

Contribution scores without attributions
----------------------------------------
ARGMINN reads motifs off its filters, not off attribution scores, so by default the files written
here carry an **information-weighted PFM** in place of contribution scores: the pattern's
``contrib_scores`` and ``hypothetical_contribs`` are the PFM multiplied by its per-position
information content (bits, pseudocount 0.001, uniform background; what a logo shows), and each
seqlet's ``hypothetical_contribs`` is that same matrix while its ``contrib_scores`` keeps only the
observed bases (one-hot × hypothetical, modisco's own rule). A seqlet's total "importance" in the
report is therefore the information the motif assigns to the bases it actually has: high for a
close match, low for a poor one. Pass real (hypothetical) attributions with ``contrib=`` to write
those instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch

from .io import atomic_write
from .motifs import information_content

__all__ = [
    "MODISCO_CLI_DEFAULTS",
    "ModiscoResult",
    "read_modisco_h5",
    "run_modisco",
    "write_modisco_h5",
]

#: The TFMoDISco parameters that the ``modisco motifs`` command line sets differently from the Python
#: API (``ecosystem.md`` §5.1). :func:`run_modisco` uses these values by default.
MODISCO_CLI_DEFAULTS: dict[str, Any] = {
    "sliding_window_size": 20,  # API 21
    "flank_size": 5,  # API 10
    "target_seqlet_fdr": 0.05,  # API 0.2
    "n_leiden_runs": 2,  # API 50
    "max_seqlets_per_metacluster": 2000,  # API 20000; the CLI makes -n required, 2000 is the usual value
}

_GROUPS = ("pos_patterns", "neg_patterns")


def _to_numpy(X: Any, name: str) -> np.ndarray:
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4, L), got {X.shape}.")
    return X


def _check_pfm(name: str, pfm: Any) -> np.ndarray:
    pfm = np.asarray(pfm.detach().cpu().numpy() if isinstance(pfm, torch.Tensor) else pfm, dtype=np.float64)
    if pfm.ndim != 2 or pfm.shape[0] != 4 or pfm.shape[1] < 1:
        raise ValueError(f"motif {name!r} must have shape (4, w) with w >= 1, got {pfm.shape}.")
    if not np.isfinite(pfm).all() or (pfm < 0).any():
        raise ValueError(f"motif {name!r} must be a non-negative, finite PFM.")
    return pfm


def _seqlet_coordinates(starts: np.ndarray, ends: np.ndarray, strands: np.ndarray, width: int,
                        offset: int | None) -> np.ndarray:
    """Start of the ``width``-bp seqlet inside each instance window (forward-strand coordinates).

    The motif occupies columns ``offset .. offset + width`` of the instance read on its own strand
    (``offset`` None centres it). On the minus strand those columns count from the window's end.
    """
    span = ends - starts
    a = (span - width) // 2 if offset is None else np.full_like(span, int(offset))
    minus = strands == "-"
    return np.where(minus, ends - a - width, starts + a)


def write_modisco_h5(
    path: str | os.PathLike,
    motifs: Mapping[str, Any],
    instances: pd.DataFrame,
    X: torch.Tensor | np.ndarray,
    *,
    contrib: torch.Tensor | np.ndarray | None = None,
    window_size: int | None = None,
    offsets: Mapping[str, int] | None = None,
    key: str = "motif",
    strand_key: str | None = "strand",
) -> Path:
    """Write motifs and their instances as a modisco-lite 3.0 results file.

    Each motif becomes ``pos_patterns/pattern_{i}`` (``i`` in the order of ``motifs``; the motif's
    name is kept in the group's ``name`` attribute, the root's ``pattern_names`` attribute lists them
    all), holding ``sequence`` (the PFM, (w, 4)), ``contrib_scores`` and ``hypothetical_contribs``,
    and ``seqlets/`` with ``n_seqlets, start, end, example_idx, is_revcomp`` and the seqlets'
    ``sequence, contrib_scores, hypothetical_contribs`` (n, w, 4). Without ``contrib`` the
    contribution arrays are the information-weighted PFM (see the module docstring).

    The seqlets of a motif all have the motif's width ``w``: each instance window is cut to ``w``
    bp (centred, or starting ``offsets[name]`` bp into the instance on its own strand, e.g. a
    filter's ``trim_start`` for trimmed filter motifs). A ``-`` instance is stored with
    ``is_revcomp=True`` and its sequence reverse-complemented, as modisco does. Coordinates are
    relative to the central ``window_size`` bp of the sequences (modisco's convention; the whole
    sequence by default); seqlets falling outside that window, and instances whose motif is not in
    ``motifs``, are left out. The file is written to a temporary name and then renamed.

    Parameters
    ----------
    path: str or Path
        Destination ``.h5`` file.
    motifs: dict of str -> array-like, shape=(4, w)
        PFMs (columns summing to 1), e.g. from :func:`argminn_plugin.motifs.trimmed_motifs` or the
        simulation's ``motifs``.
    instances: pandas.DataFrame
        Calls or planted instances with ``example_idx, start, end`` and ``key`` (and the strand,
        see ``strand_key``).
    X: torch.Tensor or numpy.ndarray, shape=(N, 4, L)
        The one-hot sequences the instances refer to.
    contrib: torch.Tensor or numpy.ndarray, shape=(N, 4, L), optional
        Hypothetical attributions (e.g. ``deep_lift_shap(..., hypothetical=True)``); projected ones
        work too. Pattern arrays are then the means over the seqlets.
    window_size: int or None, optional
        Width of the central window the coordinates refer to (the ``-w`` of ``modisco motifs``);
        stored as the root attribute ``window_size``. None means the sequence length L.
    offsets: dict of str -> int, optional
        Where each motif starts inside its instances (see above); motifs not in it are centred.
    key: str, optional
        Instance column naming the motif. Default is ``"motif"``.
    strand_key: str or None, optional
        Instance column with the strand (``+``/``-``) of each instance *relative to the PFM given*;
        None, or a table without that column, treats every instance as ``+``. Pass None for
        ARGMINN calls made with ``filter_strands`` (those strands are relative to the annotated
        database motif) when ``motifs`` holds the filters' own PFMs. Default is ``"strand"``.

    Returns
    -------
    Path
        ``path``.
    """
    import h5py

    X = _to_numpy(X, "X")
    n, _, length = X.shape
    if contrib is not None:
        contrib = _to_numpy(contrib, "contrib")
        if contrib.shape != X.shape:
            raise ValueError(f"contrib must have the shape of X {X.shape}, got {contrib.shape}.")
    if not isinstance(motifs, Mapping) or not motifs:
        raise ValueError("motifs must be a non-empty dict of name -> (4, w) PFM.")
    pfms = {str(name): _check_pfm(name, pfm) for name, pfm in motifs.items()}
    if not isinstance(instances, pd.DataFrame):
        raise ValueError(f"instances must be a pandas DataFrame, got {type(instances).__name__}.")
    missing = [c for c in ("example_idx", "start", "end", key) if c not in instances.columns]
    if missing:
        raise ValueError(f"instances are missing the columns {missing}.")
    if window_size is None:
        window_size = length
    if not isinstance(window_size, (int, np.integer)) or not 0 < window_size <= length:
        raise ValueError(f"window_size must be an int in [1, {length}], got {window_size!r}.")
    window_start = length // 2 - int(window_size) // 2  # modiscolite.util.calculate_window_offsets
    window_end = window_start + int(window_size)
    offsets = dict(offsets or {})

    groups = []
    for name, pfm in pfms.items():
        width = pfm.shape[1]
        hits = instances[instances[key].astype(str) == name]
        examples = hits["example_idx"].to_numpy().astype(np.int64)
        if len(examples) and (examples.min() < 0 or examples.max() >= n):
            raise ValueError(f"instances of {name!r} refer to examples outside X (N = {n}).")
        if strand_key is not None and strand_key in hits.columns:
            strands = hits[strand_key].astype(str).to_numpy()
            if not np.isin(strands, ["+", "-"]).all():
                raise ValueError(f"instances of {name!r} have strands other than '+' and '-'.")
        else:
            strands = np.full(len(hits), "+")
        starts = _seqlet_coordinates(hits["start"].to_numpy().astype(np.int64),
                                     hits["end"].to_numpy().astype(np.int64), strands, width, offsets.get(name))
        keep = (starts >= window_start) & (starts + width <= window_end)
        examples, starts, strands = examples[keep], starts[keep], strands[keep]
        revcomp = strands == "-"
        columns = starts[:, None] + np.arange(width)[None, :]
        # Only the seqlet windows are copied (and cast), never all of X.
        seqs = X[examples[:, None], :, columns].astype(np.float64).transpose(0, 2, 1)  # (n, 4, w)
        seqs[revcomp] = seqs[revcomp][:, ::-1, ::-1]
        ppm = pfm / np.where(pfm.sum(axis=0) > 0, pfm.sum(axis=0), 1.0)
        if contrib is None:
            weighted = ppm * information_content(ppm)[None, :]
            hyp = np.broadcast_to(weighted, seqs.shape).copy()
            pattern_hyp = weighted
        else:
            hyp = contrib[examples[:, None], :, columns].astype(np.float64).transpose(0, 2, 1)
            hyp[revcomp] = hyp[revcomp][:, ::-1, ::-1]
            pattern_hyp = hyp.mean(axis=0) if len(hyp) else np.zeros_like(ppm)
        seq_contrib = seqs * hyp
        if contrib is None:
            pattern_contrib = pattern_hyp
        else:
            pattern_contrib = seq_contrib.mean(axis=0) if len(hyp) else np.zeros_like(ppm)
        groups.append({
            "name": name,
            "sequence": ppm.T,
            "contrib_scores": pattern_contrib.T,
            "hypothetical_contribs": pattern_hyp.T,
            "start": starts - window_start,
            "end": starts - window_start + width,
            "example_idx": examples,
            "is_revcomp": revcomp,
            "seqlet_sequence": seqs.transpose(0, 2, 1).astype(np.float32),
            "seqlet_contrib": seq_contrib.transpose(0, 2, 1).astype(np.float32),
            "seqlet_hyp": hyp.transpose(0, 2, 1).astype(np.float32),
        })

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["window_size"] = int(window_size)
            handle.attrs["pattern_names"] = [g["name"] for g in groups]
            handle.attrs["contrib_source"] = "attributions" if contrib is not None else "ic_weighted_pfm"
            handle.attrs["writer"] = "argminn_plugin.modisco.write_modisco_h5"
            root = handle.create_group("pos_patterns")
            for i, g in enumerate(groups):
                pattern = root.create_group(f"pattern_{i}")
                pattern.attrs["name"] = g["name"]
                for field in ("sequence", "contrib_scores", "hypothetical_contribs"):
                    pattern.create_dataset(field, data=np.asarray(g[field], dtype=np.float64))
                seqlets = pattern.create_group("seqlets")
                seqlets.create_dataset("n_seqlets", data=np.array([len(g["start"])], dtype=np.int64))
                seqlets.create_dataset("start", data=np.asarray(g["start"], dtype=np.int64))
                seqlets.create_dataset("end", data=np.asarray(g["end"], dtype=np.int64))
                seqlets.create_dataset("example_idx", data=np.asarray(g["example_idx"], dtype=np.int64))
                seqlets.create_dataset("is_revcomp", data=np.asarray(g["is_revcomp"], dtype=bool))
                seqlets.create_dataset("sequence", data=g["seqlet_sequence"])
                seqlets.create_dataset("contrib_scores", data=g["seqlet_contrib"])
                seqlets.create_dataset("hypothetical_contribs", data=g["seqlet_hyp"])

    return atomic_write(path, write)


def read_modisco_h5(
    path: str | os.PathLike,
    *,
    groups: tuple[str, ...] = _GROUPS,
    use_names: bool = True,
) -> dict[str, np.ndarray]:
    """The patterns of a modisco-lite 3.0 results file as ``{name: PPM (4, w)}``.

    Parameters
    ----------
    path: str or Path
        A results file of ``modisco motifs``, :func:`run_modisco` or :func:`write_modisco_h5`.
    groups: tuple of str, optional
        Which pattern groups to read. Default is both ``pos_patterns`` and ``neg_patterns``.
    use_names: bool, optional
        Key a pattern by its ``name`` attribute when it has one (files of
        :func:`write_modisco_h5`); otherwise, and always when False, by modisco's tag
        ``"{group}.pattern_{i}"``. Default is True.

    Returns
    -------
    dict of str -> numpy.ndarray, shape=(4, w)
        Position probability matrices (the ``sequence`` datasets, transposed from modisco's (w, 4)),
        in the group order and then by pattern index.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise ValueError(f"modisco results file {path} does not exist.")
    out: dict[str, np.ndarray] = {}
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"could not open {path} as HDF5: {err}") from None
    with handle:
        for group in groups:
            if group not in handle:
                continue
            patterns = [k for k in handle[group].keys() if k.startswith("pattern_")]
            for tag in sorted(patterns, key=lambda k: int(k.rsplit("_", 1)[-1])):
                pattern = handle[group][tag]
                if "sequence" not in pattern:
                    raise ValueError(f"{path}: {group}/{tag} has no 'sequence' dataset; not a modisco-lite file.")
                name = pattern.attrs.get("name") if use_names else None
                name = str(name) if name is not None else f"{group}.{tag}"
                if name in out:
                    name = f"{group}.{tag}"
                ppm = np.asarray(pattern["sequence"][:], dtype=np.float64)
                if ppm.ndim != 2 or ppm.shape[1] != 4:
                    raise ValueError(f"{path}: {group}/{tag}/sequence has shape {ppm.shape}, expected (w, 4).")
                out[name] = ppm.T.copy()
    return out


class ModiscoResult(NamedTuple):
    """What :func:`run_modisco` returns.

    motifs: dict of str -> numpy.ndarray, shape=(4, w)
        The patterns' PPMs keyed ``"pos_patterns.pattern_{i}"`` / ``"neg_patterns.pattern_{i}"``.
    pos_patterns, neg_patterns: list of modiscolite.core.SeqletSet or None
        The raw patterns as TFMoDISco returns them (arrays (w, 4), length-first).
    window_size: int
        Width of the central window that was analysed.
    parameters: dict
        Every TFMoDISco keyword used.
    """

    motifs: dict[str, np.ndarray]
    pos_patterns: list | None
    neg_patterns: list | None
    window_size: int
    parameters: dict[str, Any]


def run_modisco(
    X: torch.Tensor | np.ndarray,
    X_attr: torch.Tensor | np.ndarray,
    *,
    window_size: int | None = None,
    max_seqlets: int = MODISCO_CLI_DEFAULTS["max_seqlets_per_metacluster"],
    n_leiden_runs: int = MODISCO_CLI_DEFAULTS["n_leiden_runs"],
    sliding_window_size: int = MODISCO_CLI_DEFAULTS["sliding_window_size"],
    flank_size: int = MODISCO_CLI_DEFAULTS["flank_size"],
    target_seqlet_fdr: float = MODISCO_CLI_DEFAULTS["target_seqlet_fdr"],
    trim_to_window_size: int = 30,
    initial_flank_to_add: int = 10,
    final_flank_to_add: int = 0,
    path: str | os.PathLike | None = None,
    verbose: bool = False,
    **kwargs: Any,
) -> ModiscoResult:
    """Run TF-MoDISco (modisco-lite 3.0) on one-hot sequences and hypothetical attributions.

    The parameters default to what ``modisco motifs`` uses (``MODISCO_CLI_DEFAULTS``), because
    the command line is how MoDISco is usually run; the Python API's own defaults differ
    (``sliding_window_size`` 21 vs 20, ``flank_size`` 10 vs 5, ``target_seqlet_fdr`` 0.2 vs 0.05,
    ``n_leiden_runs`` 50 vs 2, ``max_seqlets_per_metacluster`` 20,000 vs the required ``-n``).
    Unlike the command line (``-w 400``) the whole sequence is analysed unless ``window_size`` is
    given. Every keyword passed to ``TFMoDISco`` is returned in ``parameters``.

    Parameters
    ----------
    X: torch.Tensor or numpy.ndarray, shape=(N, 4, L)
        One-hot sequences.
    X_attr: torch.Tensor or numpy.ndarray, shape=(N, 4, L)
        Hypothetical attributions (e.g. ``deep_lift_shap(..., hypothetical=True)``); TFMoDISco
        forms the contribution scores as ``X * X_attr`` itself.
    window_size: int or None, optional
        Analyse only the central ``window_size`` bp (as ``modisco motifs -w``). None: all of L.
    max_seqlets: int, optional
        ``max_seqlets_per_metacluster``. Default is 2,000.
    n_leiden_runs, sliding_window_size, flank_size, target_seqlet_fdr, trim_to_window_size,
    initial_flank_to_add, final_flank_to_add: optional
        TFMoDISco parameters; defaults as in the command line.
    path: str, Path or None, optional
        Also save the results with ``modiscolite.io.save_hdf5`` (written atomically).
    verbose: bool, optional
        TFMoDISco's progress output. Default is False.
    **kwargs
        Any other ``TFMoDISco`` keyword (e.g. ``final_min_cluster_size``, ``min_metacluster_size``).

    Returns
    -------
    ModiscoResult
    """
    from modiscolite import io as modisco_io
    from modiscolite import tfmodisco

    X_np = _to_numpy(X, "X")
    attr = _to_numpy(X_attr, "X_attr")
    if attr.shape != X_np.shape:
        raise ValueError(f"X_attr must have the shape of X {X_np.shape}, got {attr.shape}.")
    length = X_np.shape[2]
    if window_size is None:
        window_size = length
    if not isinstance(window_size, (int, np.integer)) or not 0 < window_size <= length:
        raise ValueError(f"window_size must be an int in [1, {length}], got {window_size!r}.")
    start = length // 2 - int(window_size) // 2
    end = start + int(window_size)
    # The one place where (N, 4, L) becomes modisco's length-first (N, L, 4).
    one_hot = np.ascontiguousarray(X_np[:, :, start:end].transpose(0, 2, 1), dtype=np.float32)
    hyp = np.ascontiguousarray(attr[:, :, start:end].transpose(0, 2, 1), dtype=np.float32)
    parameters = dict(
        sliding_window_size=sliding_window_size, flank_size=flank_size, target_seqlet_fdr=target_seqlet_fdr,
        n_leiden_runs=n_leiden_runs, max_seqlets_per_metacluster=max_seqlets,
        trim_to_window_size=trim_to_window_size, initial_flank_to_add=initial_flank_to_add,
        final_flank_to_add=final_flank_to_add, verbose=verbose,
    )
    parameters.update(kwargs)
    pos, neg = tfmodisco.TFMoDISco(one_hot=one_hot, hypothetical_contribs=hyp, **parameters)
    motifs: dict[str, np.ndarray] = {}
    for group, patterns in zip(_GROUPS, (pos, neg)):
        for i, pattern in enumerate(patterns or []):
            motifs[f"{group}.pattern_{i}"] = np.asarray(pattern.sequence, dtype=np.float64).T.copy()
    if path is not None:
        atomic_write(path, lambda tmp: modisco_io.save_hdf5(tmp, pos, neg, int(window_size)))
    return ModiscoResult(motifs, pos, neg, int(window_size), parameters)
