"""Precision feasibility on this CPU: torch fp32 / bf16 and ONNX Runtime fp32 / int8, side by side in one run.

For one InternVL configuration with random weights (speed does not depend on weight values;
default: the README's width-768 bench model), it makes the checkpoint, exports the fp32 graphs,
quantizes them to int8 twice (`zsbench.export.quantize`, the InternVL policy, a small synthetic
calibration set: random weights make its quality moot), with uint8 and with int8 activations,
then measures every encoder in
interleaved rounds, each keeping its best, and prints images/s and texts/s, the ratio to torch
fp32, and the fraction of the matching matrix-multiply rate measured in the same run (torch's
for torch rows, ONNX Runtime's `MatMul` / `MatMulInteger` for onnx rows, in the row's dtype).
Cosines against torch fp32 on the measured batch are printed as a sanity check.

bf16 runs under autocast as `--backend torch --precision bf16` does; on a CPU without native
bf16 (`zsbench.runtime.cpu_features`) the backend refuses it, and this script measures it anyway,
marked "emulated", to show why.

    PYTHONPATH=. python scripts/bench_precisions.py [--batch_size 8] [--threads 2] [--rounds 3] [--min_seconds 3]

`measure_encoders` is the reusable core: any `Encoder`s, one input batch, interleaved rounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zsbench.backends.pyt import TorchEncoder  # noqa: E402
from zsbench.bench import count_flops, create_random_checkpoint, measure_matmul_rate, synthetic_inputs  # noqa: E402
from zsbench.runtime.encoder import Encoder, synchronize  # noqa: E402

CONFIG = REPO / "zsbench" / "models" / "configs" / "internvl_bench_vit768.json"
MODEL = "internvl_c_retrieval_hf"
INPUTS = {"vision": "pixel_values", "text": "input_ids"}
# The int8 rows: activations uint8 with a zero point (the default, x86 VNNI's u8 x s8), or int8 symmetric.
INT8_ROWS = {"onnx int8": "uint8", "onnx int8 s8": "int8"}


@dataclass(frozen=True)
class Rates:
    """An encoder's best images/s and texts/s over the rounds."""

    images_per_s: float
    texts_per_s: float


def _rate(step: Callable[[], torch.Tensor], items: int, device: torch.device, min_seconds: float) -> float:
    step()  # warm-up: one-time costs stay out of the rate
    synchronize(device)
    runs, start = 0, time.perf_counter()
    while runs < 2 or time.perf_counter() - start < min_seconds:
        step()
        synchronize(device)
        runs += 1
    return items * runs / (time.perf_counter() - start)


def measure_encoders(encoders: Mapping[str, Encoder], pixels: torch.Tensor, input_ids: torch.Tensor, rounds: int,
                     min_seconds: float) -> dict[str, Rates]:
    """Images/s and texts/s of every encoder on one batch, measured in `rounds` interleaved rounds of
    `min_seconds / rounds` each (so a slow spell of the machine hits all alike); each keeps its best round."""
    best = {name: Rates(0.0, 0.0) for name in encoders}
    for _ in range(rounds):
        for name, encoder in encoders.items():
            images = _rate(lambda: encoder.encode_image(pixels), len(pixels), encoder.device, min_seconds / rounds)
            texts = _rate(lambda: encoder.encode_text(input_ids), len(input_ids), encoder.device, min_seconds / rounds)
            best[name] = Rates(max(best[name].images_per_s, images), max(best[name].texts_per_s, texts))
    return best


