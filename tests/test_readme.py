"""The README as a new user reads it: no path of the machine it was written on, and a walkthrough that
`scripts/readme_walkthrough.sh` can find (it runs the marked blocks from a fresh clone)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
READMES = sorted([REPO / "README.md", *REPO.glob("*/README.md"), *REPO.glob("pretrained/*/README.md")])
# Absolute paths under folders that belong to one machine (an example such as `/abs/x` is fine).
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|root|Users|tmp|mnt|opt|var)/\S*")


@pytest.mark.parametrize("readme", READMES, ids=[str(path.relative_to(REPO)) for path in READMES])
def test_readmes_name_no_path_of_a_machine(readme: Path) -> None:
    assert MACHINE_PATH.findall(readme.read_text(encoding="utf-8")) == []


def test_the_walkthrough_is_marked_and_uses_its_own_export() -> None:
    """The blocks the walkthrough script runs: the demo first, an export, then an onnx eval of the
    precision a CPU evaluates in (fp32), which therefore uses that export."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- walkthrough -->\n```bash\n(.*?)```", text, re.DOTALL)
    commands = [line.split("#")[0].strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    commands = [command for command in commands if command]
    assert commands[0] == "zsbench demo"
    export = next(index for index, command in enumerate(commands) if command.startswith("zsbench export"))
    assert "--precision" not in commands[export]  # the default: fp32 on a CPU, as eval picks
    evaluation = next(command for command in commands[export:] if command.startswith("zsbench eval"))
    assert "--backend onnx" in evaluation and "--precision" not in evaluation
    assert "zsbench parity --artifact export/internvl_c_hf-zsbench-demo-fp32" in commands
