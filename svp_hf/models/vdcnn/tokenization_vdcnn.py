"""The character tokenizer of VDCNN: lowercase, a 67-symbol alphabet, pad 0 and unknown 1, 1014 characters."""

from __future__ import annotations

import json
import os

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
