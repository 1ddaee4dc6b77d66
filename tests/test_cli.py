"""The `zsbench` commands, run through click on the real code and the tiny checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from safetensors import safe_open

from zsbench.cli import main


def test_models_lists_the_seed_names() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    for name in ["internvl_c_classification", "internvl_c_retrieval", "internvl_c_classification_hf",
                 "internvl_c_retrieval_hf", "internvl_g_classification_hf", "internvl_g_retrieval_hf"]:
        assert name in result.output


def test_models_lists_open_clip_architectures() -> None:
    result = CliRunner().invoke(main, ["models", "--open_clip"])
    assert result.exit_code == 0, result.output
    assert "ViT-B-32" in result.output


def test_info_reports_sizes(tiny_hf_folder: Path) -> None:
    result = CliRunner().invoke(
        main, ["info", "--model", "internvl_g_retrieval_hf", "--pretrained", str(tiny_hf_folder), "--precision", "bf16"]
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["embed_dim"] == 32 and info["image_size"] == 32 and info["context_length"] == 80
    assert info["dtype"] == "bfloat16" and info["image_head"] == "InternVL-G"
    with safe_open(str(tiny_hf_folder / "model.safetensors"), "pt") as handle:
        sizes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}  # noqa: SIM118
    numel = {key: int(np.prod(shape)) for key, shape in sizes.items()}
    assert info["parameters"] == sum(numel.values())
    assert info["vision_parameters"] == sum(n for key, n in numel.items() if key.startswith("vision_model."))
    assert info["text_parameters"] == sum(n for key, n in numel.items() if key.startswith("qllama."))

def test_user_errors_print_one_message_without_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["info", "--model", "internvl_c_retrieval_hf", "--pretrained", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "Error: Checkpoint" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_unknown_model_name_suggests_close_names(tiny_hf_folder: Path) -> None:
    result = CliRunner().invoke(main, ["info", "--model", "internvl_c_retreival_hf", "--pretrained", str(tiny_hf_folder)])
    assert result.exit_code == 1
    assert "Did you mean: internvl_c_retrieval_hf" in result.output
