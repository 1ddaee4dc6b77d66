"""Engines built on this CPU by TensorRT-RTX (ahead of time): their bindings against what the runner feeds,
reuse with the settings they were built with, and an export + engines project folder that moves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.export.test_trt import FLAVOR, needs_builder
from zsbench.export.store import find_artifact
from zsbench.export.trt_build import EngineConfig, build_engines
from zsbench.runtime.engine_manifest import load_engine_manifest
from zsbench.runtime.flavor import gpu_target, select_trt_flavor, trt_module
from zsbench.runtime.trt import _torch_dtype

pytestmark = [pytest.mark.trt, needs_builder]
PROFILES = ((1, 2, 4), (4, 8, 16))


@pytest.fixture(scope="module")
def built(exports: dict, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A project folder holding export/<name> (a copy of the tiny InternVL-C fp16 export) and engines/<name>."""
    project = tmp_path_factory.mktemp("project")
    export = project / "export" / "tiny-c-fp16"
    shutil.copytree(exports[("c", "fp16")].folder, export)
    engines = project / "engines" / "tiny-c-fp16"
    build_engines(EngineConfig(export, out=engines, flavor=FLAVOR, batch_profiles=PROFILES, text_length=(1, 8, 80), workspace_gib=1.5))
    return export, engines


def test_parsed_network_bindings_match_what_the_runner_feeds(built: tuple[Path, Path]) -> None:
    export, engines = built
    trt = trt_module(select_trt_flavor(FLAVOR, gpu_target()))
    manifest = load_engine_manifest(engines)
    export_io = json.loads((export / "manifest.json").read_text())["graphs"]
    fed = {"vision": torch.float32, "text": torch.int64}  # the transform's pixels, the tokenizer's ids
    for graph in ("vision", "text"):
        logger = trt.Logger(trt.Logger.ERROR)
        network = trt.Builder(logger).create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        assert parser.parse_from_file(str(export / f"{graph}.onnx")), [str(parser.get_error(i)) for i in range(parser.num_errors)]
        assert (network.num_inputs, network.num_outputs) == (1, 1)  # the runner binds one input and one output
        inputs, outputs = network.get_input(0), network.get_output(0)
        (io,), (out,) = export_io[graph]["inputs"], export_io[graph]["outputs"]
        assert (inputs.name, outputs.name) == (io["name"], out["name"])
        assert _torch_dtype(trt, inputs.dtype) == fed[graph]
        assert _torch_dtype(trt, outputs.dtype) in (torch.float16, torch.float32)
        shape = tuple(inputs.shape)
        assert shape[0] == -1 and outputs.shape[0] == -1  # dynamic batch
        for profile in manifest.profiles[graph]:
            assert profile.input == inputs.name and len(profile.min) == len(shape)
            for dim, low, high in zip(shape[1:], profile.min[1:], profile.max[1:]):
                assert (dim == -1 and low <= high) or dim == low == high  # dynamic text length, fixed image size
        if graph == "text":
            assert shape[1] == -1 and manifest.profiles["text"][0].max[1] == 80
        assert (engines / manifest.engines[graph]).stat().st_size > 0


def test_engines_are_reused_with_the_settings_they_were_built_with(built: tuple[Path, Path]) -> None:
    export, engines = built
    recorded = load_engine_manifest(engines)
    config = EngineConfig.as_built(export, engines, recorded)
    assert (config.batch_profiles, config.text_length, config.workspace_gib) == (PROFILES, (1, 8, 80), 1.5)
    messages: list[str] = []
    assert build_engines(config, log=messages.append).reused, messages
    assert any(m.startswith("Reusing the engines") for m in messages)


def test_a_copied_project_folder_finds_its_export_and_reuses_its_engines(built: tuple[Path, Path], tmp_path: Path) -> None:
    export, engines = built
    recorded = json.loads((engines / "manifest.json").read_text())
    assert recorded["artifact"] == "../../export/tiny-c-fp16"  # relative: travels with the project
    moved = tmp_path / "elsewhere"
    shutil.copytree(export.parent.parent, moved)
    copy = load_engine_manifest(moved / "engines" / "tiny-c-fp16")
    assert copy.artifact == str((moved / "export" / "tiny-c-fp16").resolve())
    config = EngineConfig.as_built(moved / "export" / "tiny-c-fp16", moved / "engines" / "tiny-c-fp16", copy)
    assert build_engines(config).reused
    # --engine_dir names the engine folder itself, or a folder holding engines built from this export.
    def from_copy(folder: Path) -> bool:
        return Path(load_engine_manifest(folder).artifact) == (moved / "export" / "tiny-c-fp16").resolve()

    assert find_artifact(moved / "engines" / "tiny-c-fp16", "default-name", from_copy) == moved / "engines" / "tiny-c-fp16"
    assert find_artifact(moved / "engines", "default-name", from_copy) == moved / "engines" / "tiny-c-fp16"
    assert find_artifact(export.parent.parent / "engines", "default-name", from_copy) == export.parent.parent / "engines" / "default-name"


def test_manifests_with_absolute_paths_still_read(built: tuple[Path, Path], tmp_path: Path) -> None:
    export, engines = built
    old = tmp_path / "old-engines"
    shutil.copytree(engines, old)
    data = json.loads((old / "manifest.json").read_text())
    data["artifact"] = str(export.resolve())  # as manifests were written before relative paths
    (old / "manifest.json").write_text(json.dumps(data))
    assert load_engine_manifest(old).artifact == str(export.resolve())
