"""ARGMINN versus DeepLIFT-SHAP + MoDISco on a simulated grammar, scored against the planted truth.

Trains (or loads) an ARGMINN on fresh simulated batches (the paper's regime: new sequences every
epoch), trains a standard CNN (``argminn.md`` §8.1) on the same kind of batches, then runs
:func:`argminn_plugin.compare.side_by_side` on held-out positives and writes the comparison (JSON,
TSVs, self-contained HTML) to ``benchmarks/results/side_by_side_{grammar}.*``.

    PYTHONPATH=. python benchmarks/side_by_side.py --grammar single --argminn-model path.torch
    PYTHONPATH=. python benchmarks/side_by_side.py --grammar mixture --epochs 40 --batches 50
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import time
from pathlib import Path

import torch

import argminn_plugin
from argminn_plugin import ARGMINN
from argminn_plugin.baselines import StandardCNN
from argminn_plugin.compare import side_by_side, write_comparison
from argminn_plugin.report import write_html_report
from argminn_plugin.simulate import SimulatedBatches, simulate_sequences
from argminn_plugin.training import _validate, fit


def train(model, grammar, epochs, batches, length, seed, schedule, name):
    model.name = name
    valid = simulate_sequences(grammar, 640, 640, length=length, random_state=999_999)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    tic = time.time()
    fit(model, SimulatedBatches(grammar, n_batches=batches, batch_size=128, length=length, random_state=seed),
        optimizer, X_valid=valid.X, y_valid=valid.y.float().reshape(-1, 1), max_epochs=epochs, device="cpu",
        random_state=seed, schedule=schedule, reverse_complement=True, verbose=False, progress=False)
    return time.time() - tic


def _package_commit() -> str | None:
    """Commit of the imported package's checkout (None when it is not in a git work tree, e.g. an archive)."""
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         cwd=Path(argminn_plugin.__file__).parent)
    return run.stdout.strip() or None


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (on a shared machine, wall time says little)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grammar", default="single")
    parser.add_argument("--argminn-model", help="a trained ARGMINN (.torch); trained here when omitted")
    parser.add_argument("--attention-layers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--baseline-epochs", type=int, default=10)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--n-eval", type=int, default=500, help="held-out positives compared")
    parser.add_argument("--n-shuffles", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--note", default="", help="free text kept in the meta file (e.g. where the package came from)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    work = out / f"side_by_side_{args.grammar}_work"
    work.mkdir(parents=True, exist_ok=True)

    times = {}
    if args.argminn_model:
        model = torch.load(args.argminn_model, weights_only=False).eval()
    else:
        model = ARGMINN(n_attention_layers=args.attention_layers)
        times["argminn_training_s"] = train(model, args.grammar, args.epochs, args.batches, args.length, args.seed,
                                            "simulation", str(work / "argminn"))
    baseline = StandardCNN(input_length=args.length)
    times["baseline_training_s"] = train(baseline, args.grammar, args.baseline_epochs, args.batches, args.length,
                                         args.seed, None, str(work / "cnn"))

    sim = simulate_sequences(args.grammar, args.n_eval, args.n_eval, length=args.length, random_state=4242)
    X_pos = sim.X[: args.n_eval]  # positives come first
    y_eval = sim.y.float().reshape(-1, 1)
    performance = {label: {k.replace("Validation ", "test_").lower().replace(" ", "_"): v
                           for k, v in _validate(m.eval(), sim.X, None, y_eval, 256, "cpu").items()}
                   for label, m in (("argminn", model), ("baseline", baseline))}
    truth = sim.instances[sim.instances["example_idx"] < args.n_eval]
    tic = time.time()
    result = side_by_side(model.eval(), baseline.eval(), X_pos, truth=truth, planted=sim.motifs,
                          n_shuffles=args.n_shuffles, statistics_X=sim.X, random_state=args.seed)
    times["comparison_s"] = time.time() - tic
    result.summary["performance"] = performance
    result.summary["split"] = f"simulated test set: {args.n_eval} positives + {args.n_eval} negatives (seed 4242)"
    prefix = out / f"side_by_side_{args.grammar}"
    files = write_comparison(result, prefix)
    write_html_report(result, f"{prefix}.compare.html")
    meta = {
        "grammar": args.grammar, "arguments": vars(args), "times": times, "performance": performance,
        "package": str(Path(argminn_plugin.__file__).parent), "package_commit": _package_commit(), "cpu_s": _cpu_seconds(), "note": args.note,
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=Path(__file__).parent).stdout.strip(),
        "torch": torch.__version__, "machine": platform.platform(), "processor": platform.processor(),
        "load_average": list(__import__("os").getloadavg()),
        "files": files,
    }
    Path(f"{prefix}.meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    print(json.dumps(result.summary, indent=2, default=str))


if __name__ == "__main__":
    main()
