"""`--model_type open_clip`: an open_clip architecture with a checkpoint file, an hf:// file, or a pretrained tag.

A pretrained tag (``--model ViT-B-32 --pretrained laion2b_s34b_b79k``, CLIP_benchmark's default
``ViT-B-32-quickgelu`` / ``laion400m_e32``) is resolved through open_clip's own pretrained registry and
fetched by open_clip's own download (the Hugging Face hub, or the URL its registry gives), as
CLIP_benchmark does; the file it lands in is then loaded like any local checkpoint (strictly, with
``weights_only=True``), so its fingerprint keys the caches. Offline, only files already fetched are used.

Architectures with a Hugging Face text tower (roberta-ViT-B-32, xlm-roberta-*, mt5-*, nllb-clip-*)
read that tower's config and tokenizer through transformers, from the Hugging Face cache (HF_HOME),
fetched there where missing unless zsbench is offline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from zsbench.errors import CheckpointError, ConfigError, DownloadError, UnknownNameError
from zsbench.models.checkpoints import load_torch_file
from zsbench.models.families import LoadedClip
from zsbench.offline import check_reachable, check_url, forbid_hub_downloads, is_offline, offline_error

# zsbench's precisions as open_clip's: fp16 and bf16 models are wholly in that dtype ("pure"), weights and
# activations, as InternVL's are; what such a graph keeps in fp32 is in the family's export policy.
OPEN_CLIP_PRECISIONS = {"fp32": "fp32", "fp16": "pure_fp16", "bf16": "pure_bf16"}


def check_checkpoint_file(model_name: str, pretrained: Path) -> None:
    """Refuses a `--pretrained` that resolved to no file (neither a path nor a pretrained tag of `model_name`).

    Raises:
        CheckpointError: listing the model's pretrained tags.
    """
    if pretrained.is_file():
        return
    import open_clip

    tags = ", ".join(open_clip.list_pretrained_tags_by_model(model_name)) or "none"
    raise CheckpointError(
        f"open_clip checkpoint {pretrained} is not a file, nor a pretrained tag of {model_name} (its tags: {tags}). "
        "Pass --pretrained PATH to a local checkpoint (a state dict saved by torch.save or safetensors), one of the "
        "tags, or hf://ORG/REPO/FILE."
    )


def load_open_clip(model_name: str, pretrained: Path, device: torch.device, precision: str) -> LoadedClip:
    """Builds `model_name` and loads `pretrained` (a local state-dict file) strictly.

    Returns:
        The model, its tokenizer and its preprocessing (open_clip's `PreprocessCfg`, as a dict).
    """
    if is_offline():
        forbid_hub_downloads()
    import open_clip

    if model_name not in open_clip.list_models():
        raise UnknownNameError("open_clip model", model_name, open_clip.list_models())
    check_checkpoint_file(model_name, pretrained)
    if pretrained.suffix != ".safetensors":
        # A pickle with code or a truncated file is refused here, with zsbench's message (memory-mapped: cheap).
        load_torch_file(pretrained)
    hf_tower = open_clip.get_model_config(model_name).get("text_cfg", {}).get("hf_model_name")
    try:
        model = open_clip.create_model(
            model_name,
            pretrained=str(pretrained),
            precision=OPEN_CLIP_PRECISIONS[precision],
            device=device,
            weights_only=True,
            # Towers with Hugging Face text models would otherwise fetch their own weights.
            pretrained_text=False,
        )
        tokenizer = open_clip.get_tokenizer(model_name)
    except OSError as err:  # transformers' from_pretrained, when the tower's files are not local and cannot be fetched
        raise ConfigError(
            f"open_clip model {model_name} builds its text tower from the Hugging Face model {hf_tower!r}, whose "
            f"config and tokenizer are not in the Hugging Face cache and could not be fetched: fetch them with "
            f"`hf download {hf_tower}` where the network is reachable, or use a model without a Hugging Face text tower. "
            f"Details: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err
    except RuntimeError as err:  # open_clip's strict load_state_dict reports key mismatches so
        raise CheckpointError(f"{pretrained} does not fit open_clip model {model_name}: {err}") from err
    preprocess = dict(open_clip.get_model_preprocess_cfg(model))
    return LoadedClip(model.eval().requires_grad_(False), tokenizer, preprocess)


def open_clip_transform(preprocess: dict[str, Any]) -> Callable:
    """open_clip's eval transform for a preprocessing record (as `create_model_and_transforms` builds it)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**preprocess), is_train=False)


def open_clip_checkpoint(model_name: str, pretrained: str, revision: str | None = None) -> Path:
    """The checkpoint file `pretrained` names for `model_name`: a local path, an hf:// file, or one of open_clip's
    pretrained tags of that model, fetched where missing (see the module docstring); an unknown name is returned
    as a path, for the loader to report."""
    path = Path(pretrained)
    if path.exists():
        return path
    if pretrained.startswith("hf://"):
        from zsbench.models.hub import resolve_pretrained

        return resolve_pretrained(pretrained, revision)
    import open_clip

    config = open_clip.get_pretrained_cfg(model_name, pretrained)
    return _fetch_tag(model_name, pretrained, is_offline()) if config else path


@functools.cache
def _fetch_tag(model_name: str, tag: str, offline: bool) -> Path:
    """open_clip's own download of a pretrained tag (its hub repository, else its URL); the file it returns."""
    import open_clip
    from huggingface_hub import errors

    config = open_clip.get_pretrained_cfg(model_name, tag)
    hub_repo = "/".join(config.get("hf_hub", "").split("/")[:2])  # "org/repo/" or "org/repo/file.bin"
    url = config.get("url", "")
    missing = f"open_clip's {model_name} weights '{tag}' are not in the local caches"
    hint = (f"`hf download {hub_repo}` (or this command without --offline)." if hub_repo
            else f"this command without --offline (open_clip fetches {url}).")
    if offline:
        forbid_hub_downloads()
        if not hub_repo:  # open_clip's URL download opens a socket even for a cached file's check: not offline
            cached = Path("~/.cache/clip").expanduser() / url.rsplit("/", 1)[-1]
            if not cached.is_file():
                raise offline_error(missing, hint)
            return cached
    else:
        target = url if not hub_repo else _hub_endpoint()
        check_url(target)
        check_reachable(target, f"fetch them where the network is reachable with {hint.rstrip('.')}, then run with --offline "
                                "(or ZSBENCH_OFFLINE=1).")
    try:
        return Path(open_clip.download_pretrained(config))
    # open_clip passes huggingface_hub's and urllib's errors through, and raises RuntimeError on a bad sha256.
    except (errors.HfHubHTTPError, errors.LocalEntryNotFoundError, OSError, RuntimeError) as err:
        if offline:
            raise offline_error(missing, hint) from err
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DownloadError(f"Fetching open_clip's {model_name} weights '{tag}' failed: {first}. Run the command again.") from err


def _hub_endpoint() -> str:
    from zsbench.hfhub import endpoint

    return endpoint()
