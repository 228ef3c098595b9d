"""The character tokenizer of VDCNN: lowercase, a 67-symbol alphabet, pad 0 and unknown 1, 1014 characters."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
from transformers.tokenization_python import PreTrainedTokenizer

# 26 letters, 10 digits, space and 30 punctuation marks (67 symbols), after the alphabet of Zhang et al. (2015)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789 -,;.!?:'\"/\\|_@#$%&*~+=<>()[]{}"
VOCAB_FILES_NAMES = {"vocab_file": "vocab.json"}


class VDCNNTokenizer(PreTrainedTokenizer):
    """One id per character. Text is lowercased; characters outside the alphabet map to ``<unk>`` (newlines and
    tabs become spaces first). Inputs are padded or truncated to ``model_max_length`` (1014) like any tokenizer:
    ``tokenizer(texts, padding="max_length", truncation=True)``.
    """

    vocab_files_names = VOCAB_FILES_NAMES
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str | None = None, model_max_length: int = 1014, **kwargs):
        if vocab_file is not None:
            with open(vocab_file, encoding="utf-8") as f:
                self.vocab = json.load(f)
        else:
            self.vocab = {"<pad>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate(ALPHABET)}}
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        kwargs.setdefault("pad_token", "<pad>")
        kwargs.setdefault("unk_token", "<unk>")
        super().__init__(model_max_length=model_max_length, **kwargs)

    def encode_batch(self, texts: Sequence[str | None], max_length: int | None = None) -> dict[str, np.ndarray]:
        """Vectorised encoding of many texts at once: ``input_ids`` (int64) and ``attention_mask`` (int64), shape
        ``[len(texts), max_length]``, padded and truncated to ``max_length`` (default ``model_max_length``).

        The same ids as ``tokenizer(texts, padding="max_length", truncation=True)`` for ordinary text (this path
        does not look for special-token strings such as ``"<unk>"`` inside the text), tens of times faster: one
        table lookup over the UTF-32 code points of all texts. ``None`` is an empty text.
        """
        length = int(max_length or self.model_max_length)
        cut = [t.lower()[:length] if t else "" for t in texts]
        lengths = np.fromiter(map(len, cut), dtype=np.int64, count=len(cut))
        codes = np.frombuffer("".join(cut).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        mask = np.arange(length) < lengths[:, None]
        ids = np.zeros((len(cut), length), dtype=np.int64)
        ids[mask] = self._code_table()[codes]  # boolean assignment fills row by row, in text order
        return {"input_ids": ids, "attention_mask": mask.astype(np.int64)}

    def _code_table(self) -> np.ndarray:
        """Unicode code point -> token id (``<unk>`` for everything outside the vocabulary)."""
        table = getattr(self, "_table", None)
        if table is None:
            table = np.full(0x110000, self.vocab["<unk>"], dtype=np.int64)
            for token, index in self.vocab.items():
                if len(token) == 1:
                    table[ord(token)] = index
            for blank in "\n\t\r":
                table[ord(blank)] = self.vocab.get(" ", self.vocab["<unk>"])
            self._table = table
        return table

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def _tokenize(self, text: str, **kwargs) -> list[str]:
        return list(text.lower().replace("\n", " ").replace("\t", " ").replace("\r", " "))

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.vocab["<unk>"])

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, "<unk>")

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        return "".join(t for t in tokens if t not in ("<pad>",))

    def save_vocabulary(self, save_directory: str, filename_prefix: str | None = None) -> tuple[str]:
        name = (filename_prefix + "-" if filename_prefix else "") + VOCAB_FILES_NAMES["vocab_file"]
        path = os.path.join(save_directory, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.vocab, f, ensure_ascii=False, indent=0)
        return (path,)
