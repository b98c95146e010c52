"""Accessibility fixes for the web book: what axe-core (``tests/browser/test_accessibility.py``) reports as serious
or critical on our pages and the theme's, in light and dark mode.

Loaded from ``_config.yml`` (``sphinx: local_extensions``); HTML builders only. Three kinds of fix:

* **in the page body, at build time** (``html-page-context``, :func:`fix_body`): the bibliography's entries get the
  role ``listitem`` instead of docutils' ``doc-biblioentry`` (a role deprecated in DPUB-ARIA 1.1, so axe saw
  the entries' links as direct children of a ``role="list"`` element, a critical violation), and myst-nb's
  "Show code cell ..." toggles lose their ``aria-label="Toggle hidden content"``, which hid the visible text from
  screen readers (their name is now the text a sighted reader sees);
* **colours** (``gdlab_a11y.css``): links inside exercise and solution boxes and table rows, whose tinted background took the
  theme's link blue below the contrast ratio 4.5:1 in light mode, and the dark-mode background of Sphinx's index
  tables (the proof index), which stayed light grey under light text;
* **the theme's navbar** (``gdlab_a11y.js``, run once the page is parsed): the search buttons whose visible text
  ("Search", "Ctrl+K") differed from their ``aria-label`` take their name from that text, and the colour-mode
  button's icons, whose titles ("Light", "Dark", which Font Awesome writes into each icon's ``<svg>``) were read
  as its text next to the label "Color mode", become plain decoration, hidden from assistive technology (the
  label stays); the sidebar's expander of a section with sub-pages (only a chevron) is named after the section.

Both files sit next to this one and are copied to ``_static/`` at the end of an HTML build.
"""

from __future__ import annotations

from pathlib import Path

from gdlab_assets import copy_to_static

ASSETS = [Path(__file__).with_name(f"gdlab_a11y.{ext}") for ext in ("css", "js")]

#: Literal replacements in every page body: (what docutils / myst-nb write, what the page gets).
BODY_FIXES = (
    ('role="doc-biblioentry"', 'role="listitem"'),
    ('<summary aria-label="Toggle hidden content">', "<summary>"),
)


def fix_body(body: str) -> str:
    """The page body with :data:`BODY_FIXES` applied."""
    for old, new in BODY_FIXES:
        body = body.replace(old, new)
    return body


def on_page_context(app, pagename, templatename, context, doctree) -> None:
    """``html-page-context``: fix the body of every page."""
    if "body" in context:
        context["body"] = fix_body(context["body"])


#: ``build-finished``: put the style sheet and the script into ``_static/`` (only when they changed).
copy_assets = copy_to_static(*ASSETS)


def setup(app) -> dict:
    app.add_css_file("gdlab_a11y.css")
    app.add_js_file("gdlab_a11y.js", loading_method="defer")
    app.connect("html-page-context", on_page_context)
    app.connect("build-finished", copy_assets)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
