"""The provenance record of a result (its ``env``): where and how the numbers were made, from the same
functions `zsbench doctor` reports with (`zsbench.runtime.machine`).

``provenance_record(encoder, checkpoint, model_type)``::

    zsbench        version, git commit and whether files differ from it (run from a checkout)
    python, platform
    cpu            model name ("AMD EPYC 9654 96-Core Processor") and logical core count
    gpu            the encoder's GPU: name, compute capability, memory, driver, the CUDA the driver
                   supports and the CUDA torch was built for (None on a CPU)
    versions       every runtime library the run used: torch, torchvision (the transforms),
                   open_clip_torch (open_clip models), onnxruntime, the TensorRT flavor, polygraphy
    threads        CPU threads of torch (and ONNX Runtime's intra-op threads)
    checkpoint     the checkpoint's fingerprint (the digest exports and caches are keyed by)
    artifacts      SHA-256 of each graph or engine file that produced the numbers
    (onnx: execution_provider; trt: engines_built_for)

``machine_record()`` is the same without an encoder (a bench over several backends): every
installed runtime library, and the current GPU.
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from zsbench.runtime.encoder import Encoder
from zsbench.runtime.machine import DISTRIBUTIONS, cpu_model, library_version, nvml_report, torch_gpu, zsbench_source

RECORD_FORMAT = "zsbench-provenance/1"


def gpu_record(device: torch.device) -> dict[str, Any] | None:
    """The GPU `device` names, as torch and the driver describe it (None for a CPU)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    gpu = torch_gpu(device.index if device.index is not None else torch.cuda.current_device())
    driver = nvml_report()
    return {"name": gpu.name, "compute_capability": gpu.compute_capability, "memory_gib": gpu.memory_gib,
            "driver": driver.version if driver else None, "cuda_driver": driver.cuda if driver else None,
            "cuda_runtime": torch.version.cuda}


def _common() -> dict[str, Any]:
    return {"format": RECORD_FORMAT, "zsbench": dict(zsbench_source()), "python": platform.python_version(), "platform": platform.platform(),
            "cpu": {"model": cpu_model(), "count": os.cpu_count()}}


def provenance_record(encoder: Encoder, checkpoint: str | None, model_type: str = "internvl") -> dict[str, Any]:
    """The ``env`` of a result the `encoder` produced from the checkpoint fingerprinted `checkpoint`."""
    used = encoder.provenance()
    used["versions"] = {**used["versions"], "torchvision": library_version("torchvision")}
    if model_type == "open_clip":
        used["versions"]["open_clip_torch"] = library_version("open_clip_torch")
    return {**_common(), "gpu": gpu_record(encoder.device), **used, "checkpoint": checkpoint}


def machine_record() -> dict[str, Any]:
    """The machine and every installed runtime library (for outputs that span backends, such as a bench)."""
    versions = {name: library_version(name) for name in DISTRIBUTIONS if name != "zsbench"}
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return {**_common(), "gpu": gpu_record(device), "versions": {k: v for k, v in versions.items() if v},
            "threads": {"torch": torch.get_num_threads()}}
