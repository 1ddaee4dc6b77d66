"""Parity of exported graphs and engines against the PyTorch model in true fp32.

Per graph (vision = `encode_image`, text = `encode_text`) over the probes of `probes.py`:
max abs error, mean / minimum cosine similarity, the fraction of samples whose cosine
reaches the threshold, and the top-1 agreement of a zero-shot probe (class embeddings =
normalised mean of the normalised prompt embeddings per class; images classified by cosine).
The vision graph's agreement pairs its image embeddings with the PyTorch classifier, the text
graph's pairs PyTorch image embeddings with its classifier, and the end-to-end agreement uses
both. A `ParityReport` is truthy when every check passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np
import torch

from zsbench.errors import ExportError, ParityError
from zsbench.export.config import ProbeConfig
from zsbench.export.probes import ProbeSet
from zsbench.precisions import PRECISIONS

Status = Literal["passed", "failed", "not run"]
WORST_SHOWN = 5


@dataclass(frozen=True)
class ParityThresholds:
    """A sample passes when its cosine similarity reaches `cosine`; a graph passes when at least
    `cosine_fraction` of its samples do (1.0: the minimum must), its mean cosine reaches
    `mean_cosine` (when set) and its zero-shot top-1 agreement reaches `top1_agreement`.

    `tie_margin` makes the agreement fit a precision coarser than the reference's score gaps: an
    image whose top-1 class changed still agrees when the reference itself scores the new class
    within `tie_margin` (in cosine) of its own top class -- a near-tie at that precision. The
    report counts these (`top1_ties`). 0 for fp32 and fp16: every change counts.
    """

    cosine: float
    cosine_fraction: float
    top1_agreement: float
    mean_cosine: float | None = None
    tie_margin: float = 0.0

    @classmethod
    def for_precision(cls, precision: str) -> ParityThresholds:
        """The precision's limits (`zsbench.precisions.PrecisionSpec.parity`)."""
        limits = PRECISIONS.get(precision).parity
        if limits is None:
            raise ExportError(f"Graphs and engines do not come in {precision}: it has no parity thresholds.")
        return cls(**asdict(limits))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityThresholds:
        return cls(**data)


@dataclass(frozen=True)
class GraphParity:
    """The parity of one graph (``vision``, ``text``) or of both together (``zero_shot``)."""

    graph: str
    status: Status
    reason: str = ""
    samples: int = 0
    max_abs_error: float | None = None
    reference_max_abs: float | None = None
    mean_cosine: float | None = None
    min_cosine: float | None = None
    cosine_fraction_ok: float | None = None
    top1_agreement: float | None = None
    top1_changed: tuple[str, ...] = ()
    worst: tuple[str, ...] = ()
    top1_ties: int = 0  # top-1 changes within the tie margin of the reference's top score (`ParityThresholds.tie_margin`)
    top1_agreement_ties_forgiven: float | None = None  # what the gate compares (None in reports without near-ties: the same)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def gated_agreement(self) -> float | None:
        """The agreement the gate compares: `top1_agreement` (every change counted) with the near-ties forgiven."""
        return self.top1_agreement_ties_forgiven if self.top1_agreement_ties_forgiven is not None else self.top1_agreement

    def describe_agreement(self, tie_margin: float) -> str:
        """``top-1 agreement 0.9750`` and, with near-ties, ``(0.9950 with 4 near-ties within 0.001 forgiven)``."""
        text = f"top-1 agreement {self.top1_agreement:.4f}"
        if self.top1_ties:
            text += (f" ({self.gated_agreement:.4f} with {self.top1_ties} near-tie(s) within {tie_margin} of the "
                     "reference's top score forgiven)")
        return text

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GraphParity:
        values = {k: v for k, v in data.items() if k != "passed"}
        values["top1_changed"] = tuple(values.get("top1_changed", ()))
        values["worst"] = tuple(values.get("worst", ()))
        return cls(**values)


