"""The embedding caches as a user meets them through `zsbench eval`: class embeddings shared by datasets
with the same class names, image features reused when only the prompts change, any key change or
damaged file recomputed. Counts come from the result's throughput block; metrics are compared with
an uncached run of the same data."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.data.fixtures import FER2013_FOLDERS, image_bytes, write_class_folders, write_wds
from tests.eval.test_results_and_build import markdown_tables
from zsbench.cli import main
from zsbench.eval.cache import content_key

CLASSNAMES = ("red circle", "blue square", "green triangle", "yellow star", "black ring", "white cross")
TEMPLATES = ("a photo of a {c}.", "a drawing of a {c}.", "{c}")


def write_classification(root: Path, seed: int, classnames: tuple[str, ...] = CLASSNAMES,
                         templates: tuple[str, ...] = TEMPLATES, count: int = 9) -> Path:
    samples = [(image_bytes(seed + index, "PNG", (16, 16)), index % len(classnames)) for index in range(count)]
    return write_wds(root, samples, dataset_type="classification", classnames=classnames, templates=templates,
                     shard_size=4, image_field="png")


def run_eval(pretrained: Path, root: Path, output: Path, *extra: str, dataset: str = "wds/shapes") -> tuple[dict, str]:
    args = ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf", "--pretrained", str(pretrained),
            "--dataset", dataset, "--dataset_root", str(root), "--output", str(output), "--num_workers", "0",
            "--batch_size", "4", "--quiet", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(output.read_text()), result.output


@pytest.fixture()
def demo_checkpoint() -> Path:
    return Path(__file__).resolve().parents[2] / "pretrained" / "zsbench-demo"


def test_datasets_sharing_class_names_encode_no_prompts(tmp_path: Path, demo_checkpoint: Path,
                                                        isolated_embedding_cache: Path) -> None:
    first, log = run_eval(demo_checkpoint, write_classification(tmp_path / "a", seed=0), tmp_path / "a.json")
    prompts = len(CLASSNAMES) * len(TEMPLATES)
    assert first["throughput"]["texts"] == prompts and first["throughput"]["cached_texts"] == 0
    assert first["cache"]["dir"] == str(isolated_embedding_cache)
    assert list((isolated_embedding_cache / "classes").glob("*.safetensors"))

    # Other images, same class names and templates (as ImageNet-V2 or -Sketch against ImageNet-1k).
    other_root = write_classification(tmp_path / "b", seed=100)
    second, _ = run_eval(demo_checkpoint, other_root, tmp_path / "b.json")
    assert second["throughput"]["texts"] == 0 and second["throughput"]["cached_texts"] == prompts
    assert second["throughput"]["images"] == 9  # images are still encoded: only class embeddings are cached
    uncached, _ = run_eval(demo_checkpoint, other_root, tmp_path / "b_uncached.json", "--no-cache")
    assert uncached["throughput"]["texts"] == prompts and uncached["cache"]["dir"] is None
    assert second["metrics"] == pytest.approx(uncached["metrics"], abs=1e-6)

    # A subset of the names (as ImageNet-A/-R's 200 of the 1,000) takes its rows from the same entry.
    subset = CLASSNAMES[1:5]
    third, _ = run_eval(demo_checkpoint, write_classification(tmp_path / "c", seed=200, classnames=subset), tmp_path / "c.json")
    assert third["throughput"]["texts"] == 0 and third["throughput"]["cached_texts"] == len(subset) * len(TEMPLATES)


def test_a_changed_template_or_a_new_class_is_encoded(tmp_path: Path, demo_checkpoint: Path) -> None:
    run_eval(demo_checkpoint, write_classification(tmp_path / "a", seed=0), tmp_path / "a.json")
    changed = (TEMPLATES[0], "a sketch of a {c}.", TEMPLATES[2])
    result, _ = run_eval(demo_checkpoint, write_classification(tmp_path / "b", seed=0, templates=changed), tmp_path / "b.json")
    assert result["throughput"]["texts"] == len(CLASSNAMES) * len(TEMPLATES) and result["throughput"]["cached_texts"] == 0

    # One new class name: only its prompts are encoded, the others come from the cache.
    names = (*CLASSNAMES, "purple heart")
    result, _ = run_eval(demo_checkpoint, write_classification(tmp_path / "c", seed=0, classnames=names), tmp_path / "c.json")
    assert result["throughput"]["texts"] == len(TEMPLATES)
    assert result["throughput"]["cached_texts"] == len(CLASSNAMES) * len(TEMPLATES)


def test_a_corrupted_cache_file_is_detected_and_recomputed(tmp_path: Path, demo_checkpoint: Path,
                                                           isolated_embedding_cache: Path) -> None:
    root = write_classification(tmp_path / "a", seed=0)
    reference, _ = run_eval(demo_checkpoint, root, tmp_path / "a.json")
    (entry,) = (isolated_embedding_cache / "classes").glob("*.safetensors")
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF  # one flipped bit pattern in the last row: still a valid safetensors file
    entry.write_bytes(bytes(data))

    outcome = CliRunner().invoke(main, ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf",
                                        "--pretrained", str(demo_checkpoint), "--dataset", "wds/shapes", "--dataset_root",
                                        str(root), "--output", str(tmp_path / "b.json"), "--num_workers", "0", "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    result = json.loads((tmp_path / "b.json").read_text())
    # Once, on stderr (the sweep saw it twice, on stdout: the entry is read, then read again to add rows).
    damaged = [line for line in outcome.stderr.splitlines() if line.startswith(f"warning: cache entry {entry} is damaged")]
    assert len(damaged) == 1 and "warning" not in outcome.stdout
    assert result["throughput"]["texts"] == len(CLASSNAMES) * len(TEMPLATES)
    assert result["metrics"] == pytest.approx(reference["metrics"], abs=1e-6)
    again, log = run_eval(demo_checkpoint, root, tmp_path / "c.json")  # the entry was rewritten whole
    assert again["throughput"]["texts"] == 0 and "warning" not in log


def test_image_features_are_reused_when_only_the_prompts_change(tmp_path: Path, demo_checkpoint: Path,
                                                                isolated_embedding_cache: Path) -> None:
    root = write_classification(tmp_path / "a", seed=0)
    first, _ = run_eval(demo_checkpoint, root, tmp_path / "a.json", "--cache_features")
    assert first["throughput"]["images"] == 9 and first["throughput"]["cached_images"] == 0
    assert first["cache"]["image_features"] is True

    # Other templates: the classifier is recomputed, the images are not.
    (root / "zeroshot_classification_templates.txt").write_text("a sketch of a {c}.\n{c} in the dark\n")
    second, _ = run_eval(demo_checkpoint, root, tmp_path / "b.json", "--cache_features")
    assert second["throughput"]["images"] == 0 and second["throughput"]["cached_images"] == 9
    assert second["throughput"]["images_per_second"] is None  # no encoder speed is claimed for cached rows
    assert second["throughput"]["texts"] == len(CLASSNAMES) * 2
    uncached, _ = run_eval(demo_checkpoint, root, tmp_path / "c.json", "--no-cache")
    assert second["metrics"] == pytest.approx(uncached["metrics"], abs=1e-6)

    # Another transform (the retrieval model's squash resize) is another key: the images are encoded.
    other, _ = run_eval(demo_checkpoint, root, tmp_path / "d.json", "--cache_features", "--model", "internvl_c_retrieval_hf")
    assert other["throughput"]["images"] == 9 and other["throughput"]["cached_images"] == 0

    # A damaged features file is found by its digest and recomputed.
    for entry in (isolated_embedding_cache / "images").glob("*.safetensors"):
        entry.write_bytes(entry.read_bytes()[:-8])
    damaged, log = run_eval(demo_checkpoint, root, tmp_path / "e.json", "--cache_features")
    assert "damaged" in log and damaged["throughput"]["images"] == 9
    assert damaged["metrics"] == pytest.approx(uncached["metrics"], abs=1e-6)


def test_clip_benchmark_classifier_flags_name_the_cache_folder(tmp_path: Path, demo_checkpoint: Path) -> None:
    root = write_classification(tmp_path / "a", seed=0)
    run_eval(demo_checkpoint, root, tmp_path / "a.json", "--save_clf", str(tmp_path / "clf"))
    assert list((tmp_path / "clf" / "classes").glob("*.json"))
    loaded, _ = run_eval(demo_checkpoint, root, tmp_path / "b.json", "--load_clfs", str(tmp_path / "clf"))
    assert loaded["throughput"]["texts"] == 0
    result = CliRunner().invoke(main, ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf",
                                       "--pretrained", str(demo_checkpoint), "--dataset", "wds/shapes", "--dataset_root",
                                       str(root), "--save_clf", "x", "--cache_dir", "y"])
    assert result.exit_code == 1 and "name different folders" in result.output


def test_content_key_is_canonical() -> None:
    assert content_key({"b": [1, 2], "a": "é"}) == content_key({"a": "é", "b": [1, 2]})
    assert content_key({"templates": ["a {c}"]}) != content_key({"templates": ["a {c}."]})


def test_a_text_side_served_from_the_cache_prints_cached_not_a_rate(tmp_path: Path, demo_checkpoint: Path,
                                                                   isolated_embedding_cache: Path) -> None:
    """Nothing encoded is no speed: the summary line, `zsbench build`'s table and the demo's table say `cached`."""
    from zsbench.demo.suite import summary_table

    run_eval(demo_checkpoint, write_classification(tmp_path / "a", seed=0), tmp_path / "a.json")
    result, log = run_eval(demo_checkpoint, write_classification(tmp_path / "b", seed=100), tmp_path / "b.json")
    assert result["throughput"]["texts_per_second"] is None and result["throughput"]["cached_texts"] > 0
    (summary,) = [line for line in log.splitlines() if line.startswith("wds/shapes")]
    assert "texts cached" in summary and "0.0 txt/s" not in summary and " img/s" in summary
    table = CliRunner().invoke(main, ["build", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--output", "-"])
    assert table.exit_code == 0, table.output
    rows = markdown_tables(table.stdout)["zeroshot_classification"]
    assert [row["texts/s"] for row in sorted(rows, key=lambda row: row["file"])] == [
        f"{json.loads((tmp_path / 'a.json').read_text())['throughput']['texts_per_second']:.1f}", "cached"]
    assert summary_table([result]).splitlines()[-1].split()[-1] == "cached"
def rewrite_tensor_in_place(checkpoint: Path, name: str) -> tuple[int, int]:
    """Negates one tensor of a safetensors file in place (same size, same header: a partial fine-tune of
    one layer), restores the file's mtime, and returns the byte range that changed."""
    data = bytearray(checkpoint.read_bytes())
    header_size = struct.unpack("<Q", data[:8])[0]
    start, end = (8 + header_size + offset for offset in json.loads(data[8 : 8 + header_size])[name]["data_offsets"])
    values = np.frombuffer(bytes(data[start:end]), dtype="<f4")
    data[start:end] = (-3.0 * values).astype("<f4").tobytes()
    before = checkpoint.stat()
    checkpoint.write_bytes(bytes(data))
    os.utime(checkpoint, ns=(before.st_atime_ns, before.st_mtime_ns))
    return start, end


