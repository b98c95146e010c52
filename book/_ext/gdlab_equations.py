"""Displayed equations that fit narrow screens: loads ``gdlab_equations.css`` (next to this file) on every HTML page.

The style sheet lets an equation's number go below the equation when the two do not fit side by side, and makes an
equation wider than the page scroll inside its own box instead of being cut off (see its comment). The equations
themselves are broken in the sources so that they fit a 390 px phone; ``tests/browser/test_math.py`` measures both.
"""

from __future__ import annotations

from pathlib import Path

from gdlab_assets import copy_to_static

CSS = Path(__file__).with_name("gdlab_equations.css")


#: ``build-finished``: copy the style sheet into the HTML build's ``_static/`` once the build has succeeded.
copy_css = copy_to_static(CSS)


def setup(app) -> dict:
    app.add_css_file(CSS.name)
    app.connect("build-finished", copy_css)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
