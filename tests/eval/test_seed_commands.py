"""Every command line of the seed README parses and resolves to the right loaders, task, language and output."""

from __future__ import annotations

import json
import shlex
from importlib import resources

import pytest
from click.testing import CliRunner

from zsbench.cli import main

SEED = json.loads((resources.files("zsbench.eval") / "paper_results.json").read_text(encoding="utf-8"))
CASES = [
    (section["title"], command, expected)
    for section in SEED
    for command, expected in zip(section["commands"], section["expected"], strict=True)
]


def zsbench_args(command: str) -> list[str]:
    """`CUDA_VISIBLE_DEVICES=0 python3 clip_benchmark/cli.py eval ...` -> the arguments after `eval`."""
    tokens = shlex.split(command)
    return tokens[tokens.index("eval") + 1 :]


def option(args: list[str], name: str) -> str:
    for index, token in enumerate(args):
        if token == name:
            return args[index + 1]
        if token.startswith(name + "="):
            return token.split("=", 1)[1]
    raise KeyError(name)


def test_there_are_54_seed_commands() -> None:
    assert len(CASES) == 54


@pytest.mark.parametrize(("title", "command", "expected"), CASES, ids=[f"{c[0]}|{c[2]['language']}" for c in CASES])
def test_seed_command_resolves(title: str, command: str, expected: dict) -> None:
    args = zsbench_args(command)
    result = CliRunner().invoke(main, ["eval", *args, "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, lines
    plan = json.loads(lines[0])
    for key in ("dataset", "model", "pretrained", "task", "language"):
        assert plan[key] == expected[key], key
    assert plan["dataset_root"] == option(args, "--dataset_root")
    assert plan["output"] == option(args, "--output")
    hf = expected["model"].endswith("_hf")
    assert plan["model_loader"].startswith("internvl_hf/" if hf else "internvl_pth/")
    assert plan["model_loader"].endswith("/retrieval" if "retrieval" in expected["model"] else "/classification")
    assert ("InternVL-G" in plan["model_loader"]) == expected["model"].startswith("internvl_g")
    assert plan["dataset_loader"]
