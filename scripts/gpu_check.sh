#!/usr/bin/env bash
# One command for a GPU machine: `zsbench doctor`'s report (what runs here, and the fix for what does
# not), then torch fp16/bf16 on CUDA (and bf16 on the CPU where it has native bf16), ONNX Runtime
# parity (fp32, fp16, int8), TensorRT flavor detection and, where a TensorRT for the card is installed,
# engine build + parity + eval on the embedded demo (int8/fp8 engines also need NVIDIA Model Optimizer;
# fp8 compute capability >= 8.9). A backend or precision that is not installed for this card is
# "skip: <command that installs it>" (or why it cannot run here); nothing is installed.
# Prints one summary table (stdout; progress on stderr); exits 1 if a check failed.
#
#   scripts/gpu_check.sh [--workdir DIR]     # PYTHON=... for another interpreter than .venv/bin/python
#
# Needs only this repository and an installed environment (`make test` makes .venv/); nothing is
# downloaded. Stops after 8 minutes (ZSBENCH_GPU_CHECK_SECONDS): on that limit, or on SIGTERM/SIGINT,
# the table of the rows finished so far is still printed. Without a GPU the CUDA rows say "skip".
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
limit="${ZSBENCH_GPU_CHECK_SECONDS:-480}"
if [ ! -x "$python" ]; then
    echo "No Python at $python: run \`make test\` once (it creates .venv/), or set PYTHON=/path/to/python." >&2
    exit 2
fi
rows="$(mktemp "${TMPDIR:-/tmp}/zsbench-gpu-check-rows.XXXXXX")"
trap 'rm -f "$rows"' EXIT

# The check runs in the background so that this shell can pass SIGTERM/SIGINT on to it (a foreground
# child would only see them after it finished); `timeout` sends SIGTERM at the limit, SIGKILL 20 s later.
timeout --kill-after=20 "$limit" "$python" "$repo/scripts/gpu_check.py" --rows "$rows" "$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
status=0
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do  # a signal interrupted `wait`: wait for the table
    wait "$child" || status=$?
done

if [ "$(tail -n 1 "$rows" 2>/dev/null)" != "# table printed" ]; then
    # The check was killed before it printed its table: print the rows it finished.
    echo "gpu_check.py stopped (exit status $status) before printing its table; the rows it finished:"
    awk -F'\t' 'BEGIN { printf "%-28s  %-6s  %7s  %s\n", "check", "status", "seconds", "detail" }
                $1 !~ /^#/ { printf "%-28s  %-6s  %7s  %s\n", $1, $2, $3, $4 }' "$rows"
    [ "$status" -eq 0 ] && status=1
fi
exit "$status"
