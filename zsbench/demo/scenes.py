"""Synthetic scenes for the embedded demo: coloured shapes on noisy backgrounds, with labels and captions.

Two tasks share one renderer. Classification: one shape per image, the class is its colour and
shape ("red circle"; 8 colours x 6 shapes = 48 classes), its size, position and tilt vary.
Retrieval: two shapes in a spatial relation, each small or large, captioned both ways round
("a small red circle above a large blue square", "a large blue square below a small red circle").

Sample `index` of a split is a pure function of (seed, task, split, index): a split is an endless
deterministic stream, so the test split is always the same images (for given numpy and Pillow
versions) and the training script can stream as much of the training split as it needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Union

import numpy as np
from PIL import Image, ImageDraw

Task = Literal["classification", "retrieval"]
Split = Literal["train", "test"]

IMAGE_SIZE = 64
# Shapes are drawn at this many times the output size, then box-filtered down: anti-aliased edges.
_SUPERSAMPLE = 4

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40),
    "green": (45, 165, 60),
    "blue": (40, 75, 215),
    "yellow": (235, 215, 45),
    "purple": (135, 55, 185),
    "cyan": (50, 205, 215),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond")
CLASSNAMES: tuple[str, ...] = tuple(f"{colour} {shape}" for colour in COLOURS for shape in SHAPES)
# Every class name starts with a consonant, so "a {c}" reads well for all of them.
TEMPLATES: tuple[str, ...] = (
    "a photo of a {c}.",
    "a {c}.",
    "a picture of a {c}.",
    "a drawing of a {c}.",
    "an image of a {c}.",
    "a {c} on a plain background.",
)
# relation -> the same relation seen from the other object.
RELATIONS: dict[str, str] = {
    "above": "below",
    "below": "above",
    "to the left of": "to the right of",
    "to the right of": "to the left of",
}
# Radius ranges (pixels at IMAGE_SIZE): retrieval sizes are disjoint so "small"/"large" are unambiguous.
_CLASSIFICATION_RADIUS = (7.0, 15.0)
_RETRIEVAL_RADIUS = {"small": (5.0, 6.5), "large": (9.5, 12.0)}
_MAX_TILT_DEGREES = 15.0
_TASK_IDS: dict[str, int] = {"classification": 0, "retrieval": 1}
_SPLIT_IDS: dict[str, int] = {"train": 0, "test": 1}


@dataclass(frozen=True)
class SceneObject:
    """One shape: what it is and where (centre and radius in pixels, tilt in degrees)."""

    colour: str
    shape: str
    x: float
    y: float
    radius: float
    tilt: float = 0.0


@dataclass(frozen=True)
class Sample:
    """A rendered sample. `target` is the class index or the captions; samples with equal `key`
    show the same thing (what the training loss counts as positives); `objects` were drawn."""

    image: Image.Image
    target: Union[int, list[str]]
    key: str
    objects: tuple[SceneObject, ...]


def sample_rng(seed: int, task: Task, split: Split, index: int) -> np.random.Generator:
    """The generator that fixes sample `index` of a split, independent of every other sample."""
    return np.random.default_rng([seed, _TASK_IDS[task], _SPLIT_IDS[split], index])


def _polygon(shape: str) -> np.ndarray:
    """Vertices (N, 2) of a shape of radius 1 centred at 0, y pointing down; the circle is handled apart."""
    if shape == "square":
        return np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], dtype=float) * 0.82
    if shape == "diamond":
        return np.array([(0, -1.15), (0.8, 0), (0, 1.15), (-0.8, 0)], dtype=float)
    if shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        return 1.15 * np.stack([np.cos(angles), np.sin(angles)], axis=1) + (0, 0.25)
    if shape == "star":
        angles = np.deg2rad(np.arange(10) * 36 - 90)
        radii = np.where(np.arange(10) % 2 == 0, 1.25, 0.52)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    if shape == "cross":
        a, b = 1.0, 0.36  # arm half-length, arm half-width
        return np.array(
            [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b), (-b, -b)]
        )
    raise ValueError(f"unknown shape {shape!r}")


def _coverage(obj: SceneObject, size: int) -> np.ndarray:
    """Fraction (size, size) of each pixel the object covers, from a supersampled drawing."""
    scale = _SUPERSAMPLE
    mask = Image.new("L", (size * scale, size * scale), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy, r = obj.x * scale, obj.y * scale, obj.radius * scale
    if obj.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        theta = math.radians(obj.tilt)
        rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        points = _polygon(obj.shape) @ rotation.T * r + (cx, cy)
        draw.polygon([tuple(point) for point in points.tolist()], fill=255)
    return np.asarray(mask.reduce(scale), dtype=np.float32) / 255.0


def render(objects: list[SceneObject], rng: np.random.Generator, size: int = IMAGE_SIZE) -> Image.Image:
    """Draws `objects` in order over a tinted, shaded, noisy background; returns an RGB image."""
    # Mid-tone, low-saturation backgrounds keep black, white and every colour visible on them.
    base = rng.uniform(85, 170) + rng.uniform(-15, 15, size=3)
    # A linear shading in a random direction, so the background is never one flat colour.
    angle, amplitude = rng.uniform(0, 2 * math.pi), rng.uniform(0, 24)
    ramp = np.linspace(-0.5, 0.5, size)
    shading = amplitude * (math.cos(angle) * ramp[None, :] + math.sin(angle) * ramp[:, None])
    canvas = np.broadcast_to(base, (size, size, 3)) + shading[:, :, None]
    for obj in objects:
        colour = np.clip(np.array(COLOURS[obj.colour], dtype=float) + rng.uniform(-15, 15, size=3), 0, 255)
        alpha = _coverage(obj, size)[:, :, None]
        canvas = canvas * (1 - alpha) + colour * alpha
    canvas = canvas + rng.normal(0, rng.uniform(2, 8), size=canvas.shape)
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), "RGB")


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _margin(radius: float) -> float:
    """Distance to keep between a centre and the frame: star tips reach 1.25 radii."""
    return 1.25 * radius + 1


def classification_sample(seed: int, split: Split, index: int) -> Sample:
    """One shape anywhere in the image; the target is the index of "colour shape" in `CLASSNAMES`."""
    rng = sample_rng(seed, "classification", split, index)
    label = int(rng.integers(len(CLASSNAMES)))
    colour, shape = CLASSNAMES[label].split(" ")
    radius = rng.uniform(*_CLASSIFICATION_RADIUS)
    margin = _margin(radius)
    obj = SceneObject(
        colour, shape, rng.uniform(margin, IMAGE_SIZE - margin), rng.uniform(margin, IMAGE_SIZE - margin),
        radius, rng.uniform(-_MAX_TILT_DEGREES, _MAX_TILT_DEGREES),
    )
    return Sample(render([obj], rng), label, CLASSNAMES[label], (obj,))


def _place_pair(rng: np.random.Generator, relation: str, radii: tuple[float, float]) -> list[tuple[float, float]]:
    """Centres of two objects such that the first is unambiguously `relation` the second: apart
    along the relation's axis, and less than 0.6 times as far apart across it."""
    # Sample in reading order (the object above / on the left first), then map back.
    order = (0, 1) if relation in ("above", "to the left of") else (1, 0)
    first, second = (_margin(radii[i]) for i in order)
    min_gap = 1.15 * (radii[0] + radii[1]) + 3
    along_first = rng.uniform(first, IMAGE_SIZE - second - min_gap)
    along_second = rng.uniform(along_first + min_gap, IMAGE_SIZE - second)
    across_first = rng.uniform(first, IMAGE_SIZE - first)
    spread = 0.6 * (along_second - along_first)
    across_second = rng.uniform(max(second, across_first - spread), min(IMAGE_SIZE - second, across_first + spread))
    centres = {order[0]: (along_first, across_first), order[1]: (along_second, across_second)}
    vertical = relation in ("above", "below")
    return [(across, along) if vertical else (along, across) for along, across in (centres[0], centres[1])]


