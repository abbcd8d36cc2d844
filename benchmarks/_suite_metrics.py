"""Scoring, aggregation, target checks and markdown of the benchmark suite (``benchmarks/suite.py``).

Pure functions on plain Python data (records are JSON-ready dicts), so that they can be tested on
tiny inputs without training anything (``tests/test_benchmark_suite.py``).

A *record* is one (dataset, seed, method)::

    {"dataset": "single/iid", "seed": 0, "method": "argminn",
     "performance": {"auroc": .., "auprc": .., "accuracy": ..},
     "motifs": {"n_motifs", "n_passing", "n_planted", "n_recovered", "n_redundant", "n_unmatched",
                "interpretability", "recovered", "missed", "unmatched", ...},
     "instances": {source: {"n_calls", "n_true", "precision", "recall", "f1"}},
     "timing": {"train_wall_s", "train_cpu_s", "train_peak_mb", "readout_wall_s", ...},
     "n_parameters": ..}

Numbers that are undefined (no call, no true instance) are ``None`` and are left out of means.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable

import numpy as np

#: Methods in display order, with their labels.
METHOD_LABELS = {
    "argminn": "ARGMINN",
    "argminn_fourier": "ARGMINN + Fourier prior",
    "cnn_filters": "CNN, first-layer filters",
    "cnn_deeplift_modisco": "CNN + DeepLIFT-SHAP + MoDISco",
    "explainn": "ExplaiNN",
}
ARGMINN_METHODS = ("argminn", "argminn_fourier")
PEER_METHODS = ("cnn_filters", "cnn_deeplift_modisco", "explainn")

#: Instance sources, with labels.
SOURCE_LABELS = {
    "attention": "attention calls (§7.2)",
    "fimo": "FIMO of the method's motifs",
    "seqlets": "DeepLIFT-SHAP seqlets",
    "fimo_modisco": "FIMO of MoDISco motifs",
}

#: Targets of issue 6 §4 (simulated grammars), checked per seed for ARGMINN.
PRECISION_BAR = 0.95
RECALL_BAR = 0.90
AUROC_TOLERANCE = 0.01


def f1_score(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean of precision and recall; None when either is undefined, 0 when both are 0."""
    if precision is None or recall is None:
        return None
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _clean(value: Any) -> Any:
    """NaN -> None and numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    return value


clean = _clean


def interpretability_score(best_q: Iterable[float | None]) -> float | None:
    """Mean over motifs of -log10(best q against the true motifs), an unmatched motif as q = 1.

    ``argminn.md`` §7.1 ("interpretability score"). ``best_q`` has one entry per reported motif
    (None or NaN: no match, counted as q = 1). No motif at all gives 0 (nothing interpretable).
    """
    values = []
    for q in best_q:
        q = 1.0 if q is None or (isinstance(q, float) and math.isnan(q)) else float(q)
        values.append(-math.log10(min(1.0, max(q, 1e-300))))
    return float(np.mean(values)) if values else 0.0


def flatten(record: dict) -> dict[str, float]:
    """The numeric leaves of a record as ``{"group.key[.sub]": value}`` (booleans as 0/1, None kept)."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, bool):
            out[prefix] = float(value)
        elif value is None or isinstance(value, (int, float)):
            out[prefix] = value
    for group in ("performance", "motifs", "instances", "timing", "real"):
        if group in record:
            walk(group, record[group])
    if "n_parameters" in record:
        out["n_parameters"] = record["n_parameters"]
    return out


def summarize(values: Iterable[float | None]) -> dict[str, Any]:
    """Mean, sample standard deviation (ddof = 1), min, max and n of the defined values."""
    defined = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not defined:
        return {"mean": None, "sd": None, "min": None, "max": None, "n": 0}
    arr = np.asarray(defined)
    return {"mean": float(arr.mean()), "sd": float(arr.std(ddof=1)) if len(arr) > 1 else None,
            "min": float(arr.min()), "max": float(arr.max()), "n": int(len(arr))}


def aggregate(records: list[dict]) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """``{dataset: {method: {metric: summarize(values over seeds)}}}`` over every numeric leaf."""
    values: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for record in records:
        for metric, value in flatten(record).items():
            values[record["dataset"]][record["method"]][metric].append(value)
    return {d: {m: {k: summarize(v) for k, v in metrics.items()} for m, metrics in methods.items()}
            for d, methods in values.items()}


def best_instance_source(record: dict) -> tuple[str | None, dict | None]:
    """The instance source of a record with the highest F1 (ties: the first in SOURCE_LABELS order)."""
    best, best_f1 = None, -1.0
    sources = record.get("instances") or {}
    for name in sorted(sources, key=lambda s: list(SOURCE_LABELS).index(s) if s in SOURCE_LABELS else 99):
        f1 = sources[name].get("f1")
        if f1 is not None and f1 > best_f1:
            best, best_f1 = name, f1
    return (best, sources[best]) if best is not None else (None, None)


