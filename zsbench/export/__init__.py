"""Export: torch -> ONNX (fp32 / fp16), ONNX -> FP16 TensorRT engines, parity checks, manifests.

Importing this package imports neither onnx, onnxruntime, polygraphy nor tensorrt: each is
imported by the function that needs it. What an ONNX or TensorRT eval backend reuses:
`load_export_manifest` (IO specs, preprocessing, tokenizer settings, parity verdict),
`OnnxArtifactRunner`, `load_engine_manifest` and `TrtArtifactRunner` (stale engines refused).
"""

from zsbench.export.engine_manifest import EngineManifest, load_engine_manifest
from zsbench.export.manifest import ExportManifest, load_export_manifest
from zsbench.export.ort_runner import OnnxArtifactRunner, OnnxGraphRunner
from zsbench.export.parity import ParityReport, ParityThresholds
from zsbench.export.pipeline import ExportConfig, ExportResult, check_artifact_parity, default_export_dir, export_model
from zsbench.export.probes import ProbeConfig
from zsbench.export.trt_build import EngineBuildResult, EngineConfig, build_engines, default_engine_dir
from zsbench.export.trt_runner import TrtArtifactRunner, TrtEngineRunner

__all__ = [
    "EngineBuildResult",
    "EngineConfig",
    "EngineManifest",
    "ExportConfig",
    "ExportManifest",
    "ExportResult",
    "OnnxArtifactRunner",
    "OnnxGraphRunner",
    "ParityReport",
    "ParityThresholds",
    "ProbeConfig",
    "TrtArtifactRunner",
    "TrtEngineRunner",
    "build_engines",
    "check_artifact_parity",
    "default_engine_dir",
    "default_export_dir",
    "export_model",
    "load_engine_manifest",
    "load_export_manifest",
]
