"""The TensorRT runner's own logic, driven through a stand-in TensorRT module (`standin_trt`).

These tests exercise OUR code -- profile choice, padding and splitting of batches, buffer
sizing, the order of TensorRT calls, the stream the work goes to, the runtime cache file --
against a stand-in that enforces TensorRT 10's rules. They do not test TensorRT itself:
that needs a GPU (tests/export/test_trt.py::test_engines_match_pytorch_on_the_gpu and
scripts/gpu_check.sh).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.runtime import standin_trt
from tests.runtime.standin_trt import HostStream, expected_output, write_engine
from zsbench.errors import EngineError
from zsbench.runtime.trt import TrtEngineRunner

BATCHES = (1, 5, 8, 9, 64, 70, 130)
TWO_PROFILES = [[[1, 3, 4, 4], [4, 3, 4, 4], [8, 3, 4, 4]], [[16, 3, 4, 4], [32, 3, 4, 4], [64, 3, 4, 4]]]
WIDTH = 6


def vision_runner(tmp_path: Path, profiles: list = TWO_PROFILES, cache: Path | None = None) -> TrtEngineRunner:
    engine = write_engine(tmp_path / "vision.engine", "pixel_values", "float32", (3, 4, 4), profiles, "image_embeds", "float32", WIDTH)
    return TrtEngineRunner(engine, standin_trt, torch.device("cpu"), cache, stream=HostStream())


def executed(runner: TrtEngineRunner) -> list[tuple[int, ...]]:
    return [shape for context in runner.engine.contexts for shape in context.executed_shapes]


@pytest.mark.parametrize("batch", BATCHES)
def test_every_batch_size_runs_on_two_profiles_with_a_gap(tmp_path: Path, batch: int) -> None:
    runner = vision_runner(tmp_path)
    pixels = torch.randn(batch, 3, 4, 4, generator=torch.Generator().manual_seed(batch))
    output = runner.infer(pixels)
    assert output.shape == (batch, WIDTH) and output.dtype == torch.float32
    np.testing.assert_array_equal(output.numpy(), expected_output(pixels.numpy(), WIDTH).astype(np.float32))
    shapes = [shape[0] for shape in executed(runner)]
    expected_shapes = {1: [1], 5: [5], 8: [8], 9: [16], 64: [64], 70: [64, 6], 130: [64, 64, 2]}[batch]
    assert shapes == expected_shapes  # 9 falls between the profiles: padded to 16, the padding dropped


@pytest.mark.parametrize("batch", BATCHES)
def test_batches_below_the_only_profile_minimum_are_padded(tmp_path: Path, batch: int) -> None:
    runner = vision_runner(tmp_path, [[[4, 3, 4, 4], [8, 3, 4, 4], [16, 3, 4, 4]]])
    pixels = torch.rand(batch, 3, 4, 4, generator=torch.Generator().manual_seed(batch))
    np.testing.assert_array_equal(runner.infer(pixels).numpy(), expected_output(pixels.numpy(), WIDTH).astype(np.float32))
    shapes = [shape[0] for shape in executed(runner)]
    assert sum(shapes) >= batch and all(4 <= rows <= 16 for rows in shapes)
    assert shapes[-1] == max(4, batch - 16 * (len(shapes) - 1))  # a remainder of 1 or 2 rows runs as 4


def test_text_lengths_1_to_80_with_every_batch_size(tmp_path: Path) -> None:
    profiles = [[[1, 1], [4, 32], [8, 80]], [[16, 1], [32, 32], [64, 80]]]
    engine = write_engine(tmp_path / "text.engine", "input_ids", "int64", (None,), profiles, "text_embeds", "float16", WIDTH)
    runner = TrtEngineRunner(engine, standin_trt, torch.device("cpu"), stream=HostStream())
    generator = torch.Generator().manual_seed(0)
    for length in range(1, 81):
        batch = BATCHES[length % len(BATCHES)]
        ids = torch.randint(0, 10, (batch, length), generator=generator)
        output = runner.infer(ids)
        assert output.shape == (batch, WIDTH) and output.dtype == torch.float16
        np.testing.assert_array_equal(output.numpy(), expected_output(ids.numpy(), WIDTH).astype(np.float16))
    assert len(runner.engine.contexts) == 2  # one context per profile, reused across lengths
    with pytest.raises(EngineError, match="fits no optimization profile"):
        runner.infer(torch.zeros(2, 81, dtype=torch.long))


def test_tensorrt_rtx_runtime_cache_is_saved_then_loaded(tmp_path: Path) -> None:
    cache = tmp_path / "vision.engine.runtime.cache"
    first = vision_runner(tmp_path, cache=cache)
    assert not first.runtime_cache_loaded
    first.infer(torch.rand(3, 3, 4, 4))
    assert cache.read_bytes() == b"kernels:profile0"  # saved after the context's first run
    second = vision_runner(tmp_path, cache=cache)
    assert second.runtime_cache_loaded
    second.infer(torch.rand(20, 3, 4, 4))
    assert cache.read_bytes() == b"kernels:profile0,profile1"
    assert all(context.runtime_config is not None for context in second.engine.contexts)
    cache.write_bytes(b"from another GPU")  # rejected by deserialize: the runner still runs, compiling afresh
    assert not vision_runner(tmp_path, cache=cache).runtime_cache_loaded


def test_memory_counts_the_plan_and_each_context(tmp_path: Path) -> None:
    runner = vision_runner(tmp_path)
    assert runner.memory_bytes()["contexts"] == 0
    runner.infer(torch.rand(20, 3, 4, 4))
    runner.infer(torch.rand(2, 3, 4, 4))
    assert runner.memory_bytes() == {"engine": (tmp_path / "vision.engine").stat().st_size, "contexts": 2 * 3 * 2**20}


def test_the_stand_in_rejects_what_tensorrt_rejects(tmp_path: Path) -> None:
    """The rules are live: misuse of the stand-in fails, so the runner tests above can fail too."""
    engine = standin_trt.Runtime(standin_trt.Logger(1)).deserialize_cuda_engine((vision_runner(tmp_path).path).read_bytes())
    context = engine.create_execution_context()
    with pytest.raises(AssertionError, match="before the context selected its optimization profile"):
        context.set_input_shape("pixel_values", (2, 3, 4, 4))
    with pytest.raises(AssertionError, match="default CUDA stream"):
        context.set_optimization_profile_async(0, 0)
    context.set_optimization_profile_async(0, 7)
    assert context.set_input_shape("pixel_values", (9, 3, 4, 4)) is False  # outside profile 0
    assert context.set_input_shape("pixel_values", (2, 3, 4, 4)) is True
    with pytest.raises(AssertionError, match="output shape was read"):
        context.execute_async_v3(7)
    with pytest.raises(AssertionError, match="already serves another context"):
        engine.create_execution_context().set_optimization_profile_async(0, 7)
