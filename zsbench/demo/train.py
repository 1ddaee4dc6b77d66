"""Trains the embedded demo checkpoint: a tiny InternVL-C/G, contrastively, on the demo training splits.

    python -m zsbench.demo.train --out pretrained/zsbench-demo

The architecture is `internvl_demo.json` (the real InternVL code at a tiny size). Every batch is
half classification scenes, captioned with a class template, and half two-shape scenes with one
of their captions. Three InfoNCE losses share the text embedding: InternVL-C's image embedding,
InternVL-G's query embedding alone, and their ensemble (what `internvl_g_*` evaluates), so both
image heads serve zero-shot evaluation. Samples that show the same thing (same class, or the same
scene description) count as positives of each other. Everything is seeded: the same command on
the same kind of machine, with the same thread count, writes the same checkpoint; elsewhere
floating-point rounding differs and so do the weights, by amounts that leave the metrics alike.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import click
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from zsbench.demo.scenes import CLASSNAMES, SAMPLERS, TEMPLATES, Sample
from zsbench.demo.validate import classification_metrics, demo_test_samples, retrieval_metrics, validate_checkpoint
from zsbench.jsonfiles import write_json_atomic
from zsbench.models import InternVL, InternVLConfig, InternVLTokenizer, PreprocessConfig, build_transform
from zsbench.models.checkpoints import save_hf_checkpoint
from zsbench.models.config import load_config_file
from zsbench.models.internvl import create_initialized_model
from zsbench.models.tokenizer import train_tokenizer
from zsbench.models.transform import task_resize_mode

CONFIG_FILE = Path(__file__).with_name("internvl_demo.json")
TRAINING_RECORD = "zsbench_demo_training.json"
# Retrieval captions of this many training scenes (plus every class prompt) train the tokenizer.
_TOKENIZER_SCENES = 2000


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of a demo training run."""

    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.05
    seed: int = 0
    threads: int = 1
    log_every: int = 50
    eval_every: int = 500
    monitor_samples: int = 500
    workers: int = 1
    device: str = "cpu"


def build_demo_tokenizer(model_file: Path, vocab_size: int, seed: int) -> Path:
    """Trains the sentencepiece tokenizer on every class prompt and the captions of training scenes."""
    texts = [template.format(c=name) for name in CLASSNAMES for template in TEMPLATES]
    for index in range(_TOKENIZER_SCENES):
        texts.extend(SAMPLERS["retrieval"](seed, "train", index).target)  # type: ignore[arg-type]
    return train_tokenizer(texts, model_file, vocab_size)


def init_demo_model(config: InternVLConfig, seed: int) -> InternVL:
    """A trainable InternVL-G (it holds InternVL-C too) with seeded initial weights."""
    return create_initialized_model(config, seed).train().requires_grad_(True)


def task_transform(image_size: int, task: str) -> Callable[[Image.Image], torch.Tensor]:
    """The transform `load_clip` gives the task's model names: training sees what evaluation sees."""
    return build_transform(PreprocessConfig(image_size, task_resize_mode(task)))


class ImageEmbeddings(NamedTuple):
    """The image embeddings trained: InternVL-C's, InternVL-G's query path, and G's ensemble."""

    c: torch.Tensor
    query: torch.Tensor
    g: torch.Tensor


def image_embeddings(model: InternVL, pixels: torch.Tensor) -> ImageEmbeddings:
    """All three embeddings from one vision forward, computed as `InternVL.encode_image` does."""
    vision_tokens = model.vision_model(pixels)
    c = model.clip_projector(vision_tokens)
    queries = model.query_tokens.expand(pixels.shape[0], -1, -1)
    query = model.clip_projector2(model.qllama.encode_queries(queries, vision_tokens))
    return ImageEmbeddings(c, query, F.normalize(query, dim=-1) + F.normalize(c, dim=-1))


