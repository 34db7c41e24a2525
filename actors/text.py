"""Text: the word tokenizer, corpus and prompt-file reading with clear errors, and what every text task reads in
decoded text (one stopword list, one content-word picker, whole-word matching, word counts).

Pure: imports neither ray nor torch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from actors.tokenizer import BOS, EOS, PAD, SEP, SPECIAL_TOKENS

UNK = 4
WORD_SPECIALS = (*SPECIAL_TOKENS, "<unk>")
_TOKEN = re.compile(r"[a-z]+|[.,!?;:]")
_WORD = re.compile(r"[A-Za-z]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# Function words (and the prompt templates' own words) never chosen as keywords or topics.
STOPWORDS = frozenset(
    """a an the this that these those some any every each no one two three four five six seven eight nine ten
    i you he she it we they me him her us them my your his its our their mine yours who whom whose which what
    and or but because so if when while as than then of in on at to from by with without about into onto over
    under after before near behind above below through across around between is are was were be been being am
    do does did done has have had having will would can could shall should may might must not very too also
    there here where why how all both more most many much few little other another such only just write
    sentence words""".split()
)


class TextError(ValueError):
    """A corpus, prompt file or tokenizer file is unusable; the message is one sentence naming it."""


def words(text: str) -> list[str]:
    """Lowercased words and punctuation marks, the unit of the word tokenizer."""
    return _TOKEN.findall(text.lower())


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def own_words(sentence: str, min_len: int = 3) -> list[str]:
    """A sentence's distinct lowercase content words (at least `min_len` letters, no function word), in order."""
    found = (w.lower() for w in _WORD.findall(sentence))
    return list(dict.fromkeys(w for w in found if len(w) >= min_len and w not in STOPWORDS))


def rank_words(sentences: Sequence[str]) -> list[str]:
    """A corpus's distinct lowercase words, most frequent first (ties alphabetical)."""
    counts = Counter(m.lower() for s in sentences for m in _WORD.findall(s))
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def content_words(ranked: Sequence[str], size: int, min_len: int = 3) -> list[str]:
    """The first `size` of `ranked` (words, most frequent first: `rank_words` of a corpus, or a word vocabulary)
    that are words of at least `min_len` letters and not function words: the keywords and topics of prompts."""
    return [w for w in ranked if w.isalpha() and len(w) >= min_len and w not in STOPWORDS][:size]


