"""One self-contained HTML report of :func:`argminn_plugin.compare.side_by_side`.

The page needs no network: figures are PNGs embedded as ``data:image/png;base64`` URIs, the CSS is
inline and there is no JavaScript. It shows

1. per ARGMINN motif (quality-passing filter): its logo, the best-matching MoDISco pattern from
   the ARGMINN attributions and from the baseline's, and its best database (JASPAR) match, each
   with the TOMTOM q-value;
2. the MoDISco patterns of each model with their database matches;
3. the tables (predictive performance of both models when ``summary["performance"]`` holds it,
   motifs, scores against the truth, instance overlaps, best cross-matches);
4. example sequences: the summed projected DeepLIFT-SHAP attributions of both models, with every
   instance set (ARGMINN calls, seqlets, FIMO hits, planted truth) drawn as tracks beneath.

Logos show the PFM scaled by its per-position information content (bits), drawn with
``tangermeme.plot.plot_logo``.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .io import atomic_write
from .motifs import information_content

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;font-size:0.8em;margin:0.5em 0}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f0f0f0}.logo img{height:70px}.muted{color:#888}.example img{max-width:100%}
"""

_SOURCE_COLOURS = {"truth": "#333333", "argminn_calls": "#d62728", "seqlets_argminn": "#ff9896",
                   "fimo_modisco_argminn": "#9467bd", "seqlets_baseline": "#1f77b4",
                   "fimo_modisco_baseline": "#17becf", "fimo_argminn_pfms": "#ff7f0e"}


def _png(fig: Figure, dpi: int = 80) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def logo_uri(pfm: np.ndarray, title: str | None = None) -> str:
    """An information-content logo of ``pfm`` (4, w) as a PNG data URI."""
    from tangermeme.plot import plot_logo

    pfm = np.asarray(pfm, dtype=float)
    fig = Figure(figsize=(max(1.5, 0.22 * pfm.shape[1]), 1.1))
    ax = fig.add_subplot(1, 1, 1)
    plot_logo(pfm * information_content(pfm)[None, :], ax=ax)
    ax.set_ylim(0, 2)
    ax.set_xticks([])
    ax.set_yticks([0, 2])
    if title:
        ax.set_title(title, fontsize=7)
    return _png(fig)


def _img(uri: str | None) -> str:
    return f'<img src="{uri}" alt="logo">' if uri else '<span class="muted">none</span>'


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, max_rows: int = 200) -> str:
    if frame is None or len(frame) == 0:
        return '<p class="muted">(empty)</p>'
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
                   for row in shown.itertuples(index=False))
    more = f'<p class="muted">{len(frame) - max_rows} more rows in the TSV.</p>' if len(frame) > max_rows else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _best_match(result, query_method: str, query: str, target_method: str):
    m = result.matches
    if m is None or len(m) == 0:
        return None
    rows = m[(m["query_method"] == query_method) & (m["query"] == query) & (m["target_method"] == target_method)]
    if len(rows) == 0:
        return None
    return rows.sort_values("p_value").iloc[0]


def _jaspar_cell(result, method: str, motif: str) -> str:
    rows = result.motifs[(result.motifs["method"] == method) & (result.motifs["motif"] == motif)]
    if len(rows) == 0 or rows.iloc[0]["jaspar_match"] is None or pd.isna(rows.iloc[0]["jaspar_match"]):
        return '<span class="muted">none</span>'
    row = rows.iloc[0]
    pfm = result.database.get(row["jaspar_match"])
    if pfm is not None and row["jaspar_strand"] == "-":
        pfm = pfm[::-1, ::-1]
    label = f"{html.escape(str(row['jaspar_match']))}<br>q = {_fmt(row['jaspar_q'])}"
    return (_img(logo_uri(pfm)) + "<br>" if pfm is not None else "") + label


def _match_cell(result, motif: str, target_method: str) -> str:
    best = _best_match(result, "argminn", motif, target_method)
    if best is None:
        return '<span class="muted">no patterns</span>'
    pfm = result.pfms[target_method][best["target"]]
    if best["strand"] == "-":
        pfm = pfm[::-1, ::-1]
    return f"{_img(logo_uri(pfm))}<br>{html.escape(best['target'])}<br>q = {_fmt(best['q_value'])}"


