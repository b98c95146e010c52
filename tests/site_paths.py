"""Where the tests find the built book, and what a test does without it (imported by name:
``from site_paths import ...``; kept out of ``conftest.py`` for the reason given in ``explorer_checks.py``).

The ``html`` fixture of ``tests/conftest.py`` gives the tests of the built book :data:`HTML_DIR` through
:func:`require_build`; the tests of a build folder of their own (the student edition) call :func:`require_build`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The build folders (``html``: the book, ``student``: the student edition, ``pdf``: the PDFs).
BUILD = ROOT / "_build"
#: The built book: ``_build/html``, or ``$GDLAB_HTML_DIR`` (another build of it).
HTML_DIR = Path(os.environ.get("GDLAB_HTML_DIR") or BUILD / "html")
#: Set to 1 (CI, after the builds), a missing build fails the tests that need it instead of skipping them.
REQUIRE_BUILDS = "GDLAB_REQUIRE_BUILDS"


def require_build(site: Path, reason: str, needs: str = "index.html") -> Path:
    """``site`` if it holds the file ``needs``; else skip the test with ``reason``, or fail it under
    ``GDLAB_REQUIRE_BUILDS=1``. The skip is reported at the caller's line, not here."""
    __tracebackhide__ = True
    if not (site / needs).is_file():
        if os.environ.get(REQUIRE_BUILDS) == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return site
