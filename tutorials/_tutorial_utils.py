"""Small helpers shared by the tutorial notebooks; not part of the package.

Importing this module imports ``argminn_plugin``, which selects numba's "workqueue" threading layer, so
that PyTorch keeps to the number of threads it was given (see ``argminn_plugin/__init__.py``).

* :func:`output_dir`: the notebook's work folder (``$ARGMINN_TUTORIAL_OUT`` or ``_output/<stem>``).
* :func:`package_env` / :func:`run` / :func:`run_parallel`: run console scripts (``bpnet``, ``torchrun``, ``argminn``)
  with ``argminn_plugin`` importable in the child process, print the end of its log, and raise with
  the whole log when it fails.
* :func:`write_footprint_bigwigs`: stranded bigWig tracks with a footprint at every planted motif
  instance of a genome written by :func:`argminn_plugin.simulate.simulate_genome`, for profile
  (bpnet-lite) training.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

try:  # run from a checkout without installing: put the repository root on sys.path
    import argminn_plugin  # noqa: F401
except ImportError:  # pragma: no cover - depends on how the notebook is started
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import argminn_plugin  # noqa: F401


def output_dir(stem: str) -> Path:
    """The work folder of notebook ``stem``: ``$ARGMINN_TUTORIAL_OUT`` if set, else ``_output/<stem>``."""
    out = Path(os.environ.get("ARGMINN_TUTORIAL_OUT") or Path("_output") / stem).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return out


def package_env(**extra: str) -> dict[str, str]:
    """``os.environ`` with ``argminn_plugin``'s folder on PYTHONPATH (the ``bpnet`` commands unpickle
    ARGMINN models, so they must be able to import it), a headless matplotlib backend, and (unless set)
    one OpenMP thread and numba's workqueue layer."""
    import argminn_plugin

    root = str(Path(argminn_plugin.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("NUMBA_THREADING_LAYER", "workqueue")  # before anything in the child imports argminn_plugin
    env.update(extra)
    return env


def console_script(name: str) -> str:
    """Path of console script ``name`` (next to this Python first, then on PATH)."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"the console script {name!r} is neither next to {sys.executable} nor on PATH")
    return found


def run(cmd: list[str], cwd: str | os.PathLike | None = None, *, tail: int = 8, env: dict | None = None) -> str:
    """Run ``cmd``, print it and the last ``tail`` lines of its output, and return the whole output.

    Raises ``RuntimeError`` with the output when the command fails.
    """
    shown = " ".join(Path(c).name if i == 0 else str(c) for i, c in enumerate(cmd))
    print("$", shown)
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or package_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        raise RuntimeError(f"{shown} exited with status {proc.returncode}:\n" + "\n".join(lines[-60:]))
    for line in lines[-tail:] if tail else []:
        print("  " + line[:160])
    return proc.stdout


def run_parallel(jobs: list[tuple[list[str], str | os.PathLike]], *, env: dict | None = None) -> list[str]:
    """Run several ``(cmd, cwd)`` jobs at the same time; like :func:`run` (no tail), in order of ``jobs``."""
    started = []
    for cmd, cwd in jobs:
        print("$", " ".join(Path(c).name if i == 0 else str(c) for i, c in enumerate(cmd)), f"   (in {Path(cwd).name}/)")
        started.append(subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env or package_env(),
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [proc.communicate()[0] for proc in started]
    for (cmd, _), proc, output in zip(jobs, started, outputs):
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(map(str, cmd))} exited with status {proc.returncode}:\n{output[-6000:]}")
    return outputs


def _write_bigwig(path: Path, tracks: dict[str, np.ndarray]) -> None:
    """Write one value per base, storing only the non-zero bases (readers see the others as no data,
    which bpnet-lite and tangermeme read as 0)."""
    import pyBigWig

    writer = pyBigWig.open(str(path), "w")
    writer.addHeader([(chrom, len(values)) for chrom, values in tracks.items()], maxZooms=0)
    for chrom, values in tracks.items():
        bases = np.flatnonzero(values)
        if len(bases):
            writer.addEntries([chrom] * len(bases), bases.tolist(), ends=(bases + 1).tolist(),
                              values=values[bases].astype(float).tolist())
    writer.close()


def write_footprint_bigwigs(
    simulated: dict,
    out_dir: str | os.PathLike,
    amplitudes: dict[str, float],
    *,
    shift: int = 5,
    width: float = 15.0,
    background: float = 0.02,
    control_rate: float = 0.5,
    random_state: int = 0,
) -> dict[str, list[Path]]:
    """Write plus/minus signal bigWigs and flat control bigWigs for a simulated genome.

    Every planted instance of motif ``m`` in a positive window adds Poisson counts with mean
    ``amplitudes[m] * exp(-((x - centre -/+ shift) / width) ** 2)`` within 100 bp of the instance
    centre: the plus-strand footprint sits ``shift`` bp left of the centre and the minus-strand one
    ``shift`` bp right of it, as reads of a protein-protected site would. Everywhere else the signal
    is Poisson(``background``); the two control tracks are Poisson(``control_rate``), carrying no
    information.

    Parameters
    ----------
    simulated: dict
        The paths returned by ``simulate_genome`` (``fai`` and ``instances`` are read).
    out_dir: str or Path
        Where ``plus.bw``, ``minus.bw``, ``control_plus.bw`` and ``control_minus.bw`` go.
    amplitudes: dict
        Peak height of the footprint of each motif key.

    Returns
    -------
    dict
        ``{"signals": [plus, minus], "controls": [control_plus, control_minus]}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(random_state)
    sizes = pd.read_csv(simulated["fai"], sep="\t", header=None, usecols=[0, 1], names=["chrom", "size"])
    instances = pd.read_csv(simulated["instances"], sep="\t")
    instances = instances[instances["label"] == 1]
    offsets = np.arange(-100, 101)
    signal = {s: {} for s in ("plus", "minus")}
    for chrom, size in sizes.itertuples(index=False):
        rates = {s: np.full(size, background) for s in signal}
        for row in instances[instances["chrom"] == chrom].itertuples(index=False):
            centre = (row.start + row.end) // 2
            where = centre + offsets
            keep = (where >= 0) & (where < size)
            for strand, sign in (("plus", -1), ("minus", 1)):
                bump = amplitudes[row.motif] * np.exp(-(((offsets - sign * shift) / width) ** 2))
                rates[strand][where[keep]] += bump[keep]
        for strand in signal:
            signal[strand][chrom] = rng.poisson(rates[strand]).astype(np.float64)
    paths = {"signals": [out_dir / "plus.bw", out_dir / "minus.bw"],
             "controls": [out_dir / "control_plus.bw", out_dir / "control_minus.bw"]}
    _write_bigwig(paths["signals"][0], signal["plus"])
    _write_bigwig(paths["signals"][1], signal["minus"])
    for path in paths["controls"]:
        _write_bigwig(path, {chrom: rng.poisson(control_rate, size).astype(np.float64)
                             for chrom, size in sizes.itertuples(index=False)})
    return paths
