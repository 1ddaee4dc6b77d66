"""The README's Layout section names every module and folder that exists, in the row of its folder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_rows() -> dict[str, str]:
    """The Layout table's rows: first cell (the path, backquotes removed) -> second cell."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("path", "---"):
            rows[cells[0].replace("`", "")] = cells[1]
    return rows


def tracked_files() -> list[str]:
    """The repository's files as git knows them (untracked ones not ignored included)."""
    output = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    return [line for line in output.splitlines() if (REPO / line).exists()]


def test_every_package_module_is_named_in_its_folders_row() -> None:
    rows = layout_rows()
    missing = []
    for path in tracked_files():
        if not path.startswith("zsbench/") or not path.endswith((".py", ".json")):
            continue
        folder, name = path.rsplit("/", 1)
        if name == "__init__.py" and folder != "zsbench":  # a stage's package is its row
            continue
        row = "zsbench/ top level" if folder == "zsbench" else f"{folder}/"
        if folder.endswith("/configs"):  # architecture JSONs: the row names the folder (`configs/*.json`)
            row, name = "zsbench/models/", "configs/*.json"
        if name not in rows.get(row, ""):
            missing.append(f"{path} (row {row!r})")
    assert not missing, "not named in the README's Layout: " + ", ".join(missing)


def test_every_top_level_folder_and_file_is_named() -> None:
    named = " ".join(rows for rows in layout_rows())
    top_level = {path.split("/", 1)[0] for path in tracked_files()} - {"README.md", ".gitignore", "zsbench"}
    missing = [entry for entry in sorted(top_level) if not re.search(rf"(^|[ ,]){re.escape(entry)}(/|[ ,]|$)", named)]
    assert not missing, f"top-level entries missing from the README's Layout: {missing}"
