"""The repository buttons follow one setting, ``repository: url`` in ``_config.yml`` (book/_ext/gdlab_theme.py); the
favicon.

The tests of the extension need no build: they run ``_config.yml`` through Jupyter Book's configuration and
sphinx-book-theme's own button code, with the repository set and unset. The tests of the built site
(``_build/html``) are skipped without a build, unless ``GDLAB_REQUIRE_BUILDS=1`` (CI, after the clean build).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_lite  # noqa: E402
import gdlab_plain  # noqa: E402
import gdlab_theme  # noqa: E402

CONFIG = ROOT / "_config.yml"
#: The repository the buttons pointed at before gdlab_theme, which does not exist.
PLACEHOLDER = "github.com/gdlab/gdlab-book"
#: Hosts that only a repository can make a page link to: the repository itself, and the services that open it.
REPOSITORY_HOSTS = ("github.com", "gitlab.com", "bitbucket.org", "colab.research.google.com", "mybinder.org")
EXAMPLE_REPOSITORY = "https://github.com/example-org/example-book"
CHAPTER = "book/01_nonconvexity"


def configured_repository() -> str:
    """The book's repository setting (``repository: url`` in _config.yml), "" when unset."""
    return str((yaml.safe_load(CONFIG.read_text(encoding="utf-8")).get("repository") or {}).get("url") or "")


def links(page: str) -> list[str]:
    """Every address a page links to or loads (``href``, ``src``, ``action`` attributes)."""
    return re.findall(r'\b(?:href|src|action)\s*=\s*["\']([^"\']*)["\']', page)


def bad_repository_links(addresses: list[str], repository: str) -> list[str]:
    """The addresses that point at the placeholder repository, or at a repository host while no repository is set,
    or, when one is set, at a repository host for another repository."""
    bad = []
    for address in addresses:
        host = urlsplit(address).hostname or ""
        on_repository_host = any(host == h or host.endswith("." + h) for h in REPOSITORY_HOSTS)
        owner_repo = urlsplit(repository).path.strip("/") if repository else None
        if PLACEHOLDER in address or (on_repository_host and (not owner_repo or owner_repo not in address)):
            bad.append(address)
    return bad


def site_pages(root: Path) -> list[Path]:
    """Every HTML page of the book: not the theme's template fragments in ``_static/`` (nor other ``_`` folders),
    nor the JupyterLite site (an application of its own)."""
    skip = {gdlab_lite.LITE_DIR}
    return [p for p in sorted(root.rglob("*.html"))
            if not (p.parent != root and (p.relative_to(root).parts[0] in skip or p.relative_to(root).parts[0][0] == "_"))]


def pages_without_icon(root: Path, icon: Path) -> list[str]:
    """The pages of ``root`` (redirect pages aside) that do not declare ``icon`` as their icon."""
    missing = []
    for page in site_pages(root):
        text = page.read_text(encoding="utf-8")
        if re.search(r'<meta\s+http-equiv="Refresh"', text, re.IGNORECASE):
            continue  # a redirect page (the root index.html)
        icons = re.findall(r'<link\s+rel="icon"\s+href="([^"]+)"', text)
        if not icons or not all((page.parent / href).resolve() == icon.resolve() for href in icons):
            missing.append(page.relative_to(root).as_posix())
    return missing


def theme_options(repository: str) -> dict:
    """``html_theme_options`` as Jupyter Book makes them from _config.yml, with ``repository: url`` replaced."""
    from jupyter_book.config import get_final_config

    user = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    user["repository"] = {**user.get("repository", {}), "url": repository}
    config, _ = get_final_config(user_yaml=user, cli_config={"latex_individualpages": False}, sourcedir=ROOT)
    return config["html_theme_options"]


def header_buttons(options: dict, pagename: str = CHAPTER) -> list[dict]:
    """The header buttons of a chapter page: ``options`` through gdlab_theme (on ``config-inited``), then
    sphinx-book-theme's own button code, gdlab_theme's JupyterLite button and gdlab_plain's Colab address, on a
    stand-in for Sphinx's application (no build)."""
    from sphinx_book_theme.header_buttons import prep_header_buttons, update_context_with_repository_info
    from sphinx_book_theme.header_buttons.launch import add_launch_buttons
    from sphinx_book_theme.header_buttons.source import add_source_buttons

    class Config(dict):
        __getattr__ = dict.__getitem__

        def __setattr__(self, key, value):
            self[key] = value

    config = Config(html_theme_options=options, html_context={}, html_static_path=[])
    app = SimpleNamespace(config=config, env=SimpleNamespace(doc2path=lambda doc: ROOT / f"{doc}.ipynb",
                                                             metadata={pagename: {"kernelspec": {"name": "python3"}}}))
    gdlab_theme.on_config_inited(app, config)
    app.builder = SimpleNamespace(theme_options=config.html_theme_options)
    update_context_with_repository_info(app)
    context = {**config.html_context, "pagename": pagename, "page_source_suffix": ".ipynb",
               "sourcename": f"{pagename}.ipynb"}
    prep_header_buttons(app, pagename, "page.html", context, None)
    for handler in (add_launch_buttons, add_source_buttons, gdlab_theme.add_lite_button):  # by priority
        handler(app, pagename, "page.html", context, None)
    gdlab_plain.colab_opens_plain(app, pagename, "page.html", context, None)
    return context["header_buttons"]


