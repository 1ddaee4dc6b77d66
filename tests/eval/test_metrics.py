"""zsbench's metrics equal CLIP_benchmark's own functions on the same embeddings."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zsbench.eval.metrics import classification_metrics, retrieval_metrics

zc = pytest.importorskip("clip_benchmark.metrics.zeroshot_classification")
zr = pytest.importorskip("clip_benchmark.metrics.zeroshot_retrieval")


def test_classification_metrics_equal_clip_benchmark() -> None:
    from sklearn.metrics import balanced_accuracy_score

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 20, generator=generator)
    targets = torch.randint(0, 20, (500,), generator=generator)
    targets[targets == 7] = 3  # a class with no samples: recall averages over present classes only
    logits[torch.arange(500), targets] += 1.0  # better than chance
    ours = classification_metrics(logits, targets, multilabel=False)
    acc1, acc5 = zc.accuracy(logits, targets, topk=(1, 5))
    assert ours["acc1"] == acc1
    assert ours["acc5"] == acc5
    assert ours["mean_per_class_recall"] == pytest.approx(balanced_accuracy_score(targets, logits.argmax(dim=1)), abs=1e-12)


def test_fewer_than_five_classes_has_no_acc5() -> None:
    logits = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    metrics = classification_metrics(logits, torch.tensor([0, 1, 1]), multilabel=False)
    assert metrics["acc1"] == pytest.approx(2 / 3)
    assert metrics["acc5"] != metrics["acc5"]  # NaN, as CLIP_benchmark


def test_multilabel_map_equals_clip_benchmark() -> None:
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(300, 12, generator=generator)
    targets = (torch.rand(300, 12, generator=generator) < 0.2).long()
    targets[:, 5] = 0  # a class with no positives
    ours = classification_metrics(scores, targets, multilabel=True)
    expected = zc.average_precision_per_class(scores, targets).mean().item()
    assert ours == {"mean_average_precision": pytest.approx(expected, abs=1e-6)}


@pytest.mark.parametrize("chunk_size", [7, 1024])
def test_retrieval_metrics_equal_clip_benchmark(chunk_size: int) -> None:
    generator = torch.Generator().manual_seed(2)
    images = F.normalize(torch.randn(60, 16, generator=generator), dim=-1)
    owners = torch.repeat_interleave(torch.arange(60), torch.randint(1, 6, (60,), generator=generator))
    texts = F.normalize(images[owners] + 0.9 * torch.randn(len(owners), 16, generator=generator), dim=-1)
    ours = retrieval_metrics(images, texts, owners, (1, 5, 10), chunk_size=chunk_size)

    # CLIP_benchmark's own computation (zeroshot_retrieval.evaluate after the encoding loop).
    scores = texts @ images.t()
    positive_pairs = torch.zeros_like(scores, dtype=torch.bool)
    positive_pairs[torch.arange(len(scores)), owners] = True
    for k in (1, 5, 10):
        image_recall = (zr.batchify(zr.recall_at_k, scores, positive_pairs, 64, "cpu", k=k) > 0).float().mean().item()
        text_recall = (zr.batchify(zr.recall_at_k, scores.T, positive_pairs.T, 64, "cpu", k=k) > 0).float().mean().item()
        assert ours[f"image_retrieval_recall@{k}"] == image_recall
        assert ours[f"text_retrieval_recall@{k}"] == text_recall
    assert 0 < ours["image_retrieval_recall@1"] < ours["image_retrieval_recall@10"] < 1
