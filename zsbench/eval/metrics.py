"""Metrics with CLIP_benchmark's definitions (tests check equality against its own functions)."""

from __future__ import annotations

import torch


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, ks: tuple[int, ...]) -> list[float]:
    """Fraction of samples whose target is among the top-k logits, for each k."""
    top = logits.topk(max(ks), dim=1).indices
    correct = top.eq(targets.view(-1, 1))
    return [correct[:, :k].any(dim=1).float().sum().item() / len(targets) for k in ks]


def mean_per_class_recall(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Recall averaged over the classes present in `targets` (sklearn's balanced accuracy)."""
    classes = targets.unique()
    # float64, as sklearn computes it: the paper reports these digits.
    recalls = [(predictions[targets == c] == c).double().mean() for c in classes]
    return torch.stack(recalls).mean().item()


def average_precision_per_class(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Average precision of each class for multi-label data (scores, multi-hot targets: (N, C))."""
    order = scores.sort(dim=0, descending=True).indices
    truth = targets.gather(0, order).float()
    ranks = torch.arange(1, scores.shape[0] + 1, dtype=torch.float32).unsqueeze(1)
    precision = truth.cumsum(dim=0) / ranks
    return (precision * truth).sum(dim=0) / truth.sum(dim=0).clamp(min=1)


def classification_metrics(logits: torch.Tensor, targets: torch.Tensor, multilabel: bool) -> dict[str, float]:
    """acc1, acc5 (NaN below 5 classes) and mean_per_class_recall; mean_average_precision if multi-label."""
    if multilabel:
        return {"mean_average_precision": average_precision_per_class(logits, targets).mean().item()}
    if logits.shape[1] >= 5:
        acc1, acc5 = topk_accuracy(logits, targets, (1, 5))
    else:
        (acc1,), acc5 = topk_accuracy(logits, targets, (1,)), float("nan")
    return {"acc1": acc1, "acc5": acc5, "mean_per_class_recall": mean_per_class_recall(logits.argmax(dim=1), targets)}


def retrieval_metrics(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    text_to_image: torch.Tensor,
    recall_k: tuple[int, ...],
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Recall@k both ways from L2-normalised embeddings; each text belongs to one image.

    image_retrieval_recall@k: fraction of texts whose image is among their k most similar
    images. text_retrieval_recall@k: fraction of images with at least one of their texts among
    their k most similar texts. Computed in chunks so the full similarity matrix never has to
    exist at once.
    """
    max_k_images, max_k_texts = min(max(recall_k), len(image_embeddings)), min(max(recall_k), len(text_embeddings))
    text_hits = []  # rank (0-based) of each text's image, capped at max k
    for start in range(0, len(text_embeddings), chunk_size):
        scores = text_embeddings[start : start + chunk_size] @ image_embeddings.T
        top = scores.topk(max_k_images, dim=1).indices
        text_hits.append(top.eq(text_to_image[start : start + chunk_size].view(-1, 1)))
    image_hits = []
    for start in range(0, len(image_embeddings), chunk_size):
        # Same orientation as the text->image scores (text @ image.T), as CLIP_benchmark transposes one matrix.
        scores = (text_embeddings @ image_embeddings[start : start + chunk_size].T).T
        top = scores.topk(max_k_texts, dim=1).indices
        owners = text_to_image[top]
        image_ids = torch.arange(start, start + len(scores), device=owners.device).view(-1, 1)
        image_hits.append(owners.eq(image_ids))
    text_hit, image_hit = torch.cat(text_hits), torch.cat(image_hits)
    metrics = {}
    for k in recall_k:
        metrics[f"image_retrieval_recall@{k}"] = text_hit[:, :k].any(dim=1).float().mean().item()
        metrics[f"text_retrieval_recall@{k}"] = image_hit[:, :k].any(dim=1).float().mean().item()
    return metrics
