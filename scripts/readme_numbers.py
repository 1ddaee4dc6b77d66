"""Regenerates the README's numbers and its report figures by running the real commands.

Each step runs `python -m zsbench ...` (this interpreter, this checkout) from the repository root,
keeps its standard output in results/readme/<step>.txt, and the README's marked blocks
``<!-- BEGIN <step> -->`` ... ``<!-- END <step> -->`` are rewritten from those outputs, so the
numbers shown cannot drift from what the code prints:

    demo          zsbench demo                          (about a minute on 2 CPU cores)
    bench-demo    zsbench bench on the demo checkpoint  (about two minutes)
    bench-vit768  zsbench bench on InternViT width 768, random weights (a few minutes)
    bench-suite   scripts/bench_suite.py: whole suite, zsbench (torch and onnx int8) vs CLIP_benchmark's loop
                  and the seed's pipeline (a few minutes)
    precision-ladder  fp32 / bf16 / fp16 / int8 on torch and onnx: zsbench bench on the width-768 model and on
                  the demo, and zsbench eval of the demo in each, as one table (tens of minutes: the exports,
                  and torch fp16 on a CPU)
    report        zsbench report -> docs/report/ (report.md and its PNG figures, committed)
    build-demo    zsbench build results/demo --output - --compare-paper

Usage: python scripts/readme_numbers.py [--reuse] [STEP ...]
    STEP     run only these steps and rewrite only their blocks (default: all, in the order above)
    --reuse  take the reusable steps' outputs from results/readme/ of an earlier run instead of re-running them
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's own package (its bench-file reader, its demo's data), whatever is installed
SAVED = REPO / "results" / "readme"
BENCH_JSON = "results/bench/demo.json"
BENCH_ARGS = ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", "pretrained/zsbench-demo",
              "--backends", "torch,onnx", "--precisions", "fp32,fp16", "--batch_sizes", "1,8,64", "--min_seconds", "3",
              "--output", BENCH_JSON]
ZSBENCH = ["-m", "zsbench"]
# A wider model than the demo's, for the throughput table: InternViT at width 768, random weights.
VIT768_MODEL = ["--model", "internvl_c_retrieval_hf", "--pretrained", "results/bench/vit768", "--random_init",
                "--model_config", "zsbench/models/configs/internvl_bench_vit768.json"]
BENCH_VIT768_ARGS = ["bench", *VIT768_MODEL, "--backends", "torch,onnx", "--precisions", "fp32", "--batch_sizes", "1,8",
                     "--min_seconds", "6"]

# The precision ladder: every precision on both CPU backends, refusals included (shown with the tool's reason).
LADDER_BACKENDS = ("torch", "onnx")
LADDER_PRECISIONS = ("fp32", "bf16", "fp16", "int8")
LADDER_DIR = SAVED / "precision-ladder"  # its bench and result JSONs, emptied at the start of each run
DEMO_PRETRAINED = "pretrained/zsbench-demo"
DEMO_DATA = "data/zsbench-demo"  # where `zsbench demo` generates the demo's datasets
# (row label, bench arguments before --output): batch 8, the ratios and peaks of one run per model.
LADDER_BENCHES = (
    ("InternViT width 768 (random weights)", ["bench", *VIT768_MODEL, "--min_seconds", "6"]),
    ("demo", ["bench", "--model", "internvl_c_retrieval_hf", "--pretrained", DEMO_PRETRAINED, "--min_seconds", "3"]),
)
LADDER_BENCH_OPTIONS = ["--backends", ",".join(LADDER_BACKENDS), "--precisions", ",".join(LADDER_PRECISIONS), "--batch_sizes", "8"]
# The demo's accuracy columns: (header, demo dataset, result metric); each cell shows InternVL-C / InternVL-G.
LADDER_METRICS = (
    ("acc1", "shapes_classification", "acc1"),
    ("image R@5", "shapes_retrieval", "image_retrieval_recall@5"),
    ("text R@5", "shapes_retrieval", "text_retrieval_recall@5"),
)

Step = Callable[[dict[str, str]], str]  # runs with this environment, returns the block's text


def command(*args: str) -> Step:
    """The step that runs `python ARGS` (this interpreter) from the repository root; its text is the standard output."""
    def run(env: dict[str, str]) -> str:
        return subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout

    return run


def run_zsbench(args: list[str], env: dict[str, str]) -> tuple[str | None, list[str]]:
    """Runs `python -m zsbench ARGS`, its standard error shown as it comes: (None, or the one-line reason it refused
    with; the lines of standard error). Any other failure (a traceback, another exit status) stops the script."""
    process = subprocess.Popen([sys.executable, *ZSBENCH, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    errors = []
    for line in process.stderr:
        sys.stderr.write(line)
        errors.append(line.rstrip("\n"))
    status = process.wait()
    if status == 0:
        return None, errors
    # A refusal is zsbench's one-line error (exit 1, never a traceback): the table shows it as the reason.
    last = next((line for line in reversed(errors) if line.strip()), "")
    if status == 1 and last.startswith("Error: ") and not any(line.startswith("Traceback") for line in errors):
        return last.removeprefix("Error: "), errors
    raise SystemExit(f"zsbench {' '.join(args)} failed (exit status {status}); its standard error is above.")


class Footnotes:
    """Refusal reasons, numbered once each, for the cells that show `refused [n]`."""

    def __init__(self) -> None:
        self.numbers: dict[str, int] = {}

    def cell(self, reason: str) -> str:
        return f"refused [{self.numbers.setdefault(reason, len(self.numbers) + 1)}]"

    def lines(self) -> list[str]:
        from zsbench.escape import markdown_text

        return [f"[{number}] {markdown_text(reason)}  " for reason, number in self.numbers.items()]


def skipped_by_bench(errors: list[str]) -> dict[tuple[str, str], str]:
    """(backend, precision) -> reason, from the `skip BACKEND PRECISION: reason` lines `zsbench bench` logs."""
    skips = (re.fullmatch(r"skip (\S+) (\S+): (.+)", line) for line in errors)
    return {(match[1], match[2]): match[3] for match in skips if match}


def ladder_benches(env: dict[str, str]) -> list[tuple[str, str, dict, dict[tuple[str, str], str]]]:
    """Runs each ladder bench: (row label, device, {(backend, precision): its batch-8 row}, {(backend, precision): why skipped})."""
    from zsbench.bench.rows import read_rows

    benches = []
    for index, (label, args) in enumerate(LADDER_BENCHES):
        output = LADDER_DIR / f"bench-{index}.json"
        refused, errors = run_zsbench([*args, *LADDER_BENCH_OPTIONS, "--output", str(output)], env)
        if refused is not None:
            raise SystemExit(f"zsbench bench refused the {label} ladder: {refused}")
        info, rows = read_rows(output)
        benches.append((label, info["device"], {(row.backend, row.precision): row for row in rows}, skipped_by_bench(errors)))
    return benches


def ladder_evaluations(env: dict[str, str]) -> dict[tuple[str, str], dict[str, dict] | str]:
    """`zsbench eval` of the demo in every (backend, precision): {model: result} for each demo model, or the refusal."""
    import json

    from zsbench.demo.generate import generate_demo_data
    from zsbench.demo.suite import DEMO_RUNS

    folders = generate_demo_data(REPO / DEMO_DATA)
    evaluations: dict[tuple[str, str], dict[str, dict] | str] = {}
    for backend in LADDER_BACKENDS:
        for precision in LADDER_PRECISIONS:
            results: dict[str, dict] = {}
            for dataset in dict.fromkeys(dataset for _, dataset in DEMO_RUNS):
                models = [model for model, of in DEMO_RUNS if of == dataset]
                output = LADDER_DIR / "eval" / f"{backend}-{precision}" / "{model}.json"
                refused, _ = run_zsbench(["eval", "--model_type", "internvl", "--model", *models, "--pretrained", DEMO_PRETRAINED,
                                          "--dataset", f"wds/{dataset}", "--dataset_root", str(folders[dataset]), "--backend", backend,
                                          "--precision", precision, "--output", str(output), "--quiet"], env)
                if refused is not None:
                    evaluations[(backend, precision)] = refused
                    break
                for model in models:
                    results[model] = json.loads((output.parent / f"{model}.json").read_text(encoding="utf-8"))
            else:
                evaluations[(backend, precision)] = results
    return evaluations


def speed_cell(rate: float, ratio: float | None, fraction: float | None) -> str:
    """`224.6 (3.00x, 8.1%)`: a rate, its ratio to torch fp32 and its fraction of the row's own peak."""
    from zsbench.bench.rows import format_fraction

    peak = format_fraction(fraction).strip()
    return f"{rate:.1f} ({ratio:.2f}x, {'no peak' if peak == '-' else peak})" if ratio is not None else f"{rate:.1f}"


