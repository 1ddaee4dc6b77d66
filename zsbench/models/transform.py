"""Image preprocessing, as a typed value: the torch, ONNX and TensorRT paths share it exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torchvision.transforms as T
from PIL import Image
from torchvision.transforms import InterpolationMode

from zsbench.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ResizeMode = Literal["shortest", "squash"]


@dataclass(frozen=True)
class PreprocessConfig:
    """How an image becomes the model's input tensor.

    `resize_mode`: ``"shortest"`` resizes the short side to `image_size` then centre-crops
    (InternVL's classification transform); ``"squash"`` resizes to a square, ignoring the
    aspect ratio (its retrieval transform). Both use PIL's antialiased bicubic.
    """

    image_size: int
    resize_mode: ResizeMode
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "interpolation": "bicubic"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessConfig:
        if data.get("interpolation", "bicubic") != "bicubic":
            raise ConfigError(
                f"The preprocessing record asks for interpolation {data['interpolation']!r}; zsbench's transforms are bicubic. "
                "Re-export the model with this zsbench (`zsbench export ... --force`)."
            )
        return cls(int(data["image_size"]), data["resize_mode"], tuple(data["mean"]), tuple(data["std"]))  # type: ignore[arg-type]


def to_rgb(image: Image.Image) -> Image.Image:
    """Converts any PIL mode to RGB (alpha dropped, greyscale replicated)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def build_transform(config: PreprocessConfig) -> T.Compose:
    """The torchvision transform for `config`: PIL image -> float tensor (3, size, size)."""
    size = config.image_size
    if config.resize_mode == "squash":
        resize: list[Any] = [T.Resize((size, size), interpolation=InterpolationMode.BICUBIC)]
    else:
        resize = [T.Resize(size, interpolation=InterpolationMode.BICUBIC), T.CenterCrop(size)]
    return T.Compose([to_rgb, *resize, T.ToTensor(), T.Normalize(mean=config.mean, std=config.std)])


def task_resize_mode(task: str) -> ResizeMode:
    """The resize mode InternVL uses for a task (``zeroshot_retrieval`` or ``retrieval``: squash; classification: shortest)."""
    return "squash" if task.removeprefix("zeroshot_") == "retrieval" else "shortest"

