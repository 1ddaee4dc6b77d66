"""`zsbench demo`: the embedded demo suite, run through the same `zsbench eval` machinery users run.

Generates the demo data if absent, evaluates the committed tiny checkpoint as InternVL-C and
InternVL-G on zero-shot classification and retrieval, on each backend asked for (the ONNX
backend exports the graphs and checks their parity first), writes one result JSON per
evaluation and returns the results for the summary table.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsbench.demo.generate import generate_demo_data
from zsbench.eval.plan import EvalOptions, plan_runs
from zsbench.eval.runner import run_evaluations

DEMO_CHECKPOINT = Path("pretrained/zsbench-demo")
# (model name, demo dataset folder): InternVL-C and -G on both tasks.
DEMO_RUNS = (
    ("internvl_c_classification_hf", "shapes_classification"),
    ("internvl_g_classification_hf", "shapes_classification"),
    ("internvl_c_retrieval_hf", "shapes_retrieval"),
    ("internvl_g_retrieval_hf", "shapes_retrieval"),
)


@dataclass(frozen=True)
class DemoConfig:
    """Where the demo reads and writes, and what it runs."""

    data_dir: Path = Path("data/zsbench-demo")
    output_dir: Path = Path("results/demo")
    pretrained: Path = DEMO_CHECKPOINT
    backends: tuple[str, ...] = ("torch", "onnx")
    device: str = "cpu"
    batch_size: int = 128
    num_workers: int = 2
    quiet: bool = False


def available_backends(requested: tuple[str, ...], log: Callable[[str], None]) -> tuple[str, ...]:
    """The requested backends whose runtime is installed (the others are skipped, saying why)."""
    from zsbench.runtime.flavor import installed_flavors

    kept = []
    for backend in requested:
        if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
            log("skip backend onnx: onnxruntime is not installed (pip install 'zsbench[onnx]')")
        elif backend == "trt" and not installed_flavors():
            log("skip backend trt: neither tensorrt nor tensorrt_rtx is installed (pip install 'zsbench[trt]' or 'zsbench[trt-rtx]')")
        else:
            kept.append(backend)
    return tuple(kept)


def run_demo(config: DemoConfig, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Runs the demo suite; returns the result dicts (also written under `config.output_dir`)."""
    start = time.perf_counter()
    folders = generate_demo_data(config.data_dir)
    log(f"demo data: {config.data_dir} ({time.perf_counter() - start:.1f}s)")
    results = []
    for backend in available_backends(config.backends, log):
        for model, dataset in DEMO_RUNS:
            options = EvalOptions(
                model_type="internvl",
                models=(model,),
                pretrained=(str(config.pretrained),),
                datasets=(f"wds/{dataset}",),
                dataset_root=str(folders[dataset]),
                output=str(config.output_dir / backend / "{dataset}_{model}.json"),
                batch_size=config.batch_size,
                num_workers=config.num_workers,
                backend=backend,
                device=config.device,
                precision="fp32" if config.device == "cpu" else "fp16",
            )
            results.extend(outcome.result for outcome in run_evaluations(plan_runs(options), config.quiet, log) if outcome.result)
    log(f"demo suite: {len(results)} evaluations in {time.perf_counter() - start:.1f}s")
    return results


def summary_table(results: list[dict[str, Any]]) -> str:
    """Accuracy and throughput per evaluation, as a fixed-width table."""
    header = f"{'dataset':<26} {'model':<29} {'backend':<7} {'metric':<38} {'images/s':>9} {'texts/s':>9}"
    lines = [header, "-" * len(header)]
    for result in results:
        metrics = result["metrics"]
        if "acc1" in metrics:
            shown = f"acc1 {metrics['acc1']:.4f}  acc5 {metrics['acc5']:.4f}"
        else:
            shown = f"R@5 image {metrics['image_retrieval_recall@5']:.4f}  text {metrics['text_retrieval_recall@5']:.4f}"
        rates = result["throughput"]
        lines.append(
            f"{result['dataset']:<26} {result['model']:<29} {result['backend']:<7} {shown:<38} "
            f"{_rate(rates['images_per_second'])} {_rate(rates['texts_per_second'])}"
        )
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    """A rate column; "cached" when nothing was encoded (every row came from the embedding cache)."""
    return f"{value:>9.1f}" if value is not None else f"{'cached':>9}"
