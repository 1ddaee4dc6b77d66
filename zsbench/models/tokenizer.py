"""The InternVL text tokenizer: LLaMA sentencepiece with the original wrapper's conventions.

As `InternVLTokenizer` in the original (slow `LlamaTokenizer`, legacy behaviour): the text sent
is ``"summarize:" + caption`` (no space), BOS is prepended and EOS appended, the content is
truncated so that BOS + content + EOS fit in 80 tokens, and padding is id 0 on the right
(the wrapper's pad token ``' '`` is not a piece and maps to ``<unk>`` = 0).

Batches are padded to their longest text rather than always to 80: with causal attention and
last-token pooling the embeddings are identical, and short prompts cost far less.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from zsbench.errors import TokenizerError
from zsbench.models.config import CONTEXT_LENGTH, TextConfig

PREFIX = "summarize:"
# The slow LlamaTokenizer splits text on its special tokens before sentencepiece sees it.
_SPECIAL_SPLIT = re.compile(r"(<s>|</s>|<unk>)")


class InternVLTokenizer:
    """Callable: a string or list of strings -> LongTensor (batch, length) of token ids.

    Args:
        model_file: sentencepiece `tokenizer.model`.
        text_config: the text tower's config; its bos/eos/pad ids and vocabulary size are
            checked against the tokenizer, since a wrong id would pool the wrong token silently.
        context_length: maximum ids per text, BOS and EOS included.
        prefix: prepended to every text.
    """

    def __init__(
        self,
        model_file: Path,
        text_config: TextConfig,
        context_length: int = CONTEXT_LENGTH,
        prefix: str = PREFIX,
    ) -> None:
        import sentencepiece

        self.model_file = Path(model_file)
        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(self.model_file))
        except (OSError, RuntimeError) as err:
            raise TokenizerError(f"{self.model_file} is not a sentencepiece model: {err}") from err
        self.context_length = context_length
        self.prefix = prefix
        self.bos_id, self.eos_id, self.pad_id = self.sp.bos_id(), self.sp.eos_id(), 0
        found = {"bos": self.bos_id, "eos": self.eos_id, "unk (= pad)": self.sp.unk_id()}
        wanted = {"bos": text_config.bos_token_id, "eos": text_config.eos_token_id, "unk (= pad)": text_config.pad_token_id}
        if found != wanted or self.pad_id != text_config.pad_token_id:
            raise TokenizerError(
                f"{self.model_file} does not fit the text encoder: special ids {found}, the model expects "
                f"{wanted}. Padding must be id 0 (the model pools the last id > 0). Use the tokenizer "
                "that was trained with this checkpoint."
            )
        if self.sp.get_piece_size() > text_config.vocab_size:
            raise TokenizerError(
                f"{self.model_file} has {self.sp.get_piece_size()} pieces but the text encoder embeds only "
                f"{text_config.vocab_size}. Use the tokenizer that was trained with this checkpoint."
            )
        self._special = {"<s>": self.bos_id, "</s>": self.eos_id, "<unk>": self.sp.unk_id()}

    def encode(self, text: str) -> list[int]:
        """Ids of one text: BOS, the prefixed text (truncated), EOS."""
        ids: list[int] = []
        for chunk in _SPECIAL_SPLIT.split(self.prefix + text):
            if chunk in self._special:
                ids.append(self._special[chunk])
            elif chunk:
                ids.extend(self.sp.encode(chunk))
        return [self.bos_id, *ids[: self.context_length - 2], self.eos_id]

    def __call__(self, texts: str | Sequence[str], pad_to: int | None = None) -> torch.Tensor:
        """Tokenises a batch, padded with 0 on the right to the longest text (or to `pad_to`)."""
        if isinstance(texts, str):
            texts = [texts]
        encoded = [self.encode(text) for text in texts]
        length = max((len(ids) for ids in encoded), default=1)
        if pad_to is not None:
            length = max(length, pad_to)
        padded = [ids + [self.pad_id] * (length - len(ids)) for ids in encoded]
        return torch.tensor(padded, dtype=torch.long).view(len(encoded), length)


def find_tokenizer_file(tokenizer_path: Path | None, checkpoint: Path) -> Path:
    """Locates `tokenizer.model`: in `tokenizer_path` (a folder or the file itself), else beside
    (or, for a folder checkpoint, inside) the checkpoint.

    Raises:
        TokenizerError: naming both places that were looked at.
    """
    beside = checkpoint / "tokenizer.model" if checkpoint.is_dir() else checkpoint.parent / "tokenizer.model"
    if tokenizer_path is not None:
        candidate = tokenizer_path / "tokenizer.model" if tokenizer_path.is_dir() else tokenizer_path
        if candidate.is_file():
            return candidate
        raise TokenizerError(
            f"--tokenizer {tokenizer_path} holds no tokenizer.model. Pass the folder of the LLaMA "
            "tokenizer (the seed repository's internvl_c_pytorch/chinese_alpaca_lora_7b/; pretrained/README.md says "
            "where to get it)."
        )
    if beside.is_file():
        return beside
    raise TokenizerError(
        f"No tokenizer for {checkpoint}: expected --tokenizer DIR (a folder with tokenizer.model, such as "
        f"the seed repository's internvl_c_pytorch/chinese_alpaca_lora_7b/: pretrained/README.md says where to get it) "
        f"or {beside}."
    )


def train_tokenizer(texts: Sequence[str], model_file: Path, vocab_size: int) -> Path:
    """Trains a LLaMA-style sentencepiece BPE model (unk 0, bos 1, eos 2, byte fallback) on `texts`.

    Used for the embedded demo checkpoint and the tests' tiny models; deterministic for fixed texts.
    """
    import io

    import sentencepiece

    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([PREFIX + text for text in texts]),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type="bpe",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        byte_fallback=True,
        character_coverage=1.0,
        # LLaMA's normaliser settings: text reaches the model as written.
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        num_threads=1,
        minloglevel=2,
    )
    model_file.write_bytes(buffer.getvalue())
    return model_file
