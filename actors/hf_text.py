"""Text for Hugging Face models: prompt templates, sentences and keywords of a corpus, and the subword tokenizer.

Tasks over a subword vocabulary reward decoded text, not token ids: a keyword counts when it appears as a whole word
in the decoded generation. Prompts are sentences (optionally through the tokenizer's chat template) of any length;
a (B, P) prompt array is right-padded with PROMPT_PAD (-1), a value no token has, so each prompt's length is kept
wherever the array goes (episode batches, replay shards, the learner).

Pure: imports neither ray nor torch; `transformers` only inside `HFTokenizer.load`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from actors.text import TextError
from replay.episodes import PROMPT_PAD

KEYWORDS_PROMPT = "Write a sentence with the words {keywords}."
TOPIC_PROMPT = "Write one sentence about {topic}."
_KEYWORDS_SLOT = re.compile(r"Write a sentence with the words (.+?)\.")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"[A-Za-z]+")

# Function words (and the templates' own words) never chosen as keywords or topics.
STOPWORDS = frozenset(
    """a an the this that these those some any every each no one two three four five six seven eight nine ten
    i you he she it we they me him her us them my your his its our their mine yours who whom whose which what
    and or but because so if when while as than then of in on at to from by with without about into onto over
    under after before near behind above below through across around between is are was were be been being am
    do does did done has have had having will would can could shall should may might must not very too also
    there here where why how all both more most many much few little other another such only just write
    sentence words""".split()
)


def keywords_prompt(keywords: Sequence[str]) -> str:
    return KEYWORDS_PROMPT.format(keywords=", ".join(keywords))


def prompt_keywords(prompt_text: str) -> list[str]:
    """The keywords a `keywords_prompt` names, found in decoded prompt text (a chat template around it is fine)."""
    match = _KEYWORDS_SLOT.search(prompt_text)
    return [w.strip().lower() for w in match.group(1).split(",")] if match else []


def split_sentences(lines: Sequence[str]) -> list[str]:
    """Sentences of plain-text lines (one paragraph or sentence per line), whitespace collapsed."""
    out = []
    for line in lines:
        for s in _SENTENCE_END.split(" ".join(line.split())):
            if _WORD.search(s):
                out.append(s)
    return out


def content_words(sentences: Sequence[str], size: int, min_len: int = 3) -> list[str]:
    """The `size` most frequent lowercase words of at least `min_len` letters that are not function words."""
    counts = Counter(
        w for s in sentences for w in (m.lower() for m in _WORD.findall(s)) if len(w) >= min_len and w not in STOPWORDS
    )
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def whole_word_spans(text: str, word: str) -> list[tuple[int, int]]:
    """(start, end) character spans where `word` appears as a whole word, case-insensitive."""
    return [m.span() for m in re.finditer(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", text, re.IGNORECASE)]


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


class HFTokenizer:
    """A Hugging Face tokenizer as tokenq's tasks use it: ids in, text out, EOS known, prompts through the chat
    template when asked. `vocab_size` is the model's (Q covers every row of its output layer)."""

    def __init__(self, tok, vocab_size: int, chat_template: str = "auto"):
        if tok.eos_token_id is None:
            raise TextError("the tokenizer has no EOS token, so episodes could never end; set tokenizer.eos_token")
        self.tok = tok
        self.eos_id = int(tok.eos_token_id)
        self.pad_id = int(tok.pad_token_id) if tok.pad_token_id is not None else self.eos_id
        self.bos_id = int(tok.bos_token_id) if tok.bos_token_id is not None else self.eos_id
        self.sep_id = self.bos_id
        self._vocab_size = int(vocab_size)
        self.use_chat = chat_template == "auto" and bool(getattr(tok, "chat_template", None))
        self._special = set(tok.all_special_ids)
        self._pieces: list[str] | None = None

    @classmethod
    def load(cls, path: str, vocab_size: int, chat_template: str = "auto") -> HFTokenizer:
        from transformers import AutoTokenizer

        file = Path(path)
        where = {"gguf_file": file.name} if path.endswith(".gguf") else {}  # a GGUF file holds its tokenizer too
        try:
            tok = AutoTokenizer.from_pretrained(file.parent if where else path, **where)
        except (OSError, ValueError) as err:
            reason = str(err).strip().splitlines()[0][:160]
            raise TextError(f"cannot load a tokenizer from {path} ({reason})") from None
        return cls(tok, vocab_size, chat_template)

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def encode_prompt(self, text: str) -> list[int]:
        """A user prompt's ids: through the chat template (generation prompt added) when it has one, else the text
        after the tokenizer's BOS, if it has one, so that every prompt has at least one token."""
        if self.use_chat:
            return list(
                self.tok.apply_chat_template(
                    [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=False
                )
            )
        ids = self.encode(text)
        bos = self.tok.bos_token_id
        return ([bos] if bos is not None and ids[:1] != [bos] else []) + ids

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        return self.tok.decode([int(i) for i in ids if int(i) >= 0], skip_special_tokens=skip_special)

    def pieces(self) -> list[str]:
        """The text of every token id alone ("" for special tokens and ids past the tokenizer): what a reward
        over token text (a banned letter) reads."""
        if self._pieces is None:
            n = len(self.tok)
            texts = self.tok.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
            self._pieces = ["" if i in self._special or i >= n else texts[i] for i in range(self._vocab_size)]
        return self._pieces

    def fingerprint(self) -> str:
        vocab = sorted(self.tok.get_vocab().items(), key=lambda kv: kv[1])
        return hashlib.sha256("\n".join(k for k, _ in vocab).encode()).hexdigest()[:16]


def pad_prompts(rows: Sequence[Sequence[int]], width: int | None = None) -> np.ndarray:
    """(N, width) int64 prompt ids, right-padded with PROMPT_PAD."""
    width = width or max(len(r) for r in rows)
    out = np.full((len(rows), width), PROMPT_PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def read_text_lines(path: Path) -> list[str]:
    """Non-empty lines of a UTF-8 text file (a corpus of prose), or one clear sentence."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise TextError(f"cannot read corpus {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise TextError(f"corpus {path} is not UTF-8 text") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise TextError(f"corpus {path} is empty (no words found)")
    return lines
