"""The embedded demo: synthetic zero-shot datasets generated on the spot, and the tiny checkpoint's training.

`generate_demo_data(root)` writes a classification and a retrieval dataset in CLIP_benchmark's
webdataset layout (deterministic, a few seconds, skipped when already there);
`python -m zsbench.demo.train` retrains `pretrained/zsbench-demo`.
"""

from zsbench.demo.generate import DEMO_DATASETS, DemoDatasetSpec, generate_demo_data

__all__ = ["DEMO_DATASETS", "DemoDatasetSpec", "generate_demo_data"]
