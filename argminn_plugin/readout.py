"""The full read-out of a trained ARGMINN in the ecosystem's formats: motifs, instances, syntax, figures.

:func:`run_readout` is what ``argminn motifs|instances|syntax`` and the read-out steps of
``argminn pipeline`` call. Given a model and one-hot sequences (normally the positives of a
held-out set), it writes, for a prefix ``{name}``:

============================ =================================================================
``{name}.motifs.meme``       trimmed PFMs of the quality-passing filters (memelite's MEME writer)
``{name}.motifs.tsv``        one row per filter: used, quality, trimmed bounds, mean IC, best
                             JASPAR (TOMTOM) match with p- and q-value and strand
``{name}.instances.tsv``     instance calls (``example_idx, start, end, motif, filter, strand,
                             activation, attention, zscore`` [+ ``chrom, chrom_start, chrom_end``])
``{name}.instances.bed``     the same calls as BED6, when the sequences came from genomic loci
``{name}.syntax.tsv``        motif configurations and how they drive predictions
``{name}.spacings.tsv``      spacing counts between consecutive instances
``{name}.modisco.h5``        ARGMINN motifs with their instances as seqlets, in modisco-lite's
                             layout, for ``modisco report -l``
``{name}.logos.png``         logos of the quality-passing filters with their JASPAR matches
``{name}.tracks.png``        attention and activations over an example sequence, calls marked
``{name}.spacings.png``      spacing histograms of the most frequent motif pairs
============================ =================================================================
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import torch

from .instances import activation_statistics, call_instances, to_genomic, write_bed
from .io import atomic_write
from .motifs import annotate_motifs, extract_motifs, motif_quality, trimmed_motifs, write_meme


class Readout(NamedTuple):
    """Tables of :func:`run_readout`; ``files`` maps each output kind to its path."""

    motifs: pd.DataFrame
    instances: pd.DataFrame
    configurations: pd.DataFrame
    spacings: pd.DataFrame
    effects: pd.DataFrame
    files: dict[str, str]


def _write_tsv(frame: pd.DataFrame, path: str) -> str:
    atomic_write(path, lambda tmp: frame.to_csv(tmp, sep="\t", index=False))
    return path


def motif_table(quality: pd.DataFrame, annotation: pd.DataFrame) -> pd.DataFrame:
    """Quality table joined with each filter's best database match (rank 0)."""
    table = quality.copy()
    table.insert(1, "motif", [f"filter_{f}" for f in table["filter"]])
    if len(annotation):
        best = annotation[annotation["rank"] == 0].drop(columns=["rank"])
        best = best.rename(columns={"target": "match", "target_id": "match_id", "target_name": "match_name",
                                    "strand": "match_strand", "offset": "match_offset", "overlap": "match_overlap"})
        table = table.merge(best, on="motif", how="left")
    return table


