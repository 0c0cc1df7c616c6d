"""Executed chapter notebooks for readers to download and rerun.

Every chapter written as a MyST markdown notebook is executed when the book is
built.  This Sphinx extension turns each executed chapter into a standalone
Jupyter notebook, ``notebooks/<chapter>.ipynb`` in the HTML output, and links
it from the chapter page (a note under the title and an entry in the page's
download menu).

The notebook keeps every cell, including those the page hides (imports, plotting
set-up, ``glue`` bookkeeping), so that it reruns as it stands.  Jupyter does not
know MyST's ``glue`` roles and directives, so the values they paste are written
into the markdown: ``{glue:text}`key:.3f``` becomes the formatted number,
``{glue:md}`` the markdown, ``{glue:figure}`` an image attached to the cell.
Figures the chapter reads from the book's folder are attached as well.  The
rest of MyST's markup becomes plain Jupyter markdown: exercises, solutions and
admonitions turn into quoted blocks with a bold heading, ``{ref}``/``{doc}``
roles into their text, citations into ``[key]``, label targets are dropped.

For the API reference it also resolves references to lmmlib objects written
with the path of the module that defines them (``lmmlib.inference.drop1.drop1``)
or that imports them, to the place where the object is documented
(``lmmlib.drop1``); a reference to an object documented nowhere stays an error.

:func:`chapter_notebook` is the conversion; the build calls it on the notebook
myst-nb executed (with the glue data myst-nb extracted), and the tests call it
on a notebook executed by nbclient.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import mimetypes
import posixpath
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nbformat
from docutils import nodes
from myst_nb.core.read import is_myst_markdown_notebook
from myst_nb.core.variables import format_plain_text
from myst_nb.ext.glue import extract_glue_data
from sphinx.application import Sphinx
from sphinx.util import logging

__all__ = ["chapter_notebook", "glue_data", "render_markdown", "setup"]

#: Folder of the HTML output that holds the notebooks.
FOLDER = "notebooks"

#: ``{glue}`key```, ``{glue:text}`key:fmt```, ``{glue:md}`key``, ``{glue:math}`key``.
GLUE_ROLE = re.compile(r"\{glue(?::(?P<kind>[a-z]+))?\}`(?P<content>[^`]+)`")

#: A fenced glue directive (backticks or colons) up to its closing fence.
GLUE_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{glue(?::(?P<kind>[a-z]+))?\}[ \t]+(?P<key>\S+)[^\n]*\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

#: A fenced ``{figure}`` or ``{image}`` directive naming a file.
FIGURE_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<kind>figure|image)\}[ \t]+(?P<path>\S+)[^\n]*\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

#: Any other fenced MyST directive (exercises, solutions, admonitions, notes...).
MYST_DIRECTIVE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}(?P<argument>[^\n]*)\n"
    r"(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)

#: Cross-reference roles whose text is kept: ``{ref}`text <label>``` or ``{doc}`page```.
XREF_ROLE = re.compile(r"\{(?:ref|doc|numref|eq|term|any)\}`(?P<content>[^`]+)`")
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`(?P<keys>[^`]+)`")
MATH_ROLE = re.compile(r"\{math\}`(?P<latex>[^`]+)`")
TARGET = re.compile(r"^\([\w.:-]+\)=[ \t]*\n", re.MULTILINE)

#: Headings of the directives that become quoted blocks.
HEADINGS = {"exercise": "Exercise", "solution-start": "Solution", "solution": "Solution",
            "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
            "warning": "Warning", "caution": "Caution", "attention": "Attention",
            "danger": "Danger", "error": "Error", "seealso": "See also"}

_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
_logger = logging.getLogger(__name__)


def glue_data(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """Take the glued outputs out of an executed notebook, as myst-nb does.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook; it is changed in place (the outputs of
        ``glue(..., display=False)`` are removed, exactly as in the build).

    Returns
    -------
    dict
        Glue key to its output (a dict with ``data``, a mapping of MIME type to
        content).
    """
    return dict(extract_glue_data(nb, [0] * len(nb.cells), _GlueLogger()))  # type: ignore[arg-type]


class _GlueLogger:
    """What myst-nb's glue extraction logs (a duplicate key) goes to Sphinx's log."""

    def warning(self, msg: str, **_: Any) -> None:
        _logger.warning(msg)


def _options(body: str) -> tuple[dict[str, str], str]:
    """Split a directive body into its ``:name: value`` options and its content."""
    lines = body.splitlines()
    options: dict[str, str] = {}
    if lines and lines[0].strip() == "---":  # YAML block of options
        end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), 0)
        for line in lines[1:end]:
            name, _, value = line.partition(":")
            options[name.strip()] = value.strip()
        lines = lines[end + 1:]
    while lines and re.match(r"^:[\w-]+:", lines[0]):
        name, _, value = lines.pop(0)[1:].partition(":")
        options[name.strip()] = value.strip()
    return options, "\n".join(lines).strip()


class _Renderer:
    """Renders glue references of one notebook; collects images as attachments."""

    def __init__(self, glue: Mapping[str, Any], srcdir: Path | None) -> None:
        self.glue = glue
        self.srcdir = srcdir
        self.attachments: dict[str, dict[str, str]] = {}

    def data(self, key: str) -> Mapping[str, Any]:
        if key not in self.glue:
            raise KeyError(f"glue key {key!r} is not glued in this notebook")
        return self.glue[key]["data"]

    def attach(self, name: str, mime: str, content: str) -> str:
        """Attach an image to the cell; its markdown reference."""
        stem = re.sub(r"[^\w.-]", "_", name)
        filename = stem + (mimetypes.guess_extension(mime) or "")
        self.attachments[filename] = {mime: content}
        return f"attachment:{filename}"

    def image(self, key: str, alt: str = "") -> str | None:
        data = self.data(key)
        for mime in _IMAGES:
            if mime in data:
                content = data[mime]
                if mime == "image/svg+xml":  # attachments carry base64, like png
                    content = base64.b64encode(content.encode()).decode()
                return f"![{alt or key}]({self.attach(key, mime, content.strip())})"
        return None

    def text(self, content: str) -> str:
        key, sep, fmt = content.rpartition(":")
        if not sep:
            key, fmt = content, "s"
        data = self.data(key)
        if "text/plain" not in data:
            raise KeyError(f"glue key {key!r} has no text/plain value")
        return format_plain_text(data["text/plain"], fmt)

    def markdown(self, key: str) -> str:
        data = self.data(key)
        if "text/markdown" not in data:
            raise KeyError(f"glue key {key!r} has no text/markdown value")
        return str(data["text/markdown"]).strip()

    def math(self, key: str, block: bool) -> str:
        data = self.data(key)
        latex = str(data.get("text/latex", data.get("text/plain", ""))).strip().strip("$")
        return f"$$\n{latex}\n$$" if block else f"${latex}$"

    def any(self, key: str, block: bool) -> str:
        data = self.data(key)
        if "text/markdown" in data:
            return self.markdown(key)
        image = self.image(key)
        if image is not None:
            return image
        if "text/html" in data:
            return str(data["text/html"]).strip()
        if "text/latex" in data:
            return self.math(key, block)
        text = format_plain_text(str(data.get("text/plain", "")), "")
        return f"```\n{text}\n```" if block else text

    def role(self, match: re.Match[str]) -> str:
        kind, content = match["kind"] or "any", match["content"]
        if kind == "text":
            return self.text(content)
        key = content.rpartition(":")[0] if kind == "md" and ":" in content else content
        if kind == "md":
            return self.markdown(key)
        if kind == "math":
            return self.math(key, block=False)
        return self.any(key, block=False)

    def directive(self, match: re.Match[str]) -> str:
        kind, key = match["kind"] or "any", match["key"]
        options, caption = _options(match["body"])
        if kind == "figure":
            image = self.image(key, options.get("alt", ""))
            shown = image if image is not None else self.any(key, block=True)
            return f"{shown}\n\n*{caption}*" if caption else shown
        if kind == "md":
            return self.markdown(key)
        if kind == "math":
            return self.math(key, block=True)
        return self.any(key, block=True)

    def figure(self, match: re.Match[str]) -> str:
        """A figure read from the book's folder, attached to the cell."""
        path = match["path"]
        file = self.srcdir / path if self.srcdir is not None else None
        mime = mimetypes.guess_type(path)[0]
        if file is None or "://" in path or mime not in _IMAGES or not file.is_file():
            return match[0]
        options, caption = _options(match["body"])
        content = base64.b64encode(file.read_bytes()).decode()
        image = f"![{options.get('alt', '')}]({self.attach(file.name, mime, content)})"
        return f"{image}\n\n*{caption}*" if caption and match["kind"] == "figure" else image


