"""A toy dataset in its own on-disk format: the README's "Adding a dataset" recipe, as one file."""

from __future__ import annotations

from zsbench.data import DatasetRequest, ImageRef, Loaded, register_dataset
from zsbench.errors import DatasetLayoutError


@register_dataset("toy_shapes", loader="toy_csv")
def load_toy_shapes(request: DatasetRequest) -> Loaded:
    """Toy shapes: PNG images, a CSV of their classes, and the class names.

    Layout::

        <root>/
        ├── classes.txt        one class name per line
        ├── labels.csv         <image file name>,<class index> per line
        └── images/            the PNG files labels.csv names

    Source: written by the recipe test (tests/test_extension_recipes.py).
    """
    labels = request.root / "labels.csv"
    if not labels.is_file():
        raise DatasetLayoutError(f"{labels} is missing")
    classnames = [line.strip() for line in (request.root / "classes.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    samples = []
    for line in labels.read_text(encoding="utf-8").splitlines():
        name, _, index = line.partition(",")
        path = request.root / "images" / name
        samples.append((ImageRef(str(path), path=path), int(index)))
    return Loaded(samples, classnames=classnames, num_classes=len(classnames), templates=["a photo of a {c}.", "a {c} drawn."])
