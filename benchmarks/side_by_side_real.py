"""``argminn compare`` on a real ChIP-seq data set, with its outputs kept in ``benchmarks/results/``.

Runs :func:`argminn_plugin.pipeline.run_compare` (what ``argminn compare -p PARAMS`` runs) on a
parameter file, then copies ``{name}.compare.*`` (JSON, TSVs, the self-contained HTML report) from
the parameter file's ``output_dir`` (models, logs; not committed) to ``--out`` and writes
``{name}.meta.json`` with the parameters, wall and training times, the data files' SHA-256, the
git commit and the machine. Relative paths in the parameter file are taken from the repository
root, so the script runs from any folder.

    PYTHONPATH=. python benchmarks/side_by_side_real.py                                   # Oct4 (default)
    PYTHONPATH=. python benchmarks/side_by_side_real.py -p benchmarks/side_by_side_oct4.json --threads 1
    PYTHONPATH=. python benchmarks/side_by_side_real.py --embedded    # what `argminn compare` runs with no -p

The same comparisons without the copy and the meta file, from the repository root:

    argminn compare -p benchmarks/side_by_side_oct4.json
    argminn compare                     # embedded GATA3 default, written to argminn_output/argminn.compare.*

``--embedded`` runs :func:`argminn_plugin.config.embedded_compare_parameters` with only ``name``,
``output_dir`` (``side_by_side_gata3_default``, ``benchmarks/results/side_by_side_gata3_default_work``)
and the progress output changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch

import argminn_plugin
from argminn_plugin.config import embedded_compare_parameters, read_parameters
from argminn_plugin.pipeline import run_compare
from side_by_side import _cpu_seconds, _package_commit  # this folder is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
PATH_KEYS = ("sequences", "negatives", "test_sequences", "output_dir", "model", "baseline_model", "motif_database")


def resolve_paths(parameters: dict, root: Path = ROOT) -> dict:
    """Copy of ``parameters`` with relative paths under :data:`PATH_KEYS` made absolute from ``root``."""
    out = dict(parameters)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and not Path(value).is_absolute():
            out[key] = str((root / value).resolve())
    return out


def training_seconds(log: Path) -> float | None:
    """Sum of the training and validation times in a ``fit`` log (None when the log is missing)."""
    if not log.is_file():
        return None
    frame = pd.read_csv(log, sep="\t")
    return float(frame["Training Time"].sum() + frame["Validation Time"].sum())


def sha256(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-p", "--parameters", default=str(ROOT / "benchmarks" / "side_by_side_oct4.json"))
    parser.add_argument("--embedded", action="store_true",
                        help="run the embedded default of `argminn compare` instead of a parameter file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--note", default="", help="free text kept in the meta file (e.g. where the package came from)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.embedded:
        args.parameters = "embedded_compare_parameters()"
        raw = {**embedded_compare_parameters(), "name": "side_by_side_gata3_default",
               "output_dir": "benchmarks/results/side_by_side_gata3_default_work", "verbose": True, "progress": False}
    else:
        raw = read_parameters(args.parameters)
    parameters = resolve_paths(raw)
    name = parameters["name"]
    work = Path(parameters["output_dir"])

    load_before = list(os.getloadavg())
    tic = time.time()
    outputs = run_compare(parameters)
    wall = time.time() - tic

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(work.glob(f"{name}.compare.*")):
        shutil.copyfile(path, out / path.name)
        copied.append(str((out / path.name).relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out / path.name))
    meta = {
        "parameter_file": args.parameters if args.embedded or not Path(args.parameters).resolve().is_relative_to(ROOT)
        else str(Path(args.parameters).resolve().relative_to(ROOT)),
        "parameters": raw,
        "data": {key: {"path": parameters[key], "sha256": sha256(parameters[key])}
                 for key in ("sequences", "negatives", "test_sequences") if parameters.get(key)},
        "times": {"wall_s": wall, "argminn_training_s": training_seconds(work / f"{name}.log"),
                  "baseline_training_s": training_seconds(work / f"{name}.baseline.log")},
        "performance": outputs.get("performance"),
        "split": outputs.get("split"),
        "n_passing": outputs.get("n_passing"),
        "n_instances": outputs.get("n_instances"),
        "cpu_s": _cpu_seconds(),
        "threads": args.threads,
        "note": args.note,
        "package": str(Path(argminn_plugin.__file__).parent), "package_commit": _package_commit(),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=ROOT).stdout.strip(),
        "torch": torch.__version__, "machine": platform.platform(), "nproc": os.cpu_count(),
        "load_average": {"before": load_before, "after": list(os.getloadavg())},
        "files": copied,
    }
    (out / f"{name}.meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    print(json.dumps({k: meta[k] for k in ("times", "performance", "n_passing", "n_instances")}, indent=2,
                     default=str))


if __name__ == "__main__":
    main()
