#!/usr/bin/env bash
# Runs the README's walkthrough top to bottom, in a fresh clone, as a new user would: every ```bash
# block that README.md marks with <!-- walkthrough -->, in order, with `zsbench` meaning the clone's code.
#
#   scripts/readme_walkthrough.sh [--keep]    # PYTHON=... to use another interpreter than .venv/bin/python
#
# The clone is of this repository's committed HEAD (`git clone` into a temporary folder); `make demo`'s
# install step is not repeated: PYTHON (an environment with zsbench's dependencies, `make test`'s .venv/)
# runs the clone's package through PYTHONPATH, with an empty embedding cache. Exits non-zero when a
# command fails, when a command after the walkthrough's own `zsbench export` makes another export
# instead of using it, or when README.md names a path of the machine it was written on. Not part of CI:
# it runs the demo, three exports, an engine build and a bench (about 10 minutes on 2 busy CPU cores).
# --keep leaves the clone and its log in place (their folder is printed).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
if [ ! -x "$python" ]; then
    echo "No Python at $python: run \`make test\` once (it creates .venv/), or set PYTHON=/path/to/python." >&2
    exit 2
fi
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
work="$(mktemp -d "${TMPDIR:-/tmp}/zsbench-walkthrough-XXXXXX")"
if [ "${1:-}" = "--keep" ]; then
    echo "Walkthrough folder: $work" >&2
else
    trap 'rm -rf "$work"' EXIT
fi
git clone --quiet "$repo" "$work/zsbench"
mkdir "$work/bin"
printf '#!/usr/bin/env bash\nPYTHONPATH=%q exec %q -m zsbench "$@"\n' "$work/zsbench" "$python" > "$work/bin/zsbench"
chmod +x "$work/bin/zsbench"
cd "$work/zsbench"
"$python" - README.md > "$work/walkthrough.sh" <<'PY'
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"<!-- walkthrough -->\n```bash\n(.*?)```", text, re.DOTALL)
if not blocks:
    sys.exit("README.md marks no ```bash block with <!-- walkthrough -->")
print("\n".join(blocks))
PY
echo "Running $(grep -c '^zsbench' "$work/walkthrough.sh") commands of README.md in $work/zsbench" >&2
PATH="$work/bin:$PATH" ZSBENCH_CACHE_DIR="$work/cache" bash -euo pipefail -x "$work/walkthrough.sh" 2>&1 | tee "$work/walkthrough.log"
"$python" - "$work/walkthrough.log" README.md <<'PY'
import re
import sys

log = open(sys.argv[1], encoding="utf-8").read()
after_export = log.partition("\n+ zsbench export")[2]
if not after_export:
    sys.exit("walkthrough: README.md's walkthrough has no `zsbench export`")
if "exporting it now" in after_export:
    sys.exit("walkthrough: a command after the README's `zsbench export` made another export instead of using it")
readme = open(sys.argv[2], encoding="utf-8").read()
machine_paths = re.findall(r"(?<![\w.])/(?:work|home|root|Users|tmp|mnt|opt|var)/\S*", readme)
if machine_paths:
    sys.exit(f"walkthrough: README.md names paths of a machine: {', '.join(machine_paths)}")
print("walkthrough: every command passed, and the walkthrough's eval used its own export", file=sys.stderr)
PY
