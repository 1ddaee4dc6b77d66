"""Session fixtures: the tiny InternVL-C and InternVL-G exported once per precision, shared by the tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnx", reason="the export tests need the onnx extra: pip install 'zsbench[onnx]'")
pytest.importorskip("onnxruntime", reason="the export tests need the onnx extra: pip install 'zsbench[onnx]'")

from zsbench.export import ExportConfig, ExportResult, export_model  # noqa: E402
from zsbench.models import ModelRef  # noqa: E402

# One C and one G model name per checkpoint format: the HF folder serves both heads.
MODELS = {"c": "internvl_c_retrieval_hf", "g": "internvl_g_classification_hf"}


def export_tiny(
    model_name: str, pretrained: Path, out: Path, precision: str, model_config: Path | None = None, **overrides: object
) -> ExportResult:
    """Exports a tiny checkpoint on the CPU with the default parity probes and thresholds."""
    model = ModelRef("internvl", model_name, str(pretrained), model_config=str(model_config) if model_config else None)
    config = ExportConfig(model, out=out, precision=precision, device="cpu", **overrides)  # type: ignore[arg-type]
    return export_model(config)


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():  # noqa: ANN202 - fixture
    """The tiny models' ops take microseconds: a second thread only adds synchronisation, and on a
    2-core machine shared with other test processes it made the fp32 reference 20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory, tiny_hf_folder: Path) -> dict[tuple[str, str], ExportResult]:
    """(head, precision) -> the published export of the tiny HF checkpoint, for heads c/g and fp32/fp16."""
    root = tmp_path_factory.mktemp("export")
    return {
        (head, precision): export_tiny(name, tiny_hf_folder, root / f"{name}-{precision}", precision)
        for head, name in MODELS.items()
        for precision in ("fp32", "fp16")
    }


@pytest.fixture()
def copy_export(tmp_path: Path):  # noqa: ANN201 - returns a helper
    """Copies a published export folder into this test's tmp_path (tests that modify one)."""

    def copy(result: ExportResult, name: str = "copy") -> Path:
        target = tmp_path / name
        shutil.copytree(result.folder, target)
        return target

    return copy
