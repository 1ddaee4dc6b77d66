"""Reading InternVL checkpoints (.pth file, Hugging Face folder) into the native layout, strictly.

Both layouts are renamed onto one native layout (the Hugging Face names) and loaded with
every key accounted for: missing, unexpected or mis-shaped keys raise `CheckpointError`
listing them (the original silently ignored them). Tensors are read memory-mapped and
converted one at a time into the target dtype and device, so a multi-GB checkpoint never
sits in host memory twice.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import torch
from torch import nn

from zsbench.errors import CheckpointError
from zsbench.jsonfiles import read_json_object

# (pth name, native name); "{}" is a layer index and "*" the rest of the key.
_PTH_RENAMES: tuple[tuple[str, str], ...] = (
    ("patch_embed.proj.*", "vision_model.embeddings.patch_embedding.*"),
    ("pos_embed", "vision_model.embeddings.position_embedding"),
    ("cls_token", "vision_model.embeddings.class_embedding"),
    ("blocks.{}.ls1.gamma", "vision_model.encoder.layers.{}.ls1"),
    ("blocks.{}.ls2.gamma", "vision_model.encoder.layers.{}.ls2"),
    ("blocks.*", "vision_model.encoder.layers.*"),
    ("transformer.*", "qllama.model.*"),
)

# Keys a checkpoint may hold that no embedding uses: accepted and dropped. The rotary
# `inv_freq` is a derived buffer that checkpoints saved by older transformers carry; the
# language-model and image-text-matching heads are unused by zero-shot evaluation.
_DROPPED = re.compile(r"(^|\.)rotary_emb\.inv_freq$|^(qllama\.)?lm_head\.|^itm_head\.")

# InternVL-G's query path, which the .pth format does not hold.
_QUERY_PATH = re.compile(r"^query_tokens$|^clip_projector2\.|^qllama\.model\.layers\.\d+\.cross_attn\.")

_HF_WEIGHT_FILES = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)

HF_LAYOUT = """\
<folder>/
├── config.json                     # InternVL config (model_type "internvl")
├── tokenizer.model                 # LLaMA sentencepiece tokenizer
└── model.safetensors               # or model.safetensors.index.json + shards,
                                    # or pytorch_model.bin[.index.json + shards]"""