def check_targets(records: list[dict], *, method: str = "argminn", peers: Iterable[str] = PEER_METHODS,
                  precision_bar: float = PRECISION_BAR, recall_bar: float = RECALL_BAR,
                  auroc_tolerance: float = AUROC_TOLERANCE) -> list[dict]:
    """The issue-6 targets for ``method`` on each (dataset, seed) of simulated data.

    Targets, per seed:

    * ``motifs``: every planted motif recovered, no redundant and no unmatched motif;
    * ``instances``: attention-call precision >= ``precision_bar`` and recall >= ``recall_bar``;
    * ``instances_vs_peers``: attention-call F1 >= the F1 of the best peer instance set (the
      highest F1 over every instance source of every peer method in the same run);
    * ``auroc``: test auROC >= the best peer's auROC - ``auroc_tolerance``.

    Returns one dict per (dataset, seed): ``dataset, seed`` and per target ``{"met": bool or None,
    "value": .., "bar": .., "detail": str}`` (``met`` None when it cannot be evaluated).
    """
    peers = tuple(peers)
    by_run: dict = defaultdict(dict)
    for r in records:
        by_run[(r["dataset"], r["seed"])][r["method"]] = r
    out = []
    for (dataset, seed), methods in sorted(by_run.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        own = methods.get(method)
        if own is None or not own.get("simulated", False):
            continue
        row: dict[str, Any] = {"dataset": dataset, "seed": seed}
        m = own.get("motifs") or {}
        if m.get("n_planted") is not None:
            met = (m["n_recovered"] == m["n_planted"] and m["n_redundant"] == 0 and m["n_unmatched"] == 0)
            detail = f"{m['n_recovered']}/{m['n_planted']} recovered, {m['n_redundant']} redundant, " \
                     f"{m['n_unmatched']} unmatched"
            if m.get("missed"):
                detail += f" (missed {', '.join(m['missed'])})"
            row["motifs"] = {"met": bool(met), "value": detail, "bar": "all recovered, 0 redundant, 0 unmatched",
                             "detail": detail}
        calls = (own.get("instances") or {}).get("attention")
        if calls is not None:
            p, r = calls.get("precision"), calls.get("recall")
            met = None if p is None or r is None else bool(p >= precision_bar and r >= recall_bar)
            if p is None and r is not None:  # no call at all: precision undefined, the target is missed
                met = False
            row["instances"] = {"met": met, "value": {"precision": p, "recall": r},
                                "bar": {"precision": precision_bar, "recall": recall_bar},
                                "detail": f"P {_fmt(p)} / R {_fmt(r)}"}
            best_peer, best_src, best_vals = None, None, None
            for peer in peers:
                if peer not in methods:
                    continue
                src, vals = best_instance_source(methods[peer])
                if vals is not None and (best_vals is None or vals["f1"] > best_vals["f1"]):
                    best_peer, best_src, best_vals = peer, src, vals
            own_f1 = f1_score(p, r) if p is not None else (0.0 if r is not None else None)
            if best_vals is None or own_f1 is None:
                row["instances_vs_peers"] = {"met": None, "value": own_f1, "bar": None, "detail": "no peer calls"}
            else:
                row["instances_vs_peers"] = {
                    "met": bool(own_f1 >= best_vals["f1"]), "value": own_f1, "bar": best_vals["f1"],
                    "detail": f"F1 {_fmt(own_f1)} vs {best_peer}/{best_src} F1 {_fmt(best_vals['f1'])} "
                              f"(P {_fmt(best_vals['precision'])} / R {_fmt(best_vals['recall'])})",
                    "best_peer": f"{best_peer}/{best_src}"}
        auroc = (own.get("performance") or {}).get("auroc")
        peer_aurocs = {p: (methods[p].get("performance") or {}).get("auroc") for p in peers if p in methods}
        peer_aurocs = {k: v for k, v in peer_aurocs.items() if v is not None}
        if auroc is not None and peer_aurocs:
            best = max(peer_aurocs, key=peer_aurocs.get)
            row["auroc"] = {"met": bool(auroc >= peer_aurocs[best] - auroc_tolerance), "value": auroc,
                            "bar": peer_aurocs[best] - auroc_tolerance,
                            "detail": f"{_fmt(auroc)} vs {best} {_fmt(peer_aurocs[best])}"}
        out.append(row)
    return out


TARGETS = ("motifs", "instances", "instances_vs_peers", "auroc")
TARGET_LABELS = {
    "motifs": "every planted motif, 0 redundant, 0 unmatched",
    "instances": f"attention calls P >= {PRECISION_BAR}, R >= {RECALL_BAR}",
    "instances_vs_peers": "attention-call F1 >= best peer instance F1",
    "auroc": f"auROC >= best peer - {AUROC_TOLERANCE}",
}


def target_summary(checks: list[dict]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{dataset: {target: {"met": k, "n": n, "verdict": "met" | "missed" | "n/a"}}}`` over seeds.

    A target is "met" for a dataset only when it is met in every evaluated seed.
    """
    out: dict = defaultdict(dict)
    for dataset in sorted({c["dataset"] for c in checks}):
        rows = [c for c in checks if c["dataset"] == dataset]
        for target in TARGETS:
            evaluated = [c[target]["met"] for c in rows if target in c and c[target]["met"] is not None]
            k = int(sum(evaluated))
            verdict = "n/a" if not evaluated else ("met" if k == len(evaluated) else "missed")
            out[dataset][target] = {"met": k, "n": len(evaluated), "verdict": verdict}
    return dict(out)


# --------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def mean_sd(stat: dict | None, digits: int = 3) -> str:
    """``"mean ± sd"`` (``"mean"`` for one value, ``"–"`` for none)."""
    if not stat or stat.get("mean") is None:
        return "–"
    text = f"{stat['mean']:.{digits}f}"
    if stat.get("sd") is not None:
        text += f" ± {stat['sd']:.{digits}f}"
    return text


def _table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> list[str]:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"] + [
        "| " + " | ".join(r) + " |" for r in rows]


def dataset_table(dataset: str, agg: dict, records: list[dict], simulated: bool) -> list[str]:
    """Headline table of one dataset: one row per method, mean ± sd over seeds."""
    methods = [m for m in METHOD_LABELS if m in agg] + [m for m in agg if m not in METHOD_LABELS]
    lines: list[str] = []
    if simulated:
        header = ["method", "recovered / planted", "redundant", "unmatched", "interp. score",
                  "instances (best source)", "precision", "recall", "auROC", "auPRC", "train s (CPU s)",
                  "read-out s (CPU s)", "peak MB train / read-out (process RSS)"]
    else:
        header = ["method", "passing motifs", "JASPAR-matched", "relevant family", "interp. score",
                  "relevant TFs found", "auROC", "auPRC", "accuracy", "train s (CPU s)", "read-out s (CPU s)",
                  "peak MB train / read-out (process RSS)"]
    rows = []
    for method in methods:
        a = agg[method]
        get = a.get
        def memory(phase: str) -> str:
            text = mean_sd(get(f"timing.{phase}_peak_mb"), 0)
            if get(f"timing.{phase}_peak_rss_mb"):
                text += f" ({_short(get(f'timing.{phase}_peak_rss_mb'), 0)})"
            return text

        timing = (f"{mean_sd(get('timing.train_wall_s'), 1)} ({mean_sd(get('timing.train_cpu_s'), 1)})",
                  f"{mean_sd(get('timing.readout_wall_s'), 1)} ({mean_sd(get('timing.readout_cpu_s'), 1)})",
                  f"{memory('train')} / {memory('readout')}")
        label = METHOD_LABELS.get(method, method)
        if simulated:
            planted = get("motifs.n_planted", {}).get("mean")
            recovered = f"{mean_sd(get('motifs.n_recovered'), 2)} / {_fmt(planted, 0) if planted is not None else '–'}"
            # the instance source with the best mean F1 over seeds
            sources = sorted({k.split(".")[1] for k in a if k.startswith("instances.")})
            best = max(sources, key=lambda s: (a.get(f"instances.{s}.f1", {}).get("mean") or -1), default=None)
            inst = [SOURCE_LABELS.get(best, best) if best else "–",
                    mean_sd(a.get(f"instances.{best}.precision")) if best else "–",
                    mean_sd(a.get(f"instances.{best}.recall")) if best else "–"]
            rows.append([label, recovered, mean_sd(get("motifs.n_redundant"), 2), mean_sd(get("motifs.n_unmatched"), 2),
                         mean_sd(get("motifs.interpretability"), 2), *inst, mean_sd(get("performance.auroc")),
                         mean_sd(get("performance.auprc")), *timing])
        else:
            found = sorted({tf for r in records if r["method"] == method for tf in (r.get("real") or {}).get(
                "relevant_found", [])})
            rows.append([label, mean_sd(get("real.n_passing"), 1), mean_sd(get("real.n_jaspar_matched"), 1),
                         mean_sd(get("real.n_relevant"), 1), mean_sd(get("real.interpretability"), 2),
                         ", ".join(found) or "–", mean_sd(get("performance.auroc")), mean_sd(get("performance.auprc")),
                         mean_sd(get("performance.accuracy")), *timing])
    lines += _table(header, rows)
    return lines


def instance_table(agg: dict) -> list[str]:
    """Every instance source of every method: calls, precision, recall, F1 (mean ± sd)."""
    rows = []
    for method in [m for m in METHOD_LABELS if m in agg] + [m for m in agg if m not in METHOD_LABELS]:
        a = agg[method]
        for s in sorted({k.split(".")[1] for k in a if k.startswith("instances.")}):
            rows.append([METHOD_LABELS.get(method, method), SOURCE_LABELS.get(s, s),
                         mean_sd(a.get(f"instances.{s}.n_calls"), 0), mean_sd(a.get(f"instances.{s}.n_true"), 0),
                         mean_sd(a.get(f"instances.{s}.precision")), mean_sd(a.get(f"instances.{s}.recall")),
                         mean_sd(a.get(f"instances.{s}.f1"))])
    if not rows:
        return []
    return _table(["method", "instances", "calls", "true", "precision", "recall", "F1"], rows,
                  ["l", "l", "r", "r", "r", "r", "r"])


def target_table(dataset: str, checks: list[dict], summary: dict, method_label: str = "ARGMINN") -> list[str]:
    """Targets of one dataset: per target the verdict, seeds met and the per-seed numbers."""
    rows_for = [c for c in checks if c["dataset"] == dataset]
    if not rows_for:
        return []
    rows = []
    for target in TARGETS:
        s = summary.get(dataset, {}).get(target)
        if not s or s["n"] == 0:
            continue
        per_seed = "; ".join(f"seed {c['seed']}: {c[target]['detail']}" for c in rows_for if target in c)
        verdict = "**met**" if s["verdict"] == "met" else f"**missed** ({s['n'] - s['met']} of {s['n']} seeds)"
        rows.append([TARGET_LABELS[target], verdict, f"{s['met']}/{s['n']}", per_seed])
    return _table([f"target ({method_label})", "verdict", "seeds met", "numbers"], rows, ["l", "l", "r", "l"])


def overview_table(summary: dict, datasets: list[str]) -> list[str]:
    """One row per simulated dataset, one column per target: "met k/n" or "missed k/n"."""
    rows = []
    for d in datasets:
        if d not in summary:
            continue
        cells = []
        for t in TARGETS:
            s = summary[d][t]
            cells.append("n/a" if s["verdict"] == "n/a" else f"{s['verdict']} {s['met']}/{s['n']}")
        rows.append([d, *cells])
    return _table(["dataset", *[TARGET_LABELS[t] for t in TARGETS]], rows, ["l"] * (len(TARGETS) + 1))


def _short(stat: dict | None, digits: int) -> str:
    return "–" if not stat or stat.get("mean") is None else f"{stat['mean']:.{digits}f}"


def headline_tables(agg: dict, datasets: list[str]) -> list[str]:
    """Cross-data-set headline: motifs (recovered/planted, redundant, unmatched) and instances + auROC
    (each method's best instance source by mean F1), one column per method; means over seeds."""
    methods = [m for m in METHOD_LABELS if any(m in agg.get(d, {}) for d in datasets)]
    motif_rows, inst_rows = [], []
    for d in datasets:
        if d not in agg:
            continue
        mrow, irow = [d], [d]
        for m in methods:
            a = agg[d].get(m)
            if a is None:
                mrow.append("–")
                irow.append("–")
                continue
            mrow.append(f"{_short(a.get('motifs.n_recovered'), 1)}/{_short(a.get('motifs.n_planted'), 0)}, "
                        f"{_short(a.get('motifs.n_redundant'), 1)}, {_short(a.get('motifs.n_unmatched'), 1)}")
            sources = sorted({k.split(".")[1] for k in a if k.startswith("instances.")})
            best = max(sources, key=lambda s: (a.get(f"instances.{s}.f1", {}).get("mean") or -1), default=None)
            inst = (f"{_short(a.get(f'instances.{best}.precision'), 2)} / {_short(a.get(f'instances.{best}.recall'), 2)}"
                    if best else "–")
            irow.append(f"{inst} · {_short(a.get('performance.auroc'), 3)}")
        motif_rows.append(mrow)
        inst_rows.append(irow)
    labels = [METHOD_LABELS[m] for m in methods]
    return (["Motifs: recovered / planted, redundant, unmatched (mean over seeds).", ""]
            + _table(["dataset", *labels], motif_rows, ["l"] * (len(labels) + 1))
            + ["", "Instances: precision / recall of the method's best instance source (by mean F1) · test auROC.", ""]
            + _table(["dataset", *labels], inst_rows, ["l"] * (len(labels) + 1)))
