"""The `zsbench` command line: each command parses its options into a config, makes one library call, prints a summary.

Every command's options are declared once, in the option groups of `zsbench.cli_args` (the library's
config dataclasses know no command line); this module imports no torch at the top, so `zsbench --help`, `--version`, `models`, `datasets`
and shell completion start fast. User errors (`ZsbenchError`) print as one message and exit 1;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zsbench import cli_args
from zsbench.console import Console
from zsbench.errors import ZsbenchError
from zsbench.models.ref import ModelRef
from zsbench.options import (
    ConfigCommand,
    build_config,
    config_command,
    config_parameters,
    option_names,
    verbosity_options,
)
from zsbench.types import Backend, Device, Precision

if TYPE_CHECKING:
    from zsbench.bench.config import BenchConfig
    from zsbench.data.acquire import DownloadOptions
    from zsbench.demo.suite import DemoConfig
    from zsbench.eval.plan import EvalOptions
    from zsbench.export.config import EngineConfig, ExportConfig


class OneLineUsageError(click.UsageError):
    """A usage error (exit status 2) in one line: the message, then where the help is. click's own
    prints the usage, a hint and the message on three."""

    def show(self, file: Any = None) -> None:
        hint = f" Try '{self.ctx.command_path} --help'." if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", file=file, err=file is None)


def _one_line(err: click.UsageError) -> OneLineUsageError:
    return err if isinstance(err, OneLineUsageError) else OneLineUsageError(err.format_message(), err.ctx)


class ZsbenchGroup(click.Group):
    """Turns `ZsbenchError` into a clean `click.ClickException` for every subcommand, usage errors (a
    missing or bad option) into one line, and Ctrl-C into exit status 130 (128 + SIGINT, as shells
    report it), so scripts can tell it from a failure."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise _one_line(err) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise _one_line(err) from None
        except ZsbenchError as err:
            raise click.ClickException(str(err)) from err
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(130) from None


