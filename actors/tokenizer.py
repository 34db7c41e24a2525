"""Tokenizers. Pure: imports neither ray nor torch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

PAD, BOS, EOS, SEP = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<sep>")


class Tokenizer(Protocol):
    """What tasks, rollout and evaluation need from a tokenizer."""

    pad_id: int
    bos_id: int
    eos_id: int
    sep_id: int

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str: ...


class CharTokenizer:
    """One token per character of `alphabet`, after the four special tokens.

    With alphabet "abcdefgh" this is `reverse`'s vocabulary (docs/design.md): PAD=0, BOS=1, EOS=2, SEP=3, a..h = 4..11.
    """

    pad_id, bos_id, eos_id, sep_id = PAD, BOS, EOS, SEP

    def __init__(self, alphabet: str):
        if len(set(alphabet)) != len(alphabet) or not alphabet:
            raise ValueError(f"tokenizer alphabet {alphabet!r} must be non-empty with no repeated characters")
        self.alphabet = alphabet
        self._ids = {ch: i + len(SPECIAL_TOKENS) for i, ch in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(SPECIAL_TOKENS) + len(self.alphabet)

    @property
    def letter_ids(self) -> list[int]:
        return list(self._ids.values())

    def encode(self, text: str) -> list[int]:
        try:
            return [self._ids[ch] for ch in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the alphabet {self.alphabet!r}") from None

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i < len(SPECIAL_TOKENS):
                if not skip_special:
                    out.append(SPECIAL_TOKENS[i])
            elif i < self.vocab_size:
                out.append(self.alphabet[i - len(SPECIAL_TOKENS)])
            else:
                out.append(f"<{i}>")
        return "".join(out)
