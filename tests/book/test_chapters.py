"""Every chapter of the book executes, and every number its prose shows was computed.

Chapters are MyST markdown notebooks listed in book/_toc.yml.  Each is executed
with nbclient (as the book build does); then every ``{glue}`` reference in the
prose must name a value the chapter glued.  The key course numbers of each
chapter are asserted in ``tests/test_chapter_<name>.py``, which reuse
:func:`executed` (one execution per session) and :func:`glued`.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

BOOK = Path(__file__).resolve().parents[2] / "book"
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`([^`:]+)(?::[^`]*)?`")
GLUE_DIRECTIVE = re.compile(r"^[`:]{3,}\{glue(?::[a-z]+)?\}\s+(\S+)", re.MULTILINE)
NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for value in node.values():
            files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


def chapters() -> list[str]:
    """Chapter files (without suffix) in table-of-contents order, notebooks only."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    names = _toc_files(toc)
    return [n for n in names if "jupytext" in (BOOK / f"{n}.md").read_text()[:500]]


@cache
def executed(name: str):
    """The chapter's notebook after execution in the book folder."""
    nb = jupytext.read(BOOK / f"{name}.md")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(BOOK)}})
    client.execute()
    return nb


def glued(nb) -> dict[str, str]:
    """Glue keys and their plain-text values."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if meta:
                data = out.get("data", {})
                text = data.get(meta["mime_prefix"] + "text/plain", "")
                values[meta["name"]] = text
    return values


def referenced(name: str) -> set[str]:
    """Glue keys used in the chapter's prose."""
    text = (BOOK / f"{name}.md").read_text()
    return set(GLUE_ROLE.findall(text)) | set(GLUE_DIRECTIVE.findall(text))


def number(text: str) -> float:
    """The (first) number in a glued plain-text value."""
    match = NUMBER.search(text.replace("np.float64(", ""))
    assert match, f"no number in glued value {text!r}"
    return float(match.group())


CHAPTERS = chapters()


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_executes_and_glues_every_referenced_number(name):
    values = glued(executed(name))
    missing = referenced(name) - set(values)
    assert not missing, f"{name}: prose refers to glue keys never produced: {sorted(missing)}"


def test_chapters_define_no_functions():
    for name in CHAPTERS:
        text = (BOOK / f"{name}.md").read_text()
        assert not re.search(r"^\s*(def|class)\s", text, re.MULTILINE), name


#: Internals a chapter must not reach: the engine's objects on a fit, and the
#: implementation packages (the public paths are lmmlib, lmmlib.course.*,
#: lmmlib.datasets, lmmlib.plots and lmmlib.benchmarks).
INTERNALS = re.compile(r"\.(design|pls|opt|fit|problem|_sol)\b(?!\()"
                       r"|lmmlib\.(engine|inference|models|glmm)\b")


def test_chapters_use_only_the_public_api():
    for name in CHAPTERS:
        text = (BOOK / f"{name}.md").read_text()
        found = sorted({m.group(0) for m in INTERNALS.finditer(text)})
        assert not found, f"{name}: {found}"
