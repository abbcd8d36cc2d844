"""The ``argminn`` command line: ``fit``, ``simulate``, ``pipeline`` and ``pipeline-json``.

Each subcommand reads ``-p params.json`` (bpnet-lite's key names plus ARGMINN's own; see
:mod:`argminn_plugin.config`), calls library functions and writes files. ``argminn pipeline`` with
no ``-p`` runs the embedded default job on data shipped in the package, offline.

Output files (``{name}`` is the ``name`` parameter, relative to ``output_dir`` in a pipeline):

=============================== ==========================================================================
``{name}.torch``                whole model at the best validation epoch (what ``bpnet evaluate`` loads)
``{name}.final.torch``          whole model after the last epoch
``{name}.log``                  one row per epoch: every loss component, weights, validation metrics
``{name}.checkpoint.pt``        resumable training state (``"resume": true``)
``{name}.pt`` + ``.pt.json``    state dict + config of the final model (``argminn_plugin.io.load_model``)
``{name}.fit.json``             the merged parameters the model was trained with
``{name}.performance.json``     test-set metrics of the final model (binary: auROC, auPRC, accuracy, loss)
``{prefix}.*``                  ``simulate``: genome FASTA (+ .fai), peaks and negatives BEDs,
                                ground-truth instances TSV, planted motifs MEME, grammar JSON
=============================== ==========================================================================
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="argminn",
        description="ARGMINN and the Fourier attribution prior for the tangermeme / bpnet-lite ecosystem.",
    )
    parser.add_argument("--version", action="version", version=f"argminn_plugin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_ in (
        ("fit", "Train an ARGMINN model (binary from loci or sequence files, or profile from bigWigs)."),
        ("simulate", "Simulate planted-motif grammar data: genome FASTA, peaks/negatives BEDs, truth, MEME."),
        ("pipeline", "Run the whole job (simulate if asked, fit, evaluate, read out); the embedded default without -p."),
        ("motifs", "Read motifs off a trained model: PFMs, quality, JASPAR annotation, MEME, logos."),
        ("instances", "Call motif instances from one forward pass: TSV (+ BED for genomic loci), modisco .h5."),
        ("syntax", "Motif configurations, spacings and which configurations drive predictions."),
        ("compare", "ARGMINN side by side with DeepLIFT-SHAP + MoDISco (ARGMINN and a baseline): HTML, JSON, TSV."),
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("-p", "--parameters", required=name not in ("pipeline", "compare"),
                       help="JSON parameter file.")
        if name in ("fit", "pipeline"):
            p.add_argument("--resume", action="store_true", help="Continue from {name}.checkpoint.pt.")
    p = sub.add_parser("pipeline-json", help="Print the parameters of the embedded default pipeline as JSON.")
    p.add_argument("-o", "--output", help="Write to this file instead of standard output.")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``argminn`` console script; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "pipeline-json":
            from .config import embedded_default_parameters

            text = json.dumps(embedded_default_parameters(), indent=2) + "\n"
            if args.output:
                Path(args.output).write_text(text)
            else:
                sys.stdout.write(text)
            return 0
        from . import pipeline

        if args.command == "simulate":
            pipeline.run_simulate(args.parameters)
        elif args.command == "fit":
            pipeline.run_fit(args.parameters, resume=args.resume)
        elif args.command == "pipeline":
            pipeline.run_pipeline(args.parameters, resume=args.resume)
        elif args.command == "compare":
            pipeline.run_compare(args.parameters)
        elif args.command in ("motifs", "instances", "syntax"):
            steps = {"motifs": ("motifs",), "instances": ("motifs", "instances"),
                     "syntax": ("motifs", "instances", "syntax")}[args.command]
            pipeline.run_readout_command(args.parameters, steps)
    except (ValueError, FileNotFoundError) as err:
        print(f"argminn {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