def whole_word_spans(text: str, word: str) -> list[tuple[int, int]]:
    """(start, end) character spans where `word` appears as a whole word, case-insensitive."""
    return [m.span() for m in re.finditer(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", text, re.IGNORECASE)]


def split_sentences(lines: Sequence[str]) -> list[str]:
    """Sentences of plain-text lines (one paragraph or sentence per line), whitespace collapsed."""
    out = []
    for line in lines:
        for s in _SENTENCE_END.split(" ".join(line.split())):
            if _WORD.search(s):
                out.append(s)
    return out


class WordTokenizer:
    """PAD=0, BOS=1, EOS=2, SEP=3, UNK=4, then the corpus's words, most frequent first.

    Its prompts are bare words (`bare_prompts`): a keyword prompt is the keywords themselves, as `tokenq pretrain`
    shows them to the network, every prompt the same number of tokens. Each token is a whole word
    (`whole_word_tokens`), so a word is known complete at its own token."""

    pad_id, bos_id, eos_id, sep_id, unk_id = PAD, BOS, EOS, SEP, UNK
    bare_prompts = True
    whole_word_tokens = True

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self._ids = {w: i + len(WORD_SPECIALS) for i, w in enumerate(self.vocab)}

    @classmethod
    def from_sentences(cls, sentences: Sequence[str], max_vocab: int) -> WordTokenizer:
        counts = Counter(w for s in sentences for w in words(s))
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

    def encode_prompt(self, text: str | list[dict]) -> list[int]:
        if not isinstance(text, str):
            raise TextError("chat messages need a Hugging Face chat model (init.from_hf); a word vocabulary reads text")
        return self.encode(text)

    def decode(self, ids, skip_special: bool = True) -> str:
        out = []
        for i in ids:
            i = int(i)
            if i < 0:
                continue
            if i < len(WORD_SPECIALS):
                if not skip_special:
                    out.append(WORD_SPECIALS[i])
            elif i < self.vocab_size:
                out.append(self.vocab[i - len(WORD_SPECIALS)])
            else:
                out.append(f"<{i}>")
        return " ".join(out)

    def pieces(self) -> list[str]:
        """The text of every token id alone: " word" (words join with spaces), "" for the special tokens."""
        return [""] * len(WORD_SPECIALS) + [" " + w for w in self.vocab]

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join(self.vocab).encode()).hexdigest()[:16]

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"type": "word", "fingerprint": self.fingerprint(), "vocab": self.vocab}))

    def save_pretrained(self, directory: Path) -> None:
        """DIR/tokenizer.json, beside a network's save_pretrained files (`tokenq export --adapters`)."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.save(Path(directory) / "tokenizer.json")

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


def read_corpus(path: Path) -> list[str]:
    """Sentences of text from plain text (sentences or paragraphs, one per line) or JSONL ({"text": ...})."""
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
    sentences = split_sentences(lines)
    if not sentences:
        raise TextError(f"corpus {path} is empty (no words found)")
    return sentences


def load_corpus(path: str, num_sentences: int, seed: int) -> list[str]:
    """The corpus a text task and pretraining read: the file at `path`, or `num_sentences` sentences of the built-in
    grammar drawn from `seed` when `path` is empty."""
    if path:
        return read_corpus(Path(path))
    from actors.corpus.grammar import generate_corpus

    return generate_corpus(num_sentences, seed=seed)


def _jsonl_field(path: Path, line_no: int, line: str, keys: tuple[str, ...]) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise TextError(f"{path} line {line_no} is not valid JSON") from None
    for key in keys:
        if isinstance(record, dict) and isinstance(record.get(key), str):
            return record[key]
    raise TextError(f"{path} line {line_no} has no string field {' or '.join(repr(k) for k in keys)}")


def read_prompt_file(path: Path) -> list[str | list[dict]]:
    """The prompts of a prompt file (read_prompt_records), without their other fields."""
    return [r.prompt for r in read_prompt_records(path)]


@dataclass
class PromptRecord:
    """One prompt of a prompt file: what the model reads, as TRL passes it to reward functions (a string, or chat
    messages [{"role": ..., "content": ...}, ...]), and the record's other fields (TRL's dataset columns), which
    sequence-level reward functions receive as keyword arguments."""

    prompt: str | list[dict]
    columns: dict = field(default_factory=dict)


def read_prompt_records(path: Path) -> list[PromptRecord]:
    """Prompts, one per line, or JSONL records with a "prompt" (text or chat messages), "messages" (chat messages)
    or "text" field; a record's other fields are kept."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TextError(f"cannot read prompt file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TextError(f"prompt file {path} is not UTF-8 text") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if path.suffix == ".jsonl":
        records = [_prompt_record(path, n, line) for n, line in enumerate(lines, 1)]
    else:
        records = [PromptRecord(line) for line in lines]
    if not records:
        raise TextError(f"prompt file {path} holds no prompts")
    return records


def _prompt_record(path: Path, line_no: int, line: str) -> PromptRecord:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        raise TextError(f"{path} line {line_no} is not valid JSON") from None
    if not isinstance(record, dict):
        raise TextError(f"{path} line {line_no} is not a JSON object")
    for key in ("prompt", "messages", "text"):
        value = record.get(key)
        if isinstance(value, str) and key != "messages":
            return PromptRecord(value, {k: v for k, v in record.items() if k != key})
        if isinstance(value, list) and key != "text":
            ok = value and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                for m in value
            )
            if not ok:
                raise TextError(
                    f"{path} line {line_no}: {key!r} must be a list of chat messages, each with a string "
                    '"role" and "content"'
                )
            return PromptRecord(value, {k: v for k, v in record.items() if k != key})
    raise TextError(f'{path} line {line_no} has no "prompt", "messages" or "text" field')
