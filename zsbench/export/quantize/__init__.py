"""int8 graphs: static quantization with ONNX Runtime's quantizer, calibration sets, and the per-node error report.

- `calibration`: calibration inputs made by the model's own transform and tokenizer, disjoint
  from the parity probes, and the record the manifest keeps of them;
- `policy`: a family's `Int8Policy` (`zsbench.models.precision_policy`) matched against a graph;
- `int8`: `quantize_graph`, one fp32 graph -> one QDQ int8 graph;
- `node_report`: which quantized nodes lose the most, compared with the fp32 graph.

Importing this package imports neither onnx nor onnxruntime: the functions that need them do.
"""
