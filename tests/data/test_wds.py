"""CLIP_benchmark webdataset exports, written with webdataset itself, read map-style."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data.fixtures import image_bytes, pixels, write_wds
from zsbench.data import (
    ClassificationDataset,
    PromptsError,
    RetrievalDataset,
    TransformedDataset,
    build_dataset,
    collate_samples,
)
from zsbench.data.types import load_picture
from zsbench.errors import DatasetLayoutError


def to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)


def test_classification_across_shards_in_order(tmp_path: Path) -> None:
    samples = [(image_bytes(i, "PNG"), i % 3) for i in range(5)]
    write_wds(tmp_path, samples, classnames=["a", "b", "c"], templates=["a {c}.", "the {c}."], image_field="png")
    assert sorted(path.name for path in (tmp_path / "test").iterdir()) == ["0.tar", "1.tar", "2.tar", "nshards.txt"]
    dataset = build_dataset("wds/shapes", tmp_path)
    assert isinstance(dataset, ClassificationDataset) and not dataset.multilabel
    assert dataset.classnames == ["a", "b", "c"] and dataset.templates == ["a {c}.", "the {c}."]
    for i in range(5):
        picture, label = dataset.samples[i]
        assert label == i % 3
        assert np.array_equal(np.asarray(load_picture(picture)), pixels(i))


def test_retrieval_captions_are_used_as_stored(tmp_path: Path) -> None:
    captions = [["A Dog!", "two  dogs."], ["Ünïcode, kept."]]
    write_wds(tmp_path, [(image_bytes(i, "WEBP"), text) for i, text in enumerate(captions)], dataset_type="retrieval")
    dataset = build_dataset("wds/flickr30k", tmp_path)
    assert isinstance(dataset, RetrievalDataset)
    assert [dataset.samples[i][1] for i in range(2)] == captions


def test_multilabel_targets_are_float_vectors(tmp_path: Path) -> None:
    targets = [np.array([1, 0, 1], dtype=np.int64), np.array([0, 1, 0], dtype=np.int64)]
    write_wds(tmp_path, [(image_bytes(i, "JPEG"), t) for i, t in enumerate(targets)], dataset_type="multilabel",
              classnames=["x", "y", "z"], image_field="jpg")  # fmt: skip
    dataset = build_dataset("wds/voc2007_multilabel", tmp_path)
    assert dataset.multilabel
    for i, target in enumerate(targets):
        assert dataset.samples[i][1].dtype == torch.float32
        assert torch.equal(dataset.samples[i][1], torch.from_numpy(target).float())


def test_any_number_of_workers_sees_the_same_samples_in_the_same_order(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(i, "PNG"), i % 2) for i in range(7)], classnames=["a", "b"], image_field="png")
    samples = build_dataset("wds/x", tmp_path).samples

    def run(workers: int) -> tuple[list[int], list[int], torch.Tensor]:
        loader = torch.utils.data.DataLoader(
            TransformedDataset(samples, to_tensor, skip_bad_images=False),
            batch_size=3, num_workers=workers, collate_fn=collate_samples,
        )  # fmt: skip
        batches = list(loader)
        return (
            [i for batch in batches for i in batch["indices"]],
            [t for batch in batches for t in batch["targets"]],
            torch.cat([batch["images"] for batch in batches]),
        )

    serial, parallel = run(0), run(2)
    assert serial[0] == parallel[0] == list(range(7))
    assert serial[1] == parallel[1] == [0, 1, 0, 1, 0, 1, 0]
    assert torch.equal(serial[2], parallel[2])


def test_vtab_sets_are_also_found_under_their_name_as_a_path(tmp_path: Path) -> None:
    write_wds(tmp_path / "vtab" / "resisc45", [(image_bytes(0, "WEBP"), 1)], classnames=["airplane", "airport"])
    dataset = build_dataset("vtab/resisc45", tmp_path)
    assert dataset.classnames == ["airplane", "airport"]
    # Templates are CLIP_benchmark's for the short name, in the language asked.
    table = json.loads((files("clip_benchmark.datasets") / "en_zeroshot_classification_templates.json").read_text())
    assert dataset.templates == table["resisc45"]


def test_a_missing_export_lists_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError) as caught:
        build_dataset("vtab/flowers", tmp_path)
    message = str(caught.value)
    for place in (tmp_path, tmp_path / "wds_vtab-flowers", tmp_path / "vtab" / "flowers"):
        assert str(place / "test" / "nshards.txt") in message


def test_a_missing_shard_and_a_sample_without_a_label_are_layout_errors(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(i, "PNG"), 0) for i in range(3)], classnames=["a"], image_field="png")
    (tmp_path / "test" / "nshards.txt").write_text("3\n")
    with pytest.raises(DatasetLayoutError, match="2.tar does not exist"):
        build_dataset("wds/x", tmp_path)
    (tmp_path / "dataset_type.txt").write_text("retrieval\n")
    (tmp_path / "test" / "nshards.txt").write_text("1\n")
    with pytest.raises(DatasetLayoutError, match="sample 's0000000' has fields cls, png; a retrieval export needs"):
        build_dataset("wds/x", tmp_path)


def test_an_export_without_class_names_needs_a_custom_file(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(0, "PNG"), 0)], image_field="png")
    with pytest.raises(PromptsError, match="carries no class names"):
        build_dataset("wds/x", tmp_path)
    custom = tmp_path / "names.json"
    custom.write_text('{"x": ["thing"]}')
    assert build_dataset("wds/x", tmp_path, custom_classname_file=custom).classnames == ["thing"]


def test_labels_beyond_the_class_names_are_refused(tmp_path: Path) -> None:
    write_wds(tmp_path, [(image_bytes(i, "PNG"), i) for i in range(2)], classnames=["only"], image_field="png")
    with pytest.raises(DatasetLayoutError, match="targets that do not fit the 1 classes of classnames.txt"):
        build_dataset("wds/x", tmp_path)


@pytest.mark.parametrize("place", ["{root}", "{root}/wds_shapes_retrieval", "{root}/shapes_retrieval"])
def test_auto_task_reads_dataset_type_where_the_loader_reads_the_export(tmp_path: Path, place: str) -> None:
    """`--task auto` and the loader find the export by one rule (the root, then wds_<name>, then <name>), so
    a retrieval export under a parent root is a retrieval task, not a classification guessed from the name."""
    from zsbench.data import default_task

    captions = [(image_bytes(i, "PNG"), [f"caption {i}"]) for i in range(2)]
    write_wds(Path(place.format(root=tmp_path)), captions, dataset_type="retrieval", image_field="png")
    dataset = build_dataset("wds/shapes_retrieval", tmp_path)
    assert isinstance(dataset, RetrievalDataset)
    assert default_task("wds/shapes_retrieval", tmp_path) == dataset.task == "zeroshot_retrieval"
    # Another split is looked for in its own folder, as the loader does.
    write_wds(tmp_path / "val_only", captions[:1], split="val", dataset_type="retrieval", image_field="png")
    assert default_task("wds/val_only", tmp_path / "val_only", split="val") == "zeroshot_retrieval"


def test_every_clip_benchmark_vtab_name_is_accepted_and_read_from_its_export(tmp_path: Path) -> None:
    """CLIP_benchmark dispatches `vtab/<name>` to its VTAB builder; zsbench reads the same set's webdataset
    export, with the export's class names and CLIP_benchmark's templates for the name, as `vtab/flowers`."""
    from tests.data.fixtures import write_vtab
    from zsbench.data import dataset_loader_name, default_task
    from zsbench.data.wds import VTAB_DATASETS

    assert {"caltech101", "cifar100", "clevr_count_all", "pcam", "svhn", "smallnorb_label_azimuth"} <= set(VTAB_DATASETS)
    write_vtab(tmp_path, "caltech101", ["accordion", "airplane"])
    dataset = build_dataset("vtab/caltech101", tmp_path)
    assert isinstance(dataset, ClassificationDataset) and dataset.name == "vtab/caltech101"
    assert dataset.classnames == ["accordion", "airplane"]
    table = json.loads((files("clip_benchmark.datasets") / "en_zeroshot_classification_templates.json").read_text())
    assert dataset.templates == table["caltech101"]
    for name in VTAB_DATASETS:
        assert dataset_loader_name(f"vtab/{name}") == "wds" and default_task(f"vtab/{name}") == "zeroshot_classification"


@pytest.mark.parametrize(("name", "first"), [("vtab/mnist", "mnist"), ("flowers", "vtab/flowers"), ("vtab/caltech1O1", "vtab/caltech101")])
def test_did_you_mean_prefers_the_same_datasets_other_spelling(tmp_path: Path, name: str, first: str) -> None:
    from zsbench.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=f"Did you mean: {first}[,?]"):
        build_dataset(name, tmp_path)
