"""From command-line options to one frozen `EvalRun` per (model, dataset, language), as CLIP_benchmark expands them."""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zsbench.backends import ModelRef
from zsbench.errors import ZsbenchError

TASKS = ("zeroshot_classification", "zeroshot_retrieval")
DEFAULT_OUTPUT = "{dataset}_{pretrained}_{model}_{language}_{task}.json"


@dataclass(frozen=True)
class EvalOptions:
    """`zsbench eval`'s options, with CLIP_benchmark's names and defaults (recall_k as InternVL's fork: 1 5 10)."""

    model_type: str = "open_clip"
    models: tuple[str, ...] = ("ViT-B-32-quickgelu",)
    pretrained: tuple[str, ...] = ("laion400m_e32",)
    pretrained_model: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ("cifar10",)
    dataset_root: str = "root"
    languages: tuple[str, ...] = ("en",)
    task: str = "auto"
    output: str = DEFAULT_OUTPUT
    split: str = "test"
    annotation_file: str | None = None
    custom_classname_file: str | None = None
    custom_template_file: str | None = None
    dump_classnames: bool = False
    dump_templates: bool = False
    batch_size: int = 64
    num_workers: int = 4
    recall_k: tuple[int, ...] = (1, 5, 10)
    seed: int = 0
    skip_existing: bool = False
    skip_bad_images: bool = False
    backend: str = "torch"
    device: str = "cpu"
    precision: str = "fp32"
    tokenizer: str | None = None
    model_config: str | None = None
    no_parity_gate: bool = False
    export_dir: str = "export"  # onnx/trt: an export folder, or a folder of exports
    engine_dir: str = "engines"  # trt: an engine folder, or a folder of engine folders
    # Scale-out and embedding caches (zsbench.eval.distributed, zsbench.eval.cache).
    cache_dir: str | None = None  # None: zsbench.eval.cache.default_cache_dir()
    no_cache: bool = False
    cache_features: bool = False
    save_clf: str | None = None  # CLIP_benchmark's flags, mapped onto cache_dir (`cache_folder`)
    load_clfs: tuple[str, ...] = ()
    distributed: bool = False  # CLIP_benchmark's flag; torchrun's environment decides the ranks


@dataclass(frozen=True)
class EvalRun:
    """One evaluation: a model on a dataset in a language, with everything needed to run it."""

    model: ModelRef
    dataset: str
    dataset_root: str
    language: str
    task: str
    output: str
    options: EvalOptions

    def to_plan_dict(self) -> dict[str, Any]:
        """The resolved plan (what `--dry-run` prints)."""
        from zsbench.data import dataset_loader_name

        return {
            "dataset": self.dataset,
            "model": self.model.model,
            "pretrained": self.model.pretrained,
            "model_type": self.model.model_type,
            "model_loader": _model_loader_name(self.model),
            "dataset_loader": dataset_loader_name(self.dataset),
            "task": self.task,
            "language": self.language,
            "dataset_root": self.dataset_root,
            "split": self.options.split,
            "annotation_file": self.options.annotation_file,
            "output": self.output,
            "backend": self.options.backend,
            "device": self.options.device,
            "precision": self.options.precision,
            "batch_size": self.options.batch_size,
        }


def _model_loader_name(model: ModelRef) -> str:
    if model.model_type == "open_clip":
        return "open_clip"
    from zsbench.models import INTERNVL_MODELS

    spec = INTERNVL_MODELS.get(model.model)
    return f"internvl_{spec.checkpoint_format}/InternVL-{spec.image_head.upper()}/{spec.task}"


def _read_list_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def expand_models(options: EvalOptions) -> list[tuple[str, str]]:
    """(model, pretrained) pairs: `--pretrained_model` entries ("model,pretrained" or a file of them),
    else the product of `--model` and `--pretrained`."""
    if not options.pretrained_model:
        return list(itertools.product(options.models, options.pretrained))
    pairs = []
    for entry in options.pretrained_model:
        lines = _read_list_file(Path(entry)) if Path(entry).is_file() else [entry]
        for line in lines:
            model, sep, pretrained = line.partition(",")
            if not sep:
                raise ZsbenchError(f"--pretrained_model '{line}' is not of the form 'model,pretrained' (nor a file of such lines).")
            pairs.append((model.strip(), pretrained.strip()))
    return pairs


def expand_datasets(names: tuple[str, ...]) -> list[str]:
    """Dataset names; an entry that is a file holds one name per line."""
    datasets: list[str] = []
    for name in names:
        datasets.extend(_read_list_file(Path(name)) if Path(name).is_file() else [name])
    return datasets


def pretrained_slug(pretrained: str) -> str:
    """The checkpoint's name in output paths: the last path component (file or folder).

    CLIP_benchmark uses the basename only when the file exists; zsbench's rule does not
    depend on the disk, so a dry run resolves the same paths as the real run.
    """
    name = Path(pretrained).name
    return name or pretrained


