"""The command line's contract, table-driven over every command: both spellings of every option, choices equal
to the registries' names, unknown names refused before any dataset or model is opened, a fast start without
torch, and the demo run from an empty folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zsbench.backends import BACKENDS, checking_backends
from zsbench.cli import main
from zsbench.models.families import MODEL_FAMILIES
from zsbench.options import NameChoice
from zsbench.precisions import PRECISIONS

REPO = Path(__file__).resolve().parents[1]


def all_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """(path, command) of every command under `group`, subgroups walked (a group that runs on its own, such as
    `datasets`, is a command too)."""
    found = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                found.append(((*prefix, name), command))
            found.extend(all_commands(command, (*prefix, name)))
        else:
            found.append(((*prefix, name), command))
    return found


COMMANDS = all_commands()
OPTIONS = [
    (path, option)
    for path, command in COMMANDS
    for option in command.params
    if isinstance(option, click.Option) and option.name != "help"
]


def sample_value(option: click.Option) -> str:
    """A value `option` accepts (a comma list or MIN:OPT:MAX profile: its default, which its callback parses)."""
    if option.callback is not None and isinstance(option.default, str) and option.default:
        return option.default
    if option.callback is not None and isinstance(option.default, tuple):
        return option.default[0]
    if isinstance(option.type, click.Choice):
        return str(option.type.choices[0])
    if isinstance(option.type, (click.types.IntParamType, click.IntRange)):
        return str(max(getattr(option.type, "min", None) or 1, 1))
    if isinstance(option.type, (click.types.FloatParamType, click.FloatRange)):
        return "1.5"
    return "value"


def long_spellings(option: click.Option) -> list[str]:
    return [name for name in option.opts if name.startswith("--")]


def test_every_command_is_in_the_table() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert names == {"bench", "build", "datasets", "datasets download", "demo", "doctor", "engine build", "eval", "export", "info",
                     "models", "parity", "report"}


@pytest.mark.parametrize(("path", "option"), OPTIONS, ids=[f"{' '.join(p)} {o.name}" for p, o in OPTIONS])
def test_every_multi_word_option_accepts_both_spellings(path: tuple[str, ...], option: click.Option) -> None:
    spellings = long_spellings(option)
    for spelling in spellings:
        bare = spelling[2:]
        if "_" in bare or "-" in bare:
            assert f"--{bare.replace('-', '_')}" in spellings and f"--{bare.replace('_', '-')}" in spellings, spellings
    command = dict(COMMANDS)[path]
    parsed = []
    for spelling in spellings:
        args = [spelling] if option.is_flag or option.count else [spelling, sample_value(option)]
        # resilient parsing: the other required options may be absent, and no callback runs.
        ctx = command.make_context(" ".join(path), args, resilient_parsing=True)
        parsed.append(ctx.params[option.name])
    assert len(set(map(repr, parsed))) == 1, parsed
    assert parsed[0] not in (None, False, ()), parsed


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_takes_quiet_and_verbose(path: tuple[str, ...], command: click.Command) -> None:
    names = {name for param in command.params for name in param.opts}
    assert {"-q", "--quiet", "-v", "--verbose"} <= names


def _choices(path: tuple[str, ...], name: str) -> list[str]:
    option = next(param for param in dict(COMMANDS)[path].params if param.name == name)
    assert isinstance(option.type, click.Choice)
    return sorted(map(str, option.type.choices))


def test_choices_are_the_registries_names() -> None:
    import torch  # the dtype table lives with torch

    assert _choices(("eval",), "backend") == BACKENDS.names()
    assert _choices(("parity",), "backend") == checking_backends() == ["onnx", "trt"]
    for path in [("eval",), ("info",), ("export",), ("bench",)]:
        assert _choices(path, "model_type") == MODEL_FAMILIES.names()
    assert _choices(("eval",), "precision") == _choices(("info",), "precision") == PRECISIONS.names() == [
        "bf16", "fp16", "fp32", "fp8", "int8"]
    assert _choices(("export",), "precision") == ["fp16", "fp32", "fp8", "int8"]
    assert PRECISIONS.get("bf16").dtype() is torch.bfloat16
    # The comma lists check each item against the same registries.
    bench = dict(COMMANDS)[("bench",)]
    for name, registry_names in [("backends", BACKENDS.names()), ("precisions", PRECISIONS.names())]:
        option = next(param for param in bench.params if param.name == name)
        assert option.callback is not None and sorted(option.default.split(",")) == sorted(option.default.split(","))
        assert set(option.default.split(",")) <= set(registry_names)
    assert all(not isinstance(p.type, NameChoice) or p.type.choices for _, c in COMMANDS for p in c.params)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--model_type", "foo"], "--model_type foo is not supported by zsbench; supported: internvl, open_clip."),
        (["eval", "--model_type", "ja_clip"], "--model_type ja_clip is not supported by zsbench; supported: internvl, open_clip."),
        (["eval", "--model_type", "internvl_"], "Did you mean: internvl?"),
        (["eval", "--backend", "onnxx"], "unknown backend 'onnxx'. Did you mean: onnx?"),
        (["eval", "--backend", "onnx", "--model_type", "open_clip", "--model", "RN50"],
         "--backend onnx: open_clip model RN50 does not export to ONNX; the open_clip models that do: ViT-B-16, "),
        (["eval", "--backend", "onnx", "--model_type", "internvl", "--model", "internvl_c_retrieval_hf", "--precision", "bf16"],
         "--precision bf16: --backend onnx (onnxruntime) runs fp32 or fp16 or int8; bf16 runs on --backend torch."),
        (["eval", "--model_type", "internvl", "--model", "internvl_c_retreival_hf"], "Did you mean: internvl_c_retrieval_hf"),
        (["eval", "--device", "mps"], "--device mps: zsbench runs on auto, cpu or cuda (cuda:N), not mps."),
        (["bench", "--model", "m", "--pretrained", "p", "--backends", "torch,tensorrt"], "unknown backend 'tensorrt'"),
        (["info", "--model_type", "ja_clip", "--model", "m", "--pretrained", "p"], "is not supported by zsbench"),
        (["export", "--model_type", "open_clip", "--model", "convnext_base", "--pretrained", "p"],
         "zsbench export: open_clip model convnext_base does not export to ONNX"),
    ],
)
def test_unknown_names_fail_before_any_dataset_or_model_is_opened(tmp_path: Path, args: list[str], message: str) -> None:
    """Without --dry-run: the dataset root and checkpoint do not exist, so only a check made before opening
    them can produce the message."""
    extra = ["--dataset_root", str(tmp_path / "no-data"), "--pretrained", str(tmp_path / "no-checkpoint")] if args[0] == "eval" else []
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "skip" not in result.output and "Traceback" not in result.output
    assert not (tmp_path / "no-data").exists()


def _run_without_torch(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`zsbench ARGS` in a fresh interpreter that reports whether torch was imported, and the seconds from
    importing zsbench's CLI to the command's end (``SECONDS s``) on the line before."""
    script = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from zsbench.cli import main\n"
        "try:\n"
        f"    main.main(args={args!r}, prog_name='zsbench')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print(f'{time.perf_counter() - start:.3f} s', file=sys.stderr)\n"
        "print('TORCH IMPORTED' if 'torch' in sys.modules else 'NO TORCH', file=sys.stderr)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["models"], ["datasets"], ["datasets", "--layout", "cifar10"]])
