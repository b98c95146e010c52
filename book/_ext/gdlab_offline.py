"""Offline pages: MathJax, require.js and the ipywidgets HTML manager served by the book itself.

By default a Jupyter Book page loads MathJax, require.js and the widget manager from CDNs, and sphinx-thebe writes a
CDN address into every page. This extension, loaded from ``_config.yml`` (``sphinx: local_extensions``), makes the
pages self-contained:

* on ``config-inited`` it fills ``.cache/gdlab-static/gdlab-assets/`` (gitignored) from three npm tarballs pinned in
  :data:`NPM` (name, version, sha512 integrity from the npm registry). The tarballs are fetched once over HTTPS with
  ``urllib`` into ``.cache/npm/``, checked against the pinned integrity, and checked again and reused by every later
  build (also after ``jupyter-book clean --all``, which only removes ``_build``); see gdlab_fetch.py. No
  ``node``/``npm`` is needed.
  ``_config.yml`` lists ``.cache/gdlab-static`` in ``html_static_path``, so the files end up in
  ``_build/html/_static/gdlab-assets/`` and ``mathjax_path`` / ``nb_ipywidgets_js`` point there;
* with ``launch_buttons: thebe: false`` it disconnects sphinx-thebe (loaded by Jupyter Book whether used or not),
  whose only effect on our pages would be a script with an unpkg.com address;
* it drops the widget state that executing a notebook records (nbclient stores it in the executed notebook's
  metadata): our explorers' live output is removed from the pages, so embedding the state would only ship
  controls without a kernel. ``gdlab_embed_widget_state: true`` (``sphinx: config``) turns this off.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

from gdlab_fetch import CACHE, fetch_npm
from sphinx.application import Sphinx
from sphinx.config import Config

#: npm packages served from ``_static/gdlab-assets/``: name -> (version, sha512 integrity of the registry tarball).
NPM = {
    "mathjax": (
        "3.2.2", "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="),
    "requirejs": (
        "2.3.7", "sha512-DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw=="),
    "@jupyter-widgets/html-manager": (
        "1.0.15", "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA=="),
}
ASSETS = "gdlab-assets"       # folder name inside _static/
#: MathJax's entry point for node (gdlab_math.py typesets the book's math with it), relative to ``ASSETS``.
MATHJAX_NODE_MAIN = "mathjax/node-main.js"

# Loaded between require.js and embed-amd.js (see nb_ipywidgets_js in _config.yml): embed-amd.js asks require.js for
# "@jupyter-widgets/html-manager/dist/libembed-amd", and the manager takes its fonts from
# __jupyter_widgets_assets_path__; both point at our copy. Widget modules other than the built-in ones would be
# looked up under data-jupyter-widgets-cdn, also pointed at our copy (they are not there: no external request).
SHIM = """\
/* gdlab: serve the ipywidgets HTML manager from _static/gdlab-assets (no CDN). Written by book/_ext/gdlab_offline.py */
(function () {
  var root = document.documentElement.dataset.content_root || "";
  var base = root + "_static/gdlab-assets/html-manager/";
  window.__jupyter_widgets_assets_path__ = base;
  if (document.currentScript) { document.currentScript.setAttribute("data-jupyter-widgets-cdn", base + "modules/"); }
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist/libembed-amd": base + "libembed-amd" } });
})();
"""


def _extract(tarball: Path, members: dict[str, str], dest: Path) -> None:
    """Extract the tarball's files whose name starts with a key of ``members`` to ``dest / value / rest``."""
    with tarfile.open(tarball) as tar:
        for info in tar.getmembers():
            if not info.isfile():
                continue
            for prefix, target in members.items():
                if info.name.startswith(prefix):
                    out = dest / target / info.name[len(prefix):]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with tar.extractfile(info) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    break


def ensure_assets(root: Path) -> Path:
    """Fill ``root/.cache/gdlab-static/gdlab-assets`` (once per set of pins) and return ``root/.cache/gdlab-static``."""
    static = root / CACHE / "gdlab-static"
    stamp = static / "stamp.json"
    # MathJax: the tex-chtml component plus everything it may load lazily (TeX extensions, fonts, menu, a11y), and
    # the entry point for node that gdlab_math.py uses.
    mathjax = {"package/es5/tex-chtml.js": "mathjax/tex-chtml.js", "package/LICENSE": "mathjax/LICENSE",
               "package/es5/node-main.js": MATHJAX_NODE_MAIN}
    mathjax |= {f"package/es5/{sub}/": f"mathjax/{sub}/" for sub in ("input", "output", "ui", "a11y", "adaptors", "sre")}
    key = json.dumps({"npm": NPM, "shim": hashlib.sha256(SHIM.encode()).hexdigest(), "mathjax": mathjax},
                     sort_keys=True)
    if stamp.is_file() and stamp.read_text() == key:
        return static
    tarballs = {name: fetch_npm(name, version, integrity, root / CACHE / "npm")
                for name, (version, integrity) in NPM.items()}
    if static.exists():
        shutil.rmtree(static)
    dest = static / ASSETS
    _extract(tarballs["mathjax"], mathjax, dest)
    _extract(tarballs["requirejs"], {"package/require.js": "requirejs/require.js"}, dest)
    manager = {"package/dist/": "html-manager/", "package/LICENSE": "html-manager/LICENSE"}
    _extract(tarballs["@jupyter-widgets/html-manager"], manager, dest)
    for junk in (dest / "html-manager").glob("*.map"):
        junk.unlink()
    (dest / "html-manager" / "embed.js").unlink(missing_ok=True)      # the non-AMD bundle: not used
    (dest / "html-manager" / "gdlab-shim.js").write_text(SHIM)
    stamp.write_text(key)
    return static


def _config_inited(app: Sphinx, config: Config) -> None:
    ensure_assets(Path(app.srcdir))
    launch = (config.html_theme_options or {}).get("launch_buttons", {}) or {}
    if not launch.get("thebe", False):
        for listeners in app.events.listeners.values():
            listeners[:] = [lst for lst in listeners if getattr(lst.handler, "__module__", "") != "sphinx_thebe"]
        app.registry.css_files[:] = [css for css in app.registry.css_files if css[0] != "sphinx-thebe.css"]


def _drop_widget_state(app: Sphinx, doctree) -> None:
    """Forget the widget state (and the widget scripts) that myst-nb recorded for this page."""
    if app.config.gdlab_embed_widget_state:
        return
    data = getattr(app.env, "nb_metadata", {}).get(app.env.docname, {})
    js_files = data.get("js_files", {})
    for key in [k for k in js_files if k == "ipywidgets_state" or k.startswith("ipywidgets_")]:
        del js_files[key]


def setup(app: Sphinx) -> dict:
    app.add_config_value("gdlab_embed_widget_state", False, "env", [bool])
    app.connect("config-inited", _config_inited)
    app.connect("doctree-read", _drop_widget_state)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
