"""The tutorial notebooks in ``tutorials/`` execute, and the committed copies carry their outputs.

Every notebook is run with nbclient in a fresh ``python3`` kernel, from the ``tutorials/`` folder,
with ``ARGMINN_TUTORIAL_FAST=1`` (reduced sizes), ``OMP_NUM_THREADS=1`` and its work folder
``ARGMINN_TUTORIAL_OUT`` in a pytest temporary directory, so the committed notebooks and
``tutorials/_output/`` are left alone. A cell that raises fails the test with the cell's source and
traceback.

The committed notebooks are also checked as files: they were saved after a full-size run, so each
must hold at least one PNG output, no error output, and state its run time in its first (markdown)
cell.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
CELL_TIMEOUT_S = 600
RUN_TIME = re.compile(r"run\s*-?\s*time", re.IGNORECASE)
DURATION = re.compile(r"\d+(\.\d+)?\s*(s|sec|seconds?|min|minutes?|h|hours?)\b", re.IGNORECASE)


def _ids(paths):
    return [p.stem for p in paths]


def test_there_are_tutorials():
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_executes(path, tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    # The kernel inherits this environment. The repository goes on PYTHONPATH so the package imports
    # without being installed (and the `bpnet` / `torchrun` subprocesses the notebooks start can
    # unpickle its models).
    monkeypatch.setenv("ARGMINN_TUTORIAL_FAST", "1")
    monkeypatch.setenv("ARGMINN_TUTORIAL_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    # The kernel must run this interpreter: jupyter_client replaces a kernelspec's "python" by
    # sys.executable, and the venv's bin/ goes first on PATH for console scripts.
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=False,
        resources={"metadata": {"path": str(TUTORIALS)}},
    )
    try:
        client.execute()
    except CellExecutionError as err:
        pytest.fail(f"{path.name}: a cell raised\n{err}", pytrace=False)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{path.name}: error outputs {[e.get('ename') for e in errors]}"
    pngs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
    assert pngs, f"{path.name} drew no figure in FAST mode"
    out = tmp_path / "out"
    assert out.is_dir() and any(out.iterdir()), f"{path.name} wrote nothing to ARGMINN_TUTORIAL_OUT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_has_outputs_and_run_time(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel must be python3"
    first = nb.cells[0] if nb.cells else None
    assert first is not None and first.cell_type == "markdown", f"{path.name}: the first cell must be markdown"
    states_run_time = bool(RUN_TIME.search(first.source) and DURATION.search(first.source))
    assert states_run_time, f"{path.name}: the first cell must state the measured run time (e.g. 'Run time: about 4 min')"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), f"{path.name}: save it after running every cell"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} was saved with an error output"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no PNG figure saved"
    first_code = code[0].source
    assert 'os.environ.get("ARGMINN_TUTORIAL_FAST"' in first_code, (
        f"{path.name}: the first code cell must read ARGMINN_TUTORIAL_FAST"
    )
    assert path.stat().st_size < 3_000_000, f"{path.name} is {path.stat().st_size:,} bytes; lower the figures' dpi"