def accuracy_cells(results: dict[str, dict], reference: dict[str, dict]) -> list[str]:
    """One cell per `LADDER_METRICS`, InternVL-C / InternVL-G: the reference run's value in %, another run's change in points."""
    from zsbench.demo.suite import DEMO_RUNS

    cells = []
    for _, dataset, metric in LADDER_METRICS:
        values = []
        for model in (model for model, of in DEMO_RUNS if of == dataset):
            value, base = results[model]["metrics"][metric], reference[model]["metrics"][metric]
            values.append(f"{100 * value:.2f}" if results is reference else f"{100 * (value - base):+.2f}")
        cells.append(" / ".join(values))
    return cells


def precision_ladder(env: dict[str, str]) -> str:
    """The precision-ladder block: speed of every backend and precision at batch 8 on both models, and the demo's
    accuracy in each against torch fp32, as one Markdown table; refusals show the tool's reason."""
    shutil.rmtree(LADDER_DIR, ignore_errors=True)  # nothing of an earlier run can enter the table
    LADDER_DIR.mkdir(parents=True)
    benches = ladder_benches(env)
    evaluations = ladder_evaluations(env)
    reference = evaluations[("torch", "fp32")]
    if isinstance(reference, str):
        raise SystemExit(f"zsbench eval refused the demo in torch fp32, the ladder's reference: {reference}")
    notes = Footnotes()
    metric_headers = " | ".join(f"{header} C / G" for header, _, _ in LADDER_METRICS)
    lines = [f"| model | backend | precision | images/s (vs torch fp32, % of peak) | texts/s (vs torch fp32, % of peak) | {metric_headers} |",
             "|---|---|---|---:|---:|" + "---:|" * len(LADDER_METRICS)]
    for label, _, rows, skipped in benches:
        for backend in LADDER_BACKENDS:
            for precision in LADDER_PRECISIONS:
                row = rows.get((backend, precision))
                if row is None:
                    speed = [notes.cell(skipped.get((backend, precision), "no row and no reason in the bench output"))] * 2
                else:
                    speed = [speed_cell(row.images_per_s, row.images_vs_torch_fp32, row.image_matmul_fraction),
                             speed_cell(row.texts_per_s, row.texts_vs_torch_fp32, row.text_matmul_fraction)]
                if label != "demo":
                    accuracy = ["(random weights)"] + [""] * (len(LADDER_METRICS) - 1)
                else:
                    evaluated = evaluations[(backend, precision)]
                    accuracy = ([notes.cell(evaluated)] * len(LADDER_METRICS) if isinstance(evaluated, str)
                                else accuracy_cells(evaluated, reference))
                lines.append(f"| {label} | {backend} | {precision} | {' | '.join(speed)} | {' | '.join(accuracy)} |")
    devices = "; ".join(f"{label}: {device}" for label, device, _, _ in benches)
    lines += ["", f"Batch 8, 20-token texts, best of 3 interleaved rounds ({devices}). Accuracy: `zsbench eval` of the demo's "
              "test splits, InternVL-C / InternVL-G, torch fp32 in %, every other row its change in points.", "", *notes.lines()]
    return "\n".join(lines) + "\n"


