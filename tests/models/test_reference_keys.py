"""Full-size configurations build on the meta device with exactly the real checkpoints' keys and shapes."""

from __future__ import annotations

from pathlib import Path

import pytest

from zsbench.models import builtin_config, create_model
from zsbench.models.checkpoints import is_dropped_key, native_to_pth, pth_to_native

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
# Vendored copies keep the test runnable from a clone that has no ../shared beside it.
VENDORED = Path(__file__).resolve().parent / "data"


def reference_keys(name: str) -> dict[str, list[int]]:
    path = REFERENCE / name if (REFERENCE / name).is_file() else VENDORED / name
    keys = {}
    for line in path.read_text().splitlines():
        key, shape, _dtype = line.split("\t")
        keys[key] = [int(dim) for dim in shape.strip("[]").split(",") if dim.strip()]
    return keys


def test_hf_full_size_keys_equal_reference() -> None:
    model = create_model(builtin_config("internvl_14b_224px"), "hf", "g", device="meta")
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    expected = {key: shape for key, shape in reference_keys("internvl_hf_keys_full.txt").items() if not is_dropped_key(key)}
    assert len(expected) == 1048 - 3  # qllama.lm_head.weight, itm_head.weight, itm_head.bias
    assert ours == expected


def test_pth_full_size_keys_equal_reference() -> None:
    model = create_model(builtin_config("internvl_c_13b_224px"), "pth", "c", device="meta")
    ours = {native_to_pth(key): list(value.shape) for key, value in model.state_dict().items()}
    assert ours == reference_keys("internvl_c_pth_keys_full.txt")
    assert sum(value.numel() for value in model.state_dict().values()) == pytest.approx(12.62e9, rel=1e-3)


def test_pth_names_round_trip() -> None:
    for key in reference_keys("internvl_c_pth_keys_full.txt"):
        assert native_to_pth(pth_to_native(key)) == key
