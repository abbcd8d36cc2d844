"""The benchmark suite: ARGMINN against the methods users would otherwise pick, same data, same run.

For every data set and seed, every method is trained on identical training batches and validation
and test sets, motifs and instances are read off each model on the same held-out sequences, and
the results are scored (planted motifs recovered by TOMTOM q < 0.05, redundant and unmatched
motifs, interpretability score, instance precision and recall with the rule of ``argminn.md``
§7.2, test auROC / auPRC / accuracy, wall time, CPU time and peak memory of training and
read-out). Records are aggregated to mean ± sd over seeds per (data set, method, metric) and the
issue-6 targets are checked per seed. See the suite's section of ``benchmarks/README.md``.

    PYTHONPATH=. python benchmarks/suite.py                 # reduced size (< 20 min on 2 idle cores)
    PYTHONPATH=. python benchmarks/suite.py --full --jobs 8 # paper size (~20 CPU-hours)
    PYTHONPATH=. python benchmarks/suite.py --grammars single mixture --seeds 0 --methods argminn cnn_filters
    PYTHONPATH=. python benchmarks/suite.py --only-real
    PYTHONPATH=. python benchmarks/suite.py --render benchmarks/results/suite.json   # rewrite the markdown

Outputs ``{out}/{name}.json`` (every record, the aggregate, the target checks, settings, package
versions, git commit, machine and load averages) and ``{out}/{name}.md`` (tables). Each finished
(data set, seed) is appended to ``{out}/{name}_work/records.jsonl`` first, so an interrupted run
continues with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, replace
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _suite_metrics as M  # noqa: E402
import _suite_run as R  # noqa: E402

PACKAGES = ("torch", "numpy", "pandas", "scikit-learn", "tangermeme", "memelite", "modisco-lite", "bpnet-lite",
            "argminn_plugin")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=HERE, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info() -> dict:
    """Machine, software and load, recorded with the numbers."""
    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "commit": _git("rev-parse", "HEAD"), "commit_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(), "platform": platform.platform(), "cpu_model": cpu,
        "nproc": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "nice": os.nice(0),
        "load_average": list(os.getloadavg()), "versions": versions,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def datasets_for(args, size: R.Size) -> list[R.Dataset]:
    if args.datasets:
        out = []
        for name in args.datasets:
            if name in R.REAL_DATASETS:
                out.append(R.REAL_DATASETS[name])
            else:
                grammar, _, background = name.partition("/")
                out.append(R.simulated_dataset(grammar, background or "iid"))
        return out
    out = []
    if not args.only_real:
        grammars = args.grammars or list(R.GRAMMARS)
        out += [R.simulated_dataset(g, "iid") for g in grammars]
        genome = args.genome_grammars if args.genome_grammars is not None else (
            list(grammars) if size.name == "full" else [g for g in ("single",) if g in grammars])
        out += [R.simulated_dataset(g, "ce2") for g in genome]
    if not args.only_sim:
        real = args.real if args.real is not None else (list(R.REAL_DATASETS) if size.name == "full" else ["gata3"])
        out += [R.REAL_DATASETS[r] for r in real]
    return out


def render_markdown(result: dict) -> str:
    """The markdown report of a suite result (what ``{name}.md`` holds)."""
    records, agg, checks = result["records"], result["aggregate"], result["targets"]
    summary = M.target_summary(checks)
    s, m = result["settings"], result["machine"]
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    simulated = [d for d in datasets if any(r["dataset"] == d and r.get("simulated") for r in records)]
    lines = [f"# Benchmark suite: {s['size']} size", "",
             f"Command: `{result['command']}`", "",
             f"Commit {m['commit'][:10]}{' (uncommitted changes)' if m['commit_dirty'] else ''}; "
             f"{m['cpu_model'] or 'unknown CPU'}, {m['nproc']} cores, torch threads {m['torch_threads']}, "
             f"OMP_NUM_THREADS={m['OMP_NUM_THREADS']}, nice {m['nice']}; load average at start "
             f"{', '.join(f'{x:.1f}' for x in m['load_average'])}, at end "
             f"{', '.join(f'{x:.1f}' for x in result.get('load_average_end', []))}; "
             f"total {result['total_wall_s'] / 60:.1f} min wall, {result['total_cpu_s'] / 60:.1f} min CPU. "
             + ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v) + ".", "",
             f"Seeds {', '.join(map(str, s['seeds']))}; every cell is mean ± sd over seeds. Simulated sequences "
             f"{s['size_settings']['length']} bp, {s['size_settings']['epochs']} epochs of "
             f"{s['size_settings']['batches']} fresh batches of {s['size_settings']['batch_size']} (+ reverse "
             f"complements), Adam {s['size_settings']['lr']:g}"
             + (f" (ARGMINN {s['size_settings']['lr_after_burn_in']:g} once its regularisers start)"
                if s['size_settings'].get('lr_after_burn_in') else "")
             + f"; read-out on {s['size_settings']['n_test']} held-out "
             "positives (all held-out sequences for `repression`). Timings are wall seconds with process CPU "
             "seconds in brackets; the machine may have been shared, so compare CPU seconds. The CNN is trained "
             "once and read out two ways, so its two rows share one training time.", ""]
    if simulated:
        lines += ["## Targets (ARGMINN, per seed)", "",
                  "A target is met for a data set when it is met in every seed.", ""]
        lines += M.overview_table(summary, simulated) + [""]
        lines += ["## Headline (simulated data sets)", ""] + M.headline_tables(agg, simulated) + [""]
    for d in datasets:
        recs = [r for r in records if r["dataset"] == d]
        sim = recs[0].get("simulated", False)
        info = recs[0].get("data", {})
        lines += [f"## {d}", ""]
        if sim:
            lines += [f"Planted motifs (width): {', '.join(f'{k} ({v})' for k, v in info.get('planted', {}).items())}; "
                      f"read-out on {info.get('n_readout')} sequences ({info.get('readout_set')}) holding "
                      f"{info.get('n_true_instances')} planted instances.", ""]
        else:
            lines += [f"{info.get('n_train')} training, {info.get('n_valid')} validation, {info.get('n_test')} test "
                      f"sequences; read-out on {info.get('n_readout')} test positives; relevant JASPAR names "
                      f"`{info.get('relevant')}`. No ground truth: no instance scores.", ""]
        lines += M.dataset_table(d, agg[d], recs, sim) + [""]
        if sim:
            lines += M.instance_table(agg[d]) + [""]
            lines += M.target_table(d, checks, summary) + [""]
        errors = sorted({f"{r['method']} seed {r['seed']}: {r['motifs']['modisco_error']}" for r in recs
                         if (r.get("motifs") or {}).get("modisco_error")})
        if errors:
            lines += ["MoDISco errors (scored as no motif): " + "; ".join(errors), ""]
    return "\n".join(lines) + "\n"


def finish(records: list[dict], settings: dict, machine: dict, command: str, wall: float, cpu: float,
           out: Path, name: str) -> dict:
    checks = M.check_targets(records)
    result = {"command": command, "settings": settings, "machine": machine, "load_average_end": list(os.getloadavg()),
              "total_wall_s": wall, "total_cpu_s": cpu, "records": records, "aggregate": M.aggregate(records),
              "targets": checks, "target_summary": M.target_summary(checks)}
    result = M.clean(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    (out / f"{name}.md").write_text(render_markdown(result))
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size_group = parser.add_mutually_exclusive_group()
    size_group.add_argument("--full", action="store_true", help="paper size: L = 500, 40 epochs x 100 batches, "
                            "5 seeds, every grammar in both backgrounds, every real set")
    size_group.add_argument("--tiny", action="store_true", help="smoke-test size (seconds; numbers meaningless)")
    parser.add_argument("--grammars", nargs="+", choices=R.GRAMMARS, help="simulated grammars (default: all six)")
    parser.add_argument("--genome-grammars", nargs="*", choices=R.GRAMMARS,
                        help="grammars also simulated in the ce2 genome background (default reduced: single; "
                             "full: all)")
    parser.add_argument("--real", nargs="*", choices=sorted(R.REAL_DATASETS),
                        help="real sets (default reduced: gata3; full: all)")
    parser.add_argument("--datasets", nargs="+", help="exact data sets, e.g. single/iid mixture/ce2 gata3")
    parser.add_argument("--only-real", action="store_true")
    parser.add_argument("--only-sim", action="store_true")
    parser.add_argument("--methods", nargs="+", choices=R.METHODS, default=list(R.METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds (default reduced: 0 1; full: 0-4)")
    parser.add_argument("--attention-layers", type=int, help="ARGMINN attention layers for every data set")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="(data set, seed) pairs run in parallel worker processes (default 1; 2 on an idle "
                             "2-core machine halves the wall time)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--name", help="output name (default suite, suite_full or suite_tiny)")
    parser.add_argument("--resume", action="store_true", help="skip (data set, seed) pairs already in the work log")
    parser.add_argument("--render", metavar="JSON", help="only rewrite the markdown of a saved result")
    args = parser.parse_args(argv)

    if args.render:
        result = json.loads(Path(args.render).read_text())
        Path(args.render).with_suffix(".md").write_text(render_markdown(result))
        return result

    import torch

    torch.set_num_threads(args.threads)
    size = R.SIZES["full" if args.full else "tiny" if args.tiny else "reduced"]
    if args.seeds:
        size = replace(size, seeds=tuple(args.seeds))
    name = args.name or {"full": "suite_full", "tiny": "suite_tiny", "reduced": "suite"}[size.name]
    out = Path(args.out)
    work = out / f"{name}_work"
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "records.jsonl"
    datasets = datasets_for(args, size)
    methods = tuple(m for m in R.METHODS if m in args.methods)
    settings = {"size": size.name, "size_settings": asdict(size), "seeds": list(size.seeds), "methods": list(methods),
                "datasets": [asdict(d) for d in datasets], "attention_layers": args.attention_layers,
                "threads": args.threads, "jobs": args.jobs}
    command = "PYTHONPATH=. python benchmarks/suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = machine_info()

    done: list[dict] = []
    if args.resume and log_path.exists():
        for line in log_path.read_text().splitlines():
            if line.strip():
                done.append(json.loads(line))
    elif log_path.exists():
        log_path.unlink()
    finished = {(r["dataset"], r["seed"]) for r in done}
    records = [r for r in done if r["dataset"] in {d.name for d in datasets} and r["method"] in methods]

    wall0, cpu0 = time.perf_counter(), time.process_time()
    prior = {"wall": sum(r.get("_pair_wall_s", 0) for r in done if r["method"] == methods[0]),
             "cpu": sum(r.get("_pair_cpu_s", 0) for r in done if r["method"] == methods[0])}
    tasks = [(ds, size, seed, methods, work / ds.name.replace("/", "_") / f"seed{seed}", args.attention_layers,
              args.threads) for ds in datasets for seed in size.seeds if (ds.name, seed) not in finished]
    worker_cpu = 0.0

    def collect(ds_name, seed, new, lines, pair_wall, pair_cpu):
        for r in new:
            r["_pair_wall_s"], r["_pair_cpu_s"] = pair_wall, pair_cpu
            r["load_average"] = list(os.getloadavg())
        with open(log_path, "a") as handle:
            for r in new:
                handle.write(json.dumps(M.clean(r)) + "\n")
        records.extend(M.clean(r) for r in new)
        if lines:
            print(f"[suite] {ds_name} seed {seed}\n" + "\n".join(lines), flush=True)

    if args.jobs <= 1:
        for task in tasks:
            ds, seed = task[0], task[2]
            print(f"[suite] {ds.name} seed {seed} (load {os.getloadavg()[0]:.1f})", flush=True)
            t, c = time.perf_counter(), time.process_time()
            if R._DB is None:
                from argminn_plugin.motifs import read_motif_database

                R._DB = read_motif_database()
            new = R.run_dataset_seed(ds, size, seed, methods, task[4], R._DB, attention_layers=args.attention_layers,
                                     log=lambda msg: print(msg, flush=True))
            collect(ds.name, seed, new, [], time.perf_counter() - t, time.process_time() - c)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(R.pair_worker, task) for task in tasks]
            for future in as_completed(futures):
                ds_name, seed, new, lines, pair_wall, pair_cpu = future.result()
                worker_cpu += pair_cpu
                collect(ds_name, seed, new, lines, pair_wall, pair_cpu)
    wall = time.perf_counter() - wall0 + prior["wall"]
    cpu = time.process_time() - cpu0 + prior["cpu"] + worker_cpu
    result = finish(records, settings, machine, command, wall, cpu, out, name)
    print(f"[suite] wrote {out / name}.json and .md ({wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU)", flush=True)
    return result


if __name__ == "__main__":
    main()
