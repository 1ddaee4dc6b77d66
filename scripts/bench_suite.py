"""Whole-suite time: zsbench against CLIP_benchmark's own evaluation loop, side by side in one run.

Both drive the same model (zsbench's `load_clip` of the committed demo checkpoint, torch, fp32)
on the same generated data: a scaled-down copy of the paper's suite, in CLIP_benchmark's
webdataset layout. Five ImageNet-like classification sets share class names and templates as
the real ones do (1k, V2 and Sketch all the names; A and R a subset each), one more set has its
own templates, and one retrieval set has two captions per image. The prompt-to-image ratio of
the ImageNet sets is about IN-1k's (80k prompts for 50k images).

- CLIP_benchmark: its `cli.py` loop, per set: load the model (its `run(args)` loads it for every
  dataset), then `clip_benchmark.metrics.zeroshot_classification.evaluate` or
  `zeroshot_retrieval.evaluate` (amp off: fp32 on the CPU), with zsbench's tokenizer (batches
  padded to their longest prompt).
- seed: the pipeline the paper's numbers come from, InternVL's fork of CLIP_benchmark, which
  drives the model through its Hugging Face wrapper (`clip_benchmark/models/internvl_huggingface`):
  the same loop and per-set reload, but its tokenizer pads every prompt and caption to 80 tokens
  (`padding='max_length', max_length=80`), so every text costs 80 positions. Modelled here with
  the same model and data (zsbench's tokenizer with `pad_to=80` gives the wrapper's ids: its pad
  piece ' ' is `<unk>` = 0); the fork loads fp16 weights for a GPU, fp32 here like every column.
- zsbench cold: one `zsbench eval` call over the whole suite with an empty cache folder and
  `--cache_features`; zsbench warm: the same call again, finding both caches filled.
- zsbench onnx int8 cold: the cold call with `--backend onnx --precision int8`: ONNX Runtime running
  graphs quantized by `zsbench export --precision int8` (calibrated on its default synthetic set,
  behind the int8 parity gate). The export (fp32 graphs, calibration, quantization, parity check)
  is made once, before the rounds, into the work folder, and timed apart: like a TensorRT engine
  it is made once per checkpoint and serves every later suite, so it is shown beside the column,
  not inside it, and the ratios with it counted are printed too.

Every timing includes loading the model (or opening the ONNX Runtime sessions) and opening the
data; the five run in interleaved rounds (`--rounds`) and each keeps its fastest. A Markdown table
goes to stdout (the README's `<!-- BEGIN bench-suite -->` block); progress goes to stderr.

    PYTHONPATH=. python scripts/bench_suite.py [--scale 1.0] [--rounds 3] [--batch_size 64] [--num_workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from zsbench.backends import BACKENDS, BackendOptions  # noqa: E402
from zsbench.data import build_dataset  # noqa: E402
from zsbench.data.types import ClassificationDataset, load_picture  # noqa: E402
from zsbench.demo.scenes import CLASSNAMES, SAMPLERS  # noqa: E402
from zsbench.demo.wds import sample_key, write_split  # noqa: E402
from zsbench.eval.plan import EvalOptions, plan_runs  # noqa: E402
from zsbench.eval.runner import run_evaluations  # noqa: E402
from zsbench.models import load_clip  # noqa: E402
from zsbench.models.ref import ModelRef  # noqa: E402

CHECKPOINT = REPO / "pretrained" / "zsbench-demo"
MODEL = "internvl_c_classification_hf"
# 16 of CLIP's ImageNet templates: 48 classes x 16 = 768 prompts for 500 images, about IN-1k's ratio.
IMAGENET_TEMPLATES = (
    "a bad photo of a {c}.", "a photo of many {c}.", "a sculpture of a {c}.", "a photo of the hard to see {c}.",
    "a low resolution photo of the {c}.", "a rendering of a {c}.", "graffiti of a {c}.", "a bad photo of the {c}.",
    "a cropped photo of the {c}.", "a tattoo of a {c}.", "the embroidered {c}.", "a photo of a hard to see {c}.",
    "a bright photo of a {c}.", "a photo of a clean {c}.", "a photo of a dirty {c}.", "a dark photo of the {c}.",
)
OTHER_TEMPLATES = ("a photo of a {c}.", "a {c}.", "a picture of a {c}.", "a drawing of a {c}.")


@dataclass(frozen=True)
class SuiteSet:
    """One generated dataset: its name, task, size, seed of its images and (classification) classes and templates."""

    name: str
    task: str
    images: int
    seed: int
    classes: tuple[int, ...] = tuple(range(len(CLASSNAMES)))
    templates: tuple[str, ...] = IMAGENET_TEMPLATES


def suite(scale: float) -> list[SuiteSet]:
    """The suite's sets, their image counts multiplied by `scale`."""
    def n(count: int) -> int:
        return max(10, round(count * scale))

    return [
        SuiteSet("suite_in1k", "classification", n(500), seed=1),
        SuiteSet("suite_inv2", "classification", n(500), seed=2),
        SuiteSet("suite_insketch", "classification", n(500), seed=3),
        SuiteSet("suite_ina", "classification", n(200), seed=4, classes=tuple(range(0, 48, 3))),
        SuiteSet("suite_inr", "classification", n(200), seed=5, classes=tuple(range(1, 48, 3))),
        SuiteSet("suite_other", "classification", n(300), seed=6, templates=OTHER_TEMPLATES),
        SuiteSet("suite_retrieval", "retrieval", n(300), seed=7),
    ]