def test_fast_commands_do_not_import_torch(args: list[str]) -> None:
    done = _run_without_torch(args)
    assert done.stderr.strip().endswith("NO TORCH"), done.stderr
    assert done.stdout.strip()


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=[" ".join(path) for path, _ in COMMANDS])
def test_every_commands_help_is_fast_and_does_not_import_torch(path: tuple[str, ...]) -> None:
    """`--help` builds every option of the command (from its config class): that must not need torch.
    The bound is generous (a shared machine); without torch it takes about 0.1 s, with it 2-5 s."""
    done = _run_without_torch([*path, "--help"])
    *_, seconds, verdict = done.stderr.strip().splitlines()
    assert verdict == "NO TORCH", done.stderr
    assert float(seconds.removesuffix(" s")) < 1.0, done.stderr
    assert "Usage:" in done.stdout and "--quiet" in done.stdout


def _placeholder(param: click.Parameter) -> list[str]:
    """Command-line words giving `param` a value that parses (nothing is opened before all options are parsed)."""
    if isinstance(param, click.Argument):
        return ["value"]
    assert isinstance(param, click.Option)
    return [param.opts[0], sample_value(param)]


REQUIRED = [(path, param) for path, command in COMMANDS for param in command.params if param.required]


def test_the_commands_with_required_options_are_found() -> None:
    """The table below is read from the CLI; this checks it is not empty by accident."""
    assert {("info", "model"), ("parity", "artifact"), ("export", "pretrained"), ("bench", "model"),
            ("report", "output_dir")} <= {(" ".join(path), param.name) for path, param in REQUIRED}


