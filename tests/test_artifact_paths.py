"""How manifests record paths: relative near their folder (so a copied project works), absolute elsewhere."""

from __future__ import annotations

from pathlib import Path

from zsbench.artifact_paths import recorded_path, stored_path


def test_paths_near_the_folder_are_relative_and_read_back(tmp_path: Path) -> None:
    folder = tmp_path / "project" / "engines" / "m"
    for target, stored in [
        (folder / "vision.engine", "vision.engine"),
        (tmp_path / "project" / "engines" / "timing.cache", "../timing.cache"),
        (tmp_path / "project" / "export" / "m", "../../export/m"),
        (tmp_path / "project" / "pretrained" / "ckpt.pth", "../../pretrained/ckpt.pth"),
    ]:
        assert stored_path(target, folder) == stored
        assert recorded_path(stored, folder) == target.resolve()


def test_far_paths_stay_absolute_and_absolute_values_read_as_they_are(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "c" / "d"
    far = tmp_path / "elsewhere" / "ckpt"
    assert stored_path(far, folder) == str(far.resolve())
    assert recorded_path(str(far), folder) == far