def _compile_rule(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\{\}", r"(\d+)").replace(r"\*", r"(.*)"))


def _fill_rule(pattern: str, groups: tuple[str, ...]) -> str:
    pieces = re.split(r"(\{\}|\*)", pattern)
    values = iter(groups)
    return "".join(next(values) if piece in ("{}", "*") else piece for piece in pieces)


def _rename(key: str, to_native: bool) -> str:
    for pth, native in _PTH_RENAMES:
        source, target = (pth, native) if to_native else (native, pth)
        match = _compile_rule(source).fullmatch(key)
        if match:
            return _fill_rule(target, match.groups())
    return key


def pth_to_native(key: str) -> str:
    """Maps a key of `internvl_c_13b_224px.pth` to the native (Hugging Face) name."""
    return _rename(key, to_native=True)


def native_to_pth(key: str) -> str:
    """Maps a native key to its name in the `.pth` checkpoint (inverse of `pth_to_native`)."""
    return _rename(key, to_native=False)


def is_dropped_key(key: str) -> bool:
    """True for keys that are accepted in a checkpoint and dropped (unused heads, derived buffers)."""
    return bool(_DROPPED.search(key))


def load_torch_file(path: Path) -> object:
    """`torch.load(path)` with `weights_only=True`: tensors and plain containers only, never code.

    Zip checkpoints (torch.save's format since 1.6) are memory-mapped; a legacy non-zip file cannot
    be, so it is read into memory, still with weights_only.

    Raises:
        CheckpointError: the file holds pickled objects other than tensors, or is not a torch file
            (truncated, another format).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        if "GLOBAL" not in str(err):  # no pickled class named: the bytes are no torch file at all
            raise _unreadable(path, err) from err
        raise CheckpointError(
            f"{path} holds pickled objects other than tensors and was not loaded (zsbench reads "
            f"checkpoints with weights_only=True). Re-save it as a plain state dict. Details: {err}"
        ) from err
    except Exception as err:  # noqa: BLE001 - on bytes that are no pickle, torch's unpickler fails with any type
        raise _unreadable(path, err) from err


def _unreadable(path: Path, err: Exception) -> CheckpointError:
    # torch's message for stray bytes is advice about weights_only, which would mislead here.
    detail = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    return CheckpointError(
        f"{path} is not a readable PyTorch checkpoint (expected a state dict saved by torch.save; "
        f"a truncated or half-copied file fails like this, so copy it again). Details: {detail}"
    )


def _torch_load(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch file (see `load_torch_file`), unwrapping `{"state_dict": ...}` wrappers."""
    obj = load_torch_file(path)
    while isinstance(obj, dict) and len(obj) == 1 and next(iter(obj)) in ("state_dict", "model", "module"):
        obj = next(iter(obj.values()))
    if not isinstance(obj, dict) or not all(isinstance(value, torch.Tensor) for value in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors).")
    if obj and all(key.startswith("module.") for key in obj):
        obj = {key[len("module."):]: value for key, value in obj.items()}
    return obj


def read_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """Yields (name, tensor) from one weights file: `.safetensors` (memory-mapped) or a torch file."""
    if not path.is_file():
        raise CheckpointError(f"Checkpoint file {path} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                    yield key, handle.get_tensor(key)
        except SafetensorError as err:
            raise CheckpointError(f"{path} is not a readable safetensors file: {err}") from err
        return
    yield from _torch_load(path).items()


def _is_plain_relative(name: object) -> bool:
    """True for a non-empty relative path with no '..' (symlinks inside the folder, as the HF cache makes, are fine)."""
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts


def hf_weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face folder, shards in index order."""
    for name in _HF_WEIGHT_FILES:
        candidate = folder / name
        if not candidate.is_file():
            continue
        if not name.endswith(".index.json"):
            return [candidate]
        fix = "Copy the checkpoint folder again."
        weight_map = read_json_object(candidate, CheckpointError, "a shard index (a 'weight_map' object)", fix).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{candidate} is not a shard index (expected a 'weight_map' object). {fix}")
        shards = list(dict.fromkeys(weight_map.values()))
        # A shard is a file of this folder: an index naming '../x' or '/abs/x' must not make zsbench read elsewhere.
        outside = [str(shard) for shard in shards if not _is_plain_relative(shard)]
        if outside:
            raise CheckpointError(
                f"{candidate} lists shards outside {folder}: {', '.join(outside)}. Expected file names relative to the "
                f"checkpoint folder (e.g. model-00001-of-00002.safetensors); zsbench reads no other file. {fix}"
            )
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            raise CheckpointError(f"{candidate} lists shards that are not in {folder}: {', '.join(missing)}.")
        return [folder / shard for shard in shards]
    raise CheckpointError(
        f"{folder} holds no weights: expected one of {', '.join(_HF_WEIGHT_FILES)}. Layout:\n{HF_LAYOUT}"
    )


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _summarise(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def load_weights(
    model: nn.Module,
    tensors: Iterator[tuple[str, torch.Tensor]],
    source: str,
    dtype: torch.dtype,
    device: torch.device | str,
    rename_pth: bool,
) -> None:
    """Loads `tensors` into `model` (built on the meta device) strictly, converting each as it is read.

    Raises:
        CheckpointError: listing missing, unexpected, mis-shaped and mis-typed keys.
    """
    state = model.state_dict()
    expected = {key: tuple(value.shape) for key, value in state.items()}
    loaded: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    mismatched: list[str] = []
    mistyped: list[str] = []
    mismatched_native: set[str] = set()
    for key, tensor in tensors:
        if is_dropped_key(key):
            continue
        native = pth_to_native(key) if rename_pth else key
        if native not in expected:
            unexpected.append(key)
        elif tuple(tensor.shape) != expected[native]:
            mismatched.append(f"{key} {list(tensor.shape)} (model: {list(expected[native])})")
            mismatched_native.add(native)
        elif tensor.is_floating_point() != state[native].is_floating_point():
            # An integer tensor in place of a weight would be loaded as integers and fail (or compute nonsense) later.
            mistyped.append(f"{key} {_dtype_name(tensor)} (model: {_dtype_name(state[native])})")
            mismatched_native.add(native)
        else:
            target_dtype = dtype if tensor.is_floating_point() else tensor.dtype
            loaded[native] = tensor.to(device=device, dtype=target_dtype)
    # Report missing keys under the checkpoint's own names.
    missing = sorted(
        native_to_pth(key) if rename_pth else key for key in set(expected) - set(loaded) - mismatched_native
    )
    if missing or unexpected or mismatched or mistyped:
        lines = [f"{source} does not fit the model (loading is strict):"]
        if missing:
            lines.append(f"  missing keys: {_summarise(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys: {_summarise(sorted(unexpected))}")
        if mismatched:
            lines.append(f"  mis-shaped keys: {_summarise(mismatched)}")
        if mistyped:
            lines.append(f"  mis-typed keys (integer vs floating point): {_summarise(mistyped)}")
        lines.append(
            "Check that the model name matches the checkpoint format (.pth: internvl_c_*; Hugging Face "
            "folder: *_hf) and that the configuration (config.json or --model_config) describes this checkpoint."
        )
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(loaded, strict=True, assign=True)


def save_hf_checkpoint(model: nn.Module, config_dict: dict, folder: Path, tokenizer_file: Path | None) -> None:
    """Writes a Hugging Face InternVL folder: config.json, model.safetensors and tokenizer.model."""
    import shutil

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "config.json", "w", encoding="utf-8") as handle:
        json.dump(config_dict, handle, indent=2)
        handle.write("\n")
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer_file is not None:
        shutil.copyfile(tokenizer_file, folder / "tokenizer.model")


def save_pth_checkpoint(model: nn.Module, path: Path) -> None:
    """Writes a state dict in the layout of `internvl_c_13b_224px.pth` (InternVL-C weights only)."""
    state = {
        native_to_pth(key): value.detach().contiguous()
        for key, value in model.state_dict().items()
        if not _QUERY_PATH.search(key)
    }
    torch.save(state, path)
