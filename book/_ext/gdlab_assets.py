"""The one way the gdlab extensions put their own static files (style sheets, scripts) into an HTML build.

Each extension keeps its files next to its module and registers them itself (``app.add_css_file`` /
``app.add_js_file``, each with its own loading method); this module only copies them into ``_static/``:

* :func:`copy_changed` copies files into a folder, skipping a file whose identical copy is already there (so an
  unchanged file keeps its time stamp across builds);
* :func:`copy_to_static` makes the ``build-finished`` handler that does so after a successful HTML build.

Not a Sphinx extension itself: the others import it (``book/_ext`` is on the path of every build and of the
gdlab_states workers).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path


def copy_changed(assets: Iterable[Path], static: Path) -> None:
    """Copy each file of ``assets`` into the folder ``static`` (made if missing) unless the same bytes are there."""
    static.mkdir(parents=True, exist_ok=True)
    for asset in assets:
        target = static / asset.name
        if not target.is_file() or target.read_bytes() != asset.read_bytes():
            shutil.copyfile(asset, target)


def html_succeeded(app, exception) -> bool:
    """Whether a ``build-finished`` event closes a successful build of an HTML builder."""
    return exception is None and app.builder.format == "html"


def copy_to_static(*assets: Path) -> Callable[[object, BaseException | None], None]:
    """A ``build-finished`` handler that copies ``assets`` into ``_static/`` (:func:`copy_changed`) after a
    successful HTML build, and does nothing after any other."""

    def copy_assets(app, exception) -> None:
        if html_succeeded(app, exception):
            copy_changed(assets, Path(app.outdir) / "_static")

    return copy_assets
