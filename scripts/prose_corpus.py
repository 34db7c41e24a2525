"""Write a corpus of real English prose that ships with Python: the sentences of the Python documentation's topic
texts (`pydoc_data.topics`, the text `help()` shows), code and markup left out.

    python scripts/prose_corpus.py corpus.txt      # about 1,400 sentences, one a line
    tokenq pretrain --config hf-small --corpus corpus.txt --run-dir runs/prose
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def prose_sentences() -> list[str]:
    import pydoc_data.topics

    sentences = []
    for text in pydoc_data.topics.topics.values():
        for block in re.split(r"\n\s*\n", text):
            lines = [line.strip() for line in block.splitlines()]
            if any(line.startswith((">>>", "...")) for line in lines):
                continue  # an interactive example
            for s in re.split(r"(?<=[.!?])\s+", " ".join(lines)):
                s = re.sub(r"\s*\([^)]*\)", "", s).replace('"', "").replace("*", "")
                # plain sentences only: letters and punctuation, no code, numbers or markup
                if re.fullmatch(r"[A-Z][A-Za-z ,;'\-]+\.", s) and 5 <= len(s.split()) <= 25:
                    sentences.append(s)
    return sentences


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/prose_corpus.py OUT.txt")
    found = prose_sentences()
    Path(sys.argv[1]).write_text("\n".join(found) + "\n")
    print(f"{len(found)} sentences written to {sys.argv[1]}")