@pytest.mark.parametrize(("path", "missing"), REQUIRED, ids=[f"{' '.join(p)} without {m.name}" for p, m in REQUIRED])
def test_every_required_option_missing_is_one_line_and_exit_2(tmp_path: Path, path: tuple[str, ...], missing: click.Parameter) -> None:
    """`zsbench COMMAND` with every other required option given and this one left out, in a real process
    on the installed click: exit status 2 and one line naming it (click >= 8.3 took an explicit
    `default=None` for a value, so the command ran and failed on None with a traceback)."""
    command = dict(COMMANDS)[path]
    args = [word for param in command.params if param.required and param is not missing for word in _placeholder(param)]
    done = subprocess.run([sys.executable, "-m", "zsbench", *path, *args], cwd=tmp_path, capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stderr
    shown = missing.opts[0] if isinstance(missing, click.Option) else missing.human_readable_name
    assert done.stderr.startswith("Error: Missing") and shown in done.stderr, done.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("words", "expected"), [("zsbench ev", "eval"), ("zsbench eval --back", "--backend"),
                                                 ("zsbench eval --backend ", "onnx")])
def test_shell_completion_does_not_import_torch(words: str, expected: str) -> None:
    env = {"_ZSBENCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    done = _run_without_torch([], env)
    assert done.stderr.strip().endswith("NO TORCH"), done.stderr
    assert expected in done.stdout, done.stdout


def test_pretrained_hub_id_is_found_in_the_local_cache(tmp_path: Path, tiny_hf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A snapshot laid out as huggingface_hub caches it: refs/main names the snapshot folder."""
    repo = tmp_path / "hub" / "models--OpenGVLab--InternVL-tiny"
    shutil.copytree(tiny_hf_folder, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    by_id = CliRunner().invoke(main, ["info", "--model", "internvl_c_retrieval_hf", "--pretrained", "OpenGVLab/InternVL-tiny"])
    assert by_id.exit_code == 0, by_id.output
    snapshot = str(repo / "snapshots" / "abc123")
    by_path = CliRunner().invoke(main, ["info", "--model", "internvl_c_retrieval_hf", "--pretrained", snapshot])
    assert by_path.exit_code == 0, by_path.output
    assert json.loads(by_id.output)["parameters"] == json.loads(by_path.output)["parameters"]
    missing = CliRunner().invoke(main, ["info", "--model", "internvl_c_retrieval_hf", "--pretrained", "OpenGVLab/Not-here"])
    assert missing.exit_code == 1
    # Offline (as every test runs), a hub id that is not cached names the command that fetches it.
    assert "`hf download OpenGVLab/Not-here`" in missing.output and "offline" in missing.output


def test_export_then_eval_share_the_precision_default() -> None:
    """No --precision on this CPU machine: both resolve to fp32, so eval finds what export wrote."""
    import torch

    from zsbench.types import resolve_precision

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision(None, cpu) == "fp32" and resolve_precision(None, gpu) == "fp16"
    plan = CliRunner().invoke(main, ["eval", "--model_type", "internvl", "--model", "internvl_c_retrieval_hf", "--pretrained", "x",
                                     "--dataset", "flickr30k", "--backend", "onnx", "--device", "cpu", "--dry-run"])
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["precision"] == "fp32"


def test_demo_refuses_a_missing_checkpoint_before_generating_data(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--pretrained", str(tmp_path / "nowhere"), "--data_dir", str(tmp_path / "data")])
    assert result.exit_code == 1 and "No demo checkpoint" in result.output and "--pretrained PATH" in result.output
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_demo_runs_from_an_empty_folder(tmp_path: Path) -> None:
    """`zsbench demo` where there is no pretrained/ folder: the checkpoint is found beside the package."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("ZSBENCH_DEMO_CHECKPOINT", None)
    done = subprocess.run(
        [sys.executable, "-m", "zsbench", "demo", "--backends", "torch", "--models", "internvl_c_classification_hf",
         "--device", "cpu", "--threads", "1", "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = list((tmp_path / "results" / "demo" / "torch").glob("*.json"))
    assert len(results) == 1
    result = json.loads(results[0].read_text())
    assert result["model"] == "internvl_c_classification_hf" and result["metrics"]["acc1"] > 0.5
    assert result["env"]["threads"]["torch"] == 1
    assert "DataLoader" not in done.stderr


@pytest.mark.slow
def test_quiet_hides_dataloader_worker_warnings(tmp_path: Path, tiny_hf_folder: Path) -> None:
    """More workers than cores makes torch's DataLoader warn; --quiet keeps only the result line."""
    from tests.data.fixtures import write_cifar

    write_cifar(tmp_path / "cifar", count=6)
    workers = str(len(os.sched_getaffinity(0)) + 1)
    outputs = {}
    for verbosity in ([], ["--quiet"]):
        done = subprocess.run(
            [sys.executable, "-m", "zsbench", "eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf",
             "--pretrained", str(tiny_hf_folder), "--dataset", "cifar10", "--dataset_root", str(tmp_path / "cifar"),
             "--output", str(tmp_path / f"r{len(verbosity)}.json"), "--device", "cpu", "--batch_size", "2",
             "--num_workers", workers, *verbosity],
            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        outputs[bool(verbosity)] = done
    assert "worker processes in total" in outputs[False].stderr
    assert "worker processes in total" not in outputs[True].stderr
    assert "1 evaluation(s) run" in outputs[True].stdout


@dataclass(frozen=True)
class FlagConfig:
    """A config with a flag that is on by default (as `EvalOptions.normalize`)."""

    skip_bad_images: bool = True


def test_a_flag_on_by_default_is_turned_off_by_no_in_both_spellings() -> None:
    """How a field such as `normalize: bool = True` reads on the command line."""
    from zsbench.options import CliSpec, Options, build_config, config_parameters

    options = Options(f"{__name__}:FlagConfig", {"skip_bad_images": CliSpec(help="Skip unreadable images.")})
    command = click.Command("x", params=config_parameters(options))
    for args, expected in [([], True), (["--no_skip_bad_images"], False), (["--no-skip-bad-images"], False),
                           (["--skip-bad-images"], True)]:
        ctx = command.make_context("x", args)
        assert build_config(options, dict(ctx.params)) == FlagConfig(expected)


def test_a_bench_whose_every_row_is_skipped_fails_instead_of_printing_an_empty_table(tiny_hf_folder: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "--model_type", "internvl", "--model", "internvl_c_retrieval_hf", "--pretrained",
                                       str(tiny_hf_folder), "--backends", "onnx", "--precisions", "bf16", "--batch_sizes", "1"])
    assert result.exit_code == 1, result.output
    assert "skip onnx bf16: --precision bf16: --backend onnx (onnxruntime) runs" in result.output
    assert "Error: Nothing to measure: every backend and precision asked for was skipped (onnx bf16;" in result.output
    assert "backend precision batch" not in result.output and "Traceback" not in result.output