def test_a_checkpoint_changed_anywhere_is_another_cache_key(tmp_path: Path, demo_checkpoint: Path) -> None:
    """The sweep's case: QLLaMA layer-1 MLP weights rewritten at the same size lie between the three 1 MiB
    windows the fingerprint once sampled, so the warm class embeddings of the old weights were served."""
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(demo_checkpoint, checkpoint)
    root = write_classification(tmp_path / "a", seed=0)
    run_eval(checkpoint, root, tmp_path / "a.json")  # warms the class-embedding cache
    weights = checkpoint / "model.safetensors"
    start, end = rewrite_tensor_in_place(weights, "qllama.model.layers.1.mlp.gate_proj.weight")
    size, window = weights.stat().st_size, 1 << 20
    middle = (size - window) // 2
    assert window <= start and end <= middle  # outside the head, middle and tail windows once hashed

    changed, _ = run_eval(checkpoint, root, tmp_path / "b.json")
    assert changed["throughput"]["cached_texts"] == 0
    assert changed["throughput"]["texts"] == len(CLASSNAMES) * len(TEMPLATES)
    uncached, _ = run_eval(checkpoint, root, tmp_path / "c.json", "--no-cache")
    assert changed["metrics"] == pytest.approx(uncached["metrics"], abs=1e-6)


