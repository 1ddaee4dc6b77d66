"""InternVL's int8 precision policy: what its graphs keep in fp32 when quantized (data; see `zsbench.models.precision_policy`).

Quantized: the matrix multiplications of InternViT's blocks and QLLaMA's layers: their weights
int8 per channel, their inputs int8 calibrated, their results fp32 (rounding every result to
int8 as well, ONNX Runtime's default, was the largest error source on the demo checkpoint: it
lowered the text embeddings' minimum cosine to fp32 from 0.99984 to 0.99847). Kept in fp32,
because quantizing them breaks accuracy on CLIP-style models (issue #22):

- the patch embedding (a `Conv`: not a quantized op type; the first layer sees raw pixels);
- RMSNorm / LayerNorm and their statistics, softmax (inside `Attention`), rotary embeddings:
  not quantized op types;
- the attention-pooling heads (`clip_projector`, `clip_projector2`) and the final text projection:
  they make the embedding itself, which the zero-shot scores compare directly.
"""

from __future__ import annotations

from zsbench.models.precision_policy import Int8Policy, KeepFp32

INTERNVL_INT8_POLICY = Int8Policy(
    quantize_op_types=("MatMul", "Gemm"),
    keep_fp32=(
        KeepFp32("*clip_projector*", "attention pooling heads"),
        KeepFp32("*text_projection*", "final text projection"),
    ),
    fp32_ops=(
        "patch embedding (Conv, not quantized)",
        "RMSNormalization / LayerNormalization and their statistics",
        "attention softmax (Attention) and RotaryEmbedding",
        "activations, residual additions and reductions",
    ),
)