# step -> (what it runs, whether --reuse may take its output from an earlier run)
STEPS: dict[str, tuple[Step, bool]] = {
    "demo": (command(*ZSBENCH, "demo", "--quiet"), True),
    "bench-demo": (command(*ZSBENCH, *BENCH_ARGS), True),
    "bench-vit768": (command(*ZSBENCH, *BENCH_VIT768_ARGS), True),
    "bench-suite": (command("scripts/bench_suite.py", "--rounds", "3"), True),
    "precision-ladder": (precision_ladder, True),
    "report": (command(*ZSBENCH, "report", "results/demo", BENCH_JSON, "--out", "docs/report"), False),
    "build-demo": (command(*ZSBENCH, "build", "results/demo", "--output", "-", "--compare-paper"), False),
}
BLOCKLESS = {"report"}  # steps that write files, not a README block


def run_step(name: str, reuse: bool) -> str:
    """The text of step `name`, run now (or read back from an earlier run with `reuse`)."""
    step, reusable = STEPS[name]
    saved = SAVED / f"{name}.txt"
    if reuse and reusable and saved.is_file():
        print(f"{name}: reusing {saved.relative_to(REPO)}", file=sys.stderr)
        return saved.read_text(encoding="utf-8")
    print(f"{name}: running", file=sys.stderr)
    # Throughput depends on what else runs on the machine: the load is kept beside the output.
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="zsbench-readme-cache-") as cache:
        # The checkout's own package, whatever is installed: the README describes this code. An empty
        # embedding cache: the numbers are a first run's, not whatever earlier runs left in ~/.cache.
        env = {**os.environ, "PYTHONPATH": str(REPO), "ZSBENCH_CACHE_DIR": cache}
        start = time.perf_counter()
        text = step(env)
        seconds = time.perf_counter() - start
    note = f"Ran in {seconds:.0f} s; 1-minute load average when it started: {load:.1f} on {os.cpu_count()} cores.\n"
    SAVED.mkdir(parents=True, exist_ok=True)
    saved.write_text(text, encoding="utf-8")
    saved.with_suffix(".load").write_text(note, encoding="utf-8")
    return text


