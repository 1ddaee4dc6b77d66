"""InternVL architecture configuration, read from the Hugging Face `config.json` schema.

Every size (widths, depths, heads, vocabulary, query count) comes from the configuration:
the original code hard-codes the vision width (3200) inside QLLaMA's cross-attention and the
query count (96) inside its decoder layers; zsbench reads both from here. Knobs that are not
sizes (norm epsilons, RoPE theta, activations) default to the original classes' defaults.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from zsbench.errors import ConfigError, UnknownNameError
from zsbench.jsonfiles import read_json_object

# The two checkpoint layouts (a .pth file of InternVL-C; a Hugging Face folder of InternVL-C and -G), and the image heads.
CheckpointFormat = Literal["pth", "hf"]
ImageHead = Literal["c", "g"]
# Maximum token count of the InternVL tokenizer wrapper (`max_length=80`); not in config.json.
CONTEXT_LENGTH = 80
# Top-level sizes of config.json (absent or null: the dataclass default).
_TOP_LEVEL_INTS = ("clip_embed_dim", "attn_pool_num_heads", "num_query_token", "cross_attention_frequency", "force_image_size")
# Python types a JSON value may have for each annotated field type.
_JSON_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


@dataclass(frozen=True)
class VisionConfig:
    """InternViT: the vision encoder."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    patch_size: int
    image_size: int
    layer_norm_eps: float = 1e-6
    qk_normalization: bool = True
    qkv_bias: bool = False
    hidden_act: str = "gelu"
    num_channels: int = 3


