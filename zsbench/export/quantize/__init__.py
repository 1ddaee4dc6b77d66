"""Quantized graphs (int8, fp8): calibration sets, the quantizers, and the per-node error report.

- `calibration`: calibration inputs made by the model's own transform and tokenizer, disjoint
  from the parity probes, and the record the manifest keeps of them;
- `policy`: a family's `PrecisionPolicy` for a quantized precision (`zsbench.models.export_spec`)
  matched against a saved graph;
- `record`: `Quantizer` (what `PrecisionSpec.quantizer` names) and `QuantizedGraph` (what the
  manifest records of one quantized graph);
- `int8`: ONNX Runtime's `quantize_static`, the int8 graphs ONNX Runtime runs;
- `modelopt_qdq`: NVIDIA Model Optimizer's int8/fp8 Q/DQ graphs TensorRT engines are built from;
- `graphs`: an export's traced graphs through a precision's quantizer, and the failing-gate advice;
- `node_report`: which quantized nodes lose the most, compared with the fp32 graph.

Importing this package imports neither onnx nor onnxruntime: the functions that need them do.
"""
