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
    """Turns `ZsbenchError` into a clean `click.ClickException` for every subcommand."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZsbenchError as err:
            raise click.ClickException(str(err)) from err


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
@click.option("--output", default="{dataset}_{pretrained}_{model}_{language}_{task}.json", show_default=True, help="Result file; may use {dataset} {pretrained} {pretrained_full_path} {model} {language} {task}.")
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
@click.option("--backend", default="torch", show_default=True, help="torch, onnx or trt (see `zsbench bench`).")
@click.option("--device", default=None, help="cuda or cpu [default: cuda when present, else cpu].")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16"]), default=None, help="[default: fp16 on a GPU, fp32 on a CPU].")
@click.option("--tokenizer", "tokenizer_path", default=None, help="Folder with tokenizer.model (InternVL .pth).")
@click.option("--model_config", default=None, help="InternVL config JSON (HF schema) for other sizes.")
@click.option("--skip-bad-images", "skip_bad_images", is_flag=True, help="Skip unreadable images and count them, instead of failing.")
@click.option("--dry-run", "dry_run", is_flag=True, help="Print the resolved plan (one JSON per evaluation) and exit.")
def eval_command(**kwargs: Any) -> None:
    """Evaluate models on datasets (CLIP_benchmark's flags), writing one result JSON per evaluation."""
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
