"""Citations stay true: every repository file the code and the docs name exists, and the README links the docs.

A citation is a path whose first component is a top-level folder of the repository (`actors/rollout.py`,
`tokenq/presets/*.yaml`, `cluster/`): a file with one of FILE_SUFFIXES, a glob, or a folder written with its
trailing slash. Other slashed words (TensorBoard tags such as `replay/size`, paths inside a run directory such as
`RUN_DIR/replay/...`, module attributes such as `text_tasks.PriorModel`) and paths with a placeholder in capitals
(`tokenq/presets/NAME.yaml`) are not citations.
"""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCANNED = (".py", ".yaml", ".md")
FILE_SUFFIXES = (".py", ".yaml", ".yml", ".md", ".txt", ".json", ".toml", ".sh", ".cfg")
# Folders at the top that are not the repository's own: tools, environments and run outputs.
NOT_OURS = {".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__", "build", "dist", "runs"}
DOCS = ("docs/design.md", "docs/benchmarks.md")
# A path component that stands for any name (`presets/NAME.yaml`, `ckpt_XXXXXXXX.pt`), not for a file of ours.
PLACEHOLDER = re.compile(r"^(NAME|FILE|DIR|PATH|MODEL_DIR|RUN_DIR|[IKN]|X+)$")


def top_folders() -> set[str]:
    found = {
        p.name
        for p in REPO.iterdir()
        if p.is_dir()
        and p.name not in NOT_OURS
        and not p.name.endswith(".egg-info")
        and (not p.name.startswith(".") or p.name == ".ci")
    }
    return found | {"docs"}


def citation_pattern(tops: set[str]) -> re.Pattern:
    # Not preceded by a path character: `RUN_DIR/replay/x`, `~/tokenq-src/...`, `$HOME/...` and `a.b/c` are not ours.
    names = "|".join(sorted(map(re.escape, tops)))
    return re.compile(rf"(?<![\w./~$\-{{}}<>])((?:{names})/[\w.*\-/]*)")


def citations(text: str, pattern: re.Pattern) -> list[str]:
    """Repository paths cited in `text`: files with a known suffix, globs and folders ending in '/'."""
    out = []
    for m in pattern.finditer(text):
        path = m.group(1).rstrip(".")  # a citation that ends a sentence
        if any(PLACEHOLDER.match(part.split(".")[0]) for part in path.split("/")):
            continue
        if path.endswith("/") or "*" in path or path.endswith(FILE_SUFFIXES):
            out.append(path)
    return out


def exists(path: str) -> bool:
    if "*" in path:
        return any(REPO.glob(path.rstrip("/")))
    return (REPO / path).is_dir() if path.endswith("/") else (REPO / path).is_file()


def scanned_files() -> list[Path]:
    files = []
    for p in REPO.rglob("*"):
        rel = p.relative_to(REPO).parts
        if p.suffix in SCANNED and p.is_file() and not any(x in NOT_OURS or x.endswith(".egg-info") for x in rel):
            files.append(p)
    return sorted(files)


def broken_citations() -> list[str]:
    pattern = citation_pattern(top_folders())
    broken = []
    for f in scanned_files():
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            for path in citations(line, pattern):
                if not exists(path):
                    broken.append(f"{f.relative_to(REPO)}:{n} cites {path}, which is not in the repository")
    return broken


def test_every_cited_path_exists():
    broken = broken_citations()
    assert not broken, "\n".join(broken)


def test_readme_links_the_docs():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for doc in DOCS:
        assert doc in readme, f"README.md does not link {doc}"
        assert (REPO / doc).is_file(), f"{doc} is linked from README.md but missing"


def test_what_counts_as_a_citation():
    # Written in pieces, so that this file cites none of them itself.
    pattern = citation_pattern({"actors", "replay", "tokenq", "docs"})
    text = (
        "see " + "actors" + "/rollout.py, " + "tokenq" + "/presets/*.yaml and " + "docs" + "/design.md. "
        "Tags " + "replay" + "/size, RUN_DIR/" + "replay" + "/shard-0.snap, " + "actors" + "/text_tasks.PriorModel, "
        "folder " + "actors" + "/corpus/, ~/" + "tokenq" + "-src/x.py, " + "tokenq" + "/presets/NAME.yaml"
    )
    cited = citations(text, pattern)
    assert cited == [
        "actors" + "/rollout.py",
        "tokenq" + "/presets/*.yaml",
        "docs" + "/design.md",
        "actors" + "/corpus/",
    ]
    assert not exists("actors" + "/no_such_module.py")
    assert exists("actors" + "/rollout.py") and exists("tokenq" + "/presets/*.yaml") and exists("actors" + "/corpus/")
