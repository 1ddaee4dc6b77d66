"""No model hub at run time: the offline switches of huggingface_hub and transformers, set for the process.

open_clip models with a Hugging Face text tower (roberta-ViT-B-32, xlm-roberta-*, mt5-*, nllb-clip-*)
build that tower's config and tokenizer with transformers' `from_pretrained`, which downloads
whatever is not in the local cache. zsbench never fetches anything, so those files must already
be local (the Hugging Face cache under HF_HOME); with these switches a missing file is an error,
not a download.
"""

from __future__ import annotations

import os


def forbid_hub_downloads() -> None:
    """Puts huggingface_hub and transformers in offline mode for this process and its children.

    The environment variables cover modules imported later and child processes; huggingface_hub
    reads its variable once, at import, so an already imported copy is switched directly.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants
    except ImportError:  # nothing can reach the hub without it
        return
    constants.HF_HUB_OFFLINE = True
