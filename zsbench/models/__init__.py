"""Native PyTorch InternVL-C / InternVL-G, checkpoint loaders, tokenizer, transforms, open_clip adapter."""

from zsbench.models.config import InternVLConfig, builtin_config, list_builtin_configs, load_config_file
from zsbench.models.factory import DTYPES, INTERNVL_MODELS, default_device, describe_model, list_models, load_clip
from zsbench.models.internvl import InternVL, create_model
from zsbench.models.ref import ModelRef
from zsbench.models.tokenizer import InternVLTokenizer
from zsbench.models.transform import PreprocessConfig, build_transform

__all__ = [
    "DTYPES",
    "INTERNVL_MODELS",
    "InternVL",
    "InternVLConfig",
    "InternVLTokenizer",
    "ModelRef",
    "PreprocessConfig",
    "build_transform",
    "default_device",
    "builtin_config",
    "create_model",
    "describe_model",
    "list_builtin_configs",
    "list_models",
    "load_clip",
    "load_config_file",
]
