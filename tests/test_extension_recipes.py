"""The README's extension recipes, followed to the letter: a toy dataset, a toy backend and a toy exporting model
family, each one file (`tests/recipes/`) in a temporary package outside zsbench, registered as the recipe says,
then run through `zsbench eval` (the toy family also through the onnx backend: exported, parity-checked, run)."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from zsbench.backends import BACKENDS
from zsbench.cli import main
from zsbench.data import DATASETS
from zsbench.models.families import MODEL_FAMILIES

RECIPES = Path(__file__).parent / "recipes"
PACKAGE = "zsbench_toy_plugins"


@pytest.fixture()
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The three recipe files copied into a package of their own, registered as the README says, and
    unregistered afterwards."""
    package = tmp_path / "plugins" / PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in ("toy_dataset", "toy_backend", "toy_family"):
        shutil.copy(RECIPES / f"{name}.py", package / f"{name}.py")
    monkeypatch.syspath_prepend(str(package.parent))
    # Dataset: the loader module registers its name when it is imported (in-tree: imported by data/build.py).
    importlib.import_module(f"{PACKAGE}.toy_dataset")
    # Backend and family: one "module:attribute" string each (in-tree: in backends/__init__.py, families/__init__.py).
    BACKENDS.add("toy64", f"{PACKAGE}.toy_backend:BACKEND")
    MODEL_FAMILIES.add("toy", f"{PACKAGE}.toy_family:FAMILY")
    try:
        yield tmp_path
    finally:
        DATASETS.remove("toy_shapes")
        BACKENDS.remove("toy64")
        MODEL_FAMILIES.remove("toy")
        for module in [name for name in sys.modules if name.startswith(PACKAGE)]:
            del sys.modules[module]


def _write_toy_data(root: Path) -> None:
    """12 images of 6 colours in the toy dataset's own format (classes.txt, labels.csv, images/)."""
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230), "yellow": (230, 220, 20),
               "black": (10, 10, 10), "white": (245, 245, 245)}
    (root / "images").mkdir(parents=True)
    (root / "classes.txt").write_text("\n".join(colours) + "\n")
    rng = np.random.default_rng(0)
    lines = []
    for index in range(12):
        label = index % len(colours)
        noise = rng.integers(-30, 30, (20, 24, 3))
        pixels = np.clip(np.array(list(colours.values())[label]) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{index:02d}.png")
        lines.append(f"{index:02d}.png,{label}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def _eval(backend: str) -> tuple[dict, str]:
    args = ["eval", "--model_type", "toy", "--model", "toy-clip", "--pretrained", "toy.safetensors", "--dataset", "toy_shapes",
            "--dataset_root", "data", "--backend", backend, "--device", "cpu", "--num_workers", "0", "--no-cache",
            "--output", f"{backend}.json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(Path(f"{backend}.json").read_text()), result.output


def test_toy_dataset_backend_and_family_run_through_eval(plugins: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(plugins)
    _write_toy_data(plugins / "data")
    family_module = importlib.import_module(f"{PACKAGE}.toy_family")
    family_module.save_random_checkpoint(plugins / "toy.safetensors")

    reference, _ = _eval("torch")
    assert reference["dataset"] == "toy_shapes" and reference["backend"] == "torch"
    assert set(reference["metrics"]) == {"acc1", "acc5", "mean_per_class_recall"}

    toy64, _ = _eval("toy64")  # the toy backend: the same model in float64
    assert toy64["backend"] == "toy64"
    assert toy64["metrics"] == pytest.approx(reference["metrics"], abs=1e-6)

    onnx, log = _eval("onnx")  # the toy family exports through the generic export path, parity gate included
    assert "exporting it now" in log and onnx["artifact"] == str(Path("export") / "toy-clip-toy-fp32")
    assert onnx["metrics"] == pytest.approx(reference["metrics"], abs=1e-6)
    manifest = json.loads((plugins / "export" / "toy-clip-toy-fp32" / "manifest.json").read_text())
    assert (manifest["model_type"], manifest["graph"]) == ("toy", "toy-clip")
    parity = json.loads((plugins / "export" / "toy-clip-toy-fp32" / "parity.json").read_text())
    assert parity["status"] == "passed"

    # fp16 graphs: exported under the family's fp16 policy, which the manifest records.
    result = CliRunner().invoke(main, ["export", "--model_type", "toy", "--model", "toy-clip", "--pretrained", "toy.safetensors",
                                       "--precision", "fp16", "--device", "cpu", "--parity_images", "40"])
    assert result.exit_code == 0, result.output
    policy = json.loads((plugins / "export" / "toy-clip-toy-fp16" / "manifest.json").read_text())["graph_policy"]
    assert policy["text"][0] == policy["vision"][0] == "weights and activations fp16"

    models = CliRunner().invoke(main, ["models"]).output
    assert "model_type toy:\n  toy-clip" in models


def test_registered_names_are_refused_once_unregistered() -> None:
    result = CliRunner().invoke(main, ["eval", "--model_type", "toy", "--dataset", "toy_shapes"])
    assert result.exit_code != 0 and "--model_type toy is not supported by zsbench" in result.output