def write_set(root: Path, spec: SuiteSet) -> Path:
    """Writes `spec` as a CLIP_benchmark webdataset export under `root/<name>` (PNG images)."""
    import io

    folder = root / spec.name
    if (folder / "dataset_type.txt").is_file():
        return folder
    sampler = SAMPLERS[spec.task]  # type: ignore[index]
    remap = {old: new for new, old in enumerate(spec.classes)}
    samples, index = [], 0
    while len(samples) < spec.images:
        sample = sampler(spec.seed, "test", index)
        index += 1
        if spec.task == "classification" and sample.target not in remap:
            continue
        buffer = io.BytesIO()
        sample.image.save(buffer, format="PNG")
        target = str(remap[sample.target]) if spec.task == "classification" else "\n".join(sample.target)  # type: ignore[index,arg-type]
        field = "cls" if spec.task == "classification" else "txt"
        samples.append((sample_key(len(samples)), {"png": buffer.getvalue(), field: target.encode()}))
    write_split(folder / "test", samples, samples_per_shard=500)
    (folder / "dataset_type.txt").write_text(spec.task + "\n")
    if spec.task == "classification":
        (folder / "classnames.txt").write_text("".join(f"{CLASSNAMES[c]}\n" for c in spec.classes))
        (folder / "zeroshot_classification_templates.txt").write_text("".join(f"{t}\n" for t in spec.templates))
    return folder


class _Pictures(torch.utils.data.Dataset):
    """CLIP_benchmark's view of a dataset: (transformed image, target or captions), and `classes`."""

    def __init__(self, samples: Any, transform: Callable, classes: list[str] | None) -> None:
        self.samples, self.transform, self.classes = samples, transform, classes

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        picture, target = self.samples[index]
        return self.transform(load_picture(picture)), target


# The InternVL fork's Hugging Face tokenizer wrapper pads every text to this many tokens.
SEED_TEXT_LENGTH = 80


