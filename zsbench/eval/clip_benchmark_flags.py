"""CLIP_benchmark eval command lines as zsbench reads them: flags zsbench deliberately does not
implement are refused in one line, and CLIP_benchmark's valued boolean flag is translated.

zsbench runs zero-shot classification and retrieval only. A CLIP_benchmark command line that asks
for a linear probe, few-shot training or captioning fails before anything runs, saying so, instead
of click's generic "no such option" (or, worse, a zero-shot run the user did not ask for).
"""

from __future__ import annotations

from zsbench.errors import UnsupportedFlagError

# flag -> what it does in CLIP_benchmark 1.6.2 (clip_benchmark/cli.py)
UNSUPPORTED_FLAGS: dict[str, str] = {
    "--train_split": "the linear probe's training split",
    "--val_split": "the linear probe's validation split",
    "--val_proportion": "the linear probe's validation share",
    "--fewshot_k": "the few-shot linear probe's shots",
    "--fewshot_epochs": "the few-shot linear probe's epochs",
    "--fewshot_lr": "the few-shot linear probe's learning rate",
    "--skip_load": "the linear probe on cached features",
    "--wds_cache_dir": "a cache for downloaded webdataset shards (zsbench reads local shards only)",
}
# --task value -> what it is
UNSUPPORTED_TASKS: dict[str, str] = {
    "linear_probe": "linear-probe evaluation",
    "captioning": "captioning evaluation",
    "image_caption_selection": "image-caption selection (SugarCrepe)",
}
SUPPORTED = "zsbench runs zero-shot classification and retrieval only"


def reject_unsupported_flags(args: list[str]) -> None:
    """Raises `UnsupportedFlagError` for the first unsupported flag or `--task` value in `args`
    (``--flag value`` and ``--flag=value`` spellings alike)."""
    for index, token in enumerate(args):
        flag, equals, inline = token.partition("=")
        if flag in UNSUPPORTED_FLAGS:
            raise UnsupportedFlagError(f"{flag} ({UNSUPPORTED_FLAGS[flag]}) is not supported: {SUPPORTED}. Drop the flag.")
        if flag == "--task":
            value = inline if equals else (args[index + 1] if index + 1 < len(args) else "")
            if value in UNSUPPORTED_TASKS:
                raise UnsupportedFlagError(
                    f"--task {value} ({UNSUPPORTED_TASKS[value]}) is not supported: {SUPPORTED}. "
                    "Use --task zeroshot_classification, zeroshot_retrieval or auto."
                )


# CLIP_benchmark declares --normalize with argparse's type=bool, so its users write `--normalize True`.
BOOLEAN_FLAGS = ("--normalize",)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def translate_boolean_values(args: list[str]) -> list[str]:
    """`--normalize True|False` (CLIP_benchmark's spelling) as `--normalize` / `--no-normalize`.

    The value is read as the user meant it: argparse's type=bool would read "False" as True.
    """
    translated: list[str] = []
    for token in args:
        previous = translated[-1] if translated else None
        if previous in BOOLEAN_FLAGS and token.lower() in (*_TRUE, *_FALSE):
            if token.lower() in _FALSE:
                translated[-1] = "--no-" + previous.removeprefix("--")
            continue
        translated.append(token)
    return translated