def contrastive_loss(
    image: torch.Tensor, text: torch.Tensor, positives: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE whose targets spread evenly over every positive pair (positives is symmetric)."""
    logits = scale * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T
    targets = positives / positives.sum(dim=1, keepdim=True)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


class TrainBatches(torch.utils.data.IterableDataset):
    """Batch `step` = training samples ``[step * half, (step + 1) * half)`` of each task, transformed
    as evaluation transforms them; yields (pixels, token ids, positives mask)."""

    def __init__(self, seed: int, batch_size: int, steps: int, image_size: int, tokenizer: InternVLTokenizer) -> None:
        super().__init__()
        self.seed, self.half, self.steps, self.tokenizer = seed, batch_size // 2, steps, tokenizer
        self.transforms = {task: task_transform(image_size, task) for task in SAMPLERS}

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        pixels, texts, keys = [], [], []
        for task, sampler in SAMPLERS.items():
            for index in range(step * self.half, (step + 1) * self.half):
                sample = sampler(self.seed, "train", index)
                pixels.append(self.transforms[task](sample.image))
                if task == "classification":
                    texts.append(TEMPLATES[rng.integers(len(TEMPLATES))].format(c=CLASSNAMES[sample.target]))
                else:
                    texts.append(sample.target[rng.integers(len(sample.target))])  # type: ignore[index]
                keys.append(sample.key)
        key_ids = torch.tensor([keys.index(key) for key in keys])
        return torch.stack(pixels), self.tokenizer(texts), key_ids[:, None] == key_ids[None, :]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        # DataLoader reads its workers in turn, so worker i making steps i, i + n, ... keeps step order.
        worker = torch.utils.data.get_worker_info()
        first, stride = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        return (self.batch(step) for step in range(first, self.steps, stride))


def _optimizer(model: InternVL, config: TrainConfig) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no decay on norms, biases, embeddings, tokens, scale) with warmup then cosine decay."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        plain_weight = param.ndim >= 2 and "embed" not in name and name != "query_tokens"
        (decay if plain_weight else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def quick_validation(
    model: InternVL, tokenizer: InternVLTokenizer, samples: dict[str, list[Sample]]
) -> dict[str, float]:
    """acc1 and text->image / image->text R@5 of the three image embeddings on a few test scenes."""
    model.eval()
    device = model.text_projection.device
    transforms = {task: task_transform(model.config.image_size, task) for task in samples}

    def encode_text(input_ids: torch.Tensor) -> torch.Tensor:
        return model.encode_text(input_ids.to(device)).cpu()

    results = {}
    for head in ImageEmbeddings._fields:
        def encode_image(pixels: torch.Tensor, head: str = head) -> torch.Tensor:
            return getattr(image_embeddings(model, pixels.to(device)), head).cpu()

        classification = classification_metrics(
            encode_image, encode_text, transforms["classification"], tokenizer, samples["classification"]
        )
        retrieval = retrieval_metrics(
            encode_image, encode_text, transforms["retrieval"], tokenizer, samples["retrieval"]
        )
        results[f"{head}/acc1"] = classification["acc1"]
        results[f"{head}/t2i@5"] = retrieval["image_retrieval_recall@5"]
        results[f"{head}/i2t@5"] = retrieval["text_retrieval_recall@5"]
    model.train()
    return results


def _log(step: int, config: TrainConfig, loss: float, scale: float, lr: float, elapsed: float) -> None:
    left = elapsed / step * (config.steps - step)
    print(
        f"step {step:5d}/{config.steps}  loss {loss:.3f}  scale {scale:5.1f}  lr {lr:.2e}  "
        f"{elapsed / 60:5.1f} min, {left / 60:4.1f} min left",
        flush=True,
    )


def _train_step(
    model: InternVL,
    batch: tuple[torch.Tensor, ...],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> tuple[float, float]:
    """One optimisation step on the sum of the three losses; returns (loss, logit scale)."""
    pixels, input_ids, positives = (tensor.to(model.text_projection.device) for tensor in batch)
    images = image_embeddings(model, pixels)
    text = model.encode_text(input_ids)
    scale = model.logit_scale.exp().clamp(max=100)
    loss: torch.Tensor = sum(contrastive_loss(image, text, positives.float(), scale) for image in images)  # type: ignore[assignment]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    return loss.item(), scale.item()


def train(out: Path, config: TrainConfig = TrainConfig()) -> None:
    """Trains the demo model and writes it to `out` as a Hugging Face InternVL folder."""
    torch.set_num_threads(config.threads)
    model_config = load_config_file(CONFIG_FILE)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_file = build_demo_tokenizer(Path(tmp) / "tokenizer.model", model_config.text.vocab_size, config.seed)
        tokenizer = InternVLTokenizer(tokenizer_file, model_config.text)
        model = init_demo_model(model_config, config.seed).to(config.device)
        optimizer, scheduler = _optimizer(model, config)
        batches = TrainBatches(config.seed, config.batch_size, config.steps, model_config.image_size, tokenizer)
        loader = torch.utils.data.DataLoader(
            batches, batch_size=None, num_workers=config.workers, prefetch_factor=4 if config.workers else None
        )
        # Progress is measured on the demo's own test scenes, whatever the training seed.
        monitor = {task: demo_test_samples(task, count=config.monitor_samples) for task in SAMPLERS}
        print(f"training {sum(p.numel() for p in model.parameters()):,} parameters, {config}", flush=True)
        start, running, logged = time.perf_counter(), 0.0, 0
        for step, batch in enumerate(loader, start=1):
            loss, scale = _train_step(model, batch, optimizer, scheduler)
            running += loss
            if step % config.log_every == 0 or step == config.steps:
                lr, elapsed = scheduler.get_last_lr()[0], time.perf_counter() - start
                _log(step, config, running / (step - logged), scale, lr, elapsed)
                running, logged = 0.0, step
            if step % config.eval_every == 0 or step == config.steps:
                metrics = quick_validation(model, tokenizer, monitor)
                print("  validation: " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
        save_hf_checkpoint(model.cpu().eval().requires_grad_(False), model_config.to_hf_dict(), out, tokenizer_file)
    print(f"trained in {(time.perf_counter() - start) / 60:.1f} min; wrote {out}", flush=True)


def write_training_record(out: Path, config: TrainConfig, results: dict[str, dict[str, float]]) -> None:
    """Writes the settings and validation metrics of a run beside its checkpoint."""
    validation = {name: {key: round(value, 4) for key, value in metrics.items()} for name, metrics in results.items()}
    write_json_atomic(out / TRAINING_RECORD, {"train_config": asdict(config), "validation": validation})


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("pretrained/zsbench-demo"), show_default=True)
@click.option("--steps", type=int, default=TrainConfig.steps, show_default=True)
@click.option("--batch-size", type=int, default=TrainConfig.batch_size, show_default=True)
@click.option("--lr", type=float, default=TrainConfig.lr, show_default=True)
@click.option("--seed", type=int, default=TrainConfig.seed, show_default=True)
# One thread by default: on a shared machine, two threads that wait on each other run far slower.
@click.option("--threads", type=int, default=TrainConfig.threads, show_default=True, help="torch threads.")
@click.option("--workers", type=int, default=TrainConfig.workers, show_default=True, help="Batch-rendering processes.")
@click.option("--device", default=TrainConfig.device, show_default=True, help="cpu, or cuda (quicker; other weights).")
def main(out: Path, steps: int, batch_size: int, lr: float, seed: int, threads: int, workers: int, device: str) -> None:
    """Train the embedded demo checkpoint, then print its zero-shot metrics on the demo test splits."""
    config = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, seed=seed, threads=threads, workers=workers, device=device
    )
    train(out, config)
    results = validate_checkpoint(out)
    write_training_record(out, config, results)
    for name, metrics in results.items():
        click.echo(f"{name:30s} " + "  ".join(f"{key} {value:.4f}" for key, value in metrics.items()))


if __name__ == "__main__":
    main()