def clip_benchmark_suite(root: Path, sets: list[SuiteSet], batch_size: int, workers: int,
                         pad_to: int | None = None, label: str = "CLIP_benchmark") -> tuple[float, dict[str, tuple[float, dict]]]:
    """Total seconds and per-set (seconds, metrics) of CLIP_benchmark's evaluate functions over the suite
    (texts padded to `pad_to` tokens when given, as the seed's tokenizer does)."""
    from clip_benchmark.datasets.builder import image_captions_collate_fn
    from clip_benchmark.metrics import zeroshot_classification, zeroshot_retrieval

    start = time.perf_counter()
    rows = {}
    for spec in sets:
        began = time.perf_counter()
        # As CLIP_benchmark's cli.py `run(args)` does for every (model, dataset, language): load, then evaluate.
        model, transform, tokenize = load_clip("internvl", MODEL, str(CHECKPOINT), "cpu", "fp32")
        model.eval()
        tokenizer = tokenize if pad_to is None else (lambda texts, tokenize=tokenize: tokenize(texts, pad_to=pad_to))
        dataset = build_dataset(f"wds/{spec.name}", root / spec.name, split="test", language="en")
        collate = None if isinstance(dataset, ClassificationDataset) else image_captions_collate_fn
        classes = dataset.classnames if isinstance(dataset, ClassificationDataset) else None
        loader = torch.utils.data.DataLoader(_Pictures(dataset.samples, transform, classes), batch_size=batch_size,
                                             num_workers=workers, collate_fn=collate)
        if isinstance(dataset, ClassificationDataset):
            metrics = zeroshot_classification.evaluate(model, loader, tokenizer, dataset.classnames, dataset.templates,
                                                       "cpu", amp=False)
        else:
            metrics = zeroshot_retrieval.evaluate(model, loader, tokenizer, "cpu", amp=False, recall_k_list=[1, 5, 10])
        rows[spec.name] = (time.perf_counter() - began, metrics)
        print(f"{label} {spec.name}: {rows[spec.name][0]:.1f}s", file=sys.stderr)
    return time.perf_counter() - start, rows


def export_int8(exports: Path) -> float:
    """Seconds to make (or find) the onnx int8 export of the suite's model under `exports`, as `zsbench eval
    --backend onnx --precision int8` would on its first run: fp32 graphs, calibration, quantization, parity check."""
    start = time.perf_counter()
    BACKENDS.get("onnx").build(ModelRef("internvl", MODEL, str(CHECKPOINT)), torch.device("cpu"), "int8",
                               BackendOptions(export_root=exports, log=lambda message: print(message, file=sys.stderr)))
    return time.perf_counter() - start


def zsbench_suite(root: Path, sets: list[SuiteSet], cache: Path, batch_size: int, workers: int, backend: str = "torch",
                  precision: str = "fp32", exports: Path = Path("export")) -> tuple[float, dict[str, tuple[float, dict]]]:
    """Total seconds and per-set (seconds, result) of one `zsbench eval` call over the suite (onnx: its graphs
    found under `exports`)."""
    options = EvalOptions(model_type="internvl", models=(MODEL,), pretrained=(str(CHECKPOINT),),
                          datasets=tuple(f"wds/{spec.name}" for spec in sets), dataset_root=f"{root}/{{dataset}}",
                          output=str(cache.parent / "results" / cache.name / "{dataset}.json"), batch_size=batch_size,
                          num_workers=workers, backend=backend, device="cpu", precision=precision,  # type: ignore[arg-type]
                          artifacts=BackendOptions(export_root=exports), cache_dir=str(cache), cache_features=True)
    start = time.perf_counter()
    outcomes = run_evaluations(plan_runs(options), quiet=True, log=lambda message: print(message, file=sys.stderr))
    total = time.perf_counter() - start
    return total, {outcome.run.dataset.removeprefix("wds/"): (outcome.result["throughput"]["wall_seconds"], outcome.result)
                   for outcome in outcomes if outcome.result}


def headline(metrics: dict) -> str:
    key = "acc1" if "acc1" in metrics else "image_retrieval_recall@5"
    return f"{key.replace('image_retrieval_', 'img ')} {metrics[key]:.4f}"


# pipeline -> its column's header, in the order they run in each round
PIPELINES = {"seed": "seed", "clip": "CLIP_benchmark", "cold": "zsbench cold", "warm": "zsbench warm",
             "int8": "zsbench onnx int8 cold"}
Timing = tuple[float, dict[str, tuple[float, dict]]]  # total seconds, set -> (seconds, metrics or result)


def ratios(baseline: Timing, best: dict[str, Timing], export_seconds: float) -> str:
    """`baseline`'s time over each zsbench pipeline's, and over onnx int8's with its export counted."""
    shown = [f"**{baseline[0] / best[name][0]:.2f}x** {label}" for name, label in
             (("cold", "torch cold"), ("int8", "onnx int8 cold"), ("warm", "torch warm"))]
    return ", ".join(shown) + f" ({baseline[0] / (best['int8'][0] + export_seconds):.2f}x onnx int8 with its export counted)"