def build_encoders(work: Path, calibration_samples: int, log: Callable[[str], None]) -> tuple[dict[str, Encoder], torch.nn.Module]:
    """torch fp32 / bf16 and onnx fp32 / int8 encoders of a random-weight checkpoint made in `work` (the
    onnx ones get torch's thread count, as `OnnxEncoder` does)."""
    from zsbench.export.onnx_export import export_graphs
    from zsbench.export.probes import ProbeConfig, build_probes
    from zsbench.export.quantize.calibration import CalibrationConfig, synthetic_calibration
    from zsbench.export.quantize.int8 import Int8Settings, quantize_graph
    from zsbench.models import load_clip
    from zsbench.models.families.internvl_int8 import INTERNVL_INT8_POLICY
    from zsbench.runtime.onnxrt import OnnxEncoder

    cpu = torch.device("cpu")
    checkpoint = create_random_checkpoint(CONFIG, work / "checkpoint")
    model, transform, tokenizer = load_clip("internvl", MODEL, checkpoint, "cpu", "fp32")
    fp32 = work / "fp32"
    fp32.mkdir(exist_ok=True)
    export_graphs(model, fp32, 23, "fp32", cpu, log)
    probes = build_probes(transform, tokenizer, ProbeConfig(num_images=8, num_classes=8, num_templates=2))
    calibration = synthetic_calibration(transform, tokenizer, CalibrationConfig(num_samples=calibration_samples, batch_size=8), probes)
    encoders: dict[str, Encoder] = {
        "torch fp32": TorchEncoder(model, cpu, "fp32"),
        "torch bf16": TorchEncoder(model, cpu, "bf16", autocast=torch.bfloat16),
        "onnx fp32": OnnxEncoder({g: fp32 / f"{g}.onnx" for g in INPUTS}, cpu, "fp32"),
    }
    for row, activations in INT8_ROWS.items():
        folder = work / row.replace(" ", "-")
        folder.mkdir(exist_ok=True)
        for graph, name in INPUTS.items():
            quantized = quantize_graph(fp32 / f"{graph}.onnx", folder / f"{graph}.onnx", calibration.feeds(graph, name),
                                       INTERNVL_INT8_POLICY, calibration_name=calibration.name, settings=Int8Settings(activations=activations))
            log(f"  {row} {graph}: {quantized.policy[0]}, {quantized.seconds:.0f} s")
        encoders[row] = OnnxEncoder({g: folder / f"{g}.onnx" for g in INPUTS}, cpu, "int8")
    return encoders, model


def peak_rates(threads: int) -> dict[str, float]:
    """The matrix-multiply rate each row is compared with: its runtime's, in its dtype."""
    from zsbench.runtime.onnxrt_matmul import onnxruntime_matmul_rate

    cpu = torch.device("cpu")
    int8 = onnxruntime_matmul_rate("int8", threads)
    return {
        "torch fp32": measure_matmul_rate(cpu, torch.float32),
        "torch bf16": measure_matmul_rate(cpu, torch.bfloat16),
        "onnx fp32": onnxruntime_matmul_rate("fp32", threads),
        # Both int8 rows against ONNX Runtime's fast int8 product (uint8 x int8; see runtime/onnxrt_matmul.py).
        **dict.fromkeys(INT8_ROWS, int8),
    }


def main() -> None:
    from zsbench.runtime.cpu_features import cpu_name, native_bf16

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min_seconds", type=float, default=3.0, help="Seconds per encoder and input kind, over all rounds.")
    parser.add_argument("--calibration_samples", type=int, default=64)
    parser.add_argument("--text_length", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="zsbench-bench-precisions-") as temp:
        encoders, model = build_encoders(Path(temp), args.calibration_samples, log)
        image_size, vocab = model.config.image_size, model.config.text.vocab_size
        pixels, ids = synthetic_inputs(image_size, args.text_length, vocab, args.batch_size)
        flops_image, flops_text = count_flops(model, pixels, ids)
        peaks = peak_rates(args.threads)
        rates = measure_encoders(encoders, pixels, ids, args.rounds, args.min_seconds)
        peaks.update({name: max(peaks[name], rate) for name, rate in peak_rates(args.threads).items()})  # best of before and after
        reference = (encoders["torch fp32"].encode_image(pixels), encoders["torch fp32"].encode_text(ids))
        bf16 = native_bf16() or "emulated: no native bf16 on this CPU"
        print(f"CPU: {cpu_name()}, {args.threads} threads, batch {args.batch_size}, {args.text_length}-token texts; "
              f"torch {torch.__version__}; bf16: {bf16}")
        print(f"{flops_image / 1e9:.2f} GFLOP per image, {flops_text / 1e9:.3f} GFLOP per text; matmul rates (GOP/s): "
              + ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in peaks.items()))
        print("row           |   images/s  vs torch fp32  % of peak |    texts/s  vs torch fp32  % of peak | cosine image / text vs fp32")
        base = rates["torch fp32"]
        for name, encoder in encoders.items():
            rate = rates[name]
            cosine = [F.cosine_similarity(mine, ref, dim=-1).min().item()
                      for mine, ref in ((encoder.encode_image(pixels), reference[0]), (encoder.encode_text(ids), reference[1]))]
            print(f"{name:<13} | {rate.images_per_s:10.2f}  {rate.images_per_s / base.images_per_s:11.2f}x  "
                  f"{100 * rate.images_per_s * flops_image / peaks[name]:8.1f}% | {rate.texts_per_s:10.1f}  "
                  f"{rate.texts_per_s / base.texts_per_s:11.2f}x  {100 * rate.texts_per_s * flops_text / peaks[name]:8.1f}% | "
                  f"{cosine[0]:.5f} / {cosine[1]:.5f}")


if __name__ == "__main__":
    main()