def path_component(value: str) -> str:
    """`value` as one file-name piece: path separators (and NUL) become '_', and '.' or '..'
    alone become underscores, so a substituted value never leaves the folder the template names."""
    safe = value.replace("/", "_").replace("\\", "_").replace("\0", "_")
    return "_" * len(safe) if safe in (".", "..") else safe


def fill_template(option: str, template: str, values: dict[str, str]) -> str:
    """`template` (the value of `option`) with its `{name}` placeholders replaced by `values`.

    Raises:
        ZsbenchError: a placeholder that is not a key of `values`, a stray brace, or a format spec.
    """
    allowed = ", ".join("{" + name + "}" for name in values)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ZsbenchError(
            f"{option} {template!r} is not a valid template ({err}). Expected placeholders among {allowed}; "
            "write a literal brace as {{ or }}."
        ) from err
    pieces = []
    for literal, field, spec, conversion in parsed:
        pieces.append(literal)
        if field is None:
            continue
        if field not in values or spec or conversion:
            shown = field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ZsbenchError(f"{option} {template!r} uses {{{shown}}}, which zsbench does not fill. Expected only {allowed}.")
        pieces.append(values[field])
    return "".join(pieces)


def plan_runs(options: EvalOptions) -> list[EvalRun]:
    """Every (model, dataset, language) of the options, in CLIP_benchmark's order."""
    from zsbench.data import default_task

    cache_folder(options)  # conflicting cache folders fail before anything is read
    if options.task not in (*TASKS, "auto"):
        raise ZsbenchError(
            f"--task {options.task} is not supported: zsbench runs {', '.join(TASKS)} (or auto, from the dataset)."
        )
    runs = []
    for (model, pretrained), dataset, language in itertools.product(
        expand_models(options), expand_datasets(options.datasets), options.languages
    ):
        name = dataset.removeprefix("wds/")
        root = fill_template("--dataset_root", options.dataset_root, {"dataset": name, "dataset_cleaned": name.replace("/", "-")})
        task = default_task(dataset, Path(root)) if options.task == "auto" else options.task
        # Every value is one file-name piece: `--language ../../x` cannot leave the output folder.
        values = {
            "model": model,
            "pretrained": pretrained_slug(pretrained),
            "pretrained_full_path": pretrained,
            "task": task,
            "dataset": name,
            "language": language,
            "backend": options.backend,
            "precision": options.precision,
        }
        output = fill_template("--output", options.output, {key: path_component(value) for key, value in values.items()})
        ref = ModelRef(options.model_type, model, pretrained, options.tokenizer, options.model_config)
        runs.append(EvalRun(ref, dataset, root, language, task, output, options))
    return runs


def resolve_device_and_precision(device: str | None, precision: str | None, no_amp: bool) -> tuple[str, str]:
    """cuda when present (else cpu); fp16 on a GPU as the seed runs, fp32 on a CPU; `--no_amp` forces fp32."""
    from zsbench.models import default_device
    from zsbench.models.factory import parse_device

    device = device or default_device()
    parse_device(device)  # `--device tpu` fails before any dataset is read
    if no_amp and precision not in (None, "fp32"):
        raise ZsbenchError(f"--no_amp forces fp32 but --precision {precision} was also given; pass only one.")
    if no_amp:
        return device, "fp32"
    return device, precision or ("fp16" if device.startswith("cuda") else "fp32")


def cache_folder(options: EvalOptions) -> str | None:
    """`--cache_dir`, with CLIP_benchmark's `--save_clf PATH` / `--load_clfs PATH` mapped onto it: zsbench
    saves and loads classifiers in its content-keyed cache, so each names the cache folder to use
    (None: the default folder)."""
    named = {value for value in (options.cache_dir, options.save_clf, *options.load_clfs) if value}
    if len(named) > 1:
        raise ZsbenchError(
            f"--cache_dir/--save_clf/--load_clfs name different folders ({', '.join(sorted(named))}). zsbench keeps "
            "classifiers in one content-keyed cache folder (CLIP_benchmark's classifier ensembles are not supported); "
            "pass one folder."
        )
    return named.pop() if named else None


def eval_options_from_cli(
    *,
    models: tuple[str, ...],
    datasets: tuple[str, ...],
    languages: tuple[str, ...],
    recall_k: tuple[int, ...],
    tokenizer_path: str | None,
    device: str | None,
    precision: str | None,
    no_amp: bool,
    quiet: bool,
    **options: Any,
) -> EvalOptions:
    """Builds the typed options from `zsbench eval`'s parsed flags."""
    del quiet  # a display setting, not part of what is evaluated
    device, precision = resolve_device_and_precision(device, precision, no_amp)
    return EvalOptions(
        models=tuple(models),
        datasets=tuple(datasets),
        languages=tuple(languages),
        recall_k=tuple(recall_k),
        tokenizer=tokenizer_path,
        device=device,
        precision=precision,
        pretrained=tuple(options.pop("pretrained")),
        pretrained_model=tuple(options.pop("pretrained_model")),
        **options,
    )