class VariadicOptionsCommand(ConfigCommand):
    """Accepts argparse-style ``--dataset a b c`` for options declared ``multiple=True``.

    CLIP_benchmark's list flags use argparse's ``nargs="+"``; click repeats the flag instead
    (``--dataset a --dataset b``). Both spellings are accepted: the values that follow such an
    option are rewritten into repeated flags before click parses them. CLIP_benchmark flags that
    zsbench does not implement (linear probe, captioning) are refused first, in one line, and
    `--normalize True|False` becomes `--normalize` / `--no-normalize`.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        from zsbench.eval.clip_benchmark_flags import reject_unsupported_flags, translate_boolean_values

        reject_unsupported_flags(args)
        args = translate_boolean_values(args)
        variadic = {opt for param in self.params if isinstance(param, click.Option) and param.multiple for opt in param.opts}
        expanded: list[str] = []
        current, consumed = None, 0
        for token in args:
            if token.startswith("-") and token != "-":
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
    """Zero-shot classification and retrieval benchmarks for InternVL-C/G and CLIP models.

    Shell completion (bash): eval "$(_ZSBENCH_COMPLETE=bash_source zsbench)"; zsh: zsh_source; fish: fish_source.
    """


@dataclass(frozen=True)
class ModelsOptions:
    """`zsbench models`."""

    open_clip: bool = False


@config_command(main, "models", cli_args.MODELS_COMMAND)
def models_command(options: ModelsOptions, console: Console) -> None:
    """List the model types `--model_type` accepts and the model names `--model` accepts."""
    from zsbench.models.families import MODEL_FAMILIES

    for name in MODEL_FAMILIES.names():
        family = MODEL_FAMILIES.get(name)
        console.result(f"model_type {name}{'' if family.export is not None else ' (torch backend only)'}:")
        lines = family.list_models() if options.open_clip and name == "open_clip" else family.listing()
        for line in lines:
            console.result(f"  {line}")


@dataclass(frozen=True)
class InfoOptions:
    """`zsbench info`."""

    model: ModelRef
    device: Device = "auto"
    precision: Precision | None = None


@config_command(main, "info", cli_args.INFO)
def info_command(options: InfoOptions, console: Console) -> None:
    """Load a model and print its parameter counts, embedding width, image size, context length, dtype."""
    from zsbench.models import describe_model, load_clip

    ref = options.model
    model, _, tokenizer = load_clip(ref.model_type, ref.model, ref.pretrained, options.device, options.precision,
                                    ref.tokenizer, ref.model_config, ref.revision)
    info = {"model": ref.model, "pretrained": ref.pretrained, **describe_model(ref.model_type, model, tokenizer)}
    console.result(json.dumps(info, indent=2))


@config_command(main, "eval", cli_args.EVAL, cls=VariadicOptionsCommand)
@click.option(*option_names("dry_run"), "dry_run", is_flag=True, help="Print the resolved plan (one JSON per evaluation) and exit.")
def eval_command(options: EvalOptions, console: Console, dry_run: bool) -> None:
    """Evaluate models on datasets (CLIP_benchmark's flags), writing one result JSON per evaluation."""
    from zsbench.eval.plan import plan_runs
    from zsbench.offline import go_offline

    if options.offline:
        go_offline()
    runs = plan_runs(options)
    if dry_run:
        for run in runs:
            console.result(json.dumps(run.to_plan_dict()))
        return
    from zsbench.eval.distributed import rank_from_env
    from zsbench.eval.runner import run_evaluations

    main_process = rank_from_env()[0] == 0  # under torchrun, rank 0 alone reports
    if main_process:
        for run in runs:
            console.detail(f"plan: {json.dumps(run.to_plan_dict())}")
    outcomes = run_evaluations(runs, quiet=console.quiet, log=console.result, progress=console.log, warn=console.warn)
    done = sum(outcome.status == "done" for outcome in outcomes)
    if main_process:
        console.result(f"{done} evaluation(s) run, {len(outcomes) - done} skipped.")


@dataclass(frozen=True)
class BuildOptions:
    """`zsbench build`."""

    paths: tuple[Path, ...]
    output: Path = Path("benchmark.csv")
    compare_paper: bool = False
    columns: tuple[str, ...] = ()


@config_command(main, "build", cli_args.BUILD)
def build_command(options: BuildOptions, console: Console) -> None:
    """Aggregate result JSONs (files or folders) into one table, like `clip_benchmark build`; other JSONs are skipped with a warning."""
    from zsbench.eval.report import build_table, render_table

    if str(options.output) == "-":
        text, count = render_table(list(options.paths), "md", options.compare_paper, log=console.warn, columns=options.columns)
        click.echo(text, nl=False)
        console.log(f"{count} result(s)")
        return
    count = build_table(list(options.paths), options.output, options.compare_paper, log=console.warn, columns=options.columns)
    console.result(f"{count} result(s) -> {options.output}")


@dataclass(frozen=True)
class ReportOptions:
    """`zsbench report`."""

    paths: tuple[Path, ...]
    output_dir: Path


@config_command(main, "report", cli_args.REPORT)
def report_command(options: ReportOptions, console: Console) -> None:
    """Draw a report (report.md + PNG figures) from result JSONs and `zsbench bench --output` files; other JSONs are skipped with a warning."""
    from zsbench.report import write_report

    written = write_report(list(options.paths), options.output_dir, log=console.warn)
    console.result(f"{len(written)} file(s) -> {options.output_dir}: {', '.join(path.name for path in written)}")


@dataclass(frozen=True)
class DoctorOptions:
    """`zsbench doctor`."""

    as_json: bool = False
    timeout: float = 30.0


@config_command(main, "doctor", cli_args.DOCTOR)
def doctor_command(options: DoctorOptions, console: Console) -> None:
    """Check what runs here (GPUs, driver, torch, ONNX Runtime, TensorRT, each backend and precision) and print the
    command that fixes what does not; exit 1 when something installed is broken."""
    from zsbench.doctor import run_doctor

    report = run_doctor(options.timeout)
    console.result(json.dumps(report.to_dict(), indent=2) if options.as_json else report.render())
    if not report.ok:
        raise click.exceptions.Exit(1)


@dataclass(frozen=True)
class DatasetsOptions:
    """`zsbench datasets`."""

    layout: str | None = None


def _list_datasets(options: DatasetsOptions, console: Console) -> None:
    from zsbench.data import dataset_entry, dataset_layout, list_datasets
    from zsbench.data.collections import list_collections
    from zsbench.data.wds import VTAB_DATASETS

    if options.layout is not None:
        console.result(dataset_layout(options.layout))
        return
    console.result(f"  {'name':<30} {'task':<24} loader")
    for name in list_datasets():
        entry = dataset_entry(name)
        console.result(f"  {name:<30} {entry.task:<24} {entry.loader}")
    console.result(f"  {'wds/<name>':<30} {'(from dataset_type.txt)':<24} wds")
    console.result(f"  {'vtab/<name>':<30} {'zeroshot_classification':<24} wds (CLIP_benchmark's VTAB names: {', '.join(VTAB_DATASETS)})")
    console.result(f"Collections (expand to their datasets): {', '.join(list_collections())}.")
    console.result("`zsbench datasets --layout NAME` draws the folder --dataset_root should name; "
                   "`zsbench datasets download NAME --root DIR` fetches it.")


@click.pass_context
def _datasets_callback(ctx: click.Context, quiet: bool, verbose: bool, **values: Any) -> None:
    if ctx.invoked_subcommand is None:
        _list_datasets(build_config(cli_args.DATASETS_COMMAND, values), Console.from_flags(quiet, verbose))


datasets_group = ZsbenchGroup(
    "datasets", invoke_without_command=True, callback=_datasets_callback,
    params=[*config_parameters(cli_args.DATASETS_COMMAND), *verbosity_options()],
    help="List the dataset names `--dataset` accepts, with their task and on-disk format (`download`: fetch them).",
)
main.add_command(datasets_group)


@config_command(datasets_group, "download", cli_args.DOWNLOAD, cls=VariadicOptionsCommand)
def datasets_download_command(options: DownloadOptions, console: Console) -> None:
    """Fetch datasets (names or collections such as internvl_paper) from the catalog's sources, verified and resumable."""
    from zsbench.data.acquire import download_datasets

    if (options.root is None) == (options.dataset_root is None):
        raise click.UsageError("Pass --root DIR (a data folder, laid out as the seed's command lines read it) "
                               "or --dataset_root DIR (the folder `zsbench eval --dataset_root` reads), not both.")
    for line in download_datasets(options, quiet=console.quiet, log=console.log):
        console.result(line)


# Export stage: `zsbench export`, `zsbench parity`, `zsbench engine build` (zsbench/export/).



def _build_engines(config: EngineConfig, console: Console) -> None:
    from zsbench.export.trt_build import build_engines

    result = build_engines(config, log=console.log)
    verb = "Reused" if result.reused else "Built"
    console.result(f"{verb} {result.manifest.flavor} {result.manifest.trt_version} engines in {result.folder} "
                   f"(parity: {result.parity.status})")


@config_command(main, "export", cli_args.EXPORT, borrow={"engine_settings": (cli_args.ENGINE, cli_args.ENGINE_SETTINGS)})
@click.option("--engine", type=click.Choice(["trt"]), default=None,
              help="Also build strongly typed TensorRT engines: from the fp16 graphs, or from int8/fp8 Q/DQ graphs made for them.")
@click.option(*option_names("engine_dir", ("engines_out",)), "engine_dir", type=click.Path(path_type=Path), default=None,
              help="Engine folder [default: engines/<export folder name>].")
def export_command(config: ExportConfig, console: Console, engine: str | None, engine_dir: Path | None,
                   engine_settings: dict[str, Any]) -> None:
    """Export a model to ONNX (vision.onnx, text.onnx), check it against PyTorch fp32, optionally build engines."""
    from zsbench.export import EngineConfig, export_model
    from zsbench.precisions import engine_precisions

    if engine:  # engines are built from the graphs of the precisions that say so (fp16, int8, fp8)
        wanted = engine_precisions()
        if config.precision not in (None, *wanted):
            raise click.UsageError(f"--engine trt builds engines from {', '.join(wanted)} graphs: use --precision {wanted[0]}.")
        config = replace(config, precision=config.precision or wanted[0], for_engines=True)
    result = export_model(config, log=console.log)
    console.result(f"Exported {result.folder} ({result.manifest.precision}, opset {result.manifest.opset}): parity {result.parity.status}")
    if engine:
        _build_engines(EngineConfig(result.folder, out=engine_dir, probes=config.probes, **engine_settings), console)


@dataclass(frozen=True)
class ParityOptions:
    """`zsbench parity`."""

    artifact: Path
    backend: Backend = "onnx"
    engine_dir: Path | None = None
    device: Device = "auto"


@config_command(main, "parity", cli_args.PARITY)
def parity_command(options: ParityOptions, console: Console) -> None:
    """Re-check an export's graphs (or engines) against PyTorch fp32; exit 1 if they fail."""
    from zsbench.backends import BACKENDS

    check = BACKENDS.get(options.backend).check_parity
    assert check is not None  # the option's choices are the backends that check parity
    report = check(options.artifact, options.device, options.engine_dir, console.log)
    report.raise_if_failed()
    console.result(report.summary())


@main.group("engine", cls=ZsbenchGroup)
def engine_group() -> None:
    """TensorRT engines built from an export."""


@config_command(engine_group, "build", cli_args.ENGINE)
def engine_build_command(config: EngineConfig, console: Console) -> None:
    """Build FP16 strongly typed TensorRT (or TensorRT-RTX) engines from an fp16 export folder."""
    from zsbench.export.checking import recorded_parity_settings

    probes, _ = recorded_parity_settings(config.artifact)
    _build_engines(replace(config, probes=probes), console)


@config_command(main, "bench", cli_args.BENCH)
@click.option(*option_names("random_init"), "random_init", is_flag=True,
              help="Create --pretrained (if absent) with random weights of --model_config: for sizes without weights.")
@click.option("--output", default=None, type=click.Path(path_type=Path), help="Write the rows to this JSON file.")
def bench_command(config: BenchConfig, console: Console, random_init: bool, output: Path | None) -> None:
    """Measure encoder throughput of each backend and precision side by side (ratio to torch fp32, % of the peak
    matrix-multiply rate of the row's own runtime and precision)."""
    from zsbench.bench.rows import format_table, write_rows
    from zsbench.bench.run import create_random_checkpoint, run_bench

    ref = config.model
    if random_init:
        if ref.model_config is None:
            raise click.UsageError("--random_init needs --model_config (the architecture to fill with random weights).")
        if not Path(ref.pretrained).exists():
            create_random_checkpoint(Path(ref.model_config), Path(ref.pretrained))
            console.log(f"Created {ref.pretrained} with random weights of {ref.model_config}")
    run = run_bench(config, log=console.log, warn=console.warn)
    console.result(format_table(run.rows))
    if output is not None:
        write_rows(output, run, config)
        console.result(f"{len(run.rows)} row(s) -> {output}")


@config_command(main, "demo", cli_args.DEMO)
def demo_command(config: DemoConfig, console: Console) -> None:
    """Run the embedded demo: a tiny trained InternVL-C/G on synthetic zero-shot classification and retrieval."""
    from zsbench.demo.suite import run_demo, summary_table

    results = run_demo(config, console.quiet, log=console.log)
    console.result(summary_table(results))
    console.result(f"Result JSONs: {config.output_dir}/ (tabulate them with `zsbench build {config.output_dir} --output table.md`)")
