"""The catalog of dataset sources: every dataset the paper uses has one, torchvision's archives are torchvision's
own (URL and md5), and `datasets download --root` puts each dataset where the seed's command lines read it."""

from __future__ import annotations

import json
import shlex
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from zsbench.cli import main
from zsbench.data.collections import COLLECTIONS
from zsbench.data.sources import MIRROR_VARIABLE, SOURCES, WEBDATASETS, dataset_source

SEED = json.loads((resources.files("zsbench.eval") / "paper_results.json").read_text(encoding="utf-8"))


def seed_runs() -> list[tuple[str, str, str]]:
    """(dataset, language, --dataset_root) of every command line of the seed README."""
    runs = []
    for section in SEED:
        for command in section["commands"]:
            tokens = shlex.split(command)
            value = {tokens[i]: tokens[i + 1] for i in range(len(tokens) - 1) if tokens[i].startswith("--")}
            runs.append((value["--dataset"], value.get("--language", "en"), value["--dataset_root"]))
    return runs


@pytest.mark.parametrize(("dataset", "language", "root"), sorted(set(seed_runs())))
def test_every_seed_command_line_has_a_source(dataset: str, language: str, root: str) -> None:
    source = dataset_source(dataset, language)
    assert source.dataset == dataset
    assert source.files or source.mirror is not None or source.manual is not None


def test_every_dataset_of_the_paper_s_collection_has_a_source() -> None:
    assert set(COLLECTIONS["internvl_paper"]) <= set(SOURCES.names())
    for name in COLLECTIONS["internvl_paper"]:
        source = dataset_source(name)
        # Everything the catalog fetches is verified, but COCO-CN's and Birdsnap's manual parts.
        assert all(file.checksum for file in source.files), name


def test_every_webdataset_of_clip_benchmark_has_its_hub_mirror() -> None:
    for name in WEBDATASETS:
        mirror = dataset_source(f"wds/{name}").mirror
        assert mirror is not None and mirror.repo_id == "clip-benchmark/wds_" + name.replace("/", "-")


# torchvision's class, and the attributes holding (url, md5) of each archive the catalog fetches for the name.
TORCHVISION = {
    "cifar10": lambda tv: [(tv.CIFAR10.url, tv.CIFAR10.tgz_md5)],
    "cifar100": lambda tv: [(tv.CIFAR100.url, tv.CIFAR100.tgz_md5)],
    "mnist": lambda tv: [(tv.MNIST.mirrors[0] + name, md5) for name, md5 in tv.MNIST.resources if name.startswith("t10k")],
    "stl10": lambda tv: [(tv.STL10.url, tv.STL10.tgz_md5)],
    "sun397": lambda tv: [(tv.SUN397._DATASET_URL, tv.SUN397._DATASET_MD5)],
    "food101": lambda tv: [(tv.Food101._URL, tv.Food101._MD5)],
    "dtd": lambda tv: [(tv.DTD._URL, tv.DTD._MD5)],
    "country211": lambda tv: [(tv.Country211._URL, tv.Country211._MD5)],
    "renderedsst2": lambda tv: [(tv.RenderedSST2._URL, tv.RenderedSST2._MD5)],
    "pets": lambda tv: list(tv.OxfordIIITPet._RESOURCES),
}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_archives_are_torchvision_s_own(name: str) -> None:
    """Same host, path and md5 as the installed torchvision's class (torchvision's http URLs are fetched over https)."""
    import torchvision.datasets as tv

    ours = [(urlsplit(file.url).hostname, urlsplit(file.url).path, file.checksum) for file in dataset_source(name).files]
    theirs = [(urlsplit(url).hostname, urlsplit(url).path, f"md5:{md5}") for url, md5 in TORCHVISION[name](tv)]
    assert ours == theirs
    assert all(file.url.startswith("https://") for file in dataset_source(name).files)


def test_download_places_each_dataset_where_the_seed_s_command_line_reads_it(tmp_path: Path) -> None:
    """`datasets download --root ./data` + the seed's `--dataset_root ./data/...`: the same folder for every command."""
    for dataset, language, root in sorted(set(seed_runs())):
        result = CliRunner().invoke(main, ["datasets", "download", dataset, "--root", "./data", "--language", language,
                                           "--dry-run"])
        assert result.exit_code == 0, result.output
        header = result.output.splitlines()[0]
        assert header.startswith(f"{dataset} [{language}] -> "), header
        assert Path(header.split(" -> ")[1].split(":")[0]) == Path(root), (dataset, header)


def test_the_mirror_setting_moves_archive_urls_under_its_base(monkeypatch: pytest.MonkeyPatch) -> None:
    source = dataset_source("cifar10")
    assert source.files[0].fetch_url() == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    monkeypatch.setenv(MIRROR_VARIABLE, "http://127.0.0.1:9/mirror/")
    assert source.files[0].fetch_url() == "http://127.0.0.1:9/mirror/www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def test_a_language_without_a_source_is_named() -> None:
    result = CliRunner().invoke(main, ["datasets", "download", "flickr30k", "--root", "d", "--language", "jp", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "flickr30k [jp]: skipped: Unknown language with a source for flickr30k 'jp'. Available: cn, en." in result.output


@pytest.mark.parametrize(("name", "cls"), [("eurosat", "EuroSAT"), ("gtsrb", "GTSRB"), ("caltech101", "Caltech101")])
def test_torchvision_archives_named_in_its_download_code(name: str, cls: str) -> None:
    """Where torchvision writes the URL and md5 inside `download()`, its source names the same ones."""
    import inspect

    import torchvision.datasets as tv

    code = inspect.getsource(getattr(tv, cls).download)
    for file in dataset_source(name).files:
        assert file.url.rsplit("/", 1)[-1] in code and file.checksum is not None
        assert file.checksum.removeprefix("md5:") in code, file.url
