"""Export: torch -> ONNX (fp32 / fp16), ONNX -> TensorRT engines, parity checks, manifests, the artifact store.

Everything here is driven by the model family's `ExportSpec` (`zsbench.models.export_spec`): no module
names a family. The attributes are imported on first use (`zsbench.lazy`), so that the commands' options
(in `zsbench.export.config`) are built without torch; and importing this package imports neither onnx,
onnxruntime, polygraphy nor tensorrt: each is imported by the function that needs it. The graphs and
engines are run by `zsbench.runtime` (the same encoders `--backend onnx|trt` evaluate with); this
package builds and checks them.
"""

from zsbench.lazy import lazy_attributes

_EXPORTS = {
    "EngineBuildResult": "zsbench.export.trt_build",
    "EngineConfig": "zsbench.export.config",
    "EngineManifest": "zsbench.runtime.engine_manifest",
    "ExportConfig": "zsbench.export.config",
    "ExportManifest": "zsbench.export.manifest",
    "ExportResult": "zsbench.export.pipeline",
    "ParityReport": "zsbench.export.parity",
    "ParityThresholds": "zsbench.export.parity",
    "ProbeConfig": "zsbench.export.config",
    "build_engines": "zsbench.export.trt_build",
    "check_engine_parity": "zsbench.export.trt_build",
    "check_export_parity": "zsbench.export.pipeline",
    "default_engine_dir": "zsbench.export.store",
    "default_export_dir": "zsbench.export.store",
    "export_model": "zsbench.export.pipeline",
    "load_engine_manifest": "zsbench.runtime.engine_manifest",
    "load_export_manifest": "zsbench.export.manifest",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
