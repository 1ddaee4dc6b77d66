"""One GPU check of zsbench's device paths on the embedded demo checkpoint; prints one summary table.

Run through scripts/gpu_check.sh. Needs only this repository and an installed environment
(the demo checkpoint and demo data are in, or generated from, the repository; nothing is
downloaded). On a machine without a GPU the CUDA rows say "skip" and the rest still runs
(exports, ONNX Runtime parity, TensorRT-RTX ahead-of-time builds).

Rows:
  gpu                    torch's view of the GPU (name, compute capability, CUDA)
  torch fp16 / bf16      the demo model in fp16 / bf16 on CUDA against itself in fp32 (parity probes)
  onnx fp32 / fp16       export + ONNX Runtime parity against PyTorch fp32
  trt flavor             installed TensorRT libraries and the one `--trt-flavor auto` picks for this card
  trt build <model>      FP16 engines built (or reused) + engine parity on the GPU
  eval <backend>         the demo classification and retrieval runs: accuracy, steady throughput,
                         first-call seconds, TensorRT memory
  top-1 <backend>        per-image top-1 agreement with torch fp32 on the demo classification set
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zsbench.backends import load_backend  # noqa: E402
from zsbench.demo.generate import generate_demo_data  # noqa: E402
from zsbench.errors import ZsbenchError  # noqa: E402
from zsbench.eval.plan import EvalOptions, plan_runs  # noqa: E402
from zsbench.eval.runner import classification_logits, evaluate_run, open_dataset  # noqa: E402
from zsbench.export import EngineConfig, ExportConfig, ProbeConfig, build_engines, default_export_dir, export_model  # noqa: E402
from zsbench.export.parity import ParityThresholds, compare_embeddings, reference_embeddings, run_probes  # noqa: E402
from zsbench.export.probes import build_probes  # noqa: E402
from zsbench.models import ModelRef  # noqa: E402
from zsbench.runtime.flavor import choose_flavor, gpu_target, installed_flavors  # noqa: E402

CHECKPOINT = REPO / "pretrained" / "zsbench-demo"
CLASSIFY, RETRIEVE = "internvl_c_classification_hf", "internvl_g_retrieval_hf"
RUNS = ((CLASSIFY, "shapes_classification"), (RETRIEVE, "shapes_retrieval"))
PROBES = ProbeConfig(num_images=200)
BF16 = ParityThresholds(cosine=0.99, cosine_fraction=0.99, top1_agreement=0.99)  # bf16 keeps 8 mantissa bits


@dataclass
class Row:
    check: str
    status: str  # pass, fail, skip
    seconds: float
    detail: str


class Checks:
    """Runs the checks in order, one row each; a failing check is recorded and the next one runs."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def run(self, name: str, check: Callable[[], tuple[str, str]]) -> None:
        start = time.perf_counter()
        try:
            status, detail = check()
        except ZsbenchError as err:
            status, detail = "fail", str(err).splitlines()[0]
        except Exception as err:  # a bug or a driver problem: keep its traceback for the log, go on
            traceback.print_exc()
            status, detail = "fail", f"{type(err).__name__}: {err}"
        row = Row(name, status, time.perf_counter() - start, detail)
        self.rows.append(row)
        print(f"[{row.status}] {row.check} ({row.seconds:.1f}s): {row.detail}", file=sys.stderr, flush=True)

    def table(self) -> str:
        width = max(len(row.check) for row in self.rows)
        lines = [f"{'check':<{width}}  status  seconds  detail", "-" * (width + 60)]
        lines += [f"{row.check:<{width}}  {row.status:<6}  {row.seconds:>7.1f}  {row.detail}" for row in self.rows]
        return "\n".join(lines)


def gpu_row() -> tuple[str, str]:
    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda}"
    if not torch.cuda.is_available():
        return "skip", f"no GPU visible to torch ({versions}): CUDA rows are skipped"
    return "pass", f"{gpu_target()}, {versions}"


def torch_precision_row(precision: str) -> tuple[str, str]:
    if not torch.cuda.is_available():
        return "skip", "no GPU"
    from zsbench.runtime.encoder import Encoder

    device = torch.device("cuda")
    ref = ModelRef("internvl", CLASSIFY, str(CHECKPOINT))
    model, transform, tokenizer = ref.load(device, "fp32")
    probes = build_probes(transform, tokenizer, PROBES)
    reference = reference_embeddings(model, probes, device)
    del model
    low, _, _ = ref.load(device, precision)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]

    class Low(Encoder):
        def _encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
            return low.encode_image(pixels.to(device, dtype))

        def _encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
            return low.encode_text(input_ids.to(device))

    with torch.inference_mode():
        candidate = run_probes(Low(device, precision), probes)
    thresholds = BF16 if precision == "bf16" else ParityThresholds.for_precision("fp16")
    report = compare_embeddings(reference, candidate, probes, thresholds, artifact=CLASSIFY, backend=f"torch {precision}",
                                precision=precision, reference_name="torch fp32", probe_config=PROBES)
    vision, text = report.graph("vision"), report.graph("text")
    return ("pass" if report else "fail"), (
        f"min cosine image {vision.min_cosine:.5f} text {text.min_cosine:.5f}, "
        f"zero-shot top-1 agreement {report.graph('zero_shot').top1_agreement:.4f}"
    )


