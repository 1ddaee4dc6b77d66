"""Every command-line option, declared once, in groups shared by the commands that take them (polygraphy's
`tools/args`, as data): the command-line layer's half of each config class.

The library's config dataclasses carry types and defaults only; here each gets an `Options` (field name ->
`CliSpec`, or a nested config's `Options`), from which `zsbench.options` builds the click options and, once
parsed, the config itself. The shared groups:

    MODEL        --model_type --model --pretrained --tokenizer --model_config --revision (`ModelRef`)
    DEVICE       --device
    PRECISION    --precision (any; `EXPORT_PRECISION`: those graphs come in)
    ARTIFACTS    --export_dir --engine_dir --parity_gate/--no-parity-gate (`BackendOptions`)
    CACHE        --cache_dir --no-cache --cache_features
    THREADS      --threads
    OUTPUT       -q/--quiet -v/--verbose (every command: `zsbench.options.verbosity_options`)

so every command that loads a model (eval, export, info, bench) takes the same model, device and artifact
options. To add an option: add the field (with its default) to the config class, and its `CliSpec` to the
config's `Options` below (or to a shared group).
"""

from __future__ import annotations

from zsbench.choices import (
    BACKEND_CHOICES,
    CHECKING_BACKEND_CHOICES,
    EXPORT_PRECISION_CHOICES,
    MODEL_TYPE_CHOICES,
    PRECISION_CHOICES,
    TASK_CHOICES,
)
from zsbench.demo.suite import DEMO_CHECKPOINT_ENV, DEMO_CHECKPOINT_NAME, DEMO_MODELS
from zsbench.export.config import format_profile, parse_profile
from zsbench.options import Choices, CliSpec, Options

# Shared groups.

MODEL_OPTIONS = {
    "model_type": CliSpec(help="Model family (see `zsbench models`).", choices=MODEL_TYPE_CHOICES, cli_default="internvl"),
    "model": CliSpec(help="Model name (see `zsbench models`)."),
    "pretrained": CliSpec(help="Checkpoint: .pth file, Hugging Face folder, hub id (ORG/NAME, fetched into the Hugging Face cache), "
                               "hf://ORG/REPO/FILE, or open_clip's file or pretrained tag."),
    "tokenizer": CliSpec(help="Folder with tokenizer.model (InternVL .pth)."),
    "model_config": CliSpec(help="InternVL config JSON (HF schema) for other sizes."),
    "revision": CliSpec(help="Hub revision (branch, tag or commit) of a --pretrained hub id or hf:// file."),
}
MODEL = Options("zsbench.models.ref:ModelRef", MODEL_OPTIONS)
DEVICE = {"device": CliSpec(help="auto (cuda when present, else cpu), cpu, cuda or cuda:N: where the model runs.")}
PRECISION = {"precision": CliSpec(choices=PRECISION_CHOICES, show_default="fp16 on a GPU, fp32 on a CPU", help="Weights and activations.")}
EXPORT_PRECISION = {"precision": CliSpec(
    choices=EXPORT_PRECISION_CHOICES, show_default="fp16 on a GPU, fp32 on a CPU (as `zsbench eval`)",
    help="Precision of the graphs: int8 and fp8 are quantized from fp32 ones, calibrated (fp8 only for TensorRT engines).",
)}
ARTIFACTS = Options("zsbench.backends:BackendOptions", {
    "export_root": CliSpec(flag="export_dir", help="onnx/trt: an export folder (e.g. `zsbench export --output_dir`'s), or a folder of "
                                                   "exports named <graph>-<checkpoint>-<precision>."),
    "engine_root": CliSpec(flag="engine_dir", help="trt: an engine folder (e.g. `zsbench engine build --output_dir`'s), or a folder "
                                                   "of engine folders named after their export."),
    "parity_gate": CliSpec(help="onnx/trt: run only artifacts whose parity check passed (--no-parity-gate: also those whose check "
                                "failed or never ran)."),
})
CACHE = {
    "cache_dir": CliSpec(help="Embedding cache folder (class embeddings; image features with --cache_features).",
                         show_default="$ZSBENCH_CACHE_DIR, else ~/.cache/zsbench"),
    "no_cache": CliSpec(help="Neither read nor write the embedding cache."),
    "cache_features": CliSpec(help="Also cache image embeddings per model, backend, precision, dataset, split and transform, "
                                   "so re-runs with other prompts or languages only encode texts."),
}
THREADS = {"threads": CliSpec(
    min=1, show_default="torch's default (one per core)",
    help="CPU threads of torch and ONNX Runtime (intra-op). Set it below the free cores for stable numbers on a shared machine.",
)}