def _example_figure(result, example: int) -> str:
    X = result.X
    length = X.shape[2]
    sources = (["truth"] if result.truth is not None else []) + list(dict.fromkeys(result.instances["source"]))
    fig = Figure(figsize=(10, 2.2 + 0.22 * len(sources)))
    heights = [1.0] * len(result.attributions) + [0.25 * max(1, len(sources))]
    axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    axes = np.atleast_1d(axes)
    for ax, (label, attr) in zip(axes, result.attributions.items()):
        track = attr[example].sum(dim=0).float().numpy()
        ax.fill_between(np.arange(length), track, step="mid", color="#555555", linewidth=0)
        ax.set_ylabel(label, fontsize=7)
        ax.tick_params(labelsize=6)
    ax = axes[-1]
    for k, source in enumerate(sources):
        if source == "truth":
            frame = result.truth[result.truth["example_idx"] == example]
        else:
            frame = result.instances[(result.instances["source"] == source)
                                     & (result.instances["example_idx"] == example)]
        for s, e in zip(frame["start"], frame["end"]):
            ax.add_patch(_rect(int(s), k, int(e) - int(s), _SOURCE_COLOURS.get(source, "#7f7f7f")))
    ax.set_ylim(-0.5, len(sources) - 0.5)
    ax.set_yticks(range(len(sources)))
    ax.set_yticklabels(sources, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, length)
    ax.set_xlabel("position (bp)", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.suptitle(f"example {example}", fontsize=8)
    return _png(fig)


def _rect(start: int, row: int, width: int, colour: str):
    from matplotlib.patches import Rectangle

    return Rectangle((start, row - 0.35), width, 0.7, color=colour)


def _examples(result, n_examples: int) -> list[int]:
    counts = result.instances.groupby("example_idx").size() if len(result.instances) else pd.Series(dtype=int)
    if result.truth is not None and len(result.truth):
        counts = counts.add(result.truth.groupby("example_idx").size(), fill_value=0)
    order = list(counts.sort_values(ascending=False, kind="stable").index.astype(int))
    order += [i for i in range(result.X.shape[0]) if i not in order]
    return order[:n_examples]


def render_html(result, *, title: str = "ARGMINN vs DeepLIFT-SHAP / TF-MoDISco", n_examples: int = 3) -> str:
    """The report as one HTML string (see the module docstring)."""
    s = result.summary
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts.append(f"<p>{s['n_sequences']} sequences of {s['length']} bp; baseline {html.escape(s['baseline'])}; "
                 f"DeepLIFT-SHAP with {s['parameters']['n_shuffles']} dinucleotide shuffles; FIMO p &lt; "
                 f"{s['parameters']['fimo_threshold']}; matches at q &lt; {s['parameters']['q_threshold']}.</p>")
    if s.get("performance"):
        split = s.get("split", "held-out")
        perf = pd.DataFrame([{"model": model, **{k: v for k, v in numbers.items()}}
                             for model, numbers in s["performance"].items()])
        parts.append(f"<h2>Predictive performance ({html.escape(str(split))})</h2>" + _table(perf))
    counts = pd.DataFrame({"method": list(s["n_motifs"]), "motifs": list(s["n_motifs"].values()),
                           "passing quality filter": [s["n_passing"][m] for m in s["n_motifs"]]})
    parts.append("<h2>Motif counts</h2>" + _table(counts))
    parts.append("<h2>ARGMINN motifs with their MoDISco and database matches</h2>")
    argminn = result.motifs[(result.motifs["method"] == "argminn") & result.motifs["passes"]]
    if len(argminn) == 0:
        parts.append('<p class="muted">No ARGMINN filter passes the quality filter.</p>')
    else:
        rows = ["<table><tr><th>ARGMINN motif</th><th>MoDISco (ARGMINN attributions)</th>"
                "<th>MoDISco (baseline attributions)</th><th>database match</th></tr>"]
        for motif in argminn["motif"]:
            pfm = result.pfms["argminn"].get(motif)
            rows.append(f"<tr><td class='logo'>{_img(logo_uri(pfm) if pfm is not None else None)}<br>"
                        f"{html.escape(motif)}</td>"
                        f"<td class='logo'>{_match_cell(result, motif, 'modisco_argminn')}</td>"
                        f"<td class='logo'>{_match_cell(result, motif, 'modisco_baseline')}</td>"
                        f"<td class='logo'>{_jaspar_cell(result, 'argminn', motif)}</td></tr>")
        parts.append("".join(rows) + "</table>")
    for method, label in (("modisco_argminn", "MoDISco patterns from ARGMINN attributions"),
                          ("modisco_baseline", "MoDISco patterns from baseline attributions")):
        parts.append(f"<h2>{label}</h2>")
        table = result.motifs[result.motifs["method"] == method]
        if len(table) == 0:
            parts.append('<p class="muted">MoDISco found no pattern.</p>')
            continue
        rows = ["<table><tr><th>pattern</th><th>seqlets</th><th>total IC</th><th>passes</th>"
                "<th>database match</th></tr>"]
        for row in table.itertuples(index=False):
            pfm = result.pfms[method].get(row.motif)
            rows.append(f"<tr><td class='logo'>{_img(logo_uri(pfm) if pfm is not None else None)}<br>"
                        f"{html.escape(row.motif)}</td><td>{_fmt(row.n_seqlets)}</td><td>{_fmt(row.total_ic)}</td>"
                        f"<td>{_fmt(row.passes)}</td><td class='logo'>{_jaspar_cell(result, method, row.motif)}</td>"
                        "</tr>")
        parts.append("".join(rows) + "</table>")
    if len(result.motif_scores):
        parts.append("<h2>Motifs against the planted truth</h2>" + _table(result.motif_scores))
    if len(result.instance_scores):
        parts.append("<h2>Instances against the planted truth</h2>" + _table(result.instance_scores))
    parts.append("<h2>Instance-set overlaps</h2><p>An instance overlaps another set when it shares at least "
                 "half of the shorter interval with one of its instances.</p>" + _table(result.overlaps))
    best = result.matches[result.matches["is_best"]] if len(result.matches) else result.matches
    parts.append("<h2>Best cross-matches between motif sets (TOMTOM)</h2>" + _table(best))
    parts.append("<h2>All motifs</h2>" + _table(result.motifs))
    parts.append("<h2>Example sequences</h2><p>Summed projected DeepLIFT-SHAP attributions of each model; "
                 "instance sets beneath.</p>")
    for example in _examples(result, n_examples):
        parts.append(f"<div class='example'><img src='{_example_figure(result, example)}' "
                     f"alt='example {example}'></div>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_html_report(result, path: str | os.PathLike, *, title: str = "ARGMINN vs DeepLIFT-SHAP / TF-MoDISco",
                      n_examples: int = 3) -> Path:
    """Write the self-contained HTML report of ``result`` to ``path`` atomically; return the path."""
    text = render_html(result, title=title, n_examples=n_examples)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