@dataclass(frozen=True)
class TextConfig:
    """QLLaMA / LLaMA: the text encoder (and InternVL-G's query transformer)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    hidden_act: str = "silu"
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2


@dataclass(frozen=True)
class InternVLConfig:
    """The whole InternVL model: vision tower, text tower, projectors and query tokens."""

    vision: VisionConfig
    text: TextConfig
    clip_embed_dim: int = 768
    attn_pool_num_heads: int = 16
    num_query_token: int = 96
    cross_attention_frequency: int = 2
    force_image_size: int | None = None

    @property
    def image_size(self) -> int:
        """Input resolution: `force_image_size` when set, as the original loader does."""
        return self.force_image_size or self.vision.image_size

    @classmethod
    def from_hf_dict(cls, data: dict[str, Any], source: str = "config") -> InternVLConfig:
        """Builds a config from a dict in the Hugging Face InternVL schema.

        Raises:
            ConfigError: the dict is not an InternVL config, lacks a size, or asks for a
                feature zsbench does not implement (unmerged LoRA, rope scaling, GQA).
        """
        model_type = data.get("model_type")
        if model_type not in (None, "internvl") or "vision_config" not in data or "qllama_config" not in data:
            raise ConfigError(
                f"{source} is not an InternVL configuration: expected model_type 'internvl' with "
                f"'vision_config' and 'qllama_config', found model_type {model_type!r} and keys "
                f"{sorted(data)[:12]}. Pass the config.json of an InternVL checkpoint "
                "(e.g. InternVL-14B-224px/config.json)."
            )
        for flag in ("use_backbone_lora", "use_qllama_lora"):
            if data.get(flag):
                raise ConfigError(
                    f"{source} sets {flag}={data[flag]}: unmerged LoRA checkpoints are not supported. "
                    "Merge the LoRA weights into the base weights and set the flag to 0."
                )
        vision = _build(VisionConfig, data["vision_config"], f"{source}: vision_config")
        text = _build(TextConfig, data["qllama_config"], f"{source}: qllama_config")
        top = {name: data[name] for name in _TOP_LEVEL_INTS if data.get(name) is not None}
        qllama_frequency = data["qllama_config"].get("cross_attention_frequency")
        if "cross_attention_frequency" not in top and qllama_frequency is not None:
            top["cross_attention_frequency"] = qllama_frequency
        for name, value in top.items():
            _check_field(name, value, "int", source, positive=True)
        if vision.hidden_act != "gelu" or text.hidden_act != "silu":
            raise ConfigError(
                f"{source}: expected hidden_act 'gelu' (vision) and 'silu' (text), found "
                f"{vision.hidden_act!r} and {text.hidden_act!r}."
            )
        qllama = data["qllama_config"]
        heads = qllama["num_attention_heads"]
        if qllama.get("num_key_value_heads", heads) != heads or qllama.get("rope_scaling"):
            raise ConfigError(
                f"{source}: QLLaMA with grouped-query attention or rope_scaling is not InternVL's "
                f"text encoder (num_key_value_heads={qllama.get('num_key_value_heads')}, "
                f"rope_scaling={qllama.get('rope_scaling')})."
            )
        # InternVLConfig copies cross_attention_frequency into qllama_config; either may be present.
        config = cls(vision=vision, text=text, **top)
        config.validate(source)
        return config

    def validate(self, source: str = "config") -> None:
        """Checks the divisibility constraints the layers rely on."""
        checks = [
            ("vision hidden_size % num_attention_heads", self.vision.hidden_size % self.vision.num_attention_heads),
            ("text hidden_size % num_attention_heads", self.text.hidden_size % self.text.num_attention_heads),
            ("vision hidden_size % attn_pool_num_heads", self.vision.hidden_size % self.attn_pool_num_heads),
            ("text hidden_size % attn_pool_num_heads", self.text.hidden_size % self.attn_pool_num_heads),
            ("image_size % patch_size", self.image_size % self.vision.patch_size),
        ]
        bad = [name for name, remainder in checks if remainder != 0]
        if bad:
            raise ConfigError(f"{source}: these must divide evenly but do not: {', '.join(bad)}.")
        if self.cross_attention_frequency < 1 or self.num_query_token < 1:
            raise ConfigError(
                f"{source}: cross_attention_frequency and num_query_token must be >= 1, found "
                f"{self.cross_attention_frequency} and {self.num_query_token}."
            )

    def to_hf_dict(self) -> dict[str, Any]:
        """The config in the Hugging Face InternVL schema (what `config.json` holds)."""
        return {
            "model_type": "internvl",
            "architectures": ["InternVLModel"],
            "clip_embed_dim": self.clip_embed_dim,
            "attn_pool_num_heads": self.attn_pool_num_heads,
            "num_query_token": self.num_query_token,
            "cross_attention_frequency": self.cross_attention_frequency,
            "force_image_size": self.force_image_size,
            "use_backbone_lora": 0,
            "use_qllama_lora": 0,
            # zsbench never ties lm_head to embed_tokens; say so for transformers readers too.
            "tie_word_embeddings": False,
            "vision_config": {"model_type": "intern_vit_6b", **asdict(self.vision)},
            "qllama_config": {
                "model_type": "llama",
                "num_key_value_heads": self.text.num_attention_heads,
                "tie_word_embeddings": False,
                **asdict(self.text),
            },
        }


def _check_field(name: str, value: Any, annotation: str, source: str, positive: bool) -> None:
    """Raises `ConfigError` naming `name` when `value` is not of the JSON type `annotation` says
    (an int field refuses "96", 96.0 and true) or, for sizes (`positive`), is below 1."""
    kind = annotation.split(" | ")[0]
    allowed = _JSON_TYPES[kind]
    if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
        raise ConfigError(f"{source}: {name} must be {'an' if kind == 'int' else 'a'} {kind}, found {value!r} ({type(value).__name__}). Fix the config file.")
    if positive and value < 1:
        raise ConfigError(f"{source}: {name} must be at least 1, found {value}. Fix the config file.")


def _build(cls: type, data: Any, source: str) -> Any:
    """Instantiates a config dataclass from the fields of `data` it knows, checking each value's type;
    sizes are required and must be at least 1."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be an object of sizes, found {json.dumps(data)}. Pass the config.json of an InternVL checkpoint.")
    fields = cls.__dataclass_fields__
    required = [name for name, field in fields.items() if field.default is MISSING]
    missing = [name for name in required if data.get(name) is None]
    if missing:
        raise ConfigError(
            f"{source} lacks {', '.join(missing)}: every size must come from the configuration "
            "(zsbench never falls back to a default width or depth)."
        )
    values = {name: data[name] for name in fields if name in data and data[name] is not None}
    for name, value in values.items():
        _check_field(name, value, str(fields[name].type), source, positive=name in required)
    return cls(**values)


def load_config_file(path: Path) -> InternVLConfig:
    """Reads an InternVL config JSON file (Hugging Face schema)."""
    data = read_json_object(path, ConfigError, "an InternVL config in the Hugging Face schema", "Pass the config.json of an InternVL checkpoint.")
    return InternVLConfig.from_hf_dict(data, source=str(path))


def list_builtin_configs() -> list[str]:
    """Names of the configurations shipped in `zsbench/models/configs/`."""
    folder = resources.files("zsbench.models") / "configs"
    return sorted(entry.name[: -len(".json")] for entry in folder.iterdir() if entry.name.endswith(".json"))


def builtin_config(name: str) -> InternVLConfig:
    """Returns a shipped configuration by name (e.g. ``internvl_c_13b_224px``)."""
    if name not in list_builtin_configs():
        raise UnknownNameError("model config", name, list_builtin_configs())
    source = resources.files("zsbench.models") / "configs" / f"{name}.json"
    return InternVLConfig.from_hf_dict(json.loads(source.read_text(encoding="utf-8")), source=f"config {name}")