# The commands' configs.

EVAL = Options("zsbench.eval.plan:EvalOptions", {
    "model_type": MODEL_OPTIONS["model_type"],
    "models": CliSpec(flag="model", help="Model name(s) (see `zsbench models`)."),
    "pretrained": CliSpec(help="Checkpoint(s): " + MODEL_OPTIONS["pretrained"].help.removeprefix("Checkpoint: ")),
    "revision": MODEL_OPTIONS["revision"],
    "pretrained_model": CliSpec(help="'model,pretrained' pair(s), or a file with one pair per line; overrides --model/--pretrained."),
    "task": CliSpec(help="zeroshot_classification, zeroshot_retrieval, or auto (from the dataset).", choices=TASK_CHOICES),
    "datasets": CliSpec(flag="dataset", help="Dataset name(s), or a file with one name per line."),
    "dataset_root": CliSpec(help="Dataset folder (fetched into when it lacks the dataset), or a hub dataset "
                                 "(https://huggingface.co/datasets/ORG/REPO/tree/REV, hf://datasets/ORG/REPO); "
                                 "may hold {dataset} or {dataset_cleaned}."),
    "split": CliSpec(help="Dataset split."),
    "languages": CliSpec(flag="language", help="Language(s) of class names, prompts and captions."),
    "output": CliSpec(help="Result file; may use {dataset} {pretrained} {pretrained_full_path} {model} {language} {task} {backend} {precision}."),
    "batch_size": CliSpec(help="Images per batch.", min=1),
    "num_workers": CliSpec(help="DataLoader worker processes (4, or the cores here if fewer).", min=0),
    **THREADS,
    "recall_k": CliSpec(help="k of Recall@k for retrieval.", min=1),
    "seed": CliSpec(help="Random seed."),
    "skip_existing": CliSpec(help="Skip runs whose output already holds a finished result."),
    "annotation_file": CliSpec(help="Caption file overriding a retrieval dataset's default."),
    "custom_classname_file": CliSpec(help="JSON: dataset name -> class names."),
    "custom_template_file": CliSpec(help="JSON: dataset name -> prompt templates."),
    "dump_classnames": CliSpec(help="Write the class names into the result JSON."),
    "dump_templates": CliSpec(help="Write the templates into the result JSON."),
    "no_amp": CliSpec(help="Force fp32 (CLIP_benchmark's flag)."),
    "backend": CliSpec(choices=BACKEND_CHOICES, help="torch, onnx (exported graphs, ONNX Runtime) or trt (TensorRT engines); "
                                                     "onnx/trt find or make their artifacts in export/ and engines/."),
    **DEVICE,
    **PRECISION,
    "tokenizer": MODEL_OPTIONS["tokenizer"],
    "model_config": MODEL_OPTIONS["model_config"],
    "skip_bad_images": CliSpec(help="Skip unreadable images and count them, instead of failing."),
    "offline": CliSpec(help="Never use the network: datasets and weights must be on disk or in the Hugging Face "
                            "cache (also ZSBENCH_OFFLINE=1 or HF_HUB_OFFLINE=1)."),
    "artifacts": ARTIFACTS,
    "test_split": CliSpec(help="CLIP_benchmark's other name for --split."),
    "normalize": CliSpec(help="CLIP_benchmark's linear-probe feature normalisation; zero-shot embeddings are always normalised."),
    "model_cache_dir": CliSpec(help="Folder searched for --pretrained when that path does not exist (local weights only, never a download)."),
    "feature_root": CliSpec(help="CLIP_benchmark's feature folder: caches image features there (the image-feature cache)."),
    **CACHE,
    "save_clf": CliSpec(help="CLIP_benchmark's flag: the cache folder classifiers are saved in (as --cache_dir)."),
    "load_clfs": CliSpec(help="CLIP_benchmark's flag: the cache folder classifiers are loaded from (as --cache_dir)."),
    "distributed": CliSpec(help="CLIP_benchmark's flag, accepted: under torchrun every process evaluates its share of the images "
                                "and prompts."),
})

