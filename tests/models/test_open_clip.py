"""`--model_type open_clip`: an open_clip architecture with a locally saved checkpoint, no download."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from zsbench.errors import CheckpointError, UnknownNameError
from zsbench.models import load_clip

TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def open_clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    open_clip = pytest.importorskip("open_clip")
    folder = tmp_path_factory.mktemp("open_clip")
    (folder / "zsbench-tiny-vit.json").write_text(json.dumps(TINY_OPEN_CLIP))
    open_clip.add_model_config(folder / "zsbench-tiny-vit.json")
    torch.manual_seed(0)
    model = open_clip.create_model("zsbench-tiny-vit")
    torch.save(model.state_dict(), folder / "tiny.pt")
    return folder / "tiny.pt"


def test_open_clip_loads_local_checkpoint(open_clip_checkpoint: Path) -> None:
    import open_clip

    model, transform, tokenizer = load_clip("open_clip", "zsbench-tiny-vit", open_clip_checkpoint)
    reference = open_clip.create_model("zsbench-tiny-vit")
    reference.load_state_dict(torch.load(open_clip_checkpoint, weights_only=True))
    reference.eval()
    pixels = transform(Image.new("RGB", (40, 50), (200, 30, 30)))[None]
    ids = tokenizer(["a photo of a dog", "a red circle"])
    with torch.no_grad():
        torch.testing.assert_close(model.encode_image(pixels), reference.encode_image(pixels))
        torch.testing.assert_close(model.encode_text(ids), reference.encode_text(ids))


def test_open_clip_needs_a_file_or_a_tag_of_the_model(open_clip_checkpoint: Path) -> None:
    # laion400m_e32 is a tag of ViT-B-32-quickgelu, not of this architecture: the message lists the model's tags.
    with pytest.raises(CheckpointError, match="nor a pretrained tag of zsbench-tiny-vit \\(its tags: none\\)"):
        load_clip("open_clip", "zsbench-tiny-vit", "laion400m_e32")
    with pytest.raises(UnknownNameError, match="Unknown open_clip model 'ViT-B-33'. Did you mean: ViT-B-32"):
        load_clip("open_clip", "ViT-B-33", open_clip_checkpoint)


def test_open_clip_refuses_a_checkpoint_of_another_architecture(open_clip_checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(open_clip_checkpoint, weights_only=True)
    state["logit_scale"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="does not fit open_clip model"):
        load_clip("open_clip", "zsbench-tiny-vit", tmp_path / "bad.pt")