def retrieval_sample(seed: int, split: Split, index: int) -> Sample:
    """Two different shapes, each small or large, in a spatial relation; two captions, one per viewpoint."""
    rng = sample_rng(seed, "retrieval", split, index)
    while True:
        kinds = [(_pick(rng, list(COLOURS)), _pick(rng, SHAPES)) for _ in range(2)]
        if kinds[0] != kinds[1]:
            break
    sizes = [_pick(rng, ("small", "large")) for _ in range(2)]
    radii = tuple(rng.uniform(*_RETRIEVAL_RADIUS[size]) for size in sizes)
    relation = _pick(rng, list(RELATIONS))
    centres = _place_pair(rng, relation, radii)  # type: ignore[arg-type]
    objects = [
        SceneObject(colour, shape, x, y, radius, rng.uniform(-_MAX_TILT_DEGREES, _MAX_TILT_DEGREES))
        for (colour, shape), (x, y), radius in zip(kinds, centres, radii)
    ]
    names = [f"{size} {colour} {shape}" for size, (colour, shape) in zip(sizes, kinds)]
    captions = [f"a {names[0]} {relation} a {names[1]}", f"a {names[1]} {RELATIONS[relation]} a {names[0]}"]
    # The key states the relation as "above" or "to the left of", whichever caption does.
    key = captions[0] if relation in ("above", "to the left of") else captions[1]
    return Sample(render(objects, rng), captions, key, tuple(objects))


SAMPLERS: dict[str, Callable[[int, Split, int], Sample]] = {
    "classification": classification_sample,
    "retrieval": retrieval_sample,
}
