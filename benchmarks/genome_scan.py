"""Genome-scale read-out benchmark: peak memory and throughput of :func:`argminn_plugin.scan.scan_genome`.

The question (issue 7 §4): does scanning a genome stream, i.e. does peak memory stay flat as the
number of windows grows from 10^4 to 10^6, and how many windows per second does a CPU scan?

Design:

* Genome: synthetic. One random block of ``CHROM_WINDOWS`` windows (i.i.d. uniform bases, seed 0)
  is written as every chromosome, cut to the length that gives the requested number of windows
  exactly (``500 + 491 * (k - 1)`` bp for ``k`` windows at the default stride of a
  ``filter_width=10`` model), 60 bp per line. Chromosomes repeat the same sequence; the scan reads
  each from its own file offset, so this costs nothing in realism for memory and speed. The FASTA
  and its ``.fai`` are built before any timing and kept in ``--workdir`` for later runs.
* Models: ARGMINN with random weights (the cost of a forward pass does not depend on the weights):
  ``published`` (the defaults: 8 filters of width 10, 4 attention layers of 4 heads) and
  ``one_layer`` (the same with one attention layer, what the embedded pipeline trains). With random
  weights and the default ``attention_threshold=0.9`` few instances are called, so the numbers are
  those of reading, encoding, the forward pass and writing the per-window predictions BED.
  ``calls`` adds a tiny model with ``attention_threshold=0.0025``, which calls tens of instances per
  window, to show that writing millions of BED lines keeps memory flat too.
* Every (model, size, threads) case runs in a fresh subprocess. After imports and model set-up the
  resident set (``VmRSS``) is read as the baseline; ``scan_genome`` then runs with its defaults
  (``batch_size=256``, statistics on a 1,024-window sample, both BED outputs); the kernel's
  high-water mark ``VmHWM`` is the peak. Reported: peak RSS, its rise over the baseline, wall time
  of the whole scan (sampling included) and windows per second.
* Threads: ``torch.set_num_threads(--threads)`` (default 1). On a shared 2-core machine two
  threads are far slower than one (OpenMP threads spin while another process holds the core);
  ``--compare-threads 2`` adds one case to show it.

Usage::

    PYTHONPATH=. python benchmarks/genome_scan.py                       # 10^4, 10^5, 10^6 windows
    PYTHONPATH=. python benchmarks/genome_scan.py --sizes 10000 --quick # smoke run

Results go to ``<out>/genome_scan.json`` and ``<out>/genome_scan.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

WINDOW = 500
FILTER_WIDTH = 10
STRIDE = WINDOW - FILTER_WIDTH + 1
CHROM_WINDOWS = 20_000  # windows per full chromosome (9,820,009 bp)
LINE = 60

MODELS = {
    "published": {"config": {}, "attention_threshold": 0.9},
    "one_layer": {"config": {"n_attention_layers": 1}, "attention_threshold": 0.9},
    "calls": {"config": {"n_filters": 2, "n_attention_layers": 1, "n_heads": 1, "pos_enc_dim": 4, "token_dim": 4,
                         "stream_dim": 8}, "attention_threshold": 0.0025},
}


# ---------------------------------------------------------------------------------------------
# Genome
# ---------------------------------------------------------------------------------------------


def chrom_length(n_windows: int) -> int:
    return WINDOW + STRIDE * (n_windows - 1)


def make_genome(workdir: Path, n_windows: int) -> Path:
    """Write (once) a FASTA with exactly ``n_windows`` scan windows, and its .fai."""
    import numpy as np
    import pyfaidx

    path = workdir / f"genome_{n_windows}.fa"
    if path.exists() and Path(f"{path}.fai").exists():
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    full = chrom_length(CHROM_WINDOWS)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    block = letters[np.random.default_rng(0).integers(0, 4, full)]
    n_lines = -(-full // LINE)
    padded = np.full(n_lines * LINE, ord("\n"), dtype=np.uint8)
    padded[:full] = block
    text = np.concatenate([padded.reshape(n_lines, LINE), np.full((n_lines, 1), ord("\n"), np.uint8)], axis=1)
    text = text.tobytes()

    def formatted(length: int) -> bytes:
        whole, rest = divmod(length, LINE)
        return text[: whole * (LINE + 1)] + (block[whole * LINE : length].tobytes() + b"\n" if rest else b"")

    counts = [CHROM_WINDOWS] * (n_windows // CHROM_WINDOWS)
    if n_windows % CHROM_WINDOWS:
        counts.append(n_windows % CHROM_WINDOWS)
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        for i, count in enumerate(counts, start=1):
            handle.write(f">chr{i}\n".encode())
            handle.write(formatted(chrom_length(count)))
    os.replace(partial, path)
    pyfaidx.Faidx(str(path)).close()
    return path


# ---------------------------------------------------------------------------------------------
# Worker (one case per process)
# ---------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else -1


def worker(case: dict) -> dict:
    import torch

    from argminn_plugin import ARGMINN
    from argminn_plugin.scan import scan_genome

    torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    spec = MODELS[case["model"]]
    model = ARGMINN(filter_width=FILTER_WIDTH, verbose=False, **spec["config"]).eval()
    out = Path(case["workdir"])
    baseline = _status_kb("VmRSS")
    tic = time.perf_counter()
    summary = scan_genome(model, case["fasta"], window=WINDOW, device="cpu",
                          attention_threshold=spec["attention_threshold"],
                          out_bed=out / f"{case['name']}.bed", predictions_bed=out / f"{case['name']}.pred.bed")
    seconds = time.perf_counter() - tic
    peak = _status_kb("VmHWM")
    return {
        **case,
        "n_windows": summary.n_windows,
        "n_calls": summary.n_calls,
        "seconds": seconds,
        "windows_per_second": summary.n_windows / seconds,
        "baseline_rss_mb": baseline / 1024,
        "peak_rss_mb": peak / 1024,
        "rise_mb": (peak - baseline) / 1024,
        "bed_mb": (out / f"{case['name']}.bed").stat().st_size / 2**20,
        "predictions_mb": (out / f"{case['name']}.pred.bed").stat().st_size / 2**20,
    }


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def machine(threads: int) -> dict:
    import torch

    try:
        cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M).group(1)
    except (OSError, AttributeError):
        cpu = platform.processor()
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {
        "cpu_model": cpu, "nproc": os.cpu_count(), "threads": threads, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "git_commit": commit,
        "git_worktree_modified": dirty, "cuda": torch.cuda.is_available(),
        "load_average_at_start": os.getloadavg(),
    }


def run_case(case: dict) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(case["threads"]), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(case)], env=env, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"case {case['name']} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Genome scan: peak memory and throughput",
        "",
        f"- machine: {m['cpu_model']}, {m['nproc']} cores (shared with other users; load average at start "
        f"{', '.join(f'{x:.1f}' for x in m['load_average_at_start'])}), {m['platform']}",
        f"- torch {m['torch']}, Python {m['python']}, {m['threads']} thread(s) unless stated, CPU only "
        f"(CUDA available: {m['cuda']})",
        f"- git {m['git_commit']}" + (" (working tree has uncommitted changes)" if m["git_worktree_modified"] else ""),
        f"- command: `{report['command']}`",
        "",
        "Windows of 500 bp at stride 491 over a synthetic genome; random-weight models; `scan_genome` defaults "
        "(batch 256, statistics on a 1,024-window sample, calls BED and predictions BED written). Peak = VmHWM of "
        "the process; rise = peak minus the resident set just before the scan (after imports and model set-up).",
        "",
        "| model | threads | windows | calls | seconds | windows/s | peak RSS (MB) | rise (MB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['model']} | {r['threads']} | {r['n_windows']:,} | {r['n_calls']:,} | {r['seconds']:.1f} | "
            f"{r['windows_per_second']:,.0f} | {r['peak_rss_mb']:.0f} | {r['rise_mb']:.1f} |"
        )
    if report["extrapolated"]:
        lines += ["", "Extrapolated (not measured):", ""]
        for e in report["extrapolated"]:
            lines.append(f"- {e}")
    lines += ["", "Memory trend, smallest to largest genome, per model:", ""]
    for model, trend in report["memory_trend"].items():
        lines.append(f"- {model}: {trend}")
    if report.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--models", nargs="+", default=["published", "one_layer", "calls"], choices=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare-threads", type=int, default=2, help="also run the smallest published case so")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "argminn_genome_scan")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--quick", action="store_true", help="10^3 windows, published model only")
    parser.add_argument("--note", action="append", default=[], help="a remark to print with the results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.quick:
        args.sizes, args.models = [1_000], ["published"]

    command = "PYTHONPATH=. python benchmarks/genome_scan.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"machine": machine(args.threads), "command": command.strip(),
              "results": [], "extrapolated": [], "memory_trend": {}, "notes": args.note}
    cases = []
    for size in sorted(args.sizes):
        fasta = make_genome(args.workdir, size)
        for model in args.models:
            cases.append({"model": model, "threads": args.threads, "size": size, "fasta": str(fasta)})
    if args.compare_threads and args.compare_threads != args.threads and "published" in args.models:
        size = min(args.sizes)
        cases.append({"model": "published", "threads": args.compare_threads, "size": size,
                      "fasta": str(make_genome(args.workdir, size))})
    for case in cases:
        case["name"] = f"{case['model']}_{case['size']}_t{case['threads']}"
        case["workdir"] = str(args.workdir)
        result = run_case(case)
        report["results"].append(result)
        print(f"{case['name']}: {result['n_windows']} windows, {result['seconds']:.1f} s, "
              f"{result['windows_per_second']:.0f} windows/s, peak {result['peak_rss_mb']:.0f} MB "
              f"(+{result['rise_mb']:.1f})", flush=True)
        for suffix in (".bed", ".pred.bed"):
            (args.workdir / f"{case['name']}{suffix}").unlink(missing_ok=True)

    for model in args.models:
        own = [r for r in report["results"] if r["model"] == model and r["threads"] == args.threads]
        if len(own) >= 2:
            small, large = own[0], own[-1]
            report["memory_trend"][model] = (
                f"{small['n_windows']:,} -> {large['n_windows']:,} windows: rise {small['rise_mb']:.1f} -> "
                f"{large['rise_mb']:.1f} MB, peak {small['peak_rss_mb']:.0f} -> {large['peak_rss_mb']:.0f} MB"
            )
        if own and max(r["n_windows"] for r in own) < 1_000_000:
            best = own[-1]
            report["extrapolated"].append(
                f"{model}: 10^6 windows would take about {1_000_000 / best['windows_per_second'] / 60:.0f} min at "
                f"the {best['n_windows']:,}-window rate; peak memory is expected to stay at about "
                f"{best['peak_rss_mb']:.0f} MB (flat trend above)"
            )
    report["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "genome_scan.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "genome_scan.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
