"""The README and the pages in ``docs/`` hold together: every relative link points at a file of
the repository and, when it names an ``#anchor`` of a Markdown file, at a heading of that file
(anchors made as GitHub makes them); and none of them cites a document outside the repository.
Source files (code, tests, benchmarks) cite ``docs/page.md#anchor`` the same way, and never a
document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"`[^`]*`")
_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks."""
    lines: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: the rendered text lower-cased, everything but letters,
    digits, spaces, hyphens and underscores dropped, spaces made hyphens."""
    text = _INLINE_LINK.sub(r"\1", heading).replace("`", "")
    text = re.sub(r"(\*\*|__|\*|~~)", "", text).lower()
    kept = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file (repeated headings get -1, -2, …)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(document: Path, root: Path = ROOT) -> list[str]:
    """Relative links of ``document`` that lead nowhere or out of ``root``, as
    ``file:line: target (why)``."""
    problems: list[str] = []
    for number, line in prose_lines(document.read_text(encoding="utf-8")):
        for match in _LINK.finditer(_CODE_SPAN.sub("", line)):
            target = match.group(1)
            if _SCHEME.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            where = f"{document.relative_to(root)}:{number}: {target}"
            resolved = (document.parent / path_part).resolve() if path_part else document
            if not resolved.exists():
                problems.append(f"{where} (no such file)")
                continue
            if not resolved.is_relative_to(root):
                problems.append(f"{where} (outside the repository)")
                continue
            if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{where} (no heading with this anchor)")
    return problems


SOURCES = sorted(
    path
    for folder in ("live2d_tui", "tests", "benchmarks", "screenshots")
    for path in (ROOT / folder).rglob("*.py")
)
_DOC_CITATION = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")


def broken_citations(source: Path, root: Path = ROOT) -> list[str]:
    """``docs/page.md`` and ``docs/page.md#anchor`` cited in ``source`` that lead nowhere, and
    citations of documents outside the repository, as ``file:line: citation (why)``."""
    problems: list[str] = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{source.relative_to(root)}:{number}"
        for outside in ("shared/reference", "ARCHITECTURE"):
            if outside in line:
                problems.append(f"{where}: {outside} (outside the repository)")
        for match in _DOC_CITATION.finditer(line):
            page, anchor = root / "docs" / match.group(1), match.group(2)
            if not page.is_file():
                problems.append(f"{where}: {match.group(0)} (no such file)")
            elif anchor and anchor not in anchors(page):
                problems.append(f"{where}: {match.group(0)} (no heading with this anchor)")
    return problems


def test_the_documents_exist() -> None:
    names = {p.name for p in DOCUMENTS}
    assert {"README.md", "architecture.md", "glossary.md", "protocol.md"} <= names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(document: Path) -> None:
    assert broken_links(document) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_cites_files_outside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    assert "shared/reference" not in text
    assert "ARCHITECTURE" not in text


def test_source_files_cite_docs_that_exist() -> None:
    # this file names the outside documents only to forbid them
    here = Path(__file__).resolve()
    assert [p for s in SOURCES if s != here for p in broken_citations(s)] == []


def test_the_citation_checker_can_fail(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# A heading\n")
    source = tmp_path / "mod.py"
    source.write_text(
        '"""(docs/page.md#a-heading) docs/page.md docs/page.md#gone docs/none.md\n'
        'see ../shared/reference/x.md and ARCHITECTURE principle 2"""\n'
    )
    assert broken_citations(source, tmp_path) == [
        "mod.py:1: docs/page.md#gone (no heading with this anchor)",
        "mod.py:1: docs/none.md (no such file)",
        "mod.py:2: shared/reference (outside the repository)",
        "mod.py:2: ARCHITECTURE (outside the repository)",
    ]


def test_the_checker_finds_a_broken_file_and_a_broken_anchor(tmp_path: Path) -> None:
    """The checker itself can fail: a missing file, a missing heading and a file outside the
    repository are reported; code blocks and web links are left alone."""
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "elsewhere.md").write_text("# Elsewhere\n")
    (root / "other.md").write_text("# A `code` heading, with punctuation!\n")
    page = root / "page.md"
    page.write_text(
        "# Title\n\n[ok](other.md#a-code-heading-with-punctuation) [self](#title)\n"
        "[gone](missing.md) [bad anchor](other.md#nowhere) [web](https://example.org)\n"
        "[out](../elsewhere.md) `[in a code span](nope.md)`\n"
        "```\n[in code](also-missing.md)\n```\n"
    )
    assert broken_links(page, root) == [
        "page.md:4: missing.md (no such file)",
        "page.md:4: other.md#nowhere (no heading with this anchor)",
        "page.md:5: ../elsewhere.md (outside the repository)",
    ]
