"""The `zsbench` command line: each command parses its options, makes one library call, prints a summary.

User errors (`ZsbenchError`) print as one message and exit 1; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import json
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