def _quote(heading: str, body: str) -> str:
    lines = [f"**{heading}**", ""] + body.splitlines() if body else [f"**{heading}**"]
    return "\n".join(f"> {line}".rstrip() for line in lines)


def _directive(match: re.Match[str]) -> str:
    """A MyST directive (not glue, not a figure) as Jupyter markdown."""
    name, argument = match["name"], match["argument"].strip()
    _, body = _options(match["body"])
    body = MYST_DIRECTIVE.sub(_directive, body)  # nested directives
    if name == "solution-end":
        return ""
    if name == "admonition":
        return _quote(argument or "Note", body)
    if name in HEADINGS:
        # an exercise's or solution's argument is a label or a title: keep titles only
        title = argument if name in ("exercise", "solution-start") and " " in argument else ""
        return _quote(f"{HEADINGS[name]}{': ' + title if title else ''}", body)
    return match[0]  # anything else (code blocks, math) as it stands


def _xref(match: re.Match[str]) -> str:
    text, _, _ = match["content"].partition("<")
    return text.strip() if "<" in match["content"] else match["content"].strip()


def _myst_to_markdown(text: str) -> str:
    """MyST-only markup of a markdown cell as plain Jupyter markdown."""
    text = TARGET.sub("", text)
    text = MYST_DIRECTIVE.sub(_directive, text)
    text = XREF_ROLE.sub(_xref, text)
    text = CITE_ROLE.sub(lambda m: "[" + "; ".join(k.strip() for k in m["keys"].split(","))
                         + "]", text)
    text = MATH_ROLE.sub(lambda m: f"${m['latex']}$", text)
    return re.sub(r"\n{3,}", "\n\n", text)  # where solution fences stood


