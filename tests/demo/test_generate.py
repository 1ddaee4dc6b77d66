"""The demo datasets: byte-reproducible, idempotent, and readable by CLIP_benchmark's own wds loader."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from zsbench.demo.generate import MANIFEST, DemoDatasetSpec, generate_demo_data, is_complete
from zsbench.demo.scenes import CLASSNAMES, TEMPLATES

# Small sets with several shards per split, so that sharding is exercised too.
SMALL = (
    DemoDatasetSpec("shapes_classification", "classification", num_test=25, num_train=7, samples_per_shard=10),
    DemoDatasetSpec("shapes_retrieval", "retrieval", num_test=12, num_train=5, samples_per_shard=10),
)


def _tree(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate_demo_data(root, seed=0, datasets=SMALL)
    return root


def test_same_seed_same_bytes(demo_root: Path, tmp_path: Path) -> None:
    generate_demo_data(tmp_path, seed=0, datasets=SMALL)
    first, second = _tree(demo_root), _tree(tmp_path)
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_other_seed_other_images(demo_root: Path, tmp_path: Path) -> None:
    generate_demo_data(tmp_path, seed=1, datasets=SMALL)
    first, second = _tree(demo_root), _tree(tmp_path)
    shards = [name for name in first if name.endswith(".tar")]
    assert shards and all(first[name] != second[name] for name in shards)


def test_layout(demo_root: Path) -> None:
    classification, retrieval = demo_root / "shapes_classification", demo_root / "shapes_retrieval"
    assert (classification / "test" / "nshards.txt").read_text().strip() == "3"
    shards = sorted(path.name for path in (classification / "test").iterdir())
    assert shards == ["0.tar", "1.tar", "2.tar", "nshards.txt"]
    assert (classification / "classnames.txt").read_text().splitlines() == list(CLASSNAMES)
    assert (classification / "zeroshot_classification_templates.txt").read_text().splitlines() == list(TEMPLATES)
    assert (retrieval / "dataset_type.txt").read_text().strip() == "retrieval"
    assert not (retrieval / "classnames.txt").exists()


def test_tar_members_are_reproducible(demo_root: Path) -> None:
    with tarfile.open(demo_root / "shapes_retrieval" / "test" / "1.tar") as tar:
        members = tar.getmembers()
    assert [member.name for member in members] == sorted(member.name for member in members)
    assert members[0].name == "s000010.png" and members[1].name == "s000010.txt"
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}


@pytest.mark.filterwarnings("ignore:WebDataset\\(shardshuffle")
def test_clip_benchmark_reads_it(demo_root: Path) -> None:
    """CLIP_benchmark's own loader is the independent reference for the layout."""
    pytest.importorskip("webdataset")
    from clip_benchmark.datasets.builder import build_wds_dataset

    def identity(image):  # noqa: ANN001, ANN202 - the loader hands over a PIL image
        return image

    classification = build_wds_dataset(
        "wds/shapes_classification", identity, split="test", data_dir=str(demo_root / "shapes_classification")
    )
    assert classification.classes == list(CLASSNAMES) and classification.templates == list(TEMPLATES)
    samples = list(classification)
    assert len(samples) == 25
    assert all(image.size == (64, 64) and image.mode == "RGB" for image, _ in samples)
    assert all(isinstance(label, int) and 0 <= label < len(CLASSNAMES) for _, label in samples)

    retrieval = build_wds_dataset(
        "wds/shapes_retrieval", identity, split="train", data_dir=str(demo_root / "shapes_retrieval")
    )
    captions = [texts for _, texts in retrieval]
    assert len(captions) == 5 and all(len(texts) == 2 and texts[0].startswith("a ") for texts in captions)


def test_generation_is_idempotent(tmp_path: Path) -> None:
    paths = generate_demo_data(tmp_path, seed=0, datasets=SMALL)
    shard = paths["shapes_retrieval"] / "test" / "0.tar"
    written = shard.stat().st_mtime_ns
    assert generate_demo_data(tmp_path, seed=0, datasets=SMALL) == paths
    assert shard.stat().st_mtime_ns == written

    # A damaged dataset is found incomplete and rewritten; a different request rewrites too.
    shard.write_bytes(shard.read_bytes()[:1000])
    assert not is_complete(paths["shapes_retrieval"], SMALL[1], seed=0)
    generate_demo_data(tmp_path, seed=0, datasets=SMALL)
    assert is_complete(paths["shapes_retrieval"], SMALL[1], seed=0)
    assert not is_complete(paths["shapes_retrieval"], SMALL[1], seed=3)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shapes_classification", "shapes_retrieval"]
    assert (paths["shapes_classification"] / MANIFEST).is_file()
