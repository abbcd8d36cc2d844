"""ARGMINN's read-out side by side with DeepLIFT-SHAP + TF-MoDISco, on the same sequences.

:func:`side_by_side` takes a trained ARGMINN, a baseline trained on the same data (e.g.
:class:`argminn_plugin.baselines.StandardCNN`) and held-out positive sequences, and builds:

* **ARGMINN** (``method="argminn"``): PFMs of the filters (``argminn.md`` §7.1) with the quality
  filter (trimmed length >= 5, mean IC >= 1) and instances from one forward pass (§7.2);
* **MoDISco on ARGMINN** (``"modisco_argminn"``) and **MoDISco on the baseline**
  (``"modisco_baseline"``): DeepLIFT-SHAP hypothetical attributions (tangermeme,
  dinucleotide-shuffled references; :func:`argminn_plugin.attribute.deep_lift_shap`) ->
  modisco-lite patterns (:func:`argminn_plugin.modisco.run_modisco`), trimmed where the
  information content drops below 0.2 bits, with the MoDISco quality filter (trimmed length >= 5,
  total IC >= 4); as instances, tangermeme's ``recursive_seqlets`` on the summed projected
  attributions (``seqlets_*``) and memelite FIMO hits (p < 1e-4, both strands, overlapping or
  adjacent hits merged as ``bedtools merge`` does, each merged hit keeping its best p-value) of the
  MoDISco patterns (``fimo_modisco_*``); and, as in the paper's Table 8.3, FIMO hits of ARGMINN's
  own PFMs (``fimo_argminn_pfms``).

Then every motif set is annotated against a motif database (JASPAR 2024 CORE vertebrates
non-redundant by default) with TOMTOM; the sets are matched to each other with TOMTOM, each query
against the database *plus* the other set (so the p-values use a full-size background,
``ecosystem.md`` §6.1) and Benjamini-Hochberg q-values over all those targets; every pair of
instance sets is overlapped with the rule of :func:`argminn_plugin.instances.score_instances` (two
intervals overlap when they share at least half the shorter one); and with ground truth (planted
instances and PFMs) each method is scored: planted motifs recovered (some quality-passing motif
matches at q < ``q_threshold``), redundant (extra motifs matching an already recovered one),
unmatched motifs, the number passing the quality filter, and instance precision and recall.

Coordinates are 0-based, end-exclusive, and ``example_idx`` indexes the sequences given.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .io import atomic_write
from .motifs import (
    annotate_motifs,
    benjamini_hochberg,
    information_content,
    motif_quality,
    read_motif_database,
    trim_motif,
    trimmed_motifs,
)

METHODS = ("argminn", "modisco_argminn", "modisco_baseline")
INSTANCE_COLUMNS = ["source", "example_idx", "start", "end", "motif", "strand", "score"]


@dataclass
class ComparisonResult:
    """Everything :func:`side_by_side` computes. Tables are tidy; ``summary`` holds every number.

    Attributes
    ----------
    motifs: pandas.DataFrame
        One row per motif: ``method, motif, length, mean_ic, total_ic, passes, n_seqlets,
        jaspar_match, jaspar_p, jaspar_q, jaspar_strand``.
    annotations: pandas.DataFrame
        The database matches (top 3 per motif) with a ``method`` column.
    matches: pandas.DataFrame
        Motif sets matched to each other: ``query_method, query, target_method, target, p_value,
        q_value, strand, offset, overlap, is_best`` (one row per pair of motifs).
    instances: pandas.DataFrame
        Every instance set: ``source, example_idx, start, end, motif, strand, score``.
    overlaps: pandas.DataFrame
        ``source_a, source_b, n_a, n_b, n_a_overlapping, n_b_overlapping, frac_a_overlapping_b,
        frac_b_overlapping_a`` for every pair of instance sets.
    motif_scores, instance_scores: pandas.DataFrame
        Scores against the truth (empty without truth).
    summary: dict
        JSON-ready numbers of all of the above.
    pfms: dict
        ``{method: {motif: PFM (4, w)}}`` (trimmed), for logos.
    X: torch.Tensor
        The sequences compared.
    attributions: dict
        ``{"argminn" | "baseline": projected attributions (N, 4, L)}``.
    truth: pandas.DataFrame or None
        The planted instances, when given.
    database: dict
        The motif database used (``{name: PFM}``), for logos of the matches.
    """

    motifs: pd.DataFrame
    annotations: pd.DataFrame
    matches: pd.DataFrame
    instances: pd.DataFrame
    overlaps: pd.DataFrame
    motif_scores: pd.DataFrame
    instance_scores: pd.DataFrame
    summary: dict
    pfms: dict
    X: torch.Tensor
    attributions: dict = field(default_factory=dict)
    truth: pd.DataFrame | None = None
    database: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tidy tables by name (what :func:`write_comparison` writes as TSV)."""
        return {"motifs": self.motifs, "annotations": self.annotations, "matches": self.matches,
                "instances": self.instances, "overlaps": self.overlaps, "motif_scores": self.motif_scores,
                "instance_scores": self.instance_scores}


