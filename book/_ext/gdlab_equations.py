"""Displayed equations that fit narrow screens: loads ``gdlab_equations.css`` (next to this file) on every HTML page.

The style sheet lets an equation's number go below the equation when the two do not fit side by side, and makes an
equation wider than the page scroll inside its own box instead of being cut off (see its comment). The equations
themselves are broken in the sources so that they fit a 390 px phone; ``tests/browser/test_math.py`` measures both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CSS = Path(__file__).with_name("gdlab_equations.css")


def copy_css(app, exception) -> None:
    """Copy the style sheet into the HTML build's ``_static/`` once the build has succeeded."""
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CSS, static / CSS.name)


def setup(app) -> dict:
    app.add_css_file(CSS.name)
    app.connect("build-finished", copy_css)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
