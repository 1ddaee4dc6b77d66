"""Running exported graphs and built engines: the layer below `export/` (which checks their parity)
and `backends/` (which finds them for eval), so both drive the same encoders.

    encoder.py          Encoder: the interface eval and parity call, with its timing
    onnxrt.py           OnnxEncoder: an export's graphs with ONNX Runtime
    trt.py              TrtEncoder / TrtEngineRunner: engines with TensorRT or TensorRT-RTX
    flavor.py           which TensorRT library for which GPU (`choose_flavor`)
    engine_manifest.py  what an engine folder holds, and when its engines are stale
    trust.py            the digests and the parity verdict an artifact must show before it runs
    machine.py          what this machine has: CPU, GPUs (driver's and torch's view), runtime libraries
    provenance.py       the provenance record every result carries (built from machine.py's probes)

Nothing here builds anything (that is `export/`), and importing this package imports neither
onnxruntime nor TensorRT: each is imported when an encoder is opened (or, by `machine.py`, in
`zsbench doctor`'s time-limited child process).
"""
