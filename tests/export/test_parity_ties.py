"""Top-1 agreement with a near-tie margin (int8 thresholds), and older parity reports without the new fields."""

from __future__ import annotations

import numpy as np

from zsbench.export.parity import GraphParity, ParityThresholds, top1_agreement

# Reference scores of 4 images over 3 classes; the reference's top-1 is class 0 everywhere.
SCORES = np.array([[0.50, 0.4995, 0.1], [0.50, 0.45, 0.1], [0.50, 0.30, 0.1], [0.50, 0.49, 0.1]])


def test_a_changed_top1_agrees_only_within_the_tie_margin() -> None:
    candidate = np.array([1, 1, 0, 0])  # image 0 flips to a near-tie (0.0005 apart), image 1 to a class 0.05 behind
    exact = top1_agreement(SCORES, candidate, 0.0)
    assert (exact.raw, exact.ties_forgiven, list(exact.changed), exact.ties) == (0.5, 0.5, [0, 1], 0)
    tie = top1_agreement(SCORES, candidate, 0.001)
    assert (tie.raw, tie.ties_forgiven, list(tie.changed), tie.ties) == (0.5, 0.75, [0, 1], 1)
    wide = top1_agreement(SCORES, candidate, 0.1)
    assert (wide.raw, wide.ties_forgiven, wide.ties) == (0.5, 1.0, 2)


def test_int8_thresholds_and_older_reports() -> None:
    int8 = ParityThresholds.for_precision("int8")
    assert (int8.top1_agreement, int8.mean_cosine, int8.tie_margin) == (0.99, 0.99, 0.001)
    assert ParityThresholds.for_precision("fp16").tie_margin == 0.0 and ParityThresholds.for_precision("fp16").mean_cosine is None
    # parity.json files written before these fields existed still read, with every change counted.
    assert ParityThresholds.from_dict({"cosine": 0.999, "cosine_fraction": 0.99, "top1_agreement": 0.995}).tie_margin == 0.0
    old = {"graph": "vision", "status": "passed", "samples": 3, "top1_agreement": 1.0, "passed": True}
    assert GraphParity.from_dict(old).top1_ties == 0
