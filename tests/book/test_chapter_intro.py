"""The introduction (book/intro.md): its course map lists every page of the book.

The map is two markdown tables of ``{doc}`` links, chapters in reading order and
the appendix pages; the book's order comes from book/_toc.yml.  No numbers are
computed on this page, so the checks are exact.
"""

from __future__ import annotations

import re

import yaml
from test_chapters import BOOK, _toc_files

DOC_ROW = re.compile(r"^\| \{doc\}`([^`]+)` \|", re.MULTILINE)


def toc_pages() -> list[str]:
    return _toc_files(yaml.safe_load((BOOK / "_toc.yml").read_text()))


def test_course_map_lists_every_chapter_and_appendix_page_in_order():
    listed = DOC_ROW.findall((BOOK / "intro.md").read_text())
    # every page of the toc except the root, the bibliography and the API reference
    expected = [p for p in toc_pages()
                if p not in ("intro", "bibliography") and not p.startswith("api/")]
    assert listed == expected
    # the model-checking chapter comes right after the likelihood chapter
    assert listed.index("diagnostics") == listed.index("likelihood") + 1
    for page in ("crosswalk", "troubleshooting", "reproduction"):
        assert page in listed


def test_course_map_rows_say_what_each_page_answers_and_needs():
    # three filled columns per row: page, the question it answers, prerequisites
    text = (BOOK / "intro.md").read_text()
    for line in text.splitlines():
        if DOC_ROW.match(line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert len(cells) == 3 and all(cells), line
            assert cells[1].endswith("?"), line


def test_promised_pig_random_slope_is_fitted():
    # the data section promises a random slope for the pigs; the pig chapter fits it
    assert "random\n  slope for growth" in (BOOK / "intro.md").read_text()
    assert 'lmer("weight ~ weeks + (weeks | id)", pig)' in (BOOK / "pig.md").read_text()
