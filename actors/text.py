"""Real text: a word-level tokenizer built from a corpus, corpus and prompt-file reading with clear errors.

Pure: imports neither ray nor torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

from actors.tokenizer import BOS, EOS, PAD, SEP, SPECIAL_TOKENS

UNK = 4
WORD_SPECIALS = (*SPECIAL_TOKENS, "<unk>")
_WORD = re.compile(r"[a-z]+|[.,!?;:]")


class TextError(ValueError):
    """A corpus, prompt file or tokenizer file is unusable; the message is one sentence naming it."""


def words(text: str) -> list[str]:
    """Lowercased words and punctuation marks, the unit of the word tokenizer."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """PAD=0, BOS=1, EOS=2, SEP=3, UNK=4, then the corpus's words, most frequent first."""

    pad_id, bos_id, eos_id, sep_id, unk_id = PAD, BOS, EOS, SEP, UNK

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self._ids = {w: i + len(WORD_SPECIALS) for i, w in enumerate(self.vocab)}

    @classmethod
    def from_sentences(cls, sentences: list[list[str]], max_vocab: int) -> WordTokenizer:
        counts = Counter(w for s in sentences for w in s)
        keep = max(0, max_vocab - len(WORD_SPECIALS))
        return cls([w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]])

    @property
    def vocab_size(self) -> int:
        return len(WORD_SPECIALS) + len(self.vocab)

    @property
    def letter_ids(self) -> list[int]:
        return list(self._ids.values())

    def id_of(self, word: str) -> int | None:
        return self._ids.get(word)

    def encode(self, text: str, unknown_ok: bool = False) -> list[int]:
        out = []
        for w in words(text):
            i = self._ids.get(w)
            if i is None:
                if not unknown_ok:
                    raise TextError(f"word {w!r} is not in the vocabulary")
                i = UNK
            out.append(i)
        return out

    def decode(self, ids, skip_special: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i < len(WORD_SPECIALS):
                if not skip_special:
                    out.append(WORD_SPECIALS[i])
            elif i < self.vocab_size:
                out.append(self.vocab[i - len(WORD_SPECIALS)])
            else:
                out.append(f"<{i}>")
        return " ".join(out)

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.vocab).encode()).hexdigest()[:16]

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"type": "word", "fingerprint": self.fingerprint(), "vocab": self.vocab}))

    @classmethod
    def load(cls, path: Path) -> WordTokenizer:
        try:
            data = json.loads(Path(path).read_text())
            tok = cls(data["vocab"])
            ok = data.get("type") == "word" and data.get("fingerprint") == tok.fingerprint()
        except FileNotFoundError:
            raise TextError(f"tokenizer file {path} does not exist") from None
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if not ok:
            raise TextError(f"tokenizer file {path} is corrupted (its vocabulary does not match its fingerprint)")
        return tok


def read_corpus(path: Path) -> list[list[str]]:
    """Sentences (lists of words) from plain text (one sentence or paragraph per line) or JSONL ({"text": ...})."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TextError(f"cannot read corpus {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextError(f"corpus {path} is not UTF-8 text (undecodable byte at offset {err.start})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        lines = [_jsonl_field(path, n, line, ("text",)) for n, line in enumerate(lines, 1)]
    sentences = [w for w in (words(line) for line in lines) if w]
    if not sentences:
        raise TextError(f"corpus {path} is empty (no words found)")
    return sentences


def _jsonl_field(path: Path, line_no: int, line: str, keys: tuple[str, ...]) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise TextError(f"{path} line {line_no} is not valid JSON") from None
    for key in keys:
        if isinstance(record, dict) and isinstance(record.get(key), str):
            return record[key]
    raise TextError(f"{path} line {line_no} has no string field {' or '.join(repr(k) for k in keys)}")


def read_prompt_file(path: Path) -> list[str]:
    """Prompts, one per line, or JSONL records with a "prompt" (or "text") field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TextError(f"cannot read prompt file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TextError(f"prompt file {path} is not UTF-8 text") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        lines = [_jsonl_field(path, n, line, ("prompt", "text")) for n, line in enumerate(lines, 1)]
    if not lines:
        raise TextError(f"prompt file {path} holds no prompts")
    return lines


__all__ = ["BOS", "EOS", "PAD", "SEP", "UNK", "TextError", "WordTokenizer", "read_corpus", "read_prompt_file", "words"]
