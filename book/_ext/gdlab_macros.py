"""The book's LaTeX macros (``\\R``, ``\\norm{x}``, ...): one list, written into every place that needs it.

The one source is ``sphinx: config: mathjax3_config: tex: macros`` in ``_config.yml`` (what the web pages' MathJax
uses). From it come

* the LaTeX preamble of the PDF: this Sphinx extension (``_config.yml``, ``sphinx: local_extensions``) puts
  :func:`latex_definitions` in front of ``latex_elements["preamble"]`` on ``config-inited``;
* the macros of each chapter notebook, for Jupyter with jupyterlab-myst: MyST front matter (``math:``) in the
  notebook's first markdown cell, tagged ``remove-cell`` so the book does not show it (:func:`frontmatter_cell`,
  written by ``scripts/sync_notebooks.py``; ``tests/test_notebook_sources.py`` fails when a copy drifts);
* the plain notebooks for tools without MyST (Colab, VS Code, nbconvert): there every macro is expanded in place
  (:func:`expand`), because Colab and VS Code typeset each cell on its own and forget a ``\\newcommand`` made in
  another cell.

A macro is ``name -> (body, number of arguments)``; bodies use ``#1``, ``#2`` for their arguments.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

#: Tag of the front-matter cell: myst-nb leaves the cell out of the book (and the plain export drops it too).
FRONTMATTER_TAG = "remove-cell"

Macros = dict[str, tuple[str, int]]


def load(config_path: Path) -> Macros:
    """The macros of ``_config.yml`` at ``config_path``, as ``{name: (body, nargs)}`` in their order there."""
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    return from_mathjax(config["sphinx"]["config"]["mathjax3_config"])


def from_mathjax(mathjax3_config: dict) -> Macros:
    """The macros of a MathJax 3 configuration (``{"tex": {"macros": {name: body or [body, nargs]}}}``)."""
    raw = mathjax3_config["tex"]["macros"]
    return {name: _normalise(name, value) for name, value in raw.items()}


def _normalise(name: str, value) -> tuple[str, int]:
    if isinstance(value, str):
        return value, 0
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int):
        return value[0], value[1]
    raise ValueError(f"macro {name!r}: expected a string or [body, number of arguments], got {value!r}")


def latex_definitions(macros: Macros) -> str:
    """LaTeX lines defining every macro, whether or not a package already has a command of that name."""
    lines = ["% Book-wide macros, generated from mathjax3_config in _config.yml (book/_ext/gdlab_macros.py)."]
    for name, (body, nargs) in macros.items():
        args = f"[{nargs}]" if nargs else ""
        lines.append(f"\\providecommand{{\\{name}}}{{}}\\renewcommand{{\\{name}}}{args}{{{body}}}")
    return "\n".join(lines) + "\n"


def frontmatter(macros: Macros) -> str:
    """MyST front matter declaring every macro (``math:``), for jupyterlab-myst; argument counts come from ``#n``."""
    lines = ["---", "# The book's LaTeX macros, for Jupyter (jupyterlab-myst). Generated from _config.yml by",
             "# scripts/sync_notebooks.py: edit the list there, not here.", "math:"]
    for name, (body, _) in macros.items():
        lines.append(f"  '\\{name}': '{body}'")
    lines.append("---")
    return "\n".join(lines)


def _argument(tex: str, pos: int) -> tuple[str, int]:
    """The argument of a macro starting at ``tex[pos:]`` (after spaces): a balanced ``{...}`` group or one token."""
    while pos < len(tex) and tex[pos] == " ":
        pos += 1
    if pos >= len(tex):
        raise ValueError(f"a macro argument is missing at the end of {tex!r}")
    if tex[pos] == "{":
        depth, end = 0, pos
        while end < len(tex):
            char = tex[end]
            if char == "\\":  # an escaped character (\{, \}) or a control word: never a group brace
                end += 2
                continue
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                return tex[pos + 1:end], end + 1
            end += 1
        raise ValueError(f"unbalanced braces in a macro argument: {tex[pos:]!r}")
    command = re.match(r"\\[A-Za-z]+|\\.", tex[pos:])
    token = command.group(0) if command else tex[pos]
    return token, pos + len(token)


def expand(tex: str, macros: Macros) -> str:
    """``tex`` with every use of a macro replaced by its body (arguments substituted), recursively."""
    if not macros:
        return tex
    names = "|".join(sorted((re.escape(n) for n in macros), key=len, reverse=True))
    pattern = re.compile(rf"\\({names})(?![A-Za-z])")
    out, pos = [], 0
    while match := pattern.search(tex, pos):
        out.append(tex[pos:match.start()])
        body, nargs = macros[match.group(1)]
        end = match.end()
        for k in range(1, nargs + 1):
            arg, end = _argument(tex, end)
            body = body.replace(f"#{k}", expand(arg, macros))
        # a body that ends in a control word must not run into a following letter
        if re.search(r"\\[A-Za-z]+$", body) and end < len(tex) and tex[end].isalpha():
            body += " "
        out.append(body)
        pos = end
    out.append(tex[pos:])
    return "".join(out)


def add_to_latex_preamble(app, config) -> None:
    """``config-inited``: the macros first in the PDF's preamble."""
    macros = from_mathjax(config.mathjax3_config)
    elements = dict(config.latex_elements or {})
    elements["preamble"] = latex_definitions(macros) + elements.get("preamble", "")
    config.latex_elements = elements


def setup(app) -> dict:
    app.connect("config-inited", add_to_latex_preamble)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
