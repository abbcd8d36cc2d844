"""Collect the side-by-side results in ``benchmarks/results/`` into one markdown summary.

Reads ``side_by_side_{key}.compare.json`` and ``side_by_side_{key}.meta.json`` (written by
``side_by_side.py`` and ``side_by_side_real.py``) for every data set present and writes
``benchmarks/results/side_by_side_summary.md``: per method the motifs found and passing the quality
filter, their database (JASPAR 2024) matches, the planted motifs recovered / redundant / unmatched
(simulations), the test auROC of the model the method reads; per instance set the precision and
recall against the planted instances (simulations) or the overlap with every other set (real data).

    PYTHONPATH=. python benchmarks/side_by_side_summary.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATASETS = (
    ("single", "Simulated `single` grammar (one SPI1 instance per positive, 500 bp)"),
    ("mixture", "Simulated `mixture` grammar (TAL1::TCF3 and/or GATA1, 500 bp)"),
    ("oct4", "Real: Oct4 ChIP-seq peaks (`shared/data/chipseq/oct4_mafk/sample.fa`, 200 bp), dinucleotide-shuffled "
             "negatives"),
    ("gata3_default", "Real: the embedded default of `argminn compare` (ENCODE GATA3 SH-SY5Y, 101 bp), "
                      "dinucleotide-shuffled negatives"),
)
METHOD_LABELS = {"argminn": ("ARGMINN filters", "argminn"),
                 "modisco_argminn": ("MoDISco on ARGMINN's DeepLIFT-SHAP", "argminn"),
                 "modisco_baseline": ("MoDISco on the CNN's DeepLIFT-SHAP", "baseline")}
SOURCE_LABELS = {"argminn_calls": "ARGMINN calls (one forward pass)",
                 "seqlets_argminn": "DeepLIFT seqlets, ARGMINN",
                 "fimo_modisco_argminn": "FIMO of MoDISco(ARGMINN) patterns",
                 "seqlets_baseline": "DeepLIFT seqlets, CNN",
                 "fimo_modisco_baseline": "FIMO of MoDISco(CNN) patterns",
                 "fimo_argminn_pfms": "FIMO of ARGMINN's PFMs"}
SHORT = {"argminn_calls": "calls", "seqlets_argminn": "seq A", "fimo_modisco_argminn": "FIMO-M A",
         "seqlets_baseline": "seq CNN", "fimo_modisco_baseline": "FIMO-M CNN", "fimo_argminn_pfms": "FIMO A-PFM"}


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def qfmt(value) -> str:
    return "–" if value is None else f"{value:.1e}"


def performance_of(summary: dict, meta: dict) -> dict:
    return summary.get("performance") or meta.get("performance") or {}


def method_table(summary: dict, meta: dict, q_threshold: float) -> list[str]:
    performance = performance_of(summary, meta)
    truth = summary.get("truth", {}).get("motifs", {})
    header = "| method | test auROC of the model | motifs | passing | JASPAR match of passing motifs (q < 0.05) |"
    rule = "|---|---:|---:|---:|---|"
    if truth:
        header += " recovered | redundant | unmatched |"
        rule += "---|---:|---:|"
    lines = [header, rule]
    motifs = summary["tables"]["motifs"]
    for method, (label, model) in METHOD_LABELS.items():
        passing = [m for m in motifs if m["method"] == method and m["passes"]]
        matches = [f"{m['motif'].replace('pos_patterns.', '')}: {m['jaspar_match'].split(' ', 1)[1]} "
                   f"({qfmt(m['jaspar_q'])})"
                   for m in passing if m.get("jaspar_match") and m.get("jaspar_q") is not None
                   and m["jaspar_q"] < q_threshold]
        n_unannotated = len(passing) - len(matches)
        text = "; ".join(matches) if matches else "none"
        if matches and n_unannotated:
            text += f"; {n_unannotated} without a match"
        auroc = performance.get(model, {}).get("test_auroc")
        row = (f"| {label} | {fmt(auroc)} | {summary['n_motifs'][method]} | {summary['n_passing'][method]} | "
               f"{text} |")
        if truth:
            t = truth[method]
            row += f" {t['n_recovered']}/{t['n_planted'] if 'n_planted' in t else len(t['recovered']) + len(t['missed'])}"
            row += f" ({', '.join(t['recovered']) or 'none'}) | {t['n_redundant']} | {t['n_unmatched']} |"
        lines.append(row)
    return lines


def instance_table(summary: dict) -> list[str]:
    scores = summary["tables"].get("instance_scores") or []
    if scores:
        lines = ["| instance set | calls | precision | recall |", "|---|---:|---:|---:|"]
        for row in scores:
            lines.append(f"| {SOURCE_LABELS.get(row['source'], row['source'])} | {row['n_calls']} | "
                         f"{fmt(row['precision'])} | {fmt(row['recall'])} |")
        return lines
    overlaps = summary["tables"]["overlaps"]
    sources = list(summary["n_instances"])
    frac = {}
    for row in overlaps:
        frac[(row["source_a"], row["source_b"])] = row["frac_a_overlapping_b"]
        frac[(row["source_b"], row["source_a"])] = row["frac_b_overlapping_a"]
    lines = ["Fraction of the row's instances that overlap an instance of the column's set (sharing at least half "
             "of the shorter interval):", "",
             "| instance set | n | " + " | ".join(SHORT[s] for s in sources) + " |",
             "|---|---:|" + "---:|" * len(sources)]
    for a in sources:
        cells = ["·" if a == b else fmt(frac.get((a, b)), 2) for b in sources]
        lines.append(f"| {SOURCE_LABELS.get(a, a)} ({SHORT[a]}) | {summary['n_instances'][a]} | " + " | ".join(cells)
                     + " |")
    return lines


def cross_matches(summary: dict) -> str:
    pairs = summary.get("n_matched", {})
    keep = ["argminn->modisco_argminn", "argminn->modisco_baseline", "modisco_baseline->argminn",
            "modisco_argminn->modisco_baseline"]
    return ", ".join(f"{k.replace('->', ' → ')}: {pairs[k]}" for k in keep if k in pairs)


def section(key: str, title: str, summary: dict, meta: dict) -> list[str]:
    p = summary["parameters"]
    times = meta.get("times", {})
    time_text = ", ".join(f"{k.replace('_s', '')} {v / 60:.1f} min" for k, v in times.items() if v is not None)
    lines = [f"## {title}", "",
             f"{summary['n_sequences']} held-out positives of {summary['length']} bp "
             f"({summary.get('split', 'held-out')}); baseline {summary['baseline']}; DeepLIFT-SHAP with "
             f"{p['n_shuffles']} dinucleotide shuffles; ARGMINN calls at attention > {p['attention_threshold']}; FIMO "
             f"p < {p['fimo_threshold']}; TOMTOM q < {p['q_threshold']}. Files: "
             f"`side_by_side_{key}.compare.*` (HTML report: `side_by_side_{key}.compare.html`), "
             f"`side_by_side_{key}.meta.json`. "
             + (f"Times (package {meta.get('package_commit') or meta.get('commit', '?')}; load average "
                f"{', '.join(f'{x:.1f}' for x in _load(meta))}): {time_text}"
                + (f"; CPU {meta['cpu_s'] / 60:.1f} min." if meta.get("cpu_s") else ".") if time_text else ""), ""]
    lines += method_table(summary, meta, p["q_threshold"])
    lines += ["", f"Motifs matched across methods at q < {p['q_threshold']} (number of query motifs with a match): "
              f"{cross_matches(summary)}.", ""]
    lines += instance_table(summary)
    lines.append("")
    return lines


def _load(meta: dict) -> list[float]:
    load = meta.get("load_average")
    if isinstance(load, dict):
        return [load.get("before", [0])[0], load.get("after", [0])[0]]
    return list(load or [])[:1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    results = Path(args.results)
    lines = ["# ARGMINN side by side with DeepLIFT-SHAP + TF-MoDISco: summary", "",
             "Written by `benchmarks/side_by_side_summary.py` from the `side_by_side_*.compare.json` files here. "
             "Methods: ARGMINN's quality-passing filters (PFMs from activations, §7.1) and instance calls from one "
             "forward pass (§7.2); TF-MoDISco (modisco-lite) on DeepLIFT-SHAP hypothetical attributions of the same "
             "ARGMINN and of the paper's standard CNN trained on the same data. Quality filter: ARGMINN trimmed "
             "length ≥ 5 and mean IC ≥ 1; MoDISco trimmed length ≥ 5 and total IC ≥ 4. Database: JASPAR 2024 CORE "
             "vertebrates non-redundant. A planted motif is recovered when a passing motif matches it at q < 0.05; "
             "a motif and its reverse complement count once. How each was run: `benchmarks/README.md`.", ""]
    found = 0
    for key, title in DATASETS:
        path = results / f"side_by_side_{key}.compare.json"
        if not path.is_file():
            continue
        found += 1
        summary = json.loads(path.read_text())
        meta_path = results / f"side_by_side_{key}.meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        lines += section(key, title, summary, meta)
    if not found:
        raise SystemExit(f"no side_by_side_*.compare.json in {results}")
    out = results / "side_by_side_summary.md"
    out.write_text("\n".join(lines).rstrip() + "\n")
    print(out)


if __name__ == "__main__":
    main()