def test_a_replaced_shard_is_encoded_again(tmp_path: Path, demo_checkpoint: Path) -> None:
    """The sweep's case: test/0.tar replaced by other images of the same count served every cached row."""
    root = write_classification(tmp_path / "a", seed=0)
    first, _ = run_eval(demo_checkpoint, root, tmp_path / "a.json", "--cache_features")
    assert first["throughput"]["cached_images"] == 0
    other = write_classification(tmp_path / "other", seed=500)
    shutil.copy(other / "test" / "0.tar", root / "test" / "0.tar")  # same sample keys and count, other pixels

    replaced, _ = run_eval(demo_checkpoint, root, tmp_path / "b.json", "--cache_features")
    assert replaced["throughput"]["cached_images"] == 0 and replaced["throughput"]["images"] == 9
    uncached, _ = run_eval(demo_checkpoint, root, tmp_path / "c.json", "--no-cache")
    assert replaced["metrics"] == pytest.approx(uncached["metrics"], abs=1e-6)
    again, _ = run_eval(demo_checkpoint, root, tmp_path / "d.json", "--cache_features")  # the new entry serves
    assert again["throughput"]["cached_images"] == 9


def test_a_replaced_image_in_a_class_folder_is_encoded_again(tmp_path: Path, demo_checkpoint: Path) -> None:
    write_class_folders(tmp_path / "fer" / "test", FER2013_FOLDERS, per_class=2, ext=".png")
    root = tmp_path / "fer"
    first, _ = run_eval(demo_checkpoint, root, tmp_path / "a.json", "--cache_features", dataset="fer2013")
    assert first["throughput"]["images"] == 14
    image = tmp_path / "fer" / "test" / "happy" / "0001.png"
    before = image.stat()
    image.write_bytes(image_bytes(999, "PNG", (8, 8)))  # another picture under the same name, mtime restored
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))

    replaced, _ = run_eval(demo_checkpoint, root, tmp_path / "b.json", "--cache_features", dataset="fer2013")
    assert replaced["throughput"]["cached_images"] == 0 and replaced["throughput"]["images"] == 14


