"""From command-line options to one frozen `EvalRun` per (model, dataset, language), as CLIP_benchmark expands them."""

from __future__ import annotations

import itertools
import os
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from zsbench.backends import BACKENDS, BackendOptions, ModelRef, check_precision
from zsbench.errors import UnknownNameError, UnsupportedFlagError, ZsbenchError
from zsbench.models.families import export_spec, get_family
from zsbench.types import TASKS, Backend, Device, ModelType, Precision, resolve_device, resolve_precision

DEFAULT_OUTPUT = "{dataset}_{pretrained}_{model}_{language}_{task}.json"


def default_num_workers() -> int:
    """DataLoader workers: 4 (CLIP_benchmark's default), or fewer on a machine with fewer cores."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@dataclass(frozen=True)
class EvalOptions:
    """`zsbench eval`'s options, with CLIP_benchmark's names and defaults (recall_k as InternVL's fork: 1 5 10).

    The command-line layer declares an option for each field (`zsbench.cli_args.EVAL`).
    """

    model_type: ModelType = "open_clip"
    models: tuple[str, ...] = ("ViT-B-32-quickgelu",)
    pretrained: tuple[str, ...] = ("laion400m_e32",)
    revision: str | None = None
    pretrained_model: tuple[str, ...] = ()
    task: str = "auto"
    datasets: tuple[str, ...] = ("cifar10",)
    dataset_root: str = "root"
    split: str = "test"
    languages: tuple[str, ...] = ("en",)
    output: str = DEFAULT_OUTPUT
    batch_size: int = 64
    num_workers: int = default_num_workers()
    threads: int | None = None
    recall_k: tuple[int, ...] = (1, 5, 10)
    seed: int = 0
    skip_existing: bool = False
    annotation_file: str | None = None
    custom_classname_file: str | None = None
    custom_template_file: str | None = None
    dump_classnames: bool = False
    dump_templates: bool = False
    no_amp: bool = False
    backend: Backend = "torch"
    device: Device = "auto"
    precision: Precision | None = None
    tokenizer: str | None = None
    model_config: str | None = None
    skip_bad_images: bool = False
    offline: bool = False
    artifacts: BackendOptions = field(default_factory=BackendOptions)  # where onnx/trt find exports and engines, the gate
    # CLIP_benchmark's remaining eval flags, with its meaning (issue 14).
    test_split: str | None = None
    normalize: bool = True
    model_cache_dir: str | None = None
    feature_root: str | None = None
    # Scale-out and embedding caches (zsbench.eval.distributed, zsbench.eval.cache; issue 13).
    cache_dir: str | None = None
    no_cache: bool = False
    cache_features: bool = False
    save_clf: str | None = None
    load_clfs: tuple[str, ...] = ()
    distributed: bool = False

    def resolved(self) -> EvalOptions:
        """These options with `device` and `precision` resolved (`zsbench.types`), and the backend checked.

        A device that is absent here is kept (a dry run plans for another machine); loading checks it.

        Raises:
            UnknownNameError: an unknown backend or precision.
            UnsupportedPrecisionError: a precision the backend does not run.
        """
        if self.backend not in BACKENDS:  # before any dataset is opened
            raise UnknownNameError("backend", self.backend, BACKENDS.names())
        device = resolve_device(self.device, require_present=False)
        precision = resolve_precision(self.precision, device, no_amp=self.no_amp)
        check_precision(self.backend, precision)
        options = replace(self, device=str(device), precision=precision)
        if self.test_split is not None:
            if self.split not in ("test", self.test_split):
                raise ZsbenchError(f"--split {self.split} and --test_split {self.test_split} name the same setting; pass only one.")
            options = replace(options, split=self.test_split, test_split=None)
        if self.feature_root is not None:  # CLIP_benchmark's feature folder is the image-feature cache's folder
            if self.no_cache:
                raise ZsbenchError(f"--feature_root {self.feature_root} keeps image features in the embedding cache, which --no-cache turns off; pass one.")
            if self.cache_dir not in (None, self.feature_root):
                raise ZsbenchError(f"--feature_root {self.feature_root} and --cache_dir {self.cache_dir} name the cache folder twice; pass one.")
            options = replace(options, cache_dir=self.feature_root, cache_features=True, feature_root=None)
        return options


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
            "model_loader": get_family(self.model.model_type).loader_name(self.model.model, self.task),
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
            "cache_features": self.options.cache_features,
            "cache_dir": self.options.cache_dir,
        }


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
    """Dataset names; an entry that is a file holds one name per line, and a collection
    (`vtab`, `vtab+`, `imagenet_robustness`, `retrieval`, `internvl_paper`) stands for its datasets."""
    from zsbench.data.collections import expand_collections

    datasets: list[str] = []
    for name in names:
        datasets.extend(_read_list_file(Path(name)) if Path(name).is_file() else [name])
    return expand_collections(datasets)


def find_pretrained(pretrained: str, model_cache_dir: str | None) -> str:
    """`pretrained` itself when it exists (or no `--model_cache_dir` is given), else its path inside
    `--model_cache_dir` when that exists there: a search path for local weights, never a download."""
    if model_cache_dir is None or Path(pretrained).exists():
        return pretrained
    cached = Path(model_cache_dir) / pretrained
    return str(cached) if cached.exists() else pretrained


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
    for literal, placeholder, spec, conversion in parsed:
        pieces.append(literal)
        if placeholder is None:
            continue
        if placeholder not in values or spec or conversion:
            shown = placeholder + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ZsbenchError(f"{option} {template!r} uses {{{shown}}}, which zsbench does not fill. Expected only {allowed}.")
        pieces.append(values[placeholder])
    return "".join(pieces)


def plan_runs(options: EvalOptions) -> list[EvalRun]:
    """Every (model, dataset, language) of the options, in CLIP_benchmark's order."""
    from zsbench.data import default_task

    cache_folder(options)  # conflicting cache folders fail before anything is read
    if options.task not in (*TASKS, "auto"):
        raise ZsbenchError(
            f"--task {options.task} is not supported: zsbench runs {', '.join(TASKS)} (or auto, from the dataset)."
        )
    if not options.normalize:
        raise UnsupportedFlagError(
            "--no-normalize is not supported: CLIP_benchmark applies --normalize only to linear-probe features, which zsbench "
            "does not compute; zero-shot scores are cosine similarities of normalised embeddings. Drop the flag."
        )
    if Path(options.output).suffix.lower() != ".json":
        raise ZsbenchError(
            f"--output {options.output!r} does not end in .json: each evaluation writes one JSON result. "
            "Expected a JSON file name such as 'results/{dataset}_{model}.json' (placeholders allowed)."
        )
    for language in options.languages:
        if not language or not language.isprintable():
            raise ZsbenchError(f"--language {language!r} is empty or holds a control character (a newline?). Expected a "
                               "language code, as clip_benchmark names them: en, cn, jp, ar, it (XTD10: es, fr, ko, ...).")
    options = options.resolved()
    family = get_family(options.model_type)
    models = expand_models(options)
    for model, _ in models:  # an unknown model name, or one that does not export for onnx/trt, fails before any dataset is read
        family.loader_name(model, family.default_task(model))
        if BACKENDS.get(options.backend).exported:
            export_spec(options.model_type, model, f"--backend {options.backend}")
    runs = []
    for (model, pretrained), dataset, language in itertools.product(models, expand_datasets(options.datasets), options.languages):
        pretrained = find_pretrained(pretrained, options.model_cache_dir)
        name = dataset.removeprefix("wds/")
        root = fill_template("--dataset_root", options.dataset_root, {"dataset": name, "dataset_cleaned": name.replace("/", "-")})
        task = default_task(dataset, Path(root), options.split) if options.task == "auto" else options.task
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
        ref = ModelRef(options.model_type, model, pretrained, options.tokenizer, options.model_config, options.revision)
        runs.append(EvalRun(ref, dataset, root, language, task, output, options))
    return runs
