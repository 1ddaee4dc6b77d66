"""Image-text retrieval sets, read from the files InternVL's CLIP_benchmark fork reads.

Flickr30K and COCO take `--language en` (Karpathy test splits) or `--language cn`
(Flickr30K-CN, COCO-CN); XTD10 (``multilingual_mscoco_captions``) takes one of its ten
languages. `--annotation_file` replaces the caption file of any of them.

Flickr30K and COCO captions, in both languages, go through the fork's `clean_caption`;
XTD10's are used as stored, because the fork does not clean them either.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings
from dataclasses import replace
from pathlib import Path

from zsbench.data.catalog import RETRIEVAL, DatasetRequest, Loaded, register_dataset
from zsbench.data.files import (
    DatasetWarning,
    check_first_image,
    first_existing,
    listed_image,
    read_lines,
    require_dir,
    require_file,
)
from zsbench.data.types import ImageRef
from zsbench.data.wds import WdsSamples
from zsbench.errors import DatasetLayoutError

CaptionedRefs = list[tuple[ImageRef, list[str]]]

XTD_LANGUAGES = ("en", "es", "fr", "it", "jp", "ko", "pl", "ru", "tr", "zh")
_PUNCTUATION = re.compile(r'[.!"()*#:;~]')
_WHITESPACE_RUN = re.compile(r"\s{2,}")


def clean_caption(caption: str, max_words: int = 50) -> str:
    """The fork's caption pre-processing, step for step.

    Lower-case; each of ``. ! " ( ) * # : ; ~`` becomes a space; runs of two or more whitespace
    characters become one space; trailing newlines, then leading and trailing spaces go; at
    most `max_words` space-separated words stay. Chinese text takes the same steps: only ASCII
    punctuation is replaced, and without spaces a caption counts as one word.
    """
    text = _WHITESPACE_RUN.sub(" ", _PUNCTUATION.sub(" ", caption.lower())).rstrip("\n").strip(" ")
    words = text.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else text


# The registered names whose captions the fork cleans (XTD10's are used as stored).
CLEANED_CAPTIONS = ("flickr30k", "mscoco_captions")


def clean_export_captions(loaded: Loaded) -> Loaded:
    """A webdataset export of Flickr30K or COCO read under the registered name: its stored (raw) captions
    cleaned as the fork cleans that name's captions, so the mirror scores like the original files."""
    samples = loaded.samples
    assert isinstance(samples, WdsSamples)
    cleaned = [[clean_caption(text) for text in captions] for captions in samples.targets]
    return replace(loaded, samples=WdsSamples(samples.shards, samples.images, cleaned))


def _read_flickr_captions(path: Path) -> dict[str, list[str]]:
    """``image.jpg -> captions`` from a header line, then ``image.jpg,caption`` lines."""
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(read_lines(path)[1:], start=2):
        line = line.strip()
        if not line:
            continue
        image, separator, caption = line.partition(".jpg,")
        if not separator:
            raise DatasetLayoutError(f"{path} line {number} is not '<image>.jpg,<caption>': {line[:80]!r}")
        captions.setdefault(f"{image}.jpg", []).append(caption)
    return captions


@register_dataset(
    "flickr30k", loader="flickr_karpathy", task=RETRIEVAL, languages=("en", "cn"), splits=("train", "val", "test")
)
def load_flickr30k(request: DatasetRequest) -> Loaded:
    """Flickr30K's Karpathy split (1,000 test images, 5 captions each), or Flickr30K-CN's.

    Caption files start with a header line, then hold ``<image>.jpg,<caption>`` lines, several
    per image (the first ``.jpg,`` ends the image name; captions may hold commas).

    Layout::

        <root>/
        ├── Images/
        │   ├── 1000092795.jpg
        │   └── ...
        ├── flickr30k_test_karpathy.txt    (--language en; flickr30k_<split>_karpathy.txt)
        └── flickr30k_cn_test.txt          (--language cn; flickr30k_cn_<split>.txt)

    Source: images from https://shannon.cs.illinois.edu/DenotationGraph/ (or Kaggle's
    adityajn105/flickr30k, whose Images/ folder fits); flickr30k_test_karpathy.txt from
    https://github.com/mehdidc/retrieval_annotations/releases/tag/1.0.0; flickr30k_cn_test.txt
    from https://github.com/OpenGVLab/InternVL/releases/tag/data.
    """
    default = f"flickr30k_{request.split}_karpathy.txt" if request.language == "en" else f"flickr30k_cn_{request.split}.txt"
    annotation = request.annotation_file or request.root / default
    captions = _read_flickr_captions(annotation)
    images = require_dir(request.root / "Images")
    samples = [(listed_image(images, name, annotation), [clean_caption(text) for text in texts]) for name, texts in captions.items()]
    check_first_image(samples, annotation)
    return Loaded(samples)


