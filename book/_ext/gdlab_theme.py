"""The book's settings for its theme (sphinx-book-theme): the repository buttons, and search snippets without raw math.

Loaded from ``_config.yml`` (``sphinx: local_extensions``).

**One setting names the repository.** ``repository: url`` in ``_config.yml`` (the theme's ``repository_url``) is the
book's public repository. When it is set, every page gets the theme's "Repository" and "Open issue" buttons, and each
chapter page the launch buttons that open its notebook from that repository (``launch_buttons: colab_url``,
``binderhub_url``; Colab opens the plain copy, see gdlab_plain). When it is empty (as long as the book has no public
repository), none of these buttons is shown, so no page links to a repository that does not exist
(:func:`repository_options`, on ``config-inited``). The theme builds its launch buttons only for a repository, so
then this extension adds the one launch button that needs none, the book's own JupyterLite site
(``launch_buttons: jupyterlite_url``), in the theme's own form (:func:`add_lite_button`); gdlab_lite makes its
address relative to the page, as it does for the theme's button. (Leave ``url`` empty rather than out: Jupyter Book
fills a missing one with its own repository.)

**Search snippets.** Sphinx's search page shows, under each result, a snippet of the page's text, taken from the
page's HTML, in which math is still TeX (``\\(x^2\\)``; or MathJax markup when math is rendered at build time).
``gdlab_theme_static/gdlab_search.js`` (loaded by the search page only) replaces each math element, and any TeX left
between math delimiters, by an ellipsis before the snippet is cut.

The theme's own navigation (the drawer on phones and tablets, the sidebar toggle) works with the versions pinned in
``requirements.txt``; ``tests/browser/test_navigation.py`` checks it.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx

STATIC = Path(__file__).with_name("gdlab_theme_static")  # this extension's static files, copied to _static/
SEARCH_JS = "gdlab_search.js"

#: The theme's buttons that link into the repository.
REPOSITORY_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button", "use_source_button")
#: The two that the repository setting turns on (editing a page stays as configured).
SHOWN_WITH_REPOSITORY = ("use_repository_button", "use_issues_button")
#: Launch services that open a page's notebook from the repository (``launch_buttons`` keys).
REPOSITORY_LAUNCHERS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "thebe")
LITE_KEY = "jupyterlite_url"


def repository_options(options: dict) -> tuple[dict, str]:
    """The theme options ``options`` (``html_theme_options``) made to follow the repository setting.

    Returns ``(new options, lite)``. With ``repository_url`` set, the repository and issue buttons are on and the
    launch buttons stay as configured; ``lite`` is ``""`` (the theme builds the JupyterLite button). With it empty
    or missing, every repository button is off and ``launch_buttons`` keeps neither the services that open the
    repository nor ``jupyterlite_url``, which is returned as ``lite`` for :func:`add_lite_button` (the theme cannot
    build it without a repository). ``options`` is not modified.
    """
    new = dict(options)
    launch = dict(new.get("launch_buttons") or {})
    if str(new.get("repository_url") or "").strip():
        new.update(dict.fromkeys(SHOWN_WITH_REPOSITORY, True))
        return new, ""
    new.update(dict.fromkeys(REPOSITORY_BUTTONS, False))
    lite = str(launch.pop(LITE_KEY, "") or "")
    for key in REPOSITORY_LAUNCHERS:
        launch.pop(key, None)
    new["launch_buttons"] = launch
    return new, lite


def lite_button_group(lite: str, pagename: str) -> dict:
    """The theme's launch-button group holding one "JupyterLite" button for ``pagename``'s notebook, as
    sphinx-book-theme builds it (``lite`` relative to the site's root; gdlab_lite makes it relative to the page)."""
    return {
        "type": "group",
        "tooltip": "Launch interactive content",
        "icon": "fas fa-rocket",
        "label": "launch-buttons",
        "buttons": [{
            "type": "link",
            "text": "JupyterLite",
            "tooltip": "Launch via JupyterLite",
            "icon": "_static/images/logo_jupyterlite.svg",
            "url": f"{lite.rstrip('/')}?path={pagename}.ipynb",
        }],
    }


def is_notebook_page(app: Sphinx, pagename: str, context: dict) -> bool:
    """Whether the page was built from a notebook (the pages that get launch buttons)."""
    metadata = app.env.metadata.get(pagename, {})
    return "kernelspec" in metadata or context.get("page_source_suffix") == ".ipynb"


def on_config_inited(app: Sphinx, config) -> None:
    """Apply :func:`repository_options`; serve this extension's static files."""
    config.html_theme_options, app.gdlab_lite_launch = repository_options(config.html_theme_options)
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def add_lite_button(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context``, after the theme's buttons and before gdlab_lite's fix: the JupyterLite launch button on
    notebook pages when the theme does not make it (no repository); the search script on the search page."""
    if pagename == "search":
        app.add_js_file(SEARCH_JS)
    lite = getattr(app, "gdlab_lite_launch", "")
    buttons = context.get("header_buttons")
    if lite and buttons is not None and is_notebook_page(app, pagename, context):
        buttons.insert(0, lite_button_group(lite, pagename))


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", on_config_inited)
    app.connect("html-page-context", add_lite_button, priority=550)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
