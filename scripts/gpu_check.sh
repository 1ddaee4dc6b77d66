#!/usr/bin/env bash
# One command for a GPU machine: torch fp16/bf16 on CUDA, ONNX Runtime parity, TensorRT flavor
# detection and, where a TensorRT is importable, engine build + parity + eval on the embedded demo.
# Prints one summary table (stdout; progress on stderr); exits 1 if a check failed.
#
#   scripts/gpu_check.sh [--workdir DIR]        # PYTHON=... to use another interpreter than .venv/bin/python
#
# Needs only this repository and an installed environment (`make test` makes .venv/); nothing is
# downloaded. Stops after 8 minutes. Without a GPU the CUDA rows say "skip".
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
if [ ! -x "$python" ]; then
    echo "No Python at $python: run \`make test\` once (it creates .venv/), or set PYTHON=/path/to/python." >&2
    exit 2
fi
exec timeout 480 "$python" "$repo/scripts/gpu_check.py" "$@"
