"""Each chapter's downloadable notebook is complete, readable and reruns on its own.

The book build writes ``notebooks/<chapter>.ipynb`` into the HTML output with
:func:`chapter_notebook` of the book's local extension (book/_ext); here the
same function converts the chapter as nbclient executed it
(:func:`test_chapters.executed`, shared with the chapter tests).  The notebook
must keep every cell with its outputs, carry the glued numbers in its prose
(formatted as the page shows them, by myst-nb's own formatter), and execute
from an empty folder, where nothing but lmmlib and the dataset mirror is at hand.
"""

from __future__ import annotations

import copy
import re
import sys
from functools import cache

import nbformat
import pytest
from test_chapters import BOOK, CHAPTERS, GLUE_ROLE, executed, glued

nbclient = pytest.importorskip("nbclient")
variables = pytest.importorskip("myst_nb.core.variables")

sys.path.insert(0, str(BOOK / "_ext"))
from chapter_notebooks import chapter_notebook, render_markdown  # noqa: E402

#: MyST roles and directive fences Jupyter would show as raw text.
MYST_LEFT = re.compile(r"\{[a-z][\w:-]*\}`[^`]*`|^[`:]{3,}\{(?!figure)[^}]*\}.*$", re.MULTILINE)


@cache
def notebook(name: str) -> nbformat.NotebookNode:
    """The chapter's notebook, converted as the build converts it."""
    return chapter_notebook(executed(name), srcdir=BOOK)


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_keeps_every_cell_and_its_outputs(name):
    nb, source = notebook(name), executed(name)
    nbformat.validate(nb)
    assert [c.cell_type for c in nb.cells] == [c.cell_type for c in source.cells]
    assert [c.source for c in nb.cells if c.cell_type == "code"] == [
        c.source for c in source.cells if c.cell_type == "code"]
    # the hidden cells (imports, plotting set-up, glue bookkeeping) stay, so it reruns
    assert [tags(c) for c in nb.cells] == [tags(c) for c in source.cells]
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), f"{name}: unexecuted cells"
    shown = 0
    for cell, original in zip(nb.cells, source.cells, strict=True):
        if cell.cell_type == "code":  # only the values glued without display go
            kept = [o for o in original.outputs
                    if "scrapbook" not in o.get("metadata", {})
                    or not o["metadata"]["scrapbook"].get("mime_prefix")]
            assert cell.outputs == kept
            shown += len(kept)
    # every chapter that shows a result (a table, a figure, a printout) carries it
    has_display = any("remove-cell" not in tags(c) and "glue(" not in c.source
                      for c in source.cells if c.cell_type == "code")
    assert shown > 0 or not has_display, f"{name}: no outputs"
    assert "jupytext" not in nb.metadata
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_prose_shows_the_glued_values(name):
    nb, source = notebook(name), executed(name)
    values = glued(source)
    checked = 0
    for cell, original in zip(nb.cells, source.cells, strict=True):
        if cell.cell_type != "markdown":
            continue
        assert "{glue" not in cell.source, f"{name}: glue reference left in {cell.source!r}"
        left = MYST_LEFT.findall(cell.source)
        assert not left, f"{name}: MyST markup left in the notebook: {left}"
        for match in GLUE_ROLE.finditer(original.source):
            role = match.group(0)
            if not role.startswith("{glue:text}"):
                continue
            content = role[len("{glue:text}`"):-1]
            key, _, fmt = content.rpartition(":") if ":" in content else (content, "", "s")
            # the text the page shows, by myst-nb's formatter from the chapter's value
            shown = variables.format_plain_text(values[key], fmt)
            assert shown in cell.source, f"{name}: {role} should read {shown!r}"
            checked += 1
    assert checked == sum(m.group(0).startswith("{glue:text}")
                          for c in source.cells if c.cell_type == "markdown"
                          for m in GLUE_ROLE.finditer(c.source))


def test_glue_directives_and_figures_are_rendered():
    glue = {
        "fig": {"data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
        "table": {"data": {"text/markdown": "| a |\n|---|\n| 1 |", "text/plain": "t"}},
        "x": {"data": {"text/plain": "0.123456"}},
    }
    source = ("```{glue:figure} fig\n:name: fig-x\n\nThe caption.\n```\n\n"
              ":::{glue:md} table\n:format: myst\n:::\n\n"
              "x is {glue:text}`x:.2f`, {glue}`x` in full.\n\n"
              "```{figure} _static/none.png\nA missing file stays a directive.\n```\n")
    text, attachments = render_markdown(source, glue, srcdir=BOOK)
    assert text.startswith("![fig](attachment:fig.png)\n\n*The caption.*")
    assert "| a |\n|---|\n| 1 |" in text
    assert "x is 0.12, 0.123456 in full." in text
    assert "{figure} _static/none.png" in text
    assert attachments == {"fig.png": {"image/png": "iVBORw0KGgo="}}
    with pytest.raises(KeyError, match="'y'"):
        render_markdown("{glue:text}`y:.1f`", glue)


def test_myst_markup_becomes_jupyter_markdown():
    glue = {"x": {"data": {"text/plain": "2.5"}}}
    source = ("(sec-x)=\n## X\n\n"
              "```{exercise}\n:label: ex-x\n\nWhy is x {glue:text}`x:.1f`?\n```\n\n"
              "````{solution-start} ex-x\n:class: dropdown\n````\n\n"
              "```{admonition} Learning goals\n:class: tip\nRead {ref}`the part <sec-x>`,"
              " {doc}`pig` and {cite:p}`bates2015, lele2007`.\n```\n\n"
              "````{solution-end}\n````\n")
    text, _ = render_markdown(source, glue)
    assert text == ("## X\n\n> **Exercise**\n>\n> Why is x 2.5?\n\n> **Solution**\n\n"
                    "> **Learning goals**\n>\n> Read the part, pig and [bates2015; lele2007].")


@pytest.mark.parametrize("name", CHAPTERS)
def test_notebook_reruns_in_an_empty_folder(name, tmp_path, monkeypatch):
    nb = copy.deepcopy(notebook(name))
    monkeypatch.chdir(tmp_path)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError if a cell fails
    # the rerun glues every value the prose was written from
    assert set(glued(nb)) == set(glued(executed(name)))
