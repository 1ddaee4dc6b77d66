"""Export: torch -> ONNX (fp32 / fp16), ONNX -> TensorRT engines, parity checks, manifests, the artifact store.

Everything here is driven by the model family's `ExportSpec` (`zsbench.models.export_spec`): no module
names a family. Importing this package imports neither onnx, onnxruntime, polygraphy nor tensorrt: each is
imported by the function that needs it. The graphs and engines are run by `zsbench.runtime`
(the same encoders `--backend onnx|trt` evaluate with); this package builds and checks them.
"""

from zsbench.export.manifest import ExportManifest, load_export_manifest
from zsbench.export.parity import ParityReport, ParityThresholds
from zsbench.export.pipeline import ExportConfig, ExportResult, check_export_parity, export_model
from zsbench.export.probes import ProbeConfig
from zsbench.export.store import default_engine_dir, default_export_dir
from zsbench.export.trt_build import EngineBuildResult, EngineConfig, build_engines, check_engine_parity
from zsbench.runtime.engine_manifest import EngineManifest, load_engine_manifest

__all__ = [
    "EngineBuildResult",
    "EngineConfig",
    "EngineManifest",
    "ExportConfig",
    "ExportManifest",
    "ExportResult",
    "ParityReport",
    "ParityThresholds",
    "ProbeConfig",
    "build_engines",
    "check_engine_parity",
    "check_export_parity",
    "default_engine_dir",
    "default_export_dir",
    "export_model",
    "load_engine_manifest",
    "load_export_manifest",
]