@pytest.mark.parametrize("origin", ["--cache_dir", "ZSBENCH_CACHE_DIR"])
def test_a_cache_folder_that_is_a_file_is_blamed_on_where_it_came_from(tmp_path: Path, demo_checkpoint: Path,
                                                                      monkeypatch: pytest.MonkeyPatch, origin: str) -> None:
    """The sweep's unclear case: ZSBENCH_CACHE_DIR=<file> was blamed on --cache_dir, a flag not given."""
    cache_file = tmp_path / "cache-is-a-file"
    cache_file.write_text("x")
    extra = ["--cache_dir", str(cache_file)] if origin == "--cache_dir" else []
    if origin == "ZSBENCH_CACHE_DIR":
        monkeypatch.setenv("ZSBENCH_CACHE_DIR", str(cache_file))
    outcome = CliRunner().invoke(main, ["eval", "--model_type", "internvl", "--model", "internvl_c_classification_hf",
                                        "--pretrained", str(demo_checkpoint), "--dataset", "wds/shapes", "--dataset_root",
                                        str(write_classification(tmp_path / "a", seed=0)), "--output", str(tmp_path / "r.json"),
                                        "--num_workers", "0", "--quiet", *extra])
    assert outcome.exit_code == 1 and "Traceback" not in outcome.output
    if origin == "--cache_dir":
        assert f"--cache_dir {cache_file} is a file; expected a folder for the embedding caches. Choose another --cache_dir" in outcome.output
    else:
        assert f"ZSBENCH_CACHE_DIR={cache_file} is a file; expected a folder for the embedding caches. Point ZSBENCH_CACHE_DIR" in outcome.output
        assert "--cache_dir " + str(cache_file) not in outcome.output