@dataclass(frozen=True)
class ParityReport:
    """Parity of an artifact's graphs (or engines) on one backend; truthy when it passes."""

    artifact: str
    backend: str
    precision: str
    reference: str
    thresholds: ParityThresholds
    probes: ProbeConfig
    graphs: tuple[GraphParity, ...]
    status: Status
    reason: str = ""
    files: dict[str, str] = field(default_factory=dict)  # file name -> SHA-256 of what was checked
    checkpoint: str = ""  # fingerprint digest of the checkpoint the reference model was loaded from
    advice: str = ""  # what to do about a failure (quantized graphs: the nodes with the most quantization noise)

    def __bool__(self) -> bool:
        return self.status == "passed"

    @property
    def passed(self) -> bool:
        return bool(self)

    def graph(self, name: str) -> GraphParity:
        return next(g for g in self.graphs if g.graph == name)

    def summary(self) -> str:
        """One line per graph; failing graphs name the failed checks and the worst inputs."""
        head = f"Parity of {self.artifact} on {self.backend} vs {self.reference}: {self.status.upper()}"
        lines = [head + (f" ({self.reason})" if self.reason else "")]
        for g in self.graphs:
            if g.status == "not run":
                lines.append(f"  {g.graph}: not run ({g.reason})")
                continue
            stats = f"{g.samples} samples"
            if g.mean_cosine is not None:
                stats += (
                    f", cosine mean {g.mean_cosine:.7f} min {g.min_cosine:.7f}, {100 * (g.cosine_fraction_ok or 0):.1f}% >= "
                    f"{self.thresholds.cosine}, max abs err {g.max_abs_error:.3g} (|ref| <= {g.reference_max_abs:.3g})"
                )
            stats += f", {g.describe_agreement(self.thresholds.tie_margin)}"
            lines.append(f"  {g.graph}: {g.status}: {stats}")
            if not g.passed:
                lines.append(f"    failed: {g.reason}")
                lines.extend(f"    worst: {w}" for w in g.worst)
                lines.extend(f"    top-1 changed: {c}" for c in g.top1_changed[:WORST_SHOWN])
        if self.advice and not self.passed:
            lines.append(self.advice)
        return "\n".join(lines)

    def about(self, files: dict[str, str], checkpoint: str) -> ParityReport:
        """This report, naming the files it checked (name -> SHA-256) and the checkpoint's digest, which
        the parity gate requires to match what it loads (`zsbench.runtime.trust.check_verdict`)."""
        return replace(self, files=dict(files), checkpoint=checkpoint)

    def raise_if_failed(self) -> None:
        """Raises `ParityError(message, report)` unless the report passed (or was not run)."""
        if self.status == "failed":
            raise ParityError(self.summary(), self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "backend": self.backend,
            "precision": self.precision,
            "reference": self.reference,
            "thresholds": self.thresholds.to_dict(),
            "probes": self.probes.to_dict(),
            "graphs": {g.graph: g.to_dict() for g in self.graphs},
            "status": self.status,
            "passed": self.passed,
            "reason": self.reason,
            "files": self.files,
            "checkpoint": self.checkpoint,
            "advice": self.advice,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ParityReport:
        return cls(
            artifact=data["artifact"],
            backend=data["backend"],
            precision=data["precision"],
            reference=data["reference"],
            thresholds=ParityThresholds.from_dict(data["thresholds"]),
            probes=ProbeConfig.from_dict(data["probes"]),
            graphs=tuple(GraphParity.from_dict(g) for g in data["graphs"].values()),
            status=data["status"],
            reason=data.get("reason", ""),
            files=dict(data.get("files") or {}),
            checkpoint=str(data.get("checkpoint") or ""),
            advice=str(data.get("advice") or ""),
        )

    @classmethod
    def not_run(cls, artifact: str, backend: str, precision: str, reason: str, probes: ProbeConfig | None = None) -> ParityReport:
        """A report for a check that could not run here (e.g. an engine with no GPU present)."""
        return cls(
            artifact=artifact,
            backend=backend,
            precision=precision,
            reference="torch fp32",
            thresholds=ParityThresholds.for_precision(precision),
            probes=probes or ProbeConfig(),
            graphs=(GraphParity("vision", "not run", reason), GraphParity("text", "not run", reason)),
            status="not run",
            reason=reason,
        )


class EmbeddingRunner(Protocol):
    """What parity needs of a backend: CPU tensors in, embeddings out (any float dtype or device)."""

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class Embeddings:
    """Float64 embeddings of every probe image and text, in probe order."""

    image: np.ndarray | None
    text: np.ndarray | None


@contextlib.contextmanager
def true_fp32() -> Iterator[None]:
    """Disables TF32 for matmuls and convolutions (restored afterwards): the reference is true fp32."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):
        saved = (matmul.fp32_precision, cudnn.conv.fp32_precision)
        matmul.fp32_precision, cudnn.conv.fp32_precision = "ieee", "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision, cudnn.conv.fp32_precision = saved
        return
    saved_legacy = (matmul.allow_tf32, cudnn.allow_tf32, torch.get_float32_matmul_precision())
    matmul.allow_tf32, cudnn.allow_tf32 = False, False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved_legacy[:2]
        torch.set_float32_matmul_precision(saved_legacy[2])


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def run_probes(runner: EmbeddingRunner, probes: ProbeSet, graphs: tuple[str, ...] = ("vision", "text")) -> Embeddings:
    """Embeds every probe with `runner`, batch by batch as the probes are cut."""
    image = text = None
    if "vision" in graphs:
        image = np.concatenate([_as_numpy(runner.encode_image(probes.pixels[a:b])) for a, b in probes.image_batches])
    if "text" in graphs:
        parts: dict[int, np.ndarray] = {}
        for batch in probes.text_batches:
            for row, value in zip(batch.indices, _as_numpy(runner.encode_text(batch.input_ids))):
                parts[row] = value
        text = np.stack([parts[i] for i in range(len(probes.texts))])
    return Embeddings(image, text)


def reference_embeddings(model: torch.nn.Module, probes: ProbeSet, device: torch.device) -> Embeddings:
    """The PyTorch model's embeddings of the probes, in fp32 with TF32 off."""

    class _Reference:
        def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
            return model.encode_image(pixels.to(device))

        def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
            return model.encode_text(input_ids.to(device))

    with true_fp32(), torch.inference_mode():
        return run_probes(_Reference(), probes)


def _normalise(values: np.ndarray) -> np.ndarray:
    return values / np.maximum(np.linalg.norm(values, axis=-1, keepdims=True), 1e-30)


def zero_shot_scores(image: np.ndarray, text: np.ndarray, probes: ProbeSet) -> np.ndarray:
    """Cosine of every probe image with every class embedding built from the prompt embeddings."""
    classes = np.asarray(probes.text_classes)
    normed = _normalise(text)
    classifier = _normalise(np.stack([normed[classes == c].mean(0) for c in range(len(probes.classnames))]))
    return _normalise(image) @ classifier.T


def zero_shot_top1(image: np.ndarray, text: np.ndarray, probes: ProbeSet) -> np.ndarray:
    """Top-1 class of every probe image against class embeddings built from the prompt embeddings."""
    return zero_shot_scores(image, text, probes).argmax(1)


@dataclass(frozen=True)
class Agreement:
    """Zero-shot top-1 agreement with the reference over the probe images."""

    raw: float  # every changed top-1 counted
    ties_forgiven: float  # near-ties (`ParityThresholds.tie_margin`) counted as agreeing: what the gate compares
    changed: np.ndarray  # the images whose top-1 changed
    ties: int  # how many of those changes are near-ties


def top1_agreement(reference_scores: np.ndarray, candidate_top1: np.ndarray, tie_margin: float) -> Agreement:
    """How often the candidate's top-1 agrees with the reference's; a change is a near-tie when the reference itself
    scores the new class within `tie_margin` of its own top class."""
    rows = np.arange(len(candidate_top1))
    reference_top1 = reference_scores.argmax(1)
    changed = candidate_top1 != reference_top1
    ties = changed & (reference_scores[rows, candidate_top1] >= reference_scores[rows, reference_top1] - tie_margin)
    return Agreement(float(1.0 - changed.sum() / len(changed)), float(1.0 - (changed.sum() - ties.sum()) / len(changed)),
                     np.flatnonzero(changed), int(ties.sum()))


def _agreement_failure(parity: GraphParity, thresholds: ParityThresholds, what: str) -> str | None:
    """Why `parity`'s agreement (near-ties forgiven) fails the threshold, or None."""
    gated = parity.gated_agreement
    if gated is None or gated >= thresholds.top1_agreement:
        return None
    return f"{what} {parity.describe_agreement(thresholds.tie_margin)} < {thresholds.top1_agreement}"


def _compare(
    graph: str,
    reference: np.ndarray,
    candidate: np.ndarray,
    describe: Callable[[int], str],
    scores: tuple[np.ndarray, np.ndarray],
    describe_image: Callable[[int], str],
    thresholds: ParityThresholds,
) -> GraphParity:
    cosine = (_normalise(reference) * _normalise(candidate)).sum(-1)
    abs_error = np.abs(reference - candidate).max(-1)
    fraction_ok = float((cosine >= thresholds.cosine).mean())
    reference_scores, candidate_top1 = scores[0], scores[1].argmax(1)
    agreement = top1_agreement(reference_scores, candidate_top1, thresholds.tie_margin)
    failures = []
    if fraction_ok < thresholds.cosine_fraction:
        failures.append(
            f"{100 * fraction_ok:.2f}% of samples reach cosine {thresholds.cosine}, expected >= "
            f"{100 * thresholds.cosine_fraction:.2f}% (min cosine {cosine.min():.7f})"
        )
    if thresholds.mean_cosine is not None and cosine.mean() < thresholds.mean_cosine:
        failures.append(f"mean cosine {cosine.mean():.7f} < {thresholds.mean_cosine}")
    order = np.argsort(cosine)[:WORST_SHOWN]
    reference_top1 = reference_scores.argmax(1)
    parity = GraphParity(
        graph=graph,
        status="passed",
        samples=len(cosine),
        max_abs_error=float(abs_error.max()),
        reference_max_abs=float(np.abs(reference).max()),
        mean_cosine=float(cosine.mean()),
        min_cosine=float(cosine.min()),
        cosine_fraction_ok=fraction_ok,
        top1_agreement=agreement.raw,
        top1_changed=tuple(f"{describe_image(i)}: class {reference_top1[i]} -> {candidate_top1[i]}" for i in agreement.changed),
        worst=tuple(f"{describe(i)}: cosine {cosine[i]:.7f}, max abs err {abs_error[i]:.3g}" for i in order),
        top1_ties=agreement.ties,
        top1_agreement_ties_forgiven=agreement.ties_forgiven,
    )
    failures += [reason for reason in (_agreement_failure(parity, thresholds, "zero-shot"),) if reason]
    return replace(parity, status="failed" if failures else "passed", reason="; ".join(failures))


def compare_embeddings(
    reference: Embeddings,
    candidate: Embeddings,
    probes: ProbeSet,
    thresholds: ParityThresholds,
    *,
    artifact: str,
    backend: str,
    precision: str,
    reference_name: str,
    probe_config: ProbeConfig,
) -> ParityReport:
    """Builds the `ParityReport` of `candidate` against `reference` (graphs missing from the
    candidate are reported as not run)."""
    assert reference.image is not None and reference.text is not None
    ref_scores = zero_shot_scores(reference.image, reference.text, probes)
    graphs = []
    if candidate.image is not None:
        scores = zero_shot_scores(candidate.image, reference.text, probes)
        graphs.append(_compare("vision", reference.image, candidate.image, probes.describe_image, (ref_scores, scores),
                               probes.describe_image, thresholds))
    if candidate.text is not None:
        scores = zero_shot_scores(reference.image, candidate.text, probes)
        graphs.append(_compare("text", reference.text, candidate.text, probes.describe_text, (ref_scores, scores),
                               probes.describe_image, thresholds))
    if candidate.image is not None and candidate.text is not None:
        top1 = zero_shot_top1(candidate.image, candidate.text, probes)
        agreement = top1_agreement(ref_scores, top1, thresholds.tie_margin)
        ref_top1 = ref_scores.argmax(1)
        parity = GraphParity(
            graph="zero_shot",
            status="passed",
            samples=len(top1),
            top1_agreement=agreement.raw,
            top1_changed=tuple(f"{probes.describe_image(i)}: class {ref_top1[i]} -> {top1[i]}" for i in agreement.changed),
            top1_ties=agreement.ties,
            top1_agreement_ties_forgiven=agreement.ties_forgiven,
        )
        failure = _agreement_failure(parity, thresholds, "end-to-end")
        graphs.append(replace(parity, status="failed", reason=failure) if failure else parity)
    failed = [g.graph for g in graphs if g.status == "failed"]
    return ParityReport(
        artifact=artifact,
        backend=backend,
        precision=precision,
        reference=reference_name,
        thresholds=thresholds,
        probes=probe_config,
        graphs=tuple(graphs),
        status="failed" if failed else "passed",
        reason=f"failing: {', '.join(failed)}" if failed else "",
    )