PROBES = Options("zsbench.export.config:ProbeConfig", {
    "num_images": CliSpec(flag="parity_images", help="Synthetic probe images of the parity check.", min=1),
})
CALIBRATION = Options("zsbench.export.config:CalibrationConfig", {
    "dataset": CliSpec(flag="calibration_dataset", metavar="NAME",
                       help="int8/fp8: calibrate on this dataset (any name `zsbench datasets` lists, wds/<name> included): its "
                            "images, and its class names x templates (retrieval: its captions) as prompts.",
                       show_default="synthetic images of the parity probes' kinds and ImageNet prompts, none of them a probe"),
    "root": CliSpec(flag="calibration_root", metavar="DIR", help="The folder holding --calibration_dataset (as `eval --dataset_root`)."),
    "split": CliSpec(flag="calibration_split", help="The split of --calibration_dataset to calibrate on."),
    "num_samples": CliSpec(flag="calibration_samples", min=1, help="int8/fp8: images and prompts to calibrate on (each)."),
})
EXPORT = Options("zsbench.export.config:ExportConfig", {
    "model": MODEL,
    "out": CliSpec(flag="output_dir", aliases=("out",), show_default="export/<graph>-<checkpoint name>-<precision>", help="Output folder."),
    **EXPORT_PRECISION,
    "opset": CliSpec(show_default="23 for fp32 (ONNX Runtime's fused attention, RoPE and RMSNorm) and int8, 18 for fp16, fp8 and "
                                  "--engine trt (what TensorRT builds from)",
                     help="ONNX opset.", min=18),
    "force": CliSpec(help="Replace an output folder that holds another model's export."),
    **DEVICE,
    "probes": PROBES,
    "calibration": CALIBRATION,
    "keep_fp32": CliSpec(metavar="PATTERN", help="int8/fp8: also keep in fp32 the nodes matching this pattern (node name, module "
                                                 "such as '*.mlp.down_proj', or weight name); repeatable. A failing parity check "
                                                 "names the nodes to add."),
})
ENGINE = Options("zsbench.export.config:EngineConfig", {
    "artifact": CliSpec(argument=True, help="The fp16 export folder to build from."),
    "out": CliSpec(flag="output_dir", aliases=("out",), show_default="engines/<export name>", help="Engine folder."),
    "flavor": CliSpec(flag="trt_flavor", help="auto: by the GPU: TensorRT-RTX only on the cards it targets (the installed one's list; "
                                              "1.7: compute capability 7.5, 8.0, 8.6, 8.9, 12.0, 12.1) when standard TensorRT is not "
                                              "installed; standard TensorRT on every other card; without a GPU, TensorRT-RTX ahead of time."),
    "batch_profiles": CliSpec(flag="batch", parse=parse_profile, show=format_profile,
                              help="Batch-size optimization profile MIN:OPT:MAX; repeat for several profiles."),
    "text_length": CliSpec(parse=parse_profile, show=format_profile,
                           help="Token-length profile MIN:OPT:MAX of text graphs of any length (capped at the tokenizer's context length)."),
    "workspace_gib": CliSpec(flag="workspace", min=0.0625, help="Builder workspace limit, GiB."),
    "timing_cache": CliSpec(show_default="engines/timing.cache", help="Timing cache file (standard TensorRT)."),
    "compute_capabilities": CliSpec(comma_list=True, show_default="ahead of time: every target the installed TensorRT-RTX lists but 7.5; "
                                                                  "on a GPU: that GPU",
                                    help="TensorRT-RTX: comma-separated compute capabilities to build for, e.g. 7.5,8.6 (7.5, Turing, "
                                         "only when named)."),
    "force": CliSpec(help="Rebuild even if matching engines exist."),
})
# The engine options `export --engine trt` shares with `engine build`.
ENGINE_SETTINGS = ("flavor", "batch_profiles", "text_length", "workspace_gib", "timing_cache", "compute_capabilities")

BENCH = Options("zsbench.bench.config:BenchConfig", {
    "model": MODEL,
    "backends": CliSpec(comma_list=True, choices=BACKEND_CHOICES, help="Comma-separated backends."),
    "precisions": CliSpec(comma_list=True, choices=PRECISION_CHOICES, help="Comma-separated precisions."),
    "batch_sizes": CliSpec(comma_list=True, help="Comma-separated batch sizes."),
    "text_length": CliSpec(min=3, max=80, help="Tokens per text (a typical prompt, BOS and EOS included)."),
    **DEVICE,
    "min_seconds": CliSpec(min=0.05, help="Measure each row for at least this long, over all rounds."),
    "rounds": CliSpec(min=1, help="Interleaved rounds per batch size; each row keeps its best round."),
    **THREADS,
    "artifacts": ARTIFACTS,
})

