"""zsbench: zero-shot classification and retrieval benchmarks for InternVL and CLIP models.

The public functions are imported on first use, so `zsbench --help` never loads torch.
"""

from zsbench.lazy import lazy_attributes

__version__ = "0.1.0"

_EXPORTS = {"create_model": "zsbench.models.internvl", "list_models": "zsbench.models.factory", "load_clip": "zsbench.models.factory"}
__all__ = ["__version__", *_EXPORTS]
__getattr__ = lazy_attributes(__name__, _EXPORTS)