def render_markdown(
    source: str, glue: Mapping[str, Any], srcdir: Path | None = None
) -> tuple[str, dict[str, dict[str, str]]]:
    """Replace the glue roles and directives of a markdown cell by their values.

    MyST's other markup (directives such as ``{exercise}``, cross-reference
    and citation roles, label targets) is written as plain Jupyter markdown.

    Parameters
    ----------
    source : str
        Markdown source of the cell.
    glue : mapping
        Glue key to output, as returned by :func:`glue_data`.
    srcdir : pathlib.Path, optional
        Folder of the chapter; ``{figure}`` directives naming an image in it are
        attached to the cell.

    Returns
    -------
    tuple of (str, dict)
        The markdown and the cell's attachments (file name to MIME bundle).

    Raises
    ------
    KeyError
        If a role or directive names a key that was not glued, or a value
        without the MIME type the role needs.
    """
    renderer = _Renderer(glue, srcdir)
    text = GLUE_DIRECTIVE.sub(renderer.directive, source)
    text = FIGURE_DIRECTIVE.sub(renderer.figure, text)
    text = GLUE_ROLE.sub(renderer.role, text)
    return _myst_to_markdown(text).strip("\n"), renderer.attachments


def chapter_notebook(
    nb: nbformat.NotebookNode,
    glue: Mapping[str, Any] | None = None,
    srcdir: Path | None = None,
) -> nbformat.NotebookNode:
    """A standalone notebook of an executed chapter, with the glued values in its prose.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The executed chapter (not changed).
    glue : mapping, optional
        Its glue data; by default it is taken out of ``nb`` with
        :func:`glue_data` (myst-nb's build passes the data it extracted).
    srcdir : pathlib.Path, optional
        Folder of the chapter source, for figures read from files.

    Returns
    -------
    nbformat.NotebookNode
        A valid nbformat 4 notebook: every cell kept with its outputs, markdown
        without MyST glue references, no jupytext or myst-nb metadata.

    Raises
    ------
    KeyError
        If the prose refers to a value that was not glued.
    """
    out = copy.deepcopy(nb)
    if glue is None:
        glue = glue_data(out)
    for cell in out.cells:
        if cell.cell_type != "markdown":
            continue
        cell.source, attachments = render_markdown(cell.source, glue, srcdir)
        if attachments:
            cell["attachments"] = {**cell.get("attachments", {}), **attachments}
    for key in ("jupytext", "source_map"):
        out.metadata.pop(key, None)
    out.nbformat, out.nbformat_minor = 4, max(int(out.get("nbformat_minor", 0)), 5)
    nbformat.validate(out)
    return out


def _is_notebook(app: Sphinx, docname: str) -> bool:
    path = Path(app.env.doc2path(docname))
    if path.suffix == ".ipynb":
        return True
    return path.suffix == ".md" and is_myst_markdown_notebook(path.read_text(encoding="utf8"))


def _link(app: Sphinx, docname: str) -> str:
    """URL of the chapter's notebook, relative to its page."""
    target = f"{FOLDER}/{docname}.ipynb"
    return posixpath.relpath(target, posixpath.dirname(docname) or ".")


