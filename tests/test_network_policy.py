"""Importing zsbench and asking any command for --help never touch the network; the offline switches are read as documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli_contract import COMMANDS
from zsbench.offline import OFFLINE_VARIABLES, go_offline, is_offline

REPO = Path(__file__).resolve().parents[1]

GUARDED = """
import socket, sys
def refuse(*args, **kwargs):
    print("NETWORK USED", args, file=sys.stderr)
    raise SystemExit(99)
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import zsbench, zsbench.cli
for args in {commands!r}:
    try:
        zsbench.cli.main.main(args=[*args, "--help"], prog_name="zsbench")
    except SystemExit as exit:
        assert exit.code in (0, None), (args, exit.code)
print("NO NETWORK", file=sys.stderr)
"""


def test_import_and_every_help_open_no_socket() -> None:
    commands = [list(path) for path, _ in COMMANDS] + [[]]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name in OFFLINE_VARIABLES:  # online: nothing but the guard stops a connection
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-c", GUARDED.format(commands=commands)], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0 and done.stderr.strip().endswith("NO NETWORK"), done.stderr


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_each_offline_switch(value: str, offline: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for switch in OFFLINE_VARIABLES:
        for name in OFFLINE_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(switch, value)
        assert is_offline() is offline, switch


def test_go_offline_switches_huggingface_hub_already_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("ZSBENCH_OFFLINE")
    assert not is_offline() and not constants.is_offline_mode()
    go_offline()
    assert is_offline() and constants.is_offline_mode()
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # child processes too (conftest restores the variables after the test)