def export_row(model: str, precision: str, device: str) -> tuple[str, str]:
    ref = ModelRef("internvl", model, str(CHECKPOINT))
    out = default_export_dir(model, CHECKPOINT, precision)  # export/<default name>: where eval looks
    result = export_model(ExportConfig(ref, out=out, precision=precision, device=device, probes=PROBES))  # type: ignore[arg-type]
    zero_shot = result.parity.graph("zero_shot")
    return ("pass" if result.parity else "fail"), (
        f"{result.parity.backend}: {result.parity.status}, zero-shot top-1 agreement {zero_shot.top1_agreement:.4f}"
    )


def flavor_row() -> tuple[str, str]:
    installed = installed_flavors()
    target = gpu_target()
    try:
        chosen = choose_flavor("auto", target, installed)
    except ZsbenchError as err:  # e.g. only TensorRT-RTX installed on an H100: the message says what to install
        return "skip", f"installed: {sorted(installed) or 'none'}; {err}"
    return "pass", f"installed: {sorted(installed)}; auto on {target} -> {chosen}"


def build_row(model: str) -> tuple[str, str]:
    try:
        choose_flavor("auto", gpu_target(), installed_flavors())
    except ZsbenchError as err:
        return "skip", f"no TensorRT for this card: {err}"
    artifact = default_export_dir(model, CHECKPOINT, "fp16")
    result = build_engines(EngineConfig(artifact, probes=PROBES))
    manifest = result.manifest
    status = {"passed": "pass", "failed": "fail"}.get(result.parity.status, "skip")
    zero_shot = result.parity.graph("zero_shot") if result.parity.status != "not run" else None
    parity = f"top-1 agreement {zero_shot.top1_agreement:.4f}" if zero_shot else result.parity.reason
    return status, f"{manifest.flavor} {manifest.trt_version} for {manifest.target}, parity {result.parity.status}: {parity}"


def eval_row(backend: str, precision: str, data: dict[str, Path]) -> tuple[str, str]:
    if backend == "trt" and not torch.cuda.is_available():
        return "skip", "no GPU"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    parts = []
    for model, dataset in RUNS:
        options = EvalOptions(model_type="internvl", models=(model,), pretrained=(str(CHECKPOINT),), datasets=(f"wds/{dataset}",),
                              dataset_root=str(data[dataset]), backend=backend, device=device, precision=precision,
                              batch_size=64, num_workers=2)
        (run,) = plan_runs(options)
        loaded = load_backend(backend, run.model, torch.device(device), precision)
        result = evaluate_run(run, open_dataset(run), loaded, quiet=True)
        metrics, speed = result["metrics"], result["throughput"]
        score = f"acc1 {metrics['acc1']:.4f}" if "acc1" in metrics else f"image R@5 {metrics['image_retrieval_recall@5']:.4f}"
        steady = speed["steady_images_per_second"] or speed["images_per_second"] or 0.0
        memory = speed["runtime_gpu_memory_mb"]
        extra = f", TensorRT {sum(memory.values()):.0f} MB" if memory else ""
        parts.append(f"{model.split('_')[1].upper()}: {score}, {steady:.0f} img/s steady, first call {speed['first_image_call_seconds']:.2f}s{extra}")
    return "pass", "; ".join(parts)


def agreement_row(backend: str, precision: str, data: dict[str, Path], reference: list[torch.Tensor]) -> tuple[str, str]:
    if backend == "trt" and not torch.cuda.is_available():
        return "skip", "no GPU"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    options = EvalOptions(model_type="internvl", models=(CLASSIFY,), pretrained=(str(CHECKPOINT),), datasets=("wds/shapes_classification",),
                          dataset_root=str(data["shapes_classification"]), backend=backend, device=device, precision=precision,
                          batch_size=64, num_workers=2)
    (run,) = plan_runs(options)
    top1 = classification_logits(run, open_dataset(run), load_backend(backend, run.model, torch.device(device), precision)).argmax(1)  # type: ignore[arg-type]
    if not reference:
        reference.append(top1)
        return "pass", f"reference: {len(top1)} images"
    agreement = float((top1 == reference[0]).float().mean())
    return ("pass" if agreement >= 0.995 else "fail"), f"{agreement:.4f} of {len(top1)} images agree with torch fp32"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="Where export/, engines/ and the demo data go [default: a temp folder].")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="zsbench-gpu-check-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # export/ and engines/ (where eval finds them by default) land here
    print(f"zsbench GPU check in {workdir}", file=sys.stderr)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    checks = Checks()
    checks.run("gpu", gpu_row)
    checks.run("torch fp16 (cuda)", lambda: torch_precision_row("fp16"))
    checks.run("torch bf16 (cuda)", lambda: torch_precision_row("bf16"))
    checks.run("onnx fp32 export+parity", lambda: export_row(CLASSIFY, "fp32", device))
    for model in (CLASSIFY, RETRIEVE):
        checks.run(f"onnx fp16 export+parity {model.split('_')[1].upper()}", lambda model=model: export_row(model, "fp16", device))
    checks.run("trt flavor", flavor_row)
    for model in (CLASSIFY, RETRIEVE):
        checks.run(f"trt build+parity {model.split('_')[1].upper()}", lambda model=model: build_row(model))
    data = generate_demo_data(workdir / "data")
    low = "fp16" if device == "cuda" else "fp32"
    backends = tuple(dict.fromkeys((("torch", "fp32"), ("torch", low), ("onnx", "fp16"), ("trt", "fp16"))))
    for backend, precision in backends:
        checks.run(f"eval {backend} {precision}", lambda b=backend, p=precision: eval_row(b, p, data))
    reference: list[torch.Tensor] = []
    for backend, precision in backends:
        checks.run(f"top-1 {backend} {precision}", lambda b=backend, p=precision: agreement_row(b, p, data, reference))
    print(checks.table())
    return 1 if any(row.status == "fail" for row in checks.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
