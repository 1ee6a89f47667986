"""The READMEs: every relative link resolves, and the root one stays short.

Reads README.md, */README.md and benchmarks/*.md as text (standard library only).
A link `[text](target)` outside code must name an existing file or folder, relative
to the markdown file; a `#anchor` must match a heading of its target, slugged the
way GitHub slugs headings. http(s) and mailto links are not followed.
"""
import re
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ROOT_README_MAX_LINES = 250

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_files():
    # Hidden folders hold tools' files (.pytest_cache/README.md), not the project's.
    files = [REPO / "README.md", *sorted(p for p in REPO.glob("*/README.md") if not p.parent.name.startswith(".")),
             *sorted(REPO.glob("benchmarks/*.md"))]
    return sorted({path for path in files if path.is_file()})


def prose_lines(path):
    """(line number, line) of the lines outside fenced code blocks."""
    inside = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").lower()
    text = "".join(ch for ch in text
                   if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return text.replace(" ", "-")


def anchors(path):
    seen, result = {}, set()
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(path):
    for number, line in prose_lines(path):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, match.group(1)


def broken_links(path):
    problems = []
    for number, target in links(path):
        if target.lower().startswith(EXTERNAL):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(REPO)}:{number}: ({target})"
        if not resolved.exists():
            problems.append(f"{where} {file_part} does not exist")
        elif anchor and (resolved.is_dir() or resolved.suffix != ".md"):
            problems.append(f"{where} an anchor into a file that is not markdown")
        elif anchor and anchor not in anchors(resolved):
            problems.append(f"{where} no heading #{anchor} in {resolved.relative_to(REPO)}")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    problems = broken_links(path)
    assert not problems, "\n".join(problems)


def test_the_readmes_are_found_and_link_somewhere():
    files = markdown_files()
    assert REPO / "README.md" in files and len(files) >= 2
    assert any(True for _ in links(REPO / "README.md"))


def test_root_readme_is_short():
    lines = len((REPO / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= ROOT_README_MAX_LINES, f"README.md has {lines} lines; at most {ROOT_README_MAX_LINES}"


@pytest.mark.parametrize("heading, expected", [
    ("What `make run` does", "what-make-run-does"),
    ("TFLite, for phones", "tflite-for-phones"),
    ("A pretrained model: `--arch lite0`", "a-pretrained-model---arch-lite0"),
    ("Loaded the way TF Serving loads it", "loaded-the-way-tf-serving-loads-it"),
    ("serving/", "serving"),
    ("New data arriving: spans", "new-data-arriving-spans"),
])
def test_slugs_are_githubs(heading, expected):
    assert slug(heading) == expected