DEMO = Options("zsbench.demo.suite:DemoConfig", {
    "data_dir": CliSpec(help="Where the demo datasets are generated (once)."),
    "output_dir": CliSpec(help="Where the result JSONs go (<backend>/<dataset>_<model>.json)."),
    "pretrained": CliSpec(show_default=f"${DEMO_CHECKPOINT_ENV}, else ./pretrained/{DEMO_CHECKPOINT_NAME}, else the one beside the "
                                       "zsbench package", help="The demo checkpoint."),
    "backends": CliSpec(comma_list=True, choices=BACKEND_CHOICES, help="Backends to run the suite on (onnx exports and checks the graphs first)."),
    "models": CliSpec(comma_list=True, choices=Choices("demo model", lambda: DEMO_MODELS), help="Which of the demo's models to evaluate."),
    **DEVICE,
    "batch_size": CliSpec(min=1, help="Images per batch."),
    "num_workers": CliSpec(min=0, help="DataLoader worker processes (4, or the cores here if fewer)."),
    **THREADS,
})

DOWNLOAD = Options("zsbench.data.acquire:DownloadOptions", {
    "names": CliSpec(argument=True, help="Dataset names or collections (internvl_paper, vtab, retrieval, ...)."),
    "root": CliSpec(help="A data folder: each dataset goes where the seed's command lines read it (DIR/imagenet-1k/, DIR/flickr30k/, "
                         "DIR/ itself for torchvision's datasets, ...)."),
    "dataset_root": CliSpec(help="Instead of --root: exactly the folder `zsbench eval --dataset_root` reads."),
    "languages": CliSpec(flag="language", help="Language(s) whose files to fetch (captions of retrieval sets; XTD10 takes en es fr "
                                               "it jp ko pl ru tr zh)."),
    "split": CliSpec(help="Split to fetch (hub mirrors hold test, and for some datasets train)."),
    "dry_run": CliSpec(help="List what would be fetched, where, its size and checksum, and fetch nothing."),
})

# The options of the commands whose configs live in `zsbench.cli`.

MODELS_COMMAND = Options("zsbench.cli:ModelsOptions", {
    "open_clip": CliSpec(help="Also list open_clip's architectures (imports open_clip and torch)."),
})
INFO = Options("zsbench.cli:InfoOptions", {"model": MODEL, **DEVICE, **PRECISION})
BUILD = Options("zsbench.cli:BuildOptions", {
    "paths": CliSpec(argument=True, help="Result JSONs, or folders of them."),
    "output": CliSpec(help="table.csv, table.md, or - for Markdown on stdout."),
    "compare_paper": CliSpec(help="Add the InternVL paper's number and the difference beside each metric."),
    "columns": CliSpec(comma_list=True, show_default="model, pretrained, dataset, language, (task, device in CSV,) backend, precision",
                       help="Comma-separated columns before the metrics: result fields, provenance short names (gpu, "
                            "compute_capability, driver, cuda, cpu, threads, torch, onnxruntime, tensorrt, tensorrt_rtx, "
                            "polygraphy, commit, checkpoint, ...) or dotted paths such as env.gpu.memory_gib."),
})
REPORT = Options("zsbench.cli:ReportOptions", {
    "paths": CliSpec(argument=True, help="Result JSONs and `zsbench bench --output` files, or folders of them."),
    "output_dir": CliSpec(help="Folder for report.md and its PNG figures.", aliases=("out",)),
})
DOCTOR = Options("zsbench.cli:DoctorOptions", {
    "as_json": CliSpec(flag="json", help="Print the report as one JSON object (for scripts)."),
    "timeout": CliSpec(min=1.0, help="Seconds the probe of torch, the GPUs and the libraries may take."),
})
DATASETS_COMMAND = Options("zsbench.cli:DatasetsOptions", {
    "layout": CliSpec(metavar="NAME", help="Draw the on-disk layout one dataset expects."),
})
PARITY = Options("zsbench.cli:ParityOptions", {
    "artifact": CliSpec(help="Export folder (export/<name>)."),
    "backend": CliSpec(choices=CHECKING_BACKEND_CHOICES, help="onnx: the graphs with ONNX Runtime; trt: the engines (needs a GPU)."),
    "engine_dir": CliSpec(aliases=("engines",), show_default="engines/<export name>", help="Engine folder."),
    **DEVICE,
})