# --------------------------------------------------------------------------------------------------
# Instances
# --------------------------------------------------------------------------------------------------


def merge_intervals(hits: pd.DataFrame, *, score: str = "p-value", lower_is_better: bool = True) -> pd.DataFrame:
    """Merge overlapping or adjacent intervals per example, as ``bedtools merge`` (``-d 0``) does.

    Each merged interval keeps the row (motif, strand, score) of its best hit: the lowest
    ``score`` when ``lower_is_better``, else the highest.

    Parameters
    ----------
    hits: pandas.DataFrame
        Columns ``example_idx, start, end`` and ``score``.

    Returns
    -------
    pandas.DataFrame
        The merged intervals, sorted by example and start, with the other columns of the best hit.
    """
    if len(hits) == 0:
        return hits.iloc[0:0].copy()
    rows = []
    ordered = hits.sort_values(["example_idx", "start", "end"], kind="stable").reset_index(drop=True)
    values = ordered[score].to_numpy(dtype=float)
    sign = 1.0 if lower_is_better else -1.0
    current, best = None, None
    for i, (ex, s, e) in enumerate(ordered[["example_idx", "start", "end"]].itertuples(index=False)):
        if current is not None and ex == current[0] and s <= current[2]:
            current[2] = max(current[2], e)
            if sign * values[i] < sign * values[best]:
                best = i
            continue
        if current is not None:
            rows.append((best, current))
        current, best = [ex, s, e], i
    rows.append((best, current))
    out = ordered.iloc[[b for b, _ in rows]].copy()
    out["start"] = [c[1] for _, c in rows]
    out["end"] = [c[2] for _, c in rows]
    return out.reset_index(drop=True)


def fimo_instances(motifs: dict[str, np.ndarray], X: torch.Tensor, *, threshold: float = 1e-4,
                   merge: bool = True) -> pd.DataFrame:
    """FIMO hits (memelite, both strands, p < ``threshold``) of ``motifs`` in ``X``, merged.

    Returns
    -------
    pandas.DataFrame
        ``example_idx, start, end, motif, strand, score`` (score = -log10 p of the best hit).
    """
    columns = ["example_idx", "start", "end", "motif", "strand", "score"]
    if not motifs:
        return pd.DataFrame(columns=columns)
    from memelite import fimo

    clean = {name: np.asarray(m, dtype=np.float64) for name, m in motifs.items()}
    seqs = X.detach().cpu().numpy().astype(np.float32) if isinstance(X, torch.Tensor) else np.asarray(X, np.float32)
    frames = [f for f in fimo(clean, seqs, threshold=threshold) if len(f)]
    if not frames:
        return pd.DataFrame(columns=columns)
    hits = pd.concat(frames, ignore_index=True)
    hits = pd.DataFrame({"example_idx": hits["sequence_name"].astype(np.int64), "start": hits["start"].astype(np.int64),
                         "end": hits["end"].astype(np.int64), "motif": hits["motif_name"].astype(str),
                         "strand": hits["strand"].astype(str), "p": hits["p-value"].astype(float)})
    if merge:
        hits = merge_intervals(hits, score="p")
    hits["score"] = -np.log10(hits["p"].clip(lower=1e-300))
    return hits[columns].reset_index(drop=True)


