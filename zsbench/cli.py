"""The `zsbench` command line: each command parses its options, makes one library call, prints a summary.

User errors (`ZsbenchError`) print as one message and exit 1; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from zsbench.errors import ZsbenchError


class ZsbenchGroup(click.Group):
    """Turns `ZsbenchError` into a clean `click.ClickException` for every subcommand, and Ctrl-C
    into exit status 130 (128 + SIGINT, as shells report it), so scripts can tell it from a failure."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZsbenchError as err:
            raise click.ClickException(str(err)) from err
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(130) from None


class VariadicOptionsCommand(click.Command):
    """Accepts argparse-style ``--dataset a b c`` for options declared ``multiple=True``.

    CLIP_benchmark's list flags use argparse's ``nargs="+"``; click repeats the flag instead
    (``--dataset a --dataset b``). Both spellings are accepted: the values that follow such an
    option are rewritten into repeated flags before click parses them.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        variadic = {opt for param in self.params if isinstance(param, click.Option) and param.multiple for opt in param.opts}
        expanded: list[str] = []
        current, consumed = None, 0
        for token in args:
            if token.startswith("--"):
                current = token if token in variadic else None
                consumed = 0
                expanded.append(token)
            elif current is not None:
                expanded.extend([current, token] if consumed else [token])
                consumed += 1
            else:
                expanded.append(token)
        return super().parse_args(ctx, expanded)


@click.group(cls=ZsbenchGroup)
@click.version_option(package_name="zsbench")
def main() -> None:
    """Zero-shot classification and retrieval benchmarks for InternVL-C/G and CLIP models."""


def model_options(func: Any) -> Any:
    """The options that name a model and its checkpoint (shared by info, eval, export, bench)."""
    options = [
        click.option("--model_type", default="internvl", show_default=True, help="internvl or open_clip."),
        click.option("--model", "model_name", required=True, help="Model name (see `zsbench models`)."),
        click.option("--pretrained", required=True, help="Checkpoint: .pth file, Hugging Face folder, or open_clip file."),
        click.option("--tokenizer", "tokenizer_path", default=None, help="Folder with tokenizer.model (InternVL .pth)."),
        click.option("--model_config", default=None, help="InternVL config JSON (HF schema) for other sizes."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@main.command("models")
@click.option("--open_clip", "include_open_clip", is_flag=True, help="Also list open_clip architectures.")
def models_command(include_open_clip: bool) -> None:
    """List the model names `--model` accepts."""
    from zsbench.models import INTERNVL_MODELS

    click.echo("model_type internvl:")
    for name in INTERNVL_MODELS.names():
        spec = INTERNVL_MODELS.get(name)
        source = "Hugging Face folder" if spec.checkpoint_format == "hf" else ".pth file"
        click.echo(f"  {name:<30} InternVL-{spec.image_head.upper()}, {spec.task} transform, {source}")
    if include_open_clip:
        from zsbench.models import list_models

        click.echo("model_type open_clip (with --pretrained PATH to a local checkpoint):")
        for name in list_models("open_clip"):
            click.echo(f"  {name}")
    else:
        click.echo("model_type open_clip: any open_clip architecture (`zsbench models --open_clip` lists them).")


@main.command("info")
@model_options
@click.option("--device", default="cpu", show_default=True)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True)
def info_command(
    model_type: str,
    model_name: str,
    pretrained: str,
    tokenizer_path: str | None,
    model_config: str | None,
    device: str,
    precision: str,
) -> None:
    """Load a model and print its parameter counts, embedding width, image size, context length, dtype."""
    from zsbench.models import describe_model, load_clip

    model, _, tokenizer = load_clip(model_type, model_name, pretrained, device, precision, tokenizer_path, model_config)  # type: ignore[arg-type]
    info = {"model": model_name, "pretrained": pretrained, **describe_model(model, tokenizer)}
    click.echo(json.dumps(info, indent=2))


@main.command("eval", cls=VariadicOptionsCommand)
@click.option("--model_type", default="open_clip", show_default=True, help="internvl or open_clip.")
@click.option("--model", "models", multiple=True, default=["ViT-B-32-quickgelu"], show_default=True, help="Model name(s).")
@click.option("--pretrained", multiple=True, default=["laion400m_e32"], show_default=True, help="Checkpoint(s): .pth file, HF folder, or open_clip file.")
@click.option("--pretrained_model", multiple=True, help="'model,pretrained' pair(s), or a file with one pair per line; overrides --model/--pretrained.")
@click.option("--task", default="auto", show_default=True, type=click.Choice(["zeroshot_classification", "zeroshot_retrieval", "auto"]))
@click.option("--dataset", "datasets", multiple=True, default=["cifar10"], show_default=True, help="Dataset name(s), or a file with one name per line.")
@click.option("--dataset_root", default="root", show_default=True, help="Dataset folder; may hold {dataset} or {dataset_cleaned}.")
@click.option("--split", default="test", show_default=True)
@click.option("--language", "languages", multiple=True, default=["en"], show_default=True, help="Language(s) of class names, prompts and captions.")
@click.option("--output", default="{dataset}_{pretrained}_{model}_{language}_{task}.json", show_default=True, help="Result file; may use {dataset} {pretrained} {pretrained_full_path} {model} {language} {task} {backend} {precision}.")
@click.option("--batch_size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--num_workers", default=4, show_default=True, type=click.IntRange(min=0))
@click.option("--recall_k", multiple=True, type=click.IntRange(min=1), default=[1, 5, 10], show_default=True, help="k of Recall@k for retrieval.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--skip_existing", is_flag=True, help="Skip runs whose output already holds a finished result.")
@click.option("--annotation_file", default=None, help="Caption file overriding a retrieval dataset's default.")
@click.option("--custom_classname_file", default=None, help="JSON: dataset name -> class names.")
@click.option("--custom_template_file", default=None, help="JSON: dataset name -> prompt templates.")
@click.option("--dump_classnames", is_flag=True, help="Write the class names into the result JSON.")
@click.option("--dump_templates", is_flag=True, help="Write the templates into the result JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--no_amp", is_flag=True, help="Force fp32 (CLIP_benchmark's flag).")
@click.option("--backend", default="torch", show_default=True, help="torch, onnx (exported graphs, ONNX Runtime) or trt (TensorRT engines); onnx/trt find or make their artifacts in export/ and engines/.")
@click.option("--device", default=None, help="cuda or cpu [default: cuda when present, else cpu].")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default=None, help="[default: fp16 on a GPU, fp32 on a CPU].")
@click.option("--tokenizer", "tokenizer_path", default=None, help="Folder with tokenizer.model (InternVL .pth).")
@click.option("--model_config", default=None, help="InternVL config JSON (HF schema) for other sizes.")
@click.option("--skip-bad-images", "skip_bad_images", is_flag=True, help="Skip unreadable images and count them, instead of failing.")
@click.option("--no-parity-gate", "no_parity_gate", is_flag=True, help="onnx/trt: use artifacts whose parity check failed or never ran.")
@click.option("--export_dir", "--export-dir", "export_dir", default="export", show_default=True,
              help="onnx/trt: an export folder (e.g. `zsbench export --out`'s), or a folder of exports named <graph>-<checkpoint>-<precision> (graph: the model name without its task).")
@click.option("--engine_dir", "--engine-dir", "engine_dir", default="engines", show_default=True,
              help="trt: an engine folder (e.g. `zsbench engine build --out`'s), or a folder of engine folders named after their export.")
@click.option("--cache_dir", "--cache-dir", "cache_dir", default=None,
              help="Embedding cache folder (class embeddings; image features with --cache_features) "
                   "[default: $ZSBENCH_CACHE_DIR, else ~/.cache/zsbench].")
@click.option("--no-cache", "--no_cache", "no_cache", is_flag=True, help="Neither read nor write the embedding cache.")
@click.option("--cache_features", "--cache-features", "cache_features", is_flag=True,
              help="Also cache image embeddings per model, backend, precision, dataset, split and transform, "
                   "so re-runs with other prompts or languages only encode texts.")
@click.option("--save_clf", default=None, help="CLIP_benchmark's flag: the cache folder classifiers are saved in (as --cache_dir).")
@click.option("--load_clfs", multiple=True, help="CLIP_benchmark's flag: the cache folder classifiers are loaded from (as --cache_dir).")
@click.option("--distributed", is_flag=True,
              help="CLIP_benchmark's flag, accepted: under torchrun every process evaluates its share of the images and prompts.")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the resolved plan (one JSON per evaluation) and exit.")
def eval_command(**kwargs: Any) -> None:
    """Evaluate models on datasets (CLIP_benchmark's flags), writing one result JSON per evaluation."""
    from zsbench.eval.distributed import rank_from_env
    from zsbench.eval.plan import eval_options_from_cli, plan_runs
    from zsbench.eval.runner import run_evaluations

    dry_run, quiet = kwargs.pop("dry_run"), kwargs["quiet"]
    runs = plan_runs(eval_options_from_cli(**kwargs))
    if dry_run:
        for run in runs:
            click.echo(json.dumps(run.to_plan_dict()))
        return
    outcomes = run_evaluations(runs, quiet=quiet, log=click.echo)
    done = sum(outcome.status == "done" for outcome in outcomes)
    if rank_from_env()[0] == 0:  # under torchrun, rank 0 alone reports
        click.echo(f"{done} evaluation(s) run, {len(outcomes) - done} skipped.")


@main.command("build")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--output", default="benchmark.csv", show_default=True, type=click.Path(path_type=Path), help="table.csv or table.md")
@click.option("--compare-paper", "compare_paper", is_flag=True, help="Add the InternVL paper's numbers and the difference.")
def build_command(paths: tuple[Path, ...], output: Path, compare_paper: bool) -> None:
    """Aggregate result JSONs (files or folders) into one table, like `clip_benchmark build`."""
    from zsbench.eval.report import build_table

    count = build_table(list(paths), output, compare_paper)
    click.echo(f"{count} result(s) -> {output}")


@main.command("datasets")
@click.option("--layout", "layout_name", default=None, metavar="NAME", help="Draw the on-disk layout one dataset expects.")
def datasets_command(layout_name: str | None) -> None:
    """List the dataset names `--dataset` accepts, with their task and on-disk format."""
    from zsbench.data import dataset_entry, dataset_layout, list_datasets

    if layout_name is not None:
        click.echo(dataset_layout(layout_name))
        return
    click.echo(f"  {'name':<30} {'task':<24} loader")
    for name in list_datasets():
        entry = dataset_entry(name)
        click.echo(f"  {name:<30} {entry.task:<24} {entry.loader}")
    click.echo(f"  {'wds/<name>':<30} {'(from dataset_type.txt)':<24} wds")
    click.echo("`zsbench datasets --layout NAME` draws the folder --dataset_root should name.")


# Export stage: `zsbench export`, `zsbench parity`, `zsbench engine build` (zsbench/export/).


def _log_to_stderr(message: str) -> None:
    click.echo(message, err=True)


def _parse_profiles(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """'MIN:OPT:MAX' (or several, for a multiple option) -> (min, opt, max) int tuples."""

    def one(text: str) -> tuple[int, int, int]:
        parts = text.split(":")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            raise click.BadParameter(f"expected MIN:OPT:MAX such as 1:16:64, found {text!r}")
        low, opt, high = (int(part) for part in parts)
        return low, opt, high

    return tuple(one(v) for v in value) if isinstance(value, tuple) else one(value)


def engine_options(func: Any) -> Any:
    """How TensorRT engines are built (shared by `export --engine trt` and `engine build`)."""
    options = [
        click.option("--trt_flavor", "--trt-flavor", "trt_flavor", type=click.Choice(["auto", "tensorrt", "tensorrt-rtx"]),
                     default="auto", show_default=True, help="auto: by the GPU: TensorRT-RTX only on the cards it targets (compute capability 7.5, 8.6, 8.9, 12.x) "
                          "when standard TensorRT is not installed; standard TensorRT on every other card; without a GPU, "
                          "TensorRT-RTX ahead of time."),
        click.option("--batch", "batch_profiles", multiple=True, default=("1:16:64",), show_default=True, callback=_parse_profiles,
                     help="Batch-size optimization profile MIN:OPT:MAX; repeat for several profiles."),
        click.option("--text_length", "--text-length", "text_length", default="1:32:80", show_default=True, callback=_parse_profiles,
                     help="Token-length profile MIN:OPT:MAX (capped at the tokenizer's 80)."),
        click.option("--workspace", "workspace_gib", type=click.FloatRange(min=0.0625), default=4.0, show_default=True,
                     help="Builder workspace limit, GiB."),
        click.option("--timing_cache", "--timing-cache", "timing_cache", type=click.Path(path_type=Path), default=None,
                     help="Timing cache file (standard TensorRT) [default: engines/timing.cache]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _build_engines(artifact: Path, out: Path | None, force: bool, probes: Any, **engine: Any) -> None:
    from zsbench.export.trt_build import EngineConfig, build_engines

    config = EngineConfig(artifact=artifact, out=out, force=force, probes=probes, flavor=engine["trt_flavor"],
                          batch_profiles=engine["batch_profiles"], text_length=engine["text_length"],
                          workspace_gib=engine["workspace_gib"], timing_cache=engine["timing_cache"])
    result = build_engines(config, log=_log_to_stderr)
    verb = "Reused" if result.reused else "Built"
    click.echo(f"{verb} {result.manifest.flavor} {result.manifest.trt_version} engines in {result.folder} "
               f"(parity: {result.parity.status})")


@main.command("export")
@model_options
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: export/<graph>-<checkpoint name>-<precision>; graph: the model name without its task, e.g. internvl_c_hf].")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), default="fp16", show_default=True)
@click.option("--opset", type=click.IntRange(min=18), default=None,
              help="ONNX opset [default: 23 for fp32 (ONNX Runtime's fused attention, RoPE and RMSNorm), "
                   "18 for fp16 (the graphs TensorRT engines are built from)].")
@click.option("--force", is_flag=True, help="Replace an output folder that holds another model's export.")
@click.option("--device", default="auto", show_default=True, help="auto (the GPU when present), cuda or cpu: where the model is traced and the fp32 reference runs.")
@click.option("--parity_images", "--parity-images", "parity_images", type=click.IntRange(min=1), default=200, show_default=True,
              help="Synthetic probe images of the parity check.")
@click.option("--engine", type=click.Choice(["trt"]), default=None, help="Also build FP16 TensorRT engines from the fp16 graphs.")
@click.option("--engines_out", "--engines-out", "engines_out", type=click.Path(path_type=Path), default=None,
              help="Engine folder [default: engines/<export folder name>].")
@engine_options
def export_command(model_type: str, model_name: str, pretrained: str, tokenizer_path: str | None, model_config: str | None,
                   out: Path | None, precision: str, opset: int | None, force: bool, device: str, parity_images: int,
                   engine: str | None, engines_out: Path | None, **engine_settings: Any) -> None:
    """Export a model to ONNX (vision.onnx, text.onnx), check it against PyTorch fp32, optionally build engines."""
    from zsbench.export import ExportConfig, ProbeConfig, export_model
    from zsbench.models import ModelRef

    if engine and precision != "fp16":
        raise click.UsageError("--engine trt builds FP16 engines from the fp16 graphs: use --precision fp16.")
    config = ExportConfig(
        ModelRef(model_type, model_name, pretrained, tokenizer_path, model_config), out=out, precision=precision, opset=opset, force=force, device=device,  # type: ignore[arg-type]
        probes=ProbeConfig(num_images=parity_images),
    )
    result = export_model(config, log=_log_to_stderr)
    click.echo(f"Exported {result.folder} ({precision}, opset {result.manifest.opset}): parity {result.parity.status}")
    if engine:
        _build_engines(result.folder, engines_out, False, config.probes, **engine_settings)


@main.command("parity")
@click.option("--artifact", required=True, type=click.Path(path_type=Path), help="Export folder (export/<name>).")
@click.option("--backend", type=click.Choice(["onnx", "trt"]), default="onnx", show_default=True,
              help="onnx: the graphs with ONNX Runtime; trt: the engines (needs a GPU).")
@click.option("--engines", type=click.Path(path_type=Path), default=None, help="Engine folder [default: engines/<export name>].")
@click.option("--device", default="auto", show_default=True, help="Where the PyTorch fp32 reference runs.")
def parity_command(artifact: Path, backend: str, engines: Path | None, device: str) -> None:
    """Re-check an export's graphs (or engines) against PyTorch fp32; exit 1 if they fail."""
    from zsbench.export import check_artifact_parity

    report = check_artifact_parity(artifact, backend, device, engines, log=_log_to_stderr)  # type: ignore[arg-type]
    report.raise_if_failed()
    click.echo(report.summary())


@main.group("engine")
def engine_group() -> None:
    """TensorRT engines built from an export."""


@engine_group.command("build")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Engine folder [default: engines/<export name>].")
@click.option("--force", is_flag=True, help="Rebuild even if matching engines exist.")
@engine_options
def engine_build_command(artifact: Path, out: Path | None, force: bool, **engine_settings: Any) -> None:
    """Build FP16 strongly typed TensorRT (or TensorRT-RTX) engines from an fp16 export folder."""
    from zsbench.export.pipeline import recorded_parity_settings

    probes, _ = recorded_parity_settings(artifact)
    _build_engines(artifact, out, force, probes, **engine_settings)


def _split_list(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@main.command("bench")
@model_options
@click.option("--backends", default="torch,onnx,trt", show_default=True, callback=_split_list, help="Comma-separated backends.")
@click.option("--precisions", default="fp32,fp16", show_default=True, callback=_split_list, help="Comma-separated precisions.")
@click.option("--batch_sizes", "--batch-sizes", "batch_sizes", default="1,8,32", show_default=True, callback=_split_list)
@click.option("--text_length", "--text-length", "text_length", default=20, show_default=True, type=click.IntRange(3, 80),
              help="Tokens per text (a typical prompt, BOS and EOS included).")
@click.option("--device", default=None, help="cuda or cpu [default: cuda when present].")
@click.option("--min_seconds", "--min-seconds", "min_seconds", default=1.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Measure each row for at least this long, over all rounds.")
@click.option("--rounds", default=3, show_default=True, type=click.IntRange(min=1),
              help="Interleaved rounds per batch size; each row keeps its best round.")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="torch CPU threads [default: torch's choice].")
@click.option("--random_init", "--random-init", "random_init", is_flag=True,
              help="Create --pretrained (if absent) with random weights of --model_config: for sizes without weights.")
@click.option("--output", default=None, type=click.Path(path_type=Path), help="Write the rows to this JSON file.")
def bench_command(model_type: str, model_name: str, pretrained: str, tokenizer_path: str | None, model_config: str | None,
                  backends: tuple[str, ...], precisions: tuple[str, ...], batch_sizes: tuple[str, ...], text_length: int,
                  device: str | None, min_seconds: float, rounds: int, threads: int | None, random_init: bool,
                  output: Path | None) -> None:
    """Measure encoder throughput of each backend and precision side by side (ratio to torch fp32, % of matmul rate)."""
    from zsbench.bench import BenchConfig, create_random_checkpoint, format_table, run_bench, write_rows
    from zsbench.models import ModelRef, default_device

    if random_init:
        if model_config is None:
            raise click.UsageError("--random_init needs --model_config (the architecture to fill with random weights).")
        if not Path(pretrained).exists():
            create_random_checkpoint(Path(model_config), Path(pretrained))
            click.echo(f"Created {pretrained} with random weights of {model_config}", err=True)
    config = BenchConfig(
        model=ModelRef(model_type, model_name, pretrained, tokenizer_path, model_config),
        backends=backends, precisions=precisions, batch_sizes=tuple(int(size) for size in batch_sizes),
        text_length=text_length, device=device or default_device(),
        min_seconds=min_seconds, rounds=rounds, threads=threads,
    )
    rows = run_bench(config, log=lambda message: click.echo(message, err=True))
    click.echo(format_table(rows))
    if output is not None:
        write_rows(output, rows, config)
        click.echo(f"{len(rows)} row(s) -> {output}")


@main.command("demo")
@click.option("--data_dir", "--data-dir", "data_dir", default="data/zsbench-demo", show_default=True, type=click.Path(path_type=Path),
              help="Where the demo datasets are generated (once).")
@click.option("--output-dir", "--output_dir", "output_dir", default="results/demo", show_default=True, type=click.Path(path_type=Path),
              help="Where the result JSONs go (<backend>/<dataset>_<model>.json).")
@click.option("--pretrained", default="pretrained/zsbench-demo", show_default=True, type=click.Path(path_type=Path),
              help="The demo checkpoint.")
@click.option("--backends", default="torch,onnx", show_default=True, callback=_split_list,
              help="Backends to run the suite on (onnx exports and checks the graphs first).")
@click.option("--device", default=None, help="cuda or cpu [default: cuda when present].")
@click.option("--batch_size", default=128, show_default=True, type=click.IntRange(min=1))
@click.option("--num_workers", default=2, show_default=True, type=click.IntRange(min=0))
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo_command(data_dir: Path, output_dir: Path, pretrained: Path, backends: tuple[str, ...], device: str | None,
                 batch_size: int, num_workers: int, quiet: bool) -> None:
    """Run the embedded demo: a tiny trained InternVL-C/G on synthetic zero-shot classification and retrieval."""
    from zsbench.demo.suite import DemoConfig, run_demo, summary_table
    from zsbench.models import default_device

    config = DemoConfig(data_dir=data_dir, output_dir=output_dir, pretrained=pretrained, backends=backends,
                        device=device or default_device(), batch_size=batch_size,
                        num_workers=num_workers, quiet=quiet)
    results = run_demo(config, log=lambda message: click.echo(message, err=True))
    click.echo(summary_table(results))
    click.echo(f"Result JSONs: {output_dir}/ (tabulate them with `zsbench build {output_dir} --output table.md`)")
