"""`zsbench demo`: the embedded demo suite, run through the same `zsbench eval` machinery users run.

Generates the demo data if absent, evaluates the committed tiny checkpoint as InternVL-C and
InternVL-G on zero-shot classification and retrieval, on each backend asked for (the ONNX
backend exports the graphs and checks their parity first), writes one result JSON per
evaluation and returns the results for the summary table.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsbench.errors import CheckpointError
from zsbench.eval.plan import EvalOptions, default_num_workers, plan_runs
from zsbench.types import Backend, Device

# (model name, demo dataset folder): InternVL-C and -G on both tasks.
DEMO_RUNS = (
    ("internvl_c_classification_hf", "shapes_classification"),
    ("internvl_g_classification_hf", "shapes_classification"),
    ("internvl_c_retrieval_hf", "shapes_retrieval"),
    ("internvl_g_retrieval_hf", "shapes_retrieval"),
)
DEMO_MODELS = tuple(dict.fromkeys(model for model, _ in DEMO_RUNS))
# The committed checkpoint's folder name, and where it is looked for (see `find_demo_checkpoint`).
DEMO_CHECKPOINT_NAME = "zsbench-demo"
DEMO_CHECKPOINT_ENV = "ZSBENCH_DEMO_CHECKPOINT"


@dataclass(frozen=True)
class DemoConfig:
    """Where the demo reads and writes, and what it runs."""

    data_dir: Path = Path("data/zsbench-demo")
    output_dir: Path = Path("results/demo")
    pretrained: Path | None = None
    backends: tuple[Backend, ...] = ("torch", "onnx")
    models: tuple[str, ...] = DEMO_MODELS
    device: Device = "auto"
    batch_size: int = 128
    num_workers: int = default_num_workers()
    threads: int | None = None


def demo_checkpoint_candidates() -> list[Path]:
    """Where the demo checkpoint is looked for, in order: $ZSBENCH_DEMO_CHECKPOINT, ./pretrained/zsbench-demo,
    and pretrained/zsbench-demo beside the installed package (a source checkout or editable install)."""
    candidates = [Path(os.environ[DEMO_CHECKPOINT_ENV])] if os.environ.get(DEMO_CHECKPOINT_ENV) else []
    package_root = Path(__file__).resolve().parents[2]
    return [*candidates, Path("pretrained") / DEMO_CHECKPOINT_NAME, package_root / "pretrained" / DEMO_CHECKPOINT_NAME]


def find_demo_checkpoint(pretrained: Path | None) -> Path:
    """`pretrained`, or the first demo checkpoint on the search path (`demo_checkpoint_candidates`).

    Raises:
        CheckpointError: the one given is not a checkpoint folder, or none is found (naming the places looked at).
    """
    candidates = [pretrained] if pretrained is not None else demo_checkpoint_candidates()
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    looked = ", ".join(str(candidate) for candidate in candidates)
    raise CheckpointError(
        f"No demo checkpoint (a folder with config.json, model.safetensors, tokenizer.model) at {looked}. "
        f"Pass --pretrained PATH to the repository's pretrained/{DEMO_CHECKPOINT_NAME}, or set ${DEMO_CHECKPOINT_ENV} to it."
    )


def available_backends(requested: tuple[str, ...], device: str, log: Callable[[str], None]) -> tuple[str, ...]:
    """The requested backends usable on `device` here (the others are skipped, saying why)."""
    from zsbench.backends import BACKENDS
    from zsbench.types import resolve_device

    kept = []
    for backend in requested:
        missing = BACKENDS.get(backend).available(resolve_device(device))
        if missing is not None:
            log(f"skip backend {backend}: {missing}")
        else:
            kept.append(backend)
    return tuple(kept)


def run_demo(config: DemoConfig, quiet: bool, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Runs the demo suite; returns the result dicts (also written under `config.output_dir`).

    The checkpoint is found before any data is generated.
    """
    from zsbench.demo.generate import generate_demo_data
    from zsbench.eval.runner import run_evaluations

    checkpoint = find_demo_checkpoint(config.pretrained)
    start = time.perf_counter()
    folders = generate_demo_data(config.data_dir)
    log(f"demo data: {config.data_dir} ({time.perf_counter() - start:.1f}s)")
    results = []
    for backend in available_backends(config.backends, config.device, log):
        for model, dataset in (run for run in DEMO_RUNS if run[0] in config.models):
            options = EvalOptions(
                model_type="internvl",
                models=(model,),
                pretrained=(str(checkpoint),),
                datasets=(f"wds/{dataset}",),
                dataset_root=str(folders[dataset]),
                output=str(config.output_dir / backend / "{dataset}_{model}.json"),
                batch_size=config.batch_size,
                num_workers=config.num_workers,
                threads=config.threads,
                backend=backend,
                device=config.device,
            )
            results.extend(outcome.result for outcome in run_evaluations(plan_runs(options), quiet, log) if outcome.result)
    log(f"demo suite: {len(results)} evaluations in {time.perf_counter() - start:.1f}s")
    return results


def summary_table(results: list[dict[str, Any]]) -> str:
    """Accuracy and throughput per evaluation, as a fixed-width table."""
    from zsbench.eval.results import format_rate  # here: that module loads torch, `zsbench demo --help` must not
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
            f"{format_rate(rates, 'images'):>9} {format_rate(rates, 'texts'):>9}"
        )
    return "\n".join(lines)
