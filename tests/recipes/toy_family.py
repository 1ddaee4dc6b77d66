"""A toy exporting model family: the README's "Adding a model family" recipe, as one file.

A CLIP-style model small enough to build in a test (pooled pixels and averaged character embeddings,
each projected to 16 dimensions), its tokenizer, transform and checkpoint format, and an export spec,
which is all `zsbench export` and the onnx/trt backends need to export, check and run it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zsbench.models.export_spec import FP16_REDUCTIONS, IMAGE_GRAPH, TEXT_GRAPH, ExportSpec, PrecisionPolicy
from zsbench.models.families import CheckpointRecord, InputSize, LoadedClip, ModelFamily

CONFIG = {"image_size": 16, "vocab_size": 64, "width": 16, "context_length": 32}


class ToyClip(nn.Module):
    """`encode_image`: 4x4 average-pooled pixels -> linear; `encode_text`: mean of the non-padding ids' embeddings -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.image_projection = nn.Linear(3 * 16, CONFIG["width"])
        self.token_embedding = nn.Embedding(CONFIG["vocab_size"], CONFIG["width"])
        self.text_projection = nn.Linear(CONFIG["width"], CONFIG["width"])

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.image_projection(nn.functional.adaptive_avg_pool2d(pixels, 4).flatten(1))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids > 0).unsqueeze(-1).to(self.token_embedding.weight.dtype)
        mean = (self.token_embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.text_projection(mean)


class ToyTokenizer:
    """Characters -> ids 1..63, truncated to the context length, right-padded with 0 to the longest text."""

    context_length = CONFIG["context_length"]

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        rows = [[1 + ord(char) % (CONFIG["vocab_size"] - 1) for char in text][: self.context_length] for text in texts]
        length = max(len(row) for row in rows)
        return torch.tensor([row + [0] * (length - len(row)) for row in rows], dtype=torch.long)


def _record(ref: Any) -> CheckpointRecord:
    return CheckpointRecord(ref.checkpoint(), None, dict(CONFIG), {"context_length": CONFIG["context_length"], "pad_id": 0})


def _load(ref: Any, device: torch.device, precision: str) -> LoadedClip:
    from safetensors.torch import load_file

    from zsbench.precisions import PRECISIONS

    model = ToyClip()
    model.load_state_dict(load_file(ref.checkpoint()), strict=True)
    model = model.to(device, PRECISIONS.get(precision).dtype()).eval().requires_grad_(False)
    return LoadedClip(model, ToyTokenizer(), {"image_size": CONFIG["image_size"]})


def _transform(preprocess: dict[str, Any], task: str) -> Callable:
    import torchvision.transforms as T

    size = preprocess["image_size"]
    return T.Compose([lambda image: image.convert("RGB"), T.Resize((size, size)), T.ToTensor()])


def _export(model_name: str) -> ExportSpec | None:
    fp16 = PrecisionPolicy((FP16_REDUCTIONS,), notes=("weights and activations fp16",))
    return ExportSpec("toy-clip", (IMAGE_GRAPH, TEXT_GRAPH), {"fp16": fp16}, lambda ref, config, text: ToyTokenizer())


FAMILY = ModelFamily(
    name="toy",
    list_models=lambda: ["toy-clip"],
    listing=lambda: ["toy-clip   a toy CLIP (tests/recipes/toy_family.py)"],
    loader_name=lambda model_name, task: "toy",
    default_task=lambda model_name: "zeroshot_classification",
    checkpoint=lambda ref: Path(ref.pretrained),
    record=_record,
    load=_load,
    transform=_transform,
    describe=lambda model, tokenizer: {"embed_dim": CONFIG["width"]},
    input_size=lambda model: InputSize(CONFIG["image_size"], CONFIG["vocab_size"]),
    export=_export,
    exporting=lambda: ["toy-clip"],
)


def save_random_checkpoint(path: Path, seed: int = 0) -> Path:
    """A toy checkpoint with seeded random weights (safetensors)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    save_file(ToyClip().state_dict(), str(path))
    return path
