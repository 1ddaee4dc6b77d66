"""The TensorRT runner's own logic, driven through a stand-in TensorRT module (`standin_trt`).

These tests exercise OUR code -- profile choice, padding and splitting of batches, buffer
sizing, the order of TensorRT calls, the stream the work goes to, the runtime cache file, the
order objects are released in, and the TensorRT 10/11 differences the build and runner meet --
against a stand-in that enforces TensorRT 10's rules (and 11's removals). They do not test TensorRT itself:
that needs a GPU (tests/export/test_trt.py::test_engines_match_pytorch_on_the_gpu and
scripts/gpu_check.sh).
"""

from __future__ import annotations

import gc
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from tests.runtime import standin_trt
from tests.runtime.standin_trt import HostStream, expected_output, tensorrt_11, write_engine
from zsbench.errors import EngineError
from zsbench.export.trt_build import fp32_stays_fp32, network_options
from zsbench.runtime.trt import TrtEngineRunner

BATCHES = (1, 5, 8, 9, 64, 70, 130)
TWO_PROFILES = [[[1, 3, 4, 4], [4, 3, 4, 4], [8, 3, 4, 4]], [[16, 3, 4, 4], [32, 3, 4, 4], [64, 3, 4, 4]]]
WIDTH = 6


def vision_runner(tmp_path: Path, profiles: list = TWO_PROFILES, cache: Path | None = None,
                  trt: ModuleType = standin_trt) -> TrtEngineRunner:
    engine = write_engine(tmp_path / "vision.engine", "pixel_values", "float32", (3, 4, 4), profiles, "image_embeds", "float32", WIDTH)
    return TrtEngineRunner(engine, trt, torch.device("cpu"), cache, stream=HostStream())


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
    assert cache.read_bytes() == b"kernels:p0:3x3x4x4"  # saved after the context's first run
    second = vision_runner(tmp_path, cache=cache)
    assert second.runtime_cache_loaded
    second.infer(torch.rand(20, 3, 4, 4))
    assert cache.read_bytes() == b"kernels:p0:3x3x4x4,p1:20x3x4x4"
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


def test_runtime_cache_growth_after_the_first_runs_is_saved_at_close(tmp_path: Path) -> None:
    cache = tmp_path / "vision.engine.runtime.cache"
    runner = vision_runner(tmp_path, cache=cache)
    runner.infer(torch.rand(3, 3, 4, 4))
    saved = cache.stat().st_mtime_ns
    runner.infer(torch.rand(5, 3, 4, 4))  # same profile, another shape: a new kernel, not a first run
    runner.infer(torch.rand(3, 3, 4, 4))
    assert cache.read_bytes() == b"kernels:p0:3x3x4x4"
    runner.close()
    assert cache.read_bytes() == b"kernels:p0:3x3x4x4,p0:5x3x4x4"
    reopened = vision_runner(tmp_path, cache=cache)
    assert reopened.runtime_cache_loaded
    reopened.infer(torch.rand(5, 3, 4, 4))  # first run of this context, nothing new compiled ...
    reopened.close()  # ... so neither the run nor the close rewrites the file
    assert cache.read_bytes() == b"kernels:p0:3x3x4x4,p0:5x3x4x4" and cache.stat().st_mtime_ns != saved


def test_an_unchanged_runtime_cache_is_not_rewritten(tmp_path: Path) -> None:
    cache = tmp_path / "vision.engine.runtime.cache"
    with vision_runner(tmp_path, cache=cache) as runner:
        runner.infer(torch.rand(3, 3, 4, 4))
    written = cache.stat().st_mtime_ns
    with vision_runner(tmp_path, cache=cache) as runner:
        runner.infer(torch.rand(3, 3, 4, 4))
    assert cache.stat().st_mtime_ns == written


@pytest.mark.parametrize("how", ["close", "context manager", "dropped"])
def test_the_runner_releases_its_objects_in_dependency_order(tmp_path: Path, how: str) -> None:
    cache = tmp_path / "vision.engine.runtime.cache"
    standin_trt.RELEASED.clear()
    standin_trt.VIOLATIONS.clear()
    if how == "context manager":
        with vision_runner(tmp_path, cache=cache) as runner:
            runner.infer(torch.rand(20, 3, 4, 4))
            runner.infer(torch.rand(2, 3, 4, 4))
            runner.infer(torch.rand(7, 3, 4, 4))  # a kernel compiled after the first runs
    else:
        runner = vision_runner(tmp_path, cache=cache)
        runner.infer(torch.rand(20, 3, 4, 4))
        runner.infer(torch.rand(2, 3, 4, 4))
        runner.infer(torch.rand(7, 3, 4, 4))
        if how == "close":
            runner.close()
            runner.close()  # a second close does nothing
        else:
            del runner  # what eval does with an encoder it is done with
            gc.collect()
    assert standin_trt.VIOLATIONS == []
    assert standin_trt.RELEASED == ["context", "context", "runtime config", "runtime cache", "engine", "runtime"]
    assert b"p0:7x3x4x4" in cache.read_bytes()  # the cache is saved before anything is released


def test_a_closed_runner_refuses_to_run(tmp_path: Path) -> None:
    runner = vision_runner(tmp_path)
    runner.close()
    assert runner.engine is None and runner.memory_bytes() == {"engine": 0, "contexts": 0}
    with pytest.raises(EngineError, match="was closed"):
        runner.infer(torch.rand(2, 3, 4, 4))


def test_a_batch_of_no_rows_returns_an_empty_result_without_running(tmp_path: Path) -> None:
    runner = vision_runner(tmp_path)
    output = runner.infer(torch.empty(0, 3, 4, 4))
    assert output.shape == (0, WIDTH) and output.dtype == torch.float32
    assert runner.engine.contexts == []  # nothing was run, no context made
    with pytest.raises(EngineError, match="fits no optimization profile"):
        runner.infer(torch.empty(0, 3, 5, 5))  # the image size is still checked


@pytest.mark.parametrize(("trt", "network"), [
    (standin_trt, {"strongly_typed": True}),
    (tensorrt_11(), {"strongly_typed": True}),  # 11.0: deprecated and ignored, still accepted
    (tensorrt_11(strongly_typed_flag=False), {}),  # its announced removal: every network is strongly typed anyway
], ids=["tensorrt-10", "tensorrt-11", "tensorrt-11-without-STRONGLY_TYPED"])
def test_builder_settings_touch_only_flags_the_library_has(trt: ModuleType, network: dict) -> None:
    assert network_options(trt) == network
    config = standin_trt.BuilderConfig(trt.BuilderFlag)
    fp32_stays_fp32(trt)(None, None, config)
    assert config.flags == set()  # TF32 (on by default) is off: the graph's fp32 islands run in fp32


def test_the_tensorrt_11_stand_in_lacks_what_11_removed(tmp_path: Path) -> None:
    """The differences are live: code that used a removed flag or device_memory_size would fail here."""
    trt11 = tensorrt_11()
    with pytest.raises(AttributeError):
        trt11.BuilderFlag.FP16  # noqa: B018 - the access is the test
    with pytest.raises(AssertionError, match="no such builder flag"):
        standin_trt.BuilderConfig(trt11.BuilderFlag).set_flag("FP16")
    runner = vision_runner(tmp_path, trt=trt11)
    assert not hasattr(runner.engine, "device_memory_size")
    runner.infer(torch.rand(20, 3, 4, 4))
    assert runner.memory_bytes()["contexts"] == 3 * 2**20  # from device_memory_size_v2
