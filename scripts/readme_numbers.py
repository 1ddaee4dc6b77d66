"""Regenerates the README's numbers and its report figures by running the real commands.

Each step runs `python -m zsbench ...` (this interpreter, this checkout) from the repository root,
keeps its standard output in results/readme/<step>.txt, and the README's marked blocks
``<!-- BEGIN <step> -->`` ... ``<!-- END <step> -->`` are rewritten from those outputs, so the
numbers shown cannot drift from what the code prints:

    demo          zsbench demo                          (about a minute on 2 CPU cores)
    bench-demo    zsbench bench on the demo checkpoint  (about two minutes)
    bench-vit768  zsbench bench on InternViT width 768, random weights (a few minutes)
    bench-suite   scripts/bench_suite.py: whole suite, zsbench vs CLIP_benchmark's loop (about a minute)
    report        zsbench report -> docs/report/ (report.md and its PNG figures, committed)
    build-demo    zsbench build results/demo --output - --compare-paper

Usage: python scripts/readme_numbers.py [--reuse]
    --reuse  take demo and bench-demo from results/readme/ of an earlier run instead of re-running them
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAVED = REPO / "results" / "readme"
BENCH_JSON = "results/bench/demo.json"
BENCH_ARGS = ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", "pretrained/zsbench-demo",
              "--backends", "torch,onnx", "--precisions", "fp32,fp16", "--batch_sizes", "1,8,64", "--min_seconds", "3",
              "--output", BENCH_JSON]
ZSBENCH = ["-m", "zsbench"]
# A wider model than the demo's, for the throughput table: InternViT at width 768, random weights.
BENCH_VIT768_ARGS = ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", "results/bench/vit768", "--random_init",
                     "--model_config", "zsbench/models/configs/internvl_bench_vit768.json", "--backends", "torch,onnx",
                     "--precisions", "fp32", "--batch_sizes", "1,8", "--min_seconds", "6"]
# step -> (arguments of this Python interpreter, may be reused with --reuse)
STEPS: dict[str, tuple[list[str], bool]] = {
    "demo": ([*ZSBENCH, "demo", "--quiet"], True),
    "bench-demo": ([*ZSBENCH, *BENCH_ARGS], True),
    "bench-vit768": ([*ZSBENCH, *BENCH_VIT768_ARGS], True),
    "bench-suite": (["scripts/bench_suite.py", "--rounds", "3"], True),
    "report": ([*ZSBENCH, "report", "results/demo", BENCH_JSON, "--out", "docs/report"], False),
    "build-demo": ([*ZSBENCH, "build", "results/demo", "--output", "-", "--compare-paper"], False),
}


def run_step(name: str, reuse: bool) -> str:
    """The standard output of step `name`, run now (or read back from an earlier run with `reuse`)."""
    args, reusable = STEPS[name]
    saved = SAVED / f"{name}.txt"
    if reuse and reusable and saved.is_file():
        print(f"{name}: reusing {saved.relative_to(REPO)}", file=sys.stderr)
        return saved.read_text(encoding="utf-8")
    print(f"{name}: python {' '.join(args)}", file=sys.stderr)
    # Throughput depends on what else runs on the machine: the load is kept beside the output.
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zsbench-readme-cache-") as cache:
        # The checkout's own package, whatever is installed: the README describes this code. An empty
        # embedding cache: the numbers are a first run's, not whatever earlier runs left in ~/.cache.
        env = {**os.environ, "PYTHONPATH": str(REPO), "ZSBENCH_CACHE_DIR": cache}
        start = time.perf_counter()
        completed = subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True,
                                   stdout=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
    note = f"Ran in {seconds:.0f} s; 1-minute load average when it started: {load:.1f} on {os.cpu_count()} cores.\n"
    SAVED.mkdir(parents=True, exist_ok=True)
    saved.write_text(completed.stdout, encoding="utf-8")
    saved.with_suffix(".load").write_text(note, encoding="utf-8")
    return completed.stdout


def load_note(name: str) -> str:
    """How long step `name` took and the load average when it started ("" if unknown)."""
    path = SAVED / f"{name}.load"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the content between `<!-- BEGIN name -->` and `<!-- END name -->` replaced by `body`."""
    pattern = re.compile(rf"(<!-- BEGIN {re.escape(name)} -->\n).*?(<!-- END {re.escape(name)} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- BEGIN {name} --> ... <!-- END {name} --> block; add one where {name} goes.")
    return pattern.sub(lambda match: match.group(1) + body + match.group(2), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="reuse the demo and bench outputs of an earlier run")
    reuse = parser.parse_args().reuse
    outputs = {name: run_step(name, reuse) for name in STEPS}
    blocks = {
        "demo": f"```\n{outputs['demo']}```\n{load_note('demo')}",
        "bench-demo": f"```console\n$ zsbench {' '.join(BENCH_ARGS)}\n{outputs['bench-demo']}```\n{load_note('bench-demo')}",
        "bench-vit768": f"```console\n$ zsbench {' '.join(BENCH_VIT768_ARGS)}\n{outputs['bench-vit768']}```\n{load_note('bench-vit768')}",
        "bench-suite": f"{outputs['bench-suite']}\n{load_note('bench-suite')}",
        "build-demo": f"{outputs['build-demo']}\n",
    }
    readme = REPO / "README.md"
    text = readme.read_text(encoding="utf-8")
    for name, body in blocks.items():
        text = replace_block(text, name, body)
    sys.path.insert(0, str(REPO))
    from zsbench.jsonfiles import write_text_atomic

    write_text_atomic(readme, text)
    print(f"README.md: blocks {', '.join(blocks)} rewritten; figures in docs/report/", file=sys.stderr)


if __name__ == "__main__":
    main()