def _add_note(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Put a link to the notebook under the chapter's title."""
    if app.builder.format != "html" or not _is_notebook(app, docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    name = posixpath.basename(docname) + ".ipynb"
    para = nodes.paragraph()
    para += nodes.Text("This chapter as a Jupyter notebook, executed: ")
    para += nodes.reference(name, "", nodes.literal(name, name), refuri=_link(app, docname))
    para += nodes.Text(". It reruns on its own wherever lmmlib is installed.")
    note = nodes.admonition("", nodes.title("Notebook", "Notebook"), para,
                            classes=["tip", "chapter-notebook"])
    index = 1 if section.children and isinstance(section[0], nodes.title) else 0
    section.insert(index, note)


def _add_download(app: Sphinx, pagename: str, templatename: str,
                  context: dict[str, Any], doctree: nodes.document | None) -> None:
    """Offer the notebook first in the page's download menu."""
    if doctree is None or not _is_notebook(app, pagename):
        return
    pathto: Callable[..., str] = context["pathto"]
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].insert(0, {
                "type": "link",
                "url": pathto(f"{FOLDER}/{pagename}.ipynb", 1),
                "text": ".ipynb",
                "icon": "fas fa-code",
                "tooltip": "Download the executed notebook",
                "label": "download-chapter-notebook-button",
            })


def _write_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Convert myst-nb's executed notebooks into ``notebooks/`` of the HTML output."""
    if exception is not None or app.builder.format != "html":
        return
    executed = Path(app.env.mystnb_config.output_folder)  # set by myst-nb at builder-inited
    folder = Path(app.outdir) / FOLDER
    for docname in sorted(app.env.found_docs):
        if not _is_notebook(app, docname):
            continue
        source = executed / f"{docname}.ipynb"
        if not source.is_file():
            _logger.warning("no executed notebook for %s (%s)", docname, source)
            continue
        glue_file = executed / f"{docname}.glue.json"
        glue = json.loads(glue_file.read_text(encoding="utf8")) if glue_file.is_file() else {}
        nb = nbformat.read(source, as_version=4)
        srcdir = Path(app.env.doc2path(docname)).parent
        try:
            notebook = chapter_notebook(nb, glue, srcdir)
        except KeyError as exc:
            _logger.warning("notebook of %s: %s", docname, exc.args[0])
            continue
        target = folder / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)


def _lookup(name: str) -> Any:
    """The Python object of a dotted name (longest importable module, then attributes)."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


_DOCSTRING_OF = re.compile(r"docstring of (?P<name>[\w.]+)")


def _documented(env: Any) -> dict[int, tuple[str, Any]]:
    """Documented lmmlib callables and classes by identity (built once per build)."""
    cache: dict[int, tuple[str, Any]] | None = getattr(env, "_lmmlib_documented", None)
    if cache is None:
        cache = {}
        for fullname, entry in env.get_domain("py").objects.items():
            if entry.objtype in ("function", "class", "exception", "method", "property") \
                    and fullname.startswith("lmmlib") and not entry.aliased:
                obj = _lookup(fullname)
                if obj is not None:
                    cache.setdefault(id(obj), (fullname, obj))  # obj kept: ids stay unique
        env._lmmlib_documented = cache
    return cache


def _resolve_alias(app: Sphinx, env: Any, node: Any, contnode: nodes.Element) -> Any:
    """Resolve a missing Python reference to where its lmmlib object is documented."""
    if node.get("refdomain") != "py" or node.get("reftype") == "mod":
        return None
    target = str(node.get("reftarget", "")).lstrip(".~")
    contexts = [""]
    for scope in (node.get("py:module"), node.get("py:module", "") + "." + str(node.get("py:class"))
                  if node.get("py:class") else None):
        if scope:
            contexts.append(scope)
    match = _DOCSTRING_OF.search(str(node.source or ""))
    if match:  # the module (and class) whose docstring holds the reference
        parts = match["name"].split(".")
        contexts += [".".join(parts[:cut]) for cut in range(len(parts) - 1, 0, -1)]
    documented = _documented(env)
    for context in contexts:
        obj = _lookup(f"{context}.{target}" if context else target)
        if obj is None or id(obj) not in documented:
            continue
        fullname = documented[id(obj)][0]
        domain = env.get_domain("py")
        return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", fullname,
                                   node, contnode)
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the hooks that write and link the chapter notebooks."""
    app.connect("missing-reference", _resolve_alias)
    app.connect("doctree-resolved", _add_note)
    # after sphinx-book-theme has built its header buttons (priority 501)
    app.connect("html-page-context", _add_download, priority=600)
    app.connect("build-finished", _write_notebooks)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1.0"}