def load_note(name: str) -> str:
    """How long step `name` took and the load average when it started ("" if unknown)."""
    path = SAVED / f"{name}.load"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def block_pattern(name: str) -> re.Pattern[str]:
    """The README's `<!-- BEGIN name -->` ... `<!-- END name -->` block, its markers as groups 1 and 2."""
    return re.compile(rf"(<!-- BEGIN {re.escape(name)} -->\n).*?(<!-- END {re.escape(name)} -->)", re.DOTALL)


def replace_block(text: str, name: str, body: str) -> str:
    """`text` with the content between `<!-- BEGIN name -->` and `<!-- END name -->` replaced by `body`."""
    return block_pattern(name).sub(lambda match: match.group(1) + body + match.group(2), text)


def block_text(name: str, output: str) -> str:
    """The README block of step `name`, made of its output."""
    console = {"bench-demo": BENCH_ARGS, "bench-vit768": BENCH_VIT768_ARGS}
    if name == "demo":
        return f"```\n{output}```\n{load_note(name)}"
    if name in console:
        return f"```console\n$ zsbench {' '.join(console[name])}\n{output}```\n{load_note(name)}"
    return f"{output}\n" if name == "build-demo" else f"{output}\n{load_note(name)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="reuse the reusable steps' outputs of an earlier run")
    parser.add_argument("steps", nargs="*", metavar="STEP", help=f"steps to run and blocks to rewrite (default: all): {', '.join(STEPS)}")
    args = parser.parse_args()
    unknown = [name for name in args.steps if name not in STEPS]
    if unknown:
        parser.error(f"unknown step {', '.join(unknown)}: expected some of {', '.join(STEPS)}")
    chosen = [name for name in STEPS if name in args.steps] if args.steps else list(STEPS)
    readme = REPO / "README.md"
    blocks = [name for name in chosen if name not in BLOCKLESS]
    missing = [name for name in blocks if not block_pattern(name).search(readme.read_text(encoding="utf-8"))]
    if missing:  # before hours of running, not after
        parser.error(f"README.md has no <!-- BEGIN name --> ... <!-- END name --> block for {', '.join(missing)}; add one where it goes.")
    outputs = {name: run_step(name, args.reuse) for name in chosen}
    text = readme.read_text(encoding="utf-8")
    for name in blocks:
        text = replace_block(text, name, block_text(name, outputs[name]))
    from zsbench.jsonfiles import write_text_atomic

    write_text_atomic(readme, text)
    print(f"README.md: blocks {', '.join(blocks) or '(none)'} rewritten" + ("; figures in docs/report/" if "report" in outputs else ""),
          file=sys.stderr)


if __name__ == "__main__":
    main()
