#!/usr/bin/env bash
# Create a virtual environment and install argminn_plugin with its dependencies, CPU-only.
#
#   bash scripts/install.sh [VENV_DIR] [test]
#
# Order matters (see ../shared/specs/ecosystem.md section 1.4 for the measurements):
#   1. torch==2.13.0 first, so no other package pulls a CUDA build;
#   2. the runtime dependencies listed in pyproject.toml, except bpnet-lite;
#   3. bpnet-lite with --no-deps: its requirement on the old `modisco` package would overwrite
#      modisco-lite 3.x, and its `macs3` requirement builds from source for minutes. Neither is
#      needed by argminn_plugin (they are only run as subprocesses by `bpnet pipeline` on BAM input);
#   4. argminn_plugin itself with --no-deps (its dependencies are already in place).
set -euo pipefail
VENV="${1:-.venv}"
EXTRA="${2:-}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet torch==2.13.0
mapfile -t DEPS < <("$PY" - "$HERE/pyproject.toml" "$EXTRA" <<'PYEOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
deps = [d for d in project["dependencies"] if not d.replace(" ", "").startswith(("bpnet-lite", "torch"))]
if sys.argv[2]:
    deps += project["optional-dependencies"][sys.argv[2]]
print("\n".join(deps))
PYEOF
)
"$PY" -m pip install --quiet "${DEPS[@]}"
"$PY" -m pip install --quiet --no-deps "bpnet-lite==1.1.0"
"$PY" -m pip install --quiet --no-deps -e "$HERE"
"$PY" - <<'PYEOF'
import modiscolite, torch, argminn_plugin
assert modiscolite.__version__.startswith("3."), f"modisco-lite {modiscolite.__version__} is installed, 3.x expected"
assert "+cpu" in torch.__version__ or not torch.cuda.is_available(), torch.__version__
print(f"argminn_plugin {argminn_plugin.__version__}, torch {torch.__version__}, modisco-lite {modiscolite.__version__}")
PYEOF
