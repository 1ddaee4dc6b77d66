"""zsbench: zero-shot classification and retrieval benchmarks for InternVL and CLIP models."""

from zsbench.models import create_model, list_models, load_clip

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models", "load_clip"]