def _read_coco_captions(annotation: Path, images: Path) -> CaptionedRefs:
    """``(image, captions)`` per image of a COCO captions file, by increasing image id."""
    from pycocotools.coco import COCO

    require_file(annotation)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            coco = COCO(str(annotation))
        samples = [
            (
                listed_image(images, coco.imgs[image_id]["file_name"], annotation),
                [clean_caption(note["caption"]) for note in coco.loadAnns(coco.getAnnIds(imgIds=image_id))],
            )
            for image_id in sorted(coco.imgs)
        ]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError) as err:
        raise DatasetLayoutError(
            f"{annotation} is not a COCO captions file (images with id and file_name, "
            f"annotations with image_id, id and caption): {err!r}"
        ) from err
    uncaptioned = [picture.name for picture, captions in samples if not captions]
    if uncaptioned:
        warnings.warn(
            f"{annotation}: {len(uncaptioned)} of its {len(samples)} images have no caption (e.g. {uncaptioned[0]}). They are "
            "kept, as clip_benchmark keeps them, and each is a miss of text retrieval; the result counts them "
            "(images_without_captions).", DatasetWarning, stacklevel=2,
        )
    check_first_image(samples, annotation)
    return samples


@register_dataset(
    "mscoco_captions", loader="coco_captions", task=RETRIEVAL, languages=("en", "cn"), splits=("train", "val", "test")
)
def load_mscoco_captions(request: DatasetRequest) -> Loaded:
    """COCO's Karpathy split (5,000 test images, ~5 captions each), or COCO-CN's test set.

    Caption files are COCO captions JSON. The Karpathy files name images inside ``val2014/``
    (``train2014/`` for the train split); COCO-CN's name them relative to <root>
    (``val2014/...`` or ``train2014/...``).

    Layout::

        <root>/
        ├── val2014/
        │   ├── COCO_val2014_000000000042.jpg
        │   └── ...
        ├── train2014/                     (COCO-CN also uses train2014 images)
        ├── coco_test_karpathy.json        (--language en; coco_<split>_karpathy.json)
        └── coco-cn_test.json              (--language cn; coco-cn_<split>.json)

    Source: val2014.zip and train2014.zip from https://cocodataset.org/#download;
    coco_test_karpathy.json from https://github.com/mehdidc/retrieval_annotations/releases/tag/1.0.0;
    coco-cn_test.json from https://github.com/OpenGVLab/InternVL/releases/tag/data.
    """
    if request.language == "cn":
        annotation, images = request.root / f"coco-cn_{request.split}.json", request.root
    else:
        annotation = request.root / f"coco_{request.split}_karpathy.json"
        images = require_dir(request.root / ("train2014" if request.split == "train" else "val2014"))
    return Loaded(_read_coco_captions(request.annotation_file or annotation, images))


def _without_trailing_blanks(lines: list[str]) -> list[str]:
    while lines and not lines[-1]:
        lines = lines[:-1]
    return lines


@register_dataset("multilingual_mscoco_captions", loader="xtd_captions", task=RETRIEVAL, languages=XTD_LANGUAGES)
def load_multilingual_mscoco_captions(request: DatasetRequest) -> Loaded:
    """XTD10: 1,000 COCO images, one caption each, in ten languages (line i captions image i).

    An image whose name contains ``val`` is in ``val2014/``, any other in ``train2014/``.

    Layout::

        <root>/
        ├── multilingual_coco_images.txt               (or test_image_names.txt)
        ├── raw_multilingual_coco_captions_<lang>.txt  (or test_1kcaptions_<lang>.txt)
        ├── train2014/
        │   └── COCO_train2014_000000000009.jpg ...
        └── val2014/
            └── COCO_val2014_000000000042.jpg ...

    Source: test_image_names.txt and test_1kcaptions_<lang>.txt from
    https://github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10 (XTD10/; jp from STAIR/,
    fr from MIC/); images from COCO's train2014.zip and val2014.zip (https://cocodataset.org/#download).
    """
    root, language = request.root, request.language
    # The fork saves XTD10's files under its own names; either naming is read.
    index = first_existing([root / "multilingual_coco_images.txt"]) or root / "test_image_names.txt"
    captions_file = (
        request.annotation_file
        or first_existing([root / f"raw_multilingual_coco_captions_{language}.txt"])
        or root / f"test_1kcaptions_{language}.txt"
    )
    names = _without_trailing_blanks([line.strip() for line in read_lines(index)])
    captions = _without_trailing_blanks([line.strip() for line in read_lines(captions_file)])
    if len(captions) != len(names):
        raise DatasetLayoutError(f"{captions_file} has {len(captions)} captions for the {len(names)} images {index} lists")
    samples = [
        (listed_image(root / ("val2014" if "val" in name else "train2014"), name, index), [caption])
        for name, caption in zip(names, captions)
    ]
    check_first_image(samples, index)
    return Loaded(samples)
