"""Native PyTorch InternVL-C / InternVL-G, checkpoint loaders, tokenizer, transforms, open_clip adapter.

Attributes are imported on first use (`zsbench.lazy`): `zsbench models` lists the families'
model names without loading torch.
"""

from zsbench.lazy import lazy_attributes

_EXPORTS = {
    "INTERNVL_GRAPHS": "zsbench.models.families.internvl",
    "INTERNVL_MODELS": "zsbench.models.families.internvl",
    "InternVL": "zsbench.models.internvl",
    "InternVLConfig": "zsbench.models.config",
    "InternVLTokenizer": "zsbench.models.tokenizer",
    "ModelRef": "zsbench.models.ref",
    "PreprocessConfig": "zsbench.models.transform",
    "build_transform": "zsbench.models.transform",
    "builtin_config": "zsbench.models.config",
    "create_model": "zsbench.models.internvl",
    "describe_model": "zsbench.models.factory",
    "list_builtin_configs": "zsbench.models.config",
    "list_models": "zsbench.models.factory",
    "load_clip": "zsbench.models.factory",
    "load_config_file": "zsbench.models.config",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS)