def button_urls(groups: list[dict]) -> dict[str, str]:
    """Text -> address of every link button in the header's groups."""
    return {b["text"]: b["url"] for g in groups for b in g.get("buttons", []) if b.get("type") == "link"}


# --- the extension (no build) --------------------------------------------------------------------------------


def test_with_a_repository_every_button_is_there():
    urls = button_urls(header_buttons(theme_options(EXAMPLE_REPOSITORY)))
    name = CHAPTER.split("/")[-1]
    assert urls["Repository"] == EXAMPLE_REPOSITORY
    assert urls["Open issue"].startswith(f"{EXAMPLE_REPOSITORY}/issues/new")
    assert urls["Colab"] == f"https://colab.research.google.com/github/example-org/example-book/blob/main/notebooks/" \
                            f"{name}.ipynb", "Colab must open the plain copy of the chapter"
    assert urls["Binder"].startswith("https://mybinder.org/v2/gh/example-org/example-book/main")
    assert urls["JupyterLite"] == gdlab_lite.lite_url(CHAPTER)
    assert not bad_repository_links(list(urls.values()), EXAMPLE_REPOSITORY)


def test_without_a_repository_only_jupyterlite_is_left():
    groups = header_buttons(theme_options(""))
    assert button_urls(groups) == {"JupyterLite": gdlab_lite.lite_url(CHAPTER)}
    assert [g["label"] for g in groups] == ["launch-buttons"], "one launch menu, no source-repository menu"


def test_the_book_names_no_placeholder_repository():
    """README, the book's text pages and the configuration never promise the placeholder."""
    for path in (CONFIG, ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))):
        assert PLACEHOLDER not in path.read_text(encoding="utf-8"), path.name


def test_the_link_check_has_power():
    """The check used on the built pages finds the buttons of a repository (here the placeholder's) when the
    setting is unset, the placeholder even when some repository is set, and lets the configured one through."""
    placeholder_urls = list(button_urls(header_buttons(theme_options(f"https://{PLACEHOLDER}"))).values())
    assert len(bad_repository_links(placeholder_urls, "")) == 4  # repository, issue, Colab, Binder
    assert bad_repository_links(placeholder_urls, EXAMPLE_REPOSITORY)
    assert bad_repository_links(["https://mybinder.org/v2/gh/a/b/main"], "") == ["https://mybinder.org/v2/gh/a/b/main"]
    assert not bad_repository_links([EXAMPLE_REPOSITORY + "/issues/new", "../lite/lab/index.html"], EXAMPLE_REPOSITORY)
    assert links('<a class="x" href="https://github.com/a/b">') == ["https://github.com/a/b"]


# --- the built site ------------------------------------------------------------------------------------------


def test_no_page_links_to_a_repository_that_is_not_set(html):
    repository = configured_repository()
    pages = site_pages(html)
    assert any("JupyterLite" in p.read_text(encoding="utf-8") for p in pages), "no page has the JupyterLite button"
    bad = {p.relative_to(html).as_posix(): found for p in pages
           if (found := bad_repository_links(links(p.read_text(encoding="utf-8")), repository))}
    assert not bad, f"links to a repository (setting: {repository!r}): {bad}"


def favicon() -> Path:
    """The favicon's file in the repository (``html: favicon`` in _config.yml)."""
    return ROOT / yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["html"]["favicon"]


def test_favicon_on_every_page(html):
    icon = html / "_static" / favicon().name
    assert icon.read_bytes() == favicon().read_bytes(), "the favicon is not in the site"
    assert not pages_without_icon(html, icon), "pages without the favicon"


def test_the_favicon_check_has_power(tmp_path):
    icon = tmp_path / "_static" / "icon.svg"
    icon.parent.mkdir()
    icon.write_text("<svg/>")
    (tmp_path / "a.html").write_text('<head><link rel="icon" href="_static/icon.svg"/></head>')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "c.html").write_text('<head><link rel="icon" href="../_static/other.svg"/></head>')
    (tmp_path / "d.html").write_text("<head></head>")
    assert pages_without_icon(tmp_path, icon) == ["b/c.html", "d.html"]


def placeholder_mentions(files: dict[str, str]) -> list[str]:
    """The files (name -> text) that mention the placeholder repository."""
    return sorted(name for name, text in files.items() if PLACEHOLDER in text)


def test_no_source_names_the_placeholder_repository():
    """No tracked file (notebooks, pages, README, code; this test aside) names the placeholder repository: the
    notebooks' Colab branch used to install gdlab from it."""
    import subprocess

    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = {n: (ROOT / n).read_text(encoding="utf-8", errors="replace") for n in names
             if n != "tests/test_site_links.py" and (ROOT / n).is_file()}
    assert len(files) > 50
    assert not placeholder_mentions(files)


def test_power_placeholder_mentions_are_found():
    assert placeholder_mentions({"a.ipynb": f'%pip install "gdlab @ git+https://{PLACEHOLDER}"', "b.md": "x"}) == [
        "a.ipynb"]
