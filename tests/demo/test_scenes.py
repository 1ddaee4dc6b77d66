"""The synthetic scenes: labels and captions say what is drawn, and samples are pure functions of their index."""

from __future__ import annotations

import numpy as np
import pytest

from zsbench.demo.scenes import (
    CLASSNAMES,
    IMAGE_SIZE,
    RELATIONS,
    SceneObject,
    classification_sample,
    retrieval_sample,
)

SIZE_WORDS = {"small": (5.0, 6.5), "large": (9.5, 12.0)}


def _holds(relation: str, first: SceneObject, second: SceneObject) -> bool:
    """`first` is clearly `relation` `second`: apart along the axis by more than their sizes, and
    further apart along it than across it."""
    dx, dy = second.x - first.x, second.y - first.y
    axes = {"above": (dy, dx), "below": (-dy, dx), "to the left of": (dx, dy), "to the right of": (-dx, dy)}
    along, across = axes[relation]
    return along > first.radius + second.radius and abs(across) < along


def test_classification_label_is_the_drawn_shape() -> None:
    for index in range(40):
        sample = classification_sample(0, "test", index)
        (obj,) = sample.objects
        assert sample.key == CLASSNAMES[sample.target] == f"{obj.colour} {obj.shape}"
        assert sample.image.size == (IMAGE_SIZE, IMAGE_SIZE)


@pytest.mark.parametrize("split", ["train", "test"])
def test_retrieval_captions_describe_the_scene(split: str) -> None:
    relations = set()
    for index in range(200):
        sample = retrieval_sample(0, split, index)
        first, second = sample.objects
        forward, backward = sample.target
        for caption, (a, b) in ((forward, (first, second)), (backward, (second, first))):
            words = caption.split(" ")
            size_a, size_b = words[1], words[-3]
            relation = " ".join(words[4:-4])
            relations.add(relation)
            assert words[2:4] == [a.colour, a.shape] and words[-2:] == [b.colour, b.shape]
            assert SIZE_WORDS[size_a][0] <= a.radius <= SIZE_WORDS[size_a][1]
            assert SIZE_WORDS[size_b][0] <= b.radius <= SIZE_WORDS[size_b][1]
            assert _holds(relation, a, b), (caption, sample.objects)
        for obj in sample.objects:
            assert 1.25 * obj.radius <= min(obj.x, obj.y, IMAGE_SIZE - obj.x, IMAGE_SIZE - obj.y)
        assert sample.key in (forward, backward) and (" above " in sample.key or " left of " in sample.key)
    assert relations == set(RELATIONS)


def test_samples_are_pure_functions_of_their_index() -> None:
    again = np.asarray(retrieval_sample(0, "test", 7).image)
    assert np.array_equal(np.asarray(retrieval_sample(0, "test", 7).image), again)
    for other in (retrieval_sample(0, "test", 8), retrieval_sample(0, "train", 7), retrieval_sample(1, "test", 7)):
        assert not np.array_equal(np.asarray(other.image), again)


def test_every_class_is_drawn() -> None:
    labels = {classification_sample(0, "test", index).target for index in range(600)}
    assert labels == set(range(len(CLASSNAMES)))