def markdown(sets: list[SuiteSet], best: dict[str, Timing], export_seconds: float, rounds: int) -> str:
    """The side-by-side table (each pipeline's fastest round), the export's time and the ratios."""
    def metric(name: str, spec: SuiteSet) -> str:
        value = best[name][1][spec.name][1]
        return headline(value if name in ("seed", "clip") else value["metrics"])

    lines = [
        "| set | images | texts encoded (CLIP_benchmark and seed / zsbench cold / warm) | "
        + " | ".join(f"{header} s" for header in PIPELINES.values())
        + " | metric (" + " / ".join(PIPELINES.values()) + ") |",
        "|---|---:|---:|" + "---:|" * len(PIPELINES) + "---|",
    ]
    for spec in sets:
        prompts = len(spec.classes) * len(spec.templates) if spec.task == "classification" else 2 * spec.images
        texts = f"{prompts} / {best['cold'][1][spec.name][1]['throughput']['texts']} / {best['warm'][1][spec.name][1]['throughput']['texts']}"
        seconds = " | ".join(f"{best[name][1][spec.name][0]:.1f}" for name in PIPELINES)
        lines.append(f"| {spec.name} | {spec.images} | {texts} | {seconds} | {' / '.join(metric(name, spec) for name in PIPELINES)} |")
    totals = " | ".join(f"**{best[name][0]:.1f}**" for name in PIPELINES)
    lines += [
        f"| **whole suite** (model load included) | {sum(s.images for s in sets)} | | {totals} | |",
        "",
        f"onnx int8's export (fp32 graphs, calibration, quantization, parity check), made once before the rounds and not in its "
        f"column: {export_seconds:.1f} s.",
        "",
        f"zsbench vs the seed's pipeline (target >= 3x): {ratios(best['seed'], best, export_seconds)}; "
        f"vs CLIP_benchmark's loop (target >= 2x): {ratios(best['clip'], best, export_seconds)} "
        f"(fastest of {rounds} interleaved rounds each; {torch.get_num_threads()} torch threads, {len(sets)} sets, "
        "demo checkpoint, on the CPU).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply every set's image count.")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; each pipeline keeps its fastest.")
    parser.add_argument("--work", type=Path, default=None,
                        help="Folder for data, exports, caches and results [default: a temp folder]. An int8 export left "
                             "there by an earlier run is reused (its time then is only the check that finds it).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zsbench-bench-suite-") as temp:
        work = args.work or Path(temp)
        sets = suite(args.scale)
        for spec in sets:
            write_set(work / "data", spec)
        export_seconds = export_int8(work / "exports")
        print(f"onnx int8 export: {export_seconds:.1f}s", file=sys.stderr)
        timings: dict[str, list[Timing]] = {name: [] for name in PIPELINES}
        runs: dict[str, Callable[[Path], Timing]] = {
            "seed": lambda cache: clip_benchmark_suite(work / "data", sets, args.batch_size, args.num_workers,
                                                       pad_to=SEED_TEXT_LENGTH, label="seed"),
            "clip": lambda cache: clip_benchmark_suite(work / "data", sets, args.batch_size, args.num_workers),
            "cold": lambda cache: zsbench_suite(work / "data", sets, cache, args.batch_size, args.num_workers),
            "warm": lambda cache: zsbench_suite(work / "data", sets, cache, args.batch_size, args.num_workers),
            "int8": lambda cache: zsbench_suite(work / "data", sets, cache.with_name(cache.name + "-int8"), args.batch_size,
                                                args.num_workers, backend="onnx", precision="int8", exports=work / "exports"),
        }
        # Interleaved rounds, each pipeline keeping its best: on a shared machine a neighbour's job
        # slows whichever pipeline it overlaps, not all of them alike.
        for round_index in range(args.rounds):
            cache = work / f"cache-{time.time_ns()}"  # empty: the cold runs fill it (int8 its own), the warm run reads it
            for name, run in runs.items():
                timings[name].append(run(cache))
            print(f"round {round_index + 1}: " + ", ".join(f"{name} {kept[-1][0]:.1f}s" for name, kept in timings.items()),
                  file=sys.stderr)
        best = {name: min(runs, key=lambda run: run[0]) for name, runs in timings.items()}
        print(markdown(sets, best, export_seconds, args.rounds))


if __name__ == "__main__":
    main()