def run_readout(
    model,
    X: torch.Tensor,
    prefix: str | os.PathLike,
    *,
    coords: pd.DataFrame | None = None,
    labels: torch.Tensor | None = None,
    statistics_X: torch.Tensor | None = None,
    database: Any = None,
    activation_threshold: float = 0.5,
    attention_threshold: float = 0.9,
    q_threshold: float = 0.05,
    figures: bool = True,
    modisco: bool = True,
    steps: tuple[str, ...] = ("motifs", "instances", "syntax"),
    batch_size: int = 256,
    device=None,
) -> Readout:
    """Read motifs, instances and syntax off ``model`` and write them under ``prefix``.

    Parameters
    ----------
    model: ARGMINN
        A trained model (binary or profile head).
    X: torch.Tensor, shape=(N, 4, L)
        Sequences to read from, normally held-out positives.
    prefix: str or Path
        Output prefix ``{name}`` (folders are created).
    coords: pandas.DataFrame or None, optional
        ``chrom, start`` of each sequence's window when it came from loci; adds genomic
        coordinates and a BED file.
    labels: torch.Tensor or None, optional
        Labels of ``X`` for the configuration-effects table.
    statistics_X: torch.Tensor or None, optional
        Sequences for the activation statistics of instance calling; default ``X``.
    database: dict, path or None, optional
        Motif database for TOMTOM; default the shipped JASPAR 2024 CORE vertebrates.
    activation_threshold: float, optional
        Fraction of a filter's maximum activation for PFM windows. Default is 0.5.
    attention_threshold: float, optional
        Pooled-attention threshold for instance calls. Default is 0.9.
    q_threshold: float, optional
        A filter's match is reported as its name only when q < this. Default is 0.05.
    figures, modisco: bool, optional
        Whether to write the figures and the modisco-lite ``.h5``. Default is True.
    steps: tuple of str, optional
        Which outputs to write: ``"motifs"`` (always computed, since instance calling needs the
        quality filter), ``"instances"``, ``"syntax"``. Default is all three.
    """
    if isinstance(steps, str):  # steps="motifs" means ("motifs",), not its letters
        steps = (steps,)
    unknown = set(steps) - {"motifs", "instances", "syntax"}
    if unknown:
        raise ValueError(f"steps must be among 'motifs', 'instances', 'syntax'; got {sorted(unknown)}.")
    from .syntax import configuration_effects, motif_configurations, pairwise_spacings

    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    model = model.cpu().eval() if device in (None, "cpu") else model.eval()

    motifs = extract_motifs(model, X, threshold=activation_threshold, batch_size=batch_size, device=device)
    quality = motif_quality(motifs.pfms)
    passing = trimmed_motifs(motifs, quality)
    annotation = annotate_motifs(passing, database) if passing else pd.DataFrame(columns=["motif", "rank"])
    table = motif_table(quality, annotation)
    files["motifs_tsv"] = _write_tsv(table, f"{prefix}.motifs.tsv")
    files["motifs_meme"] = str(write_meme(passing, f"{prefix}.motifs.meme"))

    if figures:
        from .plot import plot_filter_logos

        plot_filter_logos(motifs, quality, annotation if len(annotation) else None, f"{prefix}.logos.png")
        files["logos_png"] = f"{prefix}.logos.png"
    empty = pd.DataFrame()
    if "instances" not in steps and "syntax" not in steps:
        return Readout(table, empty, empty, empty, empty, files)

    names, strands = {}, {}
    for row in table.itertuples():
        if not row.passes:
            continue
        matched = "q_value" in table.columns and pd.notna(row.q_value) and row.q_value < q_threshold
        names[row.filter] = f"filter_{row.filter}:{row.match_name}" if matched else f"filter_{row.filter}"
        strands[row.filter] = row.match_strand if matched else "+"
    stats = activation_statistics(model, X if statistics_X is None else statistics_X, batch_size=batch_size,
                                  device=device)
    calls = call_instances(model, X, statistics=stats, filters=sorted(names), attention_threshold=attention_threshold,
                           filter_names=names, filter_strands=strands, batch_size=batch_size, device=device)
    if coords is not None and {"chrom", "start"} <= set(coords.columns):
        calls = to_genomic(calls, coords)
        if "instances" in steps:
            files["instances_bed"] = str(write_bed(calls, f"{prefix}.instances.bed"))
    if "instances" in steps:
        files["instances_tsv"] = _write_tsv(calls, f"{prefix}.instances.tsv")

    if "syntax" not in steps:
        if modisco and passing:
            files["modisco_h5"] = _modisco(prefix, passing, quality, calls, X)
        if figures:
            _tracks(model, X, calls, prefix, attention_threshold, files)
        return Readout(table, calls, empty, empty, empty, files)

    configurations = motif_configurations(calls, n_examples=X.shape[0])
    spacings = pairwise_spacings(calls)
    from tangermeme.predict import predict

    predictions = predict(model, X, batch_size=batch_size, device=device or "cpu")
    if isinstance(predictions, (list, tuple)):
        predictions = predictions[1]
    effects = configuration_effects(configurations, predictions, labels)
    files["syntax_tsv"] = _write_tsv(effects, f"{prefix}.syntax.tsv")
    files["spacings_tsv"] = _write_tsv(spacings, f"{prefix}.spacings.tsv")

    if modisco and passing:
        files["modisco_h5"] = _modisco(prefix, passing, quality, calls, X)
    if figures:
        from .plot import plot_spacing_histograms

        _tracks(model, X, calls, prefix, attention_threshold, files)
        if len(spacings):
            plot_spacing_histograms(spacings, path=f"{prefix}.spacings.png")
            files["spacings_png"] = f"{prefix}.spacings.png"
    return Readout(table, calls, configurations, spacings, effects, files)


def _modisco(prefix: str, passing: dict, quality: pd.DataFrame, calls: pd.DataFrame, X: torch.Tensor) -> str:
    from .modisco import write_modisco_h5

    offsets = {f"filter_{r.filter}": int(r.trim_start) for r in quality.itertuples() if r.passes}
    renamed = calls.assign(motif=[f"filter_{f}" for f in calls["filter"]])
    return str(write_modisco_h5(f"{prefix}.modisco.h5", passing, renamed, X, offsets=offsets, strand_key=None))


def _tracks(model, X: torch.Tensor, calls: pd.DataFrame, prefix: str, threshold: float, files: dict) -> None:
    from .plot import plot_sequence_tracks

    example = int(calls["example_idx"].iloc[0]) if len(calls) else 0
    one = calls[calls["example_idx"] == example].assign(example_idx=0)
    plot_sequence_tracks(model, X[example : example + 1], one, f"{prefix}.tracks.png", attention_threshold=threshold)
    files["tracks_png"] = f"{prefix}.tracks.png"


