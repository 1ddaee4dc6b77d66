"""`zsbench datasets`: the names with task and loader, and one dataset's layout."""

from __future__ import annotations

from click.testing import CliRunner

from zsbench.cli import main
from zsbench.data import dataset_entry, list_datasets


def test_lists_every_name_with_task_and_loader() -> None:
    result = CliRunner().invoke(main, ["datasets"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in list_datasets():
        entry = dataset_entry(name)
        assert any(line.split() == [name, entry.task, entry.loader] for line in lines), name
    assert "wds/<name>" in result.output


def test_layout_draws_one_tree() -> None:
    result = CliRunner().invoke(main, ["datasets", "--layout", "mscoco_captions"])
    assert result.exit_code == 0, result.output
    assert dataset_entry("mscoco_captions").layout in result.output
    assert "coco_test_karpathy.json" in result.output and "Source: " in result.output


def test_layout_of_an_unknown_name_suggests_close_ones() -> None:
    result = CliRunner().invoke(main, ["datasets", "--layout", "flickr30"])
    assert result.exit_code == 1
    assert "Did you mean: flickr30k" in result.output and "Traceback" not in result.output
