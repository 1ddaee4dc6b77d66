"""One GPU check of zsbench's device paths on the embedded demo checkpoint: `zsbench doctor`'s report,
then the runs, then one summary table.

Run through scripts/gpu_check.sh. Needs only this repository and an installed environment
(the demo checkpoint and demo data are in, or generated from, the repository; nothing is
downloaded or installed). On a machine without a GPU the CUDA rows say "skip" and the rest
still runs (exports, ONNX Runtime parity, TensorRT-RTX ahead-of-time builds). A backend that
is merely not installed for this card is "skip: <the command that installs it>" (doctor's
fix), never "fail"; a GPU torch cannot use is "fail" with doctor's reason.

Each row is appended to `--rows FILE` (tab-separated) and printed to stderr as it finishes;
on SIGTERM or SIGINT (gpu_check.sh's time limit) the check stops, prints the table of the
rows finished so far and exits 143, so a timeout never loses them.

Rows:
  gpu                    doctor's view of the GPUs (usable by torch, or why not)
  torch fp16 / bf16      the demo model in fp16 / bf16 on CUDA against itself in fp32 (parity probes)
  torch bf16 (cpu)       the same on the CPU under bf16 autocast, where the CPU has native bf16 (else skip: why)
  onnx fp32 / fp16 / int8  export (int8: quantized, calibrated) + ONNX Runtime parity against PyTorch fp32
  trt flavor             installed TensorRT libraries and the one `--trt-flavor auto` picks for this card
  trt build <model>      FP16 engines built (or reused) + engine parity on the GPU
  trt int8 / fp8 build   Q/DQ graphs by NVIDIA Model Optimizer (export parity), engines built + engine parity;
                         skip with doctor's command where Model Optimizer or the card's TensorRT is missing,
                         and fp8 below compute capability 8.9
  eval <backend>         the demo classification and retrieval runs: accuracy, steady throughput,
                         first-call seconds, TensorRT memory
  top-1 <backend>        per-image top-1 agreement with torch fp32 on the demo classification set
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zsbench.backends import load_backend  # noqa: E402
from zsbench.demo.generate import generate_demo_data  # noqa: E402
from zsbench.doctor import DoctorReport, run_doctor  # noqa: E402
from zsbench.errors import ParityError, UnsupportedPrecisionError, ZsbenchError  # noqa: E402
from zsbench.eval.plan import EvalOptions, plan_runs  # noqa: E402
from zsbench.eval.runner import classification_logits, evaluate_run, open_dataset  # noqa: E402
from zsbench.export import EngineConfig, ExportConfig, ProbeConfig, build_engines, default_export_dir, export_model  # noqa: E402
from zsbench.export.parity import ParityThresholds, compare_embeddings, reference_embeddings, run_probes  # noqa: E402
from zsbench.export.probes import build_probes  # noqa: E402
from zsbench.models import ModelRef, load_clip  # noqa: E402
from zsbench.precisions import ENGINE_TARGET, PRECISIONS  # noqa: E402

CHECKPOINT = REPO / "pretrained" / "zsbench-demo"
CLASSIFY, RETRIEVE = "internvl_c_classification_hf", "internvl_g_retrieval_hf"
RUNS = ((CLASSIFY, "shapes_classification"), (RETRIEVE, "shapes_retrieval"))
PROBES = ProbeConfig(num_images=200)
# Quantized graphs of the demo checkpoint that fail the export gate for a known, documented reason: their rows skip with
# the reason and the measured agreement instead of failing the whole check (engines are built only from graphs that pass).
KNOWN_GATE_FAILURES = {
    "fp8": "the demo's fp8 (e4m3) Q/DQ graphs fail the export gate: e4m3 noise moves the probes' near-tie zero-shot "
           "scores (README, Quantized graphs)",
}
BF16 = ParityThresholds(cosine=0.99, cosine_fraction=0.99, top1_agreement=0.99)  # bf16 keeps 8 mantissa bits
TABLE_PRINTED = "# table printed"  # the last line of --rows once the table is out (gpu_check.sh prints it otherwise)


class Stopped(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt: not caught by `except Exception`
    """SIGTERM or SIGINT arrived: stop, keep the rows finished so far."""


def _stop(signum: int, frame: FrameType | None) -> None:
    del frame
    raise Stopped(signal.Signals(signum).name)


@dataclass
class Row:
    check: str
    status: str  # pass, fail, skip
    seconds: float
    detail: str


class Checks:
    """Runs the checks in order, one row each; a failing check is recorded and the next one runs. Each
    finished row is appended to `rows_file` at once (tab-separated: check, status, seconds, detail)."""

    def __init__(self, rows_file: Path | None = None) -> None:
        self.rows: list[Row] = []
        self.rows_file = rows_file

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(f"[{row.status}] {row.check} ({row.seconds:.1f}s): {row.detail}", file=sys.stderr, flush=True)
        self.write_line("\t".join([row.check, row.status, f"{row.seconds:.1f}", " ".join(row.detail.split())]))

    def write_line(self, line: str) -> None:
        if self.rows_file is not None:
            with open(self.rows_file, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())

    def run(self, name: str, check: Callable[[], tuple[str, str]]) -> None:
        start = time.perf_counter()
        try:
            status, detail = check()
        except ZsbenchError as err:
            status, detail = "fail", str(err).splitlines()[0]
        except Exception as err:  # a bug or a driver problem: keep its traceback for the log, go on
            traceback.print_exc()
            status, detail = "fail", f"{type(err).__name__}: {err}"
        self.add(Row(name, status, time.perf_counter() - start, detail))

    def table(self) -> str:
        width = max(len(row.check) for row in self.rows)
        lines = [f"{'check':<{width}}  status  seconds  detail", "-" * (width + 60)]
        lines += [f"{row.check:<{width}}  {row.status:<6}  {row.seconds:>7.1f}  {row.detail}" for row in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Machine:
    """What doctor found, as the checks need it: the device to run on, and why a backend cannot run here."""

    doctor: DoctorReport

    @property
    def device(self) -> str:
        return "cuda" if any(gpu.usable for gpu in self.doctor.gpus) else "cpu"

    def not_runnable(self, backend: str, precision: str = "fp16") -> str | None:
        """None when doctor says `backend` runs here; else the skip reason (the install command first)."""
        rows = [row for row in self.doctor.backends if (row.backend, row.precision) == (backend, precision)]
        blocking = [row for row in rows if row.status not in ("ready", "untested")]
        if not rows or not blocking:
            return None
        row = blocking[0]
        return f"{row.fix}  ({row.status}: {row.detail})" if row.fix else f"{row.status}: {row.detail}"


def gpu_row(machine: Machine) -> tuple[str, str]:
    doctor = machine.doctor
    unusable = [gpu for gpu in doctor.gpus if not gpu.usable]
    if unusable:
        gpu = unusable[0]
        return "fail", f"GPU {gpu.index} {gpu.name} ({gpu.compute_capability}) unusable: {gpu.reason}" + (f"; fix: {gpu.fix}" if gpu.fix else "")
    torch_line = f"torch {torch.__version__}, CUDA {torch.version.cuda}"
    if not doctor.gpus:
        return "skip", f"no GPU visible ({torch_line}): CUDA rows are skipped"
    driver = doctor.probe.driver
    cards = ", ".join(f"{gpu.name} ({gpu.compute_capability})" for gpu in doctor.gpus)
    return "pass", f"{cards}; a matmul ran on each; {torch_line}" + (f", driver {driver.version}" if driver and driver.version else "")


def cuda_skip(machine: Machine) -> str | None:
    if machine.device == "cuda":
        return None
    return "GPU unusable (see the gpu row)" if machine.doctor.gpus else "no GPU"


def torch_precision_row(machine: Machine, precision: str, device_type: str = "cuda") -> tuple[str, str]:
    """The torch backend in `precision` on `device_type` against itself in fp32 (bf16 on a CPU: autocast, where the CPU
    multiplies bf16 natively; elsewhere the backend's refusal is the skip reason)."""
    skip = cuda_skip(machine) if device_type == "cuda" else None
    if skip:
        return "skip", skip
    device = torch.device(device_type)
    ref = ModelRef("internvl", CLASSIFY, str(CHECKPOINT))
    try:
        low = load_backend("torch", ref, device, precision)
    except UnsupportedPrecisionError as err:  # bf16 on a CPU without native bf16 (zsbench.runtime.cpu_features)
        return "skip", str(err)
    model, transform, tokenizer = load_clip("internvl", CLASSIFY, CHECKPOINT, device, "fp32")
    probes = build_probes(transform, tokenizer, PROBES)
    reference = reference_embeddings(model, probes, device)
    del model
    with torch.inference_mode():
        candidate = run_probes(low.encoder, probes)
    thresholds = BF16 if precision == "bf16" else ParityThresholds.for_precision("fp16")
    report = compare_embeddings(reference, candidate, probes, thresholds, artifact=CLASSIFY, backend=f"torch {precision}",
                                precision=precision, reference_name="torch fp32", probe_config=PROBES)
    vision, text = report.graph("vision"), report.graph("text")
    return ("pass" if report else "fail"), (
        f"min cosine image {vision.min_cosine:.5f} text {text.min_cosine:.5f}, "
        f"zero-shot top-1 agreement {report.graph('zero_shot').top1_agreement:.4f}"
    )


def export_row(machine: Machine, model: str, precision: str) -> tuple[str, str]:
    missing = machine.not_runnable("onnx", precision)
    if missing:
        return "skip", missing
    device = machine.device
    ref = ModelRef("internvl", model, str(CHECKPOINT))
    out = default_export_dir(ref, precision)  # export/<default name>: where eval looks
    result = export_model(ExportConfig(ref, out=out, precision=precision, device=device, probes=PROBES))  # type: ignore[arg-type]
    zero_shot = result.parity.graph("zero_shot")
    return ("pass" if result.parity else "fail"), (
        f"{result.parity.backend}: {result.parity.status}, zero-shot top-1 agreement {zero_shot.top1_agreement:.4f}"
    )


def flavor_row(machine: Machine) -> tuple[str, str]:
    trt_rows = [row for row in machine.doctor.backends if (row.backend, row.precision) == ("trt", "fp16")]
    details = "; ".join(f"{row.where}: {row.status}, {row.detail}" for row in trt_rows)
    if any(row.status == "broken" for row in trt_rows):
        return "fail", details
    missing = machine.not_runnable("trt")
    return ("skip", missing) if missing and "build only" not in missing else ("pass", details)


def build_row(machine: Machine, model: str, precision: str = "fp16") -> tuple[str, str]:
    """`precision` engines built (or reused) from the fp16 export, or for a quantized precision from Q/DQ graphs made
    here by Model Optimizer (their export parity first: a graph failing the gate is a fail, unless the failure is a
    known one, `KNOWN_GATE_FAILURES`), then engine parity."""
    missing = machine.not_runnable("trt", precision)
    if missing and "build only" not in missing:
        return "skip", missing
    ref = ModelRef("internvl", model, str(CHECKPOINT))
    if PRECISIONS.get(precision).quantized:
        artifact = default_export_dir(ref, precision, ENGINE_TARGET)
        try:
            export_model(ExportConfig(ref, out=artifact, precision=precision, device=machine.device, probes=PROBES,  # type: ignore[arg-type]
                                      for_engines=True))
        except ParityError as err:
            if precision not in KNOWN_GATE_FAILURES:
                raise
            zero_shot = err.report.graph("zero_shot") if err.report is not None else None
            measured = f" (zero-shot top-1 agreement {zero_shot.top1_agreement:.4f})" if zero_shot else ""
            return "skip", KNOWN_GATE_FAILURES[precision] + measured
    else:
        artifact = default_export_dir(ref, precision)
    result = build_engines(EngineConfig(artifact, probes=PROBES))
    manifest = result.manifest
    status = {"passed": "pass", "failed": "fail"}.get(result.parity.status, "skip")
    zero_shot = result.parity.graph("zero_shot") if result.parity.status != "not run" else None
    parity = f"top-1 agreement {zero_shot.top1_agreement:.4f}" if zero_shot else result.parity.reason
    targets = f", targets {', '.join(manifest.compute_capabilities)}" if manifest.compute_capabilities else ""
    return status, f"{manifest.flavor} {manifest.trt_version} for {manifest.target}{targets}, parity {result.parity.status}: {parity}"


def backend_skip(machine: Machine, backend: str, precision: str) -> str | None:
    """Why `backend` cannot run here (None: it can): no GPU for TensorRT, or doctor's install command."""
    if backend == "trt":
        return cuda_skip(machine) or machine.not_runnable("trt")
    return machine.not_runnable(backend, precision) if backend == "onnx" else None


def eval_row(machine: Machine, backend: str, precision: str, data: dict[str, Path]) -> tuple[str, str]:
    skip = backend_skip(machine, backend, precision)
    if skip:
        return "skip", skip
    device = machine.device
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


def agreement_row(machine: Machine, backend: str, precision: str, data: dict[str, Path], reference: list[torch.Tensor]) -> tuple[str, str]:
    skip = backend_skip(machine, backend, precision)
    if skip:
        return "skip", skip
    device = machine.device
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


def run_checks(checks: Checks, workdir: Path) -> None:
    doctor = run_doctor()
    print(doctor.render(), flush=True)  # doctor's report first: what runs here, and the fix for what does not
    print(flush=True)
    machine = Machine(doctor)
    for problem in doctor.problems:
        checks.add(Row("doctor", "fail", doctor.seconds, problem))
    checks.run("gpu", lambda: gpu_row(machine))
    checks.run("torch fp16 (cuda)", lambda: torch_precision_row(machine, "fp16"))
    checks.run("torch bf16 (cuda)", lambda: torch_precision_row(machine, "bf16"))
    checks.run("torch bf16 (cpu)", lambda: torch_precision_row(machine, "bf16", "cpu"))
    checks.run("onnx fp32 export+parity", lambda: export_row(machine, CLASSIFY, "fp32"))
    for model in (CLASSIFY, RETRIEVE):
        checks.run(f"onnx fp16 export+parity {model.split('_')[1].upper()}", lambda model=model: export_row(machine, model, "fp16"))
    checks.run("onnx int8 export+parity C", lambda: export_row(machine, CLASSIFY, "int8"))
    checks.run("trt flavor", lambda: flavor_row(machine))
    for model in (CLASSIFY, RETRIEVE):
        checks.run(f"trt build+parity {model.split('_')[1].upper()}", lambda model=model: build_row(machine, model))
    for precision in ("int8", "fp8"):  # the classification model only: each makes its own Q/DQ graphs first
        checks.run(f"trt {precision} build+parity C", lambda precision=precision: build_row(machine, CLASSIFY, precision))
    data = generate_demo_data(workdir / "data")
    low = "fp16" if machine.device == "cuda" else "fp32"
    backends = tuple(dict.fromkeys((("torch", "fp32"), ("torch", low), ("onnx", "fp16"), ("trt", "fp16"))))
    for backend, precision in backends:
        checks.run(f"eval {backend} {precision}", lambda b=backend, p=precision: eval_row(machine, b, p, data))
    reference: list[torch.Tensor] = []
    for backend, precision in backends:
        checks.run(f"top-1 {backend} {precision}", lambda b=backend, p=precision: agreement_row(machine, b, p, data, reference))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="Where export/, engines/ and the demo data go [default: a temp folder].")
    parser.add_argument("--rows", type=Path, default=None, help="Append each finished row to this file (tab-separated).")
    args = parser.parse_args()
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="zsbench-gpu-check-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # export/ and engines/ (where eval finds them by default) land here
    print(f"zsbench GPU check in {workdir}", file=sys.stderr)
    checks = Checks(args.rows)
    start = time.perf_counter()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    stopped = None
    try:
        run_checks(checks, workdir)
    except Stopped as err:
        stopped = str(err)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the table is printed once, whatever arrives now
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stopped:
        checks.add(Row("stopped", "fail", time.perf_counter() - start,
                       f"{stopped} after {time.perf_counter() - start:.0f} s: the rows above finished, the rest did not run"))
    print(checks.table(), flush=True)
    checks.write_line(TABLE_PRINTED)
    if stopped:
        return 143
    return 1 if any(row.status == "fail" for row in checks.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