def score_against_truth(
    readout: Readout,
    truth: pd.DataFrame,
    planted: dict,
    *,
    database: Any = None,
    q_threshold: float = 0.05,
    windows: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Score a read-out against planted ground truth (the done-criteria of the read-out issue).

    Motifs: every quality-passing filter is compared by TOMTOM with the database plus the planted
    PFMs (so p-values use a full-size target set); a planted motif is *recovered* when some passing
    filter matches it at q < ``q_threshold``; a filter matching no planted motif is *unmatched*;
    extra filters matching the same planted motif on the same strand count as *redundant* (a
    filter for the motif and one for its reverse complement are one motif, as in the paper). Instances: precision
    and recall with :func:`argminn_plugin.instances.score_instances`, in genomic coordinates when both
    tables have them (``chrom, chrom_start, chrom_end`` for calls and ``chrom, start, end`` for the
    truth, restricted to ``windows`` when given), else in ``example_idx`` coordinates.

    Parameters
    ----------
    readout: Readout
        From :func:`run_readout`.
    truth: pandas.DataFrame
        Planted instances (e.g. ``{prefix}.instances.tsv`` of ``argminn simulate``).
    planted: dict
        ``{key: PFM (4, w)}`` of the planted motifs (e.g. read from ``{prefix}.motifs.meme``).

    Returns
    -------
    dict
        JSON-ready; ``instance_precision`` is None when there are no calls and
        ``instance_recall`` None when there is no true instance.
    """
    from memelite import tomtom
    from memelite.io import read_meme

    from .instances import score_instances
    from .motifs import benjamini_hochberg, read_motif_database

    db = database if isinstance(database, dict) else read_motif_database(database)
    targets = {**db, **{f"planted {k}": v for k, v in planted.items()}}
    table = readout.motifs
    passing = table[table["passes"]]
    matches = {k: [] for k in planted}
    match_strands: dict[tuple[int, str], str] = {}
    unmatched = []
    q_best = {}
    if len(passing):
        names = list(targets)
        # the PFMs are re-read from the MEME file run_readout wrote, so the exported motifs are scored
        exported = read_meme(readout.files["motifs_meme"])
        queries = [exported[f"filter_{int(f)}"] for f in passing["filter"]]
        p, _, _, _, strands = tomtom(queries, [targets[n] for n in names])
        q = benjamini_hochberg(p)
        for i, f in enumerate(passing["filter"]):
            hit = False
            for key in planted:
                qk = float(q[i, names.index(f"planted {key}")])
                q_best[(int(f), key)] = qk
                if qk < q_threshold:
                    matches[key].append(int(f))
                    match_strands[(int(f), key)] = "-" if strands[i, names.index(f"planted {key}")] == 1 else "+"
                    hit = True
            if not hit:
                unmatched.append(int(f))
    calls = readout.instances
    if "chrom" in calls.columns and {"chrom", "start", "end"} <= set(truth.columns):
        true = truth
        if windows is not None:
            keep = []
            for row in true.itertuples():
                w = windows[(windows["chrom"] == row.chrom) & (windows["start"] <= row.start)
                            & (windows["end"] >= row.end)]
                keep.append(len(w) > 0)
            true = true[keep]
        codes = {c: i for i, c in enumerate(sorted(set(calls["chrom"]) | set(true["chrom"])))}
        c = pd.DataFrame({"example_idx": calls["chrom"].map(codes), "start": calls["chrom_start"],
                          "end": calls["chrom_end"]})
        t = pd.DataFrame({"example_idx": true["chrom"].map(codes), "start": true["start"], "end": true["end"]})
    else:
        c, t = calls, truth
    scores = score_instances(c, t)
    return {
        "planted_motifs": sorted(planted),
        "recovered": sorted(k for k, v in matches.items() if v),
        "missed": sorted(k for k, v in matches.items() if not v),
        "filters_per_planted_motif": {k: v for k, v in matches.items()},
        # A motif and its reverse complement in two filters is how ARGMINN represents one motif (the
        # paper draws each motif with its reverse complement); only extra filters on the same strand
        # are redundant.
        "n_redundant": int(sum(
            max(0, sum(match_strands[(f, k)] == strand for f in v) - 1)
            for k, v in matches.items() for strand in "+-"
        )),
        "match_strands": {f"filter_{f}~{k}": s for (f, k), s in match_strands.items()},
        "n_passing_filters": int(len(passing)),
        "unmatched_filters": unmatched,
        "best_q": {f"filter_{f}~{k}": v for (f, k), v in q_best.items()},
        # None, not NaN, when undefined (no calls / no true instance): the dict is written as strict JSON
        "instance_precision": None if math.isnan(scores.precision) else scores.precision,
        "instance_recall": None if math.isnan(scores.recall) else scores.recall,
        "n_calls": scores.n_calls,
        "n_true_instances": scores.n_true,
    }