def seqlet_instances(projected: torch.Tensor, **kwargs: Any) -> pd.DataFrame:
    """tangermeme ``recursive_seqlets`` on the summed projected attributions (N, 4, L) -> (N, L).

    Returns ``example_idx, start, end, motif ("seqlet"), strand ("."), score (attribution)``.
    """
    from tangermeme.seqlet import recursive_seqlets

    columns = ["example_idx", "start", "end", "motif", "strand", "score"]
    seqlets = recursive_seqlets(projected.sum(dim=1).float(), **kwargs)
    if len(seqlets) == 0:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame({"example_idx": seqlets["example_idx"].astype(np.int64),
                         "start": seqlets["start"].astype(np.int64), "end": seqlets["end"].astype(np.int64),
                         "motif": "seqlet", "strand": ".", "score": seqlets["attribution"].astype(float)})


def overlap_flags(a: pd.DataFrame, b: pd.DataFrame, *, min_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Which intervals of ``a`` overlap some interval of ``b`` and vice versa.

    Two intervals on the same example overlap when they share at least ``min_fraction`` of the
    shorter one (the rule of :func:`argminn_plugin.instances.score_instances`).
    """
    from .instances import _overlaps

    cols = ["example_idx", "start", "end"]
    return _overlaps(a[cols].astype(np.int64), b[cols].astype(np.int64).reset_index(drop=True), min_fraction)


def instance_overlap(a: pd.DataFrame, b: pd.DataFrame, *, min_fraction: float = 0.5) -> dict[str, Any]:
    """Overlap of two instance sets: counts and fractions of each overlapping the other.

    Returns
    -------
    dict
        ``n_a, n_b, n_a_overlapping, n_b_overlapping, frac_a_overlapping_b, frac_b_overlapping_a``
        (fractions None for an empty set).
    """
    fa, fb = overlap_flags(a, b, min_fraction=min_fraction)
    return {"n_a": int(len(a)), "n_b": int(len(b)), "n_a_overlapping": int(fa.sum()), "n_b_overlapping": int(fb.sum()),
            "frac_a_overlapping_b": float(fa.mean()) if len(a) else None,
            "frac_b_overlapping_a": float(fb.mean()) if len(b) else None}


# --------------------------------------------------------------------------------------------------
# Motifs
# --------------------------------------------------------------------------------------------------


def modisco_motifs(result, *, trim_ic: float = 0.2, min_length: int = 5, min_total_ic: float = 4.0
                   ) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Trimmed PPMs of the MoDISco patterns and their quality (``argminn.md`` §7.1, MoDISco rule).

    Returns ``({name: trimmed PPM}, table)`` with table columns ``motif, group, length, mean_ic,
    total_ic, passes, n_seqlets`` (names as in :func:`argminn_plugin.modisco.run_modisco`).
    """
    motifs, rows = {}, []
    n_seqlets = {}
    for group, patterns in (("pos_patterns", result.pos_patterns), ("neg_patterns", result.neg_patterns)):
        for i, pattern in enumerate(patterns or []):
            n_seqlets[f"{group}.pattern_{i}"] = len(pattern.seqlets)
    for name, ppm in result.motifs.items():
        start, end = trim_motif(ppm, trim_ic)
        trimmed = ppm[:, start:end]
        ic = information_content(trimmed) if end > start else np.zeros(0)
        length = end - start
        if length:
            motifs[name] = trimmed
        rows.append({"motif": name, "group": name.split(".")[0], "length": int(length),
                     "mean_ic": float(ic.mean()) if length else 0.0, "total_ic": float(ic.sum()),
                     "passes": bool(length >= min_length and ic.sum() >= min_total_ic),
                     "n_seqlets": int(n_seqlets.get(name, 0))})
    return motifs, pd.DataFrame(rows, columns=["motif", "group", "length", "mean_ic", "total_ic", "passes",
                                               "n_seqlets"])


def match_motif_sets(queries: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                     database: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """TOMTOM of every query against every target (both strands), with q-values.

    Each query is compared with ``database`` plus ``targets`` (so the p-values have a full-size
    background even for a handful of targets); q-values are Benjamini-Hochberg over all of those
    targets, as TOMTOM reports them, and only the rows for ``targets`` are returned.

    Returns
    -------
    pandas.DataFrame
        ``query, target, p_value, q_value, strand, offset, overlap, is_best`` (``is_best``: the
        target with the lowest p-value for the query).
    """
    columns = ["query", "target", "p_value", "q_value", "strand", "offset", "overlap", "is_best"]
    if not queries or not targets:
        return pd.DataFrame(columns=columns)
    from memelite import tomtom

    database = database or {}
    t_names = list(targets)
    pool = [np.asarray(targets[t], dtype=np.float64) for t in t_names]
    pool += [np.asarray(v, dtype=np.float64) for k, v in database.items()]
    q_names = list(queries)
    p, _, offsets, overlaps, strands = tomtom([np.asarray(queries[n], dtype=np.float64) for n in q_names], pool)
    q = benjamini_hochberg(p)
    rows = []
    for i, query in enumerate(q_names):
        best = int(np.argmin(p[i, : len(t_names)]))
        for j, target in enumerate(t_names):
            rows.append({"query": query, "target": target, "p_value": float(p[i, j]), "q_value": float(q[i, j]),
                         "strand": "-" if strands[i, j] == 1 else "+", "offset": int(offsets[i, j]),
                         "overlap": int(overlaps[i, j]), "is_best": j == best})
    return pd.DataFrame(rows, columns=columns)


def score_motifs(motifs: dict[str, np.ndarray], passes: dict[str, bool], planted: dict[str, np.ndarray],
                 database: dict[str, np.ndarray] | None, *, q_threshold: float = 0.05) -> dict[str, Any]:
    """Recovered / missed / redundant / unmatched motifs of one method against planted PFMs.

    Only quality-passing motifs count. A planted motif is recovered when a passing motif matches it
    at q < ``q_threshold``; every match beyond the first *on the same strand* counts as redundant (a
    motif and its reverse complement are one motif, as the paper draws them and as ARGMINN learns
    them in two filters; the same rule as :func:`argminn_plugin.readout.score_against_truth`); a
    passing motif matching no planted motif is unmatched.
    """
    passing = {k: v for k, v in motifs.items() if passes.get(k, False)}
    table = match_motif_sets(passing, planted, database)
    hits = table[table["q_value"] < q_threshold] if len(table) else table
    per_planted = {k: sorted(hits.loc[hits["target"] == k, "query"].tolist()) if len(hits) else [] for k in planted}
    matched_queries = set(hits["query"]) if len(hits) else set()
    return {
        "n_motifs": int(len(motifs)),
        "n_passing": int(len(passing)),
        "recovered": sorted(k for k, v in per_planted.items() if v),
        "missed": sorted(k for k, v in per_planted.items() if not v),
        "n_recovered": int(sum(1 for v in per_planted.values() if v)),
        "n_redundant": int(sum(
            max(0, int(((hits["target"] == k) & (hits["strand"] == strand)).sum()) - 1)
            for k in planted for strand in "+-"
        )) if len(hits) else 0,
        "unmatched": sorted(k for k in passing if k not in matched_queries),
        "n_unmatched": int(sum(1 for k in passing if k not in matched_queries)),
        "motifs_per_planted": per_planted,
    }


# --------------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------------


def _argminn_readout(model, X, *, activation_threshold, attention_threshold, batch_size, statistics_X):
    from .instances import activation_statistics, call_instances
    from .motifs import extract_motifs

    motifs = extract_motifs(model, X, threshold=activation_threshold, batch_size=batch_size, device="cpu")
    quality = motif_quality(motifs.pfms)
    passing = trimmed_motifs(motifs, quality)
    filters = [int(r.filter) for r in quality.itertuples() if r.passes]
    stats = activation_statistics(model, X if statistics_X is None else statistics_X, batch_size=batch_size,
                                  device="cpu")
    calls = call_instances(model, X, statistics=stats, filters=filters, attention_threshold=attention_threshold,
                           batch_size=batch_size, device="cpu")
    calls = pd.DataFrame({"example_idx": calls["example_idx"].astype(np.int64), "start": calls["start"].astype(np.int64),
                          "end": calls["end"].astype(np.int64), "motif": calls["motif"].astype(str),
                          "strand": calls["strand"].astype(str), "score": calls["attention"].astype(float)})
    table = quality.assign(motif=[f"filter_{f}" for f in quality["filter"]])
    table = table[table["used"]]
    table = pd.DataFrame({"motif": table["motif"], "group": "filters", "length": table["length"],
                          "mean_ic": table["mean_ic"], "total_ic": table["total_ic"], "passes": table["passes"],
                          "n_seqlets": np.nan})
    return passing, table, calls


def _none_if_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        value = float(value)
        return None if math.isnan(value) else value
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def frame_records(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-ready records (NaN -> None, numpy scalars -> Python)."""
    return [{k: _none_if_nan(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def side_by_side(
    argminn_model,
    baseline_model,
    X_pos: torch.Tensor,
    *,
    truth: pd.DataFrame | None = None,
    planted: dict[str, np.ndarray] | None = None,
    database: dict | str | os.PathLike | None = None,
    n_shuffles: int = 20,
    modisco_kwargs: dict | None = None,
    seqlet_kwargs: dict | None = None,
    fimo_threshold: float = 1e-4,
    fimo_motifs: str = "passing",
    activation_threshold: float = 0.5,
    attention_threshold: float = 0.9,
    q_threshold: float = 0.05,
    min_fraction: float = 0.5,
    statistics_X: torch.Tensor | None = None,
    batch_size: int = 64,
    random_state: int = 0,
    verbose: bool = False,
) -> ComparisonResult:
    """Compare ARGMINN's motifs and instances with DeepLIFT-SHAP + MoDISco on the same sequences.

    Parameters
    ----------
    argminn_model: ARGMINN
        A trained ARGMINN with the binary head.
    baseline_model: torch.nn.Module
        A model trained on the same data returning logits (N, n_tasks) (e.g. ``StandardCNN``).
    X_pos: torch.Tensor, shape=(N, 4, L)
        Held-out positive sequences.
    truth: pandas.DataFrame or None, optional
        Planted instances (``example_idx`` indexing ``X_pos``, ``start``, ``end``).
    planted: dict or None, optional
        Planted PFMs ``{name: (4, w)}`` for the motif scores.
    database: dict, path or None, optional
        Motif database for annotation and as TOMTOM background; default shipped JASPAR 2024.
    n_shuffles: int, optional
        Dinucleotide-shuffled references per sequence for DeepLIFT-SHAP. Default is 20.
    modisco_kwargs: dict or None, optional
        Keywords for :func:`argminn_plugin.modisco.run_modisco` (CLI defaults otherwise).
    seqlet_kwargs: dict or None, optional
        Keywords for ``tangermeme.seqlet.recursive_seqlets``.
    fimo_threshold: float, optional
        FIMO p-value threshold. Default is 1e-4.
    fimo_motifs: str, optional
        Which MoDISco patterns FIMO scans: ``"passing"`` (positive patterns passing the quality
        filter; default) or ``"all"`` (every positive pattern).
    activation_threshold, attention_threshold: float, optional
        ARGMINN read-out thresholds (§7.1, §7.2). Defaults 0.5 and 0.9.
    q_threshold: float, optional
        TOMTOM q-value for a match. Default is 0.05.
    min_fraction: float, optional
        Overlap rule for instances. Default is 0.5.
    statistics_X: torch.Tensor or None, optional
        Sequences for ARGMINN's activation statistics; default ``X_pos``.
    batch_size: int, optional
        Batch size of forward passes and attribution. Default is 64.
    random_state: int, optional
        Seed of the references. Default is 0.
    verbose: bool, optional
        Print progress. Default is False.

    Returns
    -------
    ComparisonResult
    """
    from .attribute import deep_lift_shap
    from .modisco import run_modisco

    if not hasattr(argminn_model, "forward_with_interims"):
        raise ValueError(f"argminn_model must be an ARGMINN model, got {type(argminn_model).__name__}.")
    if getattr(argminn_model, "head_type", "binary") != "binary":
        raise ValueError("side_by_side needs ARGMINN with the binary head.")
    if fimo_motifs not in ("passing", "all"):
        raise ValueError(f"fimo_motifs must be 'passing' or 'all', got {fimo_motifs!r}.")
    X_pos = X_pos.cpu()
    db = database if isinstance(database, dict) else read_motif_database(database)
    argminn_model = argminn_model.cpu().eval()
    baseline_model = baseline_model.cpu().eval()

    def say(msg):
        if verbose:
            print(f"[compare] {msg}", flush=True)

    say(f"ARGMINN read-out on {len(X_pos)} sequences")
    argminn_pfms, argminn_table, argminn_calls = _argminn_readout(
        argminn_model, X_pos, activation_threshold=activation_threshold, attention_threshold=attention_threshold,
        batch_size=batch_size, statistics_X=statistics_X)
    pfms = {"argminn": argminn_pfms}
    tables = {"argminn": argminn_table}
    instance_sets = {"argminn_calls": argminn_calls}
    attributions, modisco_parameters = {}, {}
    for label, model in (("argminn", argminn_model), ("baseline", baseline_model)):
        say(f"DeepLIFT-SHAP on {label} ({n_shuffles} shuffles)")
        hyp = deep_lift_shap(model, X_pos, n_shuffles=n_shuffles, hypothetical=True, random_state=random_state,
                             batch_size=batch_size, device="cpu")
        projected = hyp * X_pos.to(hyp.dtype)
        attributions[label] = projected
        say(f"MoDISco on {label}")
        result = run_modisco(X_pos, hyp, **(modisco_kwargs or {}))
        modisco_parameters[label] = result.parameters
        motifs, table = modisco_motifs(result)
        method = f"modisco_{label}"
        pfms[method] = motifs
        tables[method] = table
        say(f"seqlets and FIMO on {label}")
        instance_sets[f"seqlets_{label}"] = seqlet_instances(projected, **(seqlet_kwargs or {}))
        keep = table[(table["group"] == "pos_patterns") & (table["passes"] | (fimo_motifs == "all"))]["motif"]
        instance_sets[f"fimo_modisco_{label}"] = fimo_instances({k: motifs[k] for k in keep if k in motifs}, X_pos,
                                                               threshold=fimo_threshold)
    instance_sets["fimo_argminn_pfms"] = fimo_instances(argminn_pfms, X_pos, threshold=fimo_threshold)

    say("annotation and matching")
    annotation_frames, rows = [], []
    for method in METHODS:
        annotation = annotate_motifs(pfms[method], db) if pfms[method] else pd.DataFrame()
        if len(annotation):
            annotation_frames.append(annotation.assign(method=method))
        best = annotation[annotation["rank"] == 0].set_index("motif") if len(annotation) else pd.DataFrame()
        for row in tables[method].itertuples(index=False):
            hit = best.loc[row.motif] if len(best) and row.motif in best.index else None
            rows.append({"method": method, "motif": row.motif, "group": row.group, "length": int(row.length),
                         "mean_ic": float(row.mean_ic), "total_ic": float(row.total_ic), "passes": bool(row.passes),
                         "n_seqlets": row.n_seqlets,
                         "jaspar_match": None if hit is None else hit["target"],
                         "jaspar_p": None if hit is None else float(hit["p_value"]),
                         "jaspar_q": None if hit is None else float(hit["q_value"]),
                         "jaspar_strand": None if hit is None else hit["strand"]})
    motif_frame = pd.DataFrame(rows, columns=["method", "motif", "group", "length", "mean_ic", "total_ic", "passes",
                                              "n_seqlets", "jaspar_match", "jaspar_p", "jaspar_q", "jaspar_strand"])
    annotations = (pd.concat(annotation_frames, ignore_index=True) if annotation_frames
                   else pd.DataFrame(columns=["motif", "rank", "target", "p_value", "q_value", "method"]))
    if len(annotations):
        annotations = annotations[["method"] + [c for c in annotations.columns if c != "method"]]

    match_frames = []
    for qm in METHODS:
        for tm in METHODS:
            if qm == tm:
                continue
            m = match_motif_sets(pfms[qm], pfms[tm], db)
            if len(m):
                match_frames.append(m.assign(query_method=qm, target_method=tm))
    match_columns = ["query_method", "query", "target_method", "target", "p_value", "q_value", "strand", "offset",
                     "overlap", "is_best"]
    matches = pd.concat(match_frames, ignore_index=True)[match_columns] if match_frames else pd.DataFrame(
        columns=match_columns)

    instances = pd.concat([frame.assign(source=name) for name, frame in instance_sets.items() if len(frame)]
                          or [pd.DataFrame(columns=INSTANCE_COLUMNS)], ignore_index=True)[INSTANCE_COLUMNS]
    overlap_rows = []
    names = list(instance_sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            overlap_rows.append({"source_a": a, "source_b": b,
                                 **instance_overlap(instance_sets[a], instance_sets[b], min_fraction=min_fraction)})
    overlaps = pd.DataFrame(overlap_rows)

    motif_scores = pd.DataFrame()
    instance_scores = pd.DataFrame()
    truth_summary: dict[str, Any] = {}
    if planted:
        score_rows = []
        for method in METHODS:
            passes = dict(zip(tables[method]["motif"], tables[method]["passes"]))
            s = score_motifs(pfms[method], passes, planted, db, q_threshold=q_threshold)
            truth_summary.setdefault("motifs", {})[method] = s
            score_rows.append({"method": method, "n_motifs": s["n_motifs"], "n_passing": s["n_passing"],
                               "n_recovered": s["n_recovered"], "n_redundant": s["n_redundant"],
                               "n_unmatched": s["n_unmatched"], "recovered": ",".join(s["recovered"]),
                               "missed": ",".join(s["missed"])})
        motif_scores = pd.DataFrame(score_rows)
    if truth is not None:
        from .instances import score_instances

        rows = []
        for name, frame in instance_sets.items():
            s = score_instances(frame, truth, min_fraction=min_fraction)
            rows.append({"source": name, "n_calls": s.n_calls, "n_true": s.n_true,
                         "precision": None if math.isnan(s.precision) else s.precision,
                         "recall": None if math.isnan(s.recall) else s.recall})
        instance_scores = pd.DataFrame(rows)

    summary = {
        "n_sequences": int(X_pos.shape[0]),
        "length": int(X_pos.shape[2]),
        "baseline": type(baseline_model).__name__,
        "parameters": {"n_shuffles": n_shuffles, "fimo_threshold": fimo_threshold, "fimo_motifs": fimo_motifs,
                       "activation_threshold": activation_threshold, "attention_threshold": attention_threshold,
                       "q_threshold": q_threshold, "min_fraction": min_fraction, "random_state": random_state,
                       "modisco": {k: {kk: _none_if_nan(vv) for kk, vv in v.items()}
                                   for k, v in modisco_parameters.items()},
                       "seqlets": dict(seqlet_kwargs or {})},
        "n_motifs": {m: int((motif_frame["method"] == m).sum()) for m in METHODS},
        "n_passing": {m: int(((motif_frame["method"] == m) & motif_frame["passes"]).sum()) for m in METHODS},
        "n_instances": {k: int(len(v)) for k, v in instance_sets.items()},
        "n_matched": {
            f"{qm}->{tm}": int(matches[(matches["query_method"] == qm) & (matches["target_method"] == tm)
                                       & (matches["q_value"] < q_threshold)]["query"].nunique())
            for qm in METHODS for tm in METHODS if qm != tm
        },
        "tables": {name: frame_records(frame) for name, frame in (
            ("motifs", motif_frame), ("overlaps", overlaps), ("motif_scores", motif_scores),
            ("instance_scores", instance_scores), ("matches", matches[matches["is_best"]] if len(matches) else matches),
        )},
    }
    if truth_summary:
        summary["truth"] = truth_summary
    return ComparisonResult(motif_frame, annotations, matches, instances, overlaps, motif_scores, instance_scores,
                            summary, pfms, X_pos, attributions, truth, db)


def write_comparison(result: ComparisonResult, prefix: str | os.PathLike) -> dict[str, str]:
    """Write ``{prefix}.compare.json`` (every number) and ``{prefix}.compare.{table}.tsv``; atomic.

    Returns
    -------
    dict
        ``{kind: path}`` of the files written.
    """
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in result.tables().items():
        path = f"{prefix}.compare.{name}.tsv"
        atomic_write(path, lambda tmp, f=frame: f.to_csv(tmp, sep="\t", index=False))
        files[f"{name}_tsv"] = path
    path = f"{prefix}.compare.json"
    text = json.dumps(result.summary, indent=2, default=_none_if_nan, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    files["json"] = path
    return files
