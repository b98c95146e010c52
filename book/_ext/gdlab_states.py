"""Controls on the web page, no kernel: each chapter's explorer as real controls over states drawn at build time.

Loaded from ``_config.yml`` (``sphinx: local_extensions``); HTML builders only. In the book build the explorer cell
``live(explorer)`` outputs a marker (``gdlab.widgets``, ``GDLAB_STATIC_EXPLORERS=1``)::

    <div class="gdlab-page-explorer" data-explorer="NAME"><img alt="ALT" src="data:image/png;base64,...">
    <p class="gdlab-explorer-status">STATUS</p></div>

This extension

1. renders every page state of every explorer, ``explorer.frame(**state)`` for ``state in spec.page_states()`` (the
   same ``update`` code as the notebook, PNG bytes by ``gdlab.plots.style.png_bytes``, then reduced to a palette of
   :data:`PALETTE_COLORS` colours by :func:`palette_png`), in separate interpreters,
   one per core (:func:`start_render`; each imports gdlab once, without ``GDLAB_STATIC_EXPLORERS``). They start on
   ``builder-inited``, before gdlab_parallel executes the notebooks, and run beside them at a lower priority
   (:data:`NICE`); they are collected on ``env-updated``, after Sphinx has read the pages (:func:`collect_render`);
2. keeps the states in a cache, ``_build/.gdlab-states/`` (``gdlab_states_cache``): one folder per explorer, named
   by a hash of its spec (``repr``), the sources of ``lib/gdlab/**/*.py``, the matplotlib, numpy and Pillow
   versions and this file's :data:`FORMAT` (:func:`explorer_key`), holding the PNGs and ``manifest.json``
   (controls, per state: file, alt text, status line, size). An index named by the hash of the sources and versions
   (:func:`source_stamp`) lists the folders of the current library, so a rebuild without a change in the library
   starts no interpreter and only hard-links (or copies) the files that are missing from
   ``<outdir>/_images/gdlab-states/<slug>/`` (:func:`sync_states`; with the book's other computed figures, in
   ``_images/``). File names carry the PNG's hash, so a browser never shows a stale copy;
3. replaces each marker (``doctree-resolved``) by the page explorer (:func:`explorer_html`): a labelled native
   control for each control of the spec with page values (``<input type="range">`` stepping through the indices of
   the page values with a visible readout, or a ``<select>`` for a choice), the ``<img>`` of the default state (a
   file of the site, its ``alt`` the state's alt text), the status line (``aria-live="polite"``) and the states as
   inline JSON. ``gdlab_states.js`` (next to this file, copied to ``_static/``, loaded by the pages with an
   explorer only, with ``gdlab_states.css``) swaps the image, its alt text and the status line when a control
   changes, and prefetches the states one step away from the current one along every control. No request leaves
   the site; images load as ``<img>``, so the pages also work from ``file://``;
4. marks the pages with an explorer as outdated when the library (or this file) changed since the last build, so
   that they are rewritten with the new states even when their notebooks come from the execution cache.

A marker whose explorer has no states (unknown name, or the rendering failed: logged as a warning) is left alone:
the page then shows the default figure and status line that the kernel drew. A library whose explorers have no
``spec``/``frame`` gets nothing drawn (its ``live`` shows a plain figure, and the pages have no marker). A page whose
explorer cell has no marker while the library draws states is reported (a warning): its notebook output is older than
the library, kept by the execution cache, which keys on the notebook's code only. Set ``gdlab_states: false``
(``sphinx: config``) to keep the static figures.
"""

from __future__ import annotations

import hashlib
import html
import importlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gdlab_assets import copy_changed

#: Bump when the rendering or the manifest format changes: every cached state is then drawn again.
FORMAT = 3
#: Colours of a state's PNG: a palette of at most this many (:func:`palette_png`).
PALETTE_COLORS = 64
#: The registry of explorers the workers import: ``module:attribute`` (a dict name -> explorer).
REGISTRY = "gdlab.widgets:EXPLORERS"
#: Folder of the states in the HTML output (the notebooks' figures are in ``_images/`` too).
STATES_DIR = "_images/gdlab-states"
#: The cache, relative to the book's root (``gdlab_states_cache``); shared by the book's builds (the student edition
#: of scripts/build_student.py writes its HTML elsewhere but draws the same states).
CACHE_DIR = "_build/.gdlab-states"
MARKER_CLASS = "gdlab-page-explorer"
CLASS = "gdlab-states"  # the page explorer's root element (it keeps MARKER_CLASS too)
ASSETS = [Path(__file__).with_name(f"gdlab_states.{ext}") for ext in ("js", "css")]
MARKER = re.compile(r'<div\b[^>]*\bclass="' + MARKER_CLASS + r'"[^>]*\bdata-explorer="([^"]*)"', re.DOTALL)
#: The workers' niceness: they run while gdlab_parallel executes the notebooks, which come first (the build waits
#: for the notebooks before it reads the pages; the states are needed only after that).
NICE = 10
#: Environment variables the workers drop: a worker draws states, it never shows the static default figure.
DROP_ENV = ("GDLAB_STATIC_EXPLORERS",)


# --------------------------------------------------------------------------------------------------------------------
# States and keys (pure)


def slug(name: str) -> str:
    """A file and id friendly form of an explorer's name: ``"ch01 landscape"`` -> ``"ch01-landscape"``."""
    out = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return out or "explorer"


def page_values(control) -> tuple:
    """The control's page values, normalised as :meth:`Spec.bind` normalises a state (ints, floats)."""
    return tuple(control.check(v) for v in control.page)


def value_text(control, value) -> str:
    """The readout of a page value: ``0.3``, ``1e-08``, ``60``, ``bulge``."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def state_key(spec, state: dict) -> str:
    """The key of a page state: the index of its value in each page control's page values, joined by ``-``
    (``"2-0-1"``; ``""`` for an explorer without page controls). Raises ``ValueError`` for a value not on the page."""
    parts = []
    for control in spec.page_controls:
        values = page_values(control)
        value = control.check(state[control.name])
        if value not in values:
            raise ValueError(f"{control.name}={value!r} is not among the page values {values}")
        parts.append(str(values.index(value)))
    return "-".join(parts)


def page_states(spec) -> list[tuple[str, dict]]:
    """``(key, state)`` for every page state, in the spec's order."""
    return [(state_key(spec, state), state) for state in spec.page_states()]


def widget_kind(control) -> str:
    """How the page shows a control: ``"select"`` (a choice, unless a selection slider), ``"range"``, or ``"fixed"``
    (one page value: a readout, nothing to move)."""
    if len(control.page) < 2:
        return "fixed"
    if control.kind == "choice" and not getattr(control, "slider", False):
        return "select"
    return "range"


def controls_data(spec) -> list[dict]:
    """The page controls for the page: name, label, widget, readouts of the page values and the default's index."""
    out = []
    for control in spec.page_controls:
        values = page_values(control)
        out.append({
            "name": control.name,
            "label": control.label,
            "kind": control.kind,
            "widget": widget_kind(control),
            "text": [value_text(control, v) for v in values],
            "default": values.index(control.check(control.default)),
            "help": getattr(control, "help", "") or "",
        })
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def palette_png(png: bytes, colors: int = PALETTE_COLORS) -> bytes:
    """An opaque PNG redrawn with a palette of at most ``colors`` colours (an 8-bit indexed PNG), for the web page.

    Pillow's maximum-coverage quantizer, without dithering: a matplotlib figure is mostly white, a few line and text
    colours and their anti-aliasing, which such a palette keeps (median cut was seen to turn a small red marker
    brown; dithering speckles text). The same bytes in, the same bytes out. A PNG with transparent pixels, or
    one the palette would not make smaller, is returned unchanged."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.mode in ("RGBA", "LA", "P") and image.convert("RGBA").getextrema()[3][0] < 255:
            return png
        quantized = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MAXCOVERAGE,
                                                  dither=Image.Dither.NONE)
    out = io.BytesIO()
    quantized.save(out, "PNG")
    return out.getvalue() if out.tell() < len(png) else png


def state_file(key: str, png: bytes) -> str:
    """The file name of a state: its key and the start of its PNG's sha256 (``2-0-1.3fa9c1e2b4.png``)."""
    return f"{key or 'default'}.{hashlib.sha256(png).hexdigest()[:10]}.png"


# --------------------------------------------------------------------------------------------------------------------
# Cache keys (pure)


def library_versions() -> dict[str, str]:
    """The versions that change the pixels besides the library itself (read from the metadata, nothing imported)."""
    out = {}
    for dist in ("matplotlib", "numpy", "pillow"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def source_digest(lib_dir: Path) -> str:
    """sha256 of every ``*.py`` under ``lib_dir`` (relative paths and contents, in path order)."""
    h = hashlib.sha256()
    for path in sorted(Path(lib_dir).rglob("*.py"), key=lambda p: p.relative_to(lib_dir).as_posix()):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(lib_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def source_stamp(digest: str, versions: dict[str, str]) -> str:
    """The key of the library as a whole (sources, versions, :data:`FORMAT`): names the index of the cache."""
    return hashlib.sha256(json.dumps([FORMAT, digest, versions], sort_keys=True).encode()).hexdigest()[:20]


def explorer_key(name: str, spec_repr: str, digest: str, versions: dict[str, str]) -> str:
    """The cache key of one explorer's states: its name and spec, the library's sources, the versions, FORMAT."""
    blob = json.dumps([FORMAT, name, spec_repr, digest, versions], sort_keys=True).encode()
    return f"{slug(name)}-{hashlib.sha256(blob).hexdigest()[:20]}"


# --------------------------------------------------------------------------------------------------------------------
# Rendering (in the workers, or in-process for tests)


def describe(explorer, digest: str, versions: dict[str, str]) -> dict:
    """What the page and the cache need of an explorer, before any state is drawn."""
    spec = explorer.spec
    states = page_states(spec)
    default = state_key(spec, spec.defaults) if spec.page_controls else ""
    return {
        "name": explorer.name,
        "chapter": str(getattr(explorer, "chapter", "")),
        "description": getattr(explorer, "description", ""),
        "spec": repr(spec),
        "key": explorer_key(explorer.name, repr(spec), digest, versions),
        "controls": controls_data(spec),
        "keys": [key for key, _ in states],
        "default": default,
    }


def render_state(explorer, state: dict, dest: Path) -> dict:
    """Draw one state with ``explorer.frame(**state)``; write its PNG (:func:`palette_png`) into ``dest``; return its
    manifest entry."""
    t0 = time.perf_counter()
    frame = explorer.frame(**state)
    seconds = time.perf_counter() - t0
    key = state_key(explorer.spec, state)
    png = palette_png(bytes(frame.png))
    width, height = png_size(png)
    name = state_file(key, png)
    (dest / name).write_bytes(png)
    return {"key": key, "file": name, "alt": str(frame.alt), "status": str(frame.status),
            "width": width, "height": height, "seconds": round(seconds, 4)}


def warm_up(explorer) -> None:
    """Draw the default state once, before the page states: an explorer's figure is created by its first drawing,
    and in a notebook (``live``) that is the default one. So every worker draws the page states on a figure made as
    the notebook's is, whichever share of the states it gets (a figure that remembered its first state would
    otherwise give bytes that depend on the number of workers). Errors are left to the page states' own drawing."""
    try:
        explorer.frame(**explorer.spec.defaults)
    except Exception:
        pass


def assign(jobs: list[tuple[str, int]], worker: int, n_workers: int) -> list[tuple[str, int]]:
    """Worker ``worker``'s share of ``jobs`` (every ``n_workers``-th, so that the shares cost about the same)."""
    return jobs[worker::n_workers]


def explorer_has_states(explorer) -> bool:
    """Whether the object offers the page-state API (``spec`` with ``page_states``, and ``frame``)."""
    return callable(getattr(explorer, "frame", None)) and hasattr(getattr(explorer, "spec", None), "page_states")


def load_registry(registry: str) -> dict:
    module, _, attr = registry.partition(":")
    return getattr(importlib.import_module(module), attr or "EXPLORERS")


def worker_main(job_file: str, worker: int) -> None:
    """A worker interpreter: import the registry, draw its share of the states, write ``result-<worker>.json``.

    The job (JSON): ``registry``, ``names`` (None: every explorer of the registry), ``digest``, ``versions``,
    ``cache`` (the cache folder; explorers found there are not drawn again), ``workers`` (how many share the work),
    ``work`` (scratch folder)."""
    job = json.loads(Path(job_file).read_text())
    work = Path(job["work"])
    t0 = time.perf_counter()
    import matplotlib

    matplotlib.use("Agg")
    registry = load_registry(job["registry"])
    import_seconds = time.perf_counter() - t0
    names = job["names"] if job["names"] is not None else list(registry)
    described, missing, no_api, errors = {}, [], [], []
    jobs = []
    for name in names:
        explorer = registry.get(name)
        if explorer is None:
            missing.append(name)
            continue
        if not explorer_has_states(explorer):
            no_api.append(name)
            continue
        info = describe(explorer, job["digest"], job["versions"])
        described[name] = info
        if load_manifest(Path(job["cache"]) / info["key"]) is not None:
            continue
        (work / info["key"]).mkdir(parents=True, exist_ok=True)
        jobs += [(name, i) for i in range(len(info["keys"]))]
    entries: dict[str, list[dict]] = {}
    states = {name: list(registry[name].spec.page_states()) for name in {name for name, _ in jobs}}
    warm: set[str] = set()
    for name, i in assign(jobs, worker, job["workers"]):
        state = states[name][i]
        if name not in warm:  # the figure's first state is the default, as in a notebook (see warm_up)
            warm.add(name)
            warm_up(registry[name])
        try:
            entries.setdefault(name, []).append(render_state(registry[name], state, work / described[name]["key"]))
        except Exception as exc:  # reported by the main process, which then keeps the page's static figure
            errors.append(f"{name} {state}: {type(exc).__name__}: {exc}")
    result = {"described": described, "entries": entries, "missing": missing, "no_api": no_api, "errors": errors,
              "import_seconds": import_seconds, "seconds": time.perf_counter() - t0}
    (work / f"result-{worker}.json").write_text(json.dumps(result))


def assemble(info: dict, entries: Iterable[dict], work_dir: Path, cache: Path) -> dict:
    """Write the manifest of one explorer from the workers' entries and move its folder into the cache."""
    states = {e["key"]: {k: e[k] for k in ("file", "alt", "status", "width", "height", "seconds")} for e in entries}
    lost = [k for k in info["keys"] if k not in states]
    if lost:
        raise RuntimeError(f"{info['name']}: {len(lost)} of {len(info['keys'])} states were not drawn (first: {lost[0]!r})")
    manifest = {key: info[key] for key in ("name", "chapter", "description", "spec", "key", "controls", "default")}
    manifest["states"] = {k: states[k] for k in info["keys"]}
    (work_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    final = cache / info["key"]
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work_dir, final)
    return manifest


def render_in_process(explorers: dict, cache: Path, digest: str, versions: dict[str, str]) -> dict[str, dict]:
    """Draw (or reuse) the states of ``explorers`` (name -> explorer) in this process: for tests and small runs."""
    out = {}
    for name, explorer in explorers.items():
        info = describe(explorer, digest, versions)
        cached = load_manifest(cache / info["key"])
        if cached is not None:
            out[name] = cached
            continue
        work = Path(tempfile.mkdtemp(prefix="render-", dir=_mkdir(cache)))
        warm_up(explorer)
        entries = [render_state(explorer, state, work) for _, state in page_states(explorer.spec)]
        out[name] = assemble(info, entries, work, cache)
    return out


# --------------------------------------------------------------------------------------------------------------------
# The cache and the workers (main process)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_manifest(folder: Path) -> dict | None:
    """The manifest of a cached explorer, if its folder is complete (manifest and every PNG), else None."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not all((folder / s["file"]).is_file() for s in manifest["states"].values()):
        return None
    return manifest


def index_path(cache: Path, stamp: str) -> Path:
    return cache / f"index-{stamp}.json"


def cached_manifests(cache: Path, stamp: str) -> dict[str, dict] | None:
    """The manifests listed by the index of ``stamp`` (name -> manifest), or None if any is missing."""
    try:
        index = json.loads(index_path(cache, stamp).read_text())
    except (OSError, ValueError):
        return None
    out = {}
    for name, key in index["explorers"].items():
        manifest = load_manifest(cache / key)
        if manifest is None:
            return None
        out[name] = manifest
    return out


def worker_env(extra_path: Iterable[str] = ()) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROP_ENV}
    env["MPLBACKEND"] = "Agg"
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")  # one process per core: no thread pools fighting over the cores
    paths = [str(Path(__file__).parent), *extra_path]
    env["PYTHONPATH"] = os.pathsep.join([*paths, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    return env


class Render:
    """Worker interpreters drawing states in the background (from :func:`start_render`)."""

    def __init__(self, procs, work: Path, cache: Path, stamp: str, started: float, n_workers: int):
        self.procs, self.work, self.cache, self.stamp = procs, work, cache, stamp
        self.started, self.n_workers = started, n_workers


def start_render(cache: Path, digest: str, versions: dict[str, str], names: list[str] | None = None,
                 registry: str = REGISTRY, workers: int | None = None, extra_path: Iterable[str] = (),
                 nice: int = 0) -> Render:
    """Start ``workers`` interpreters (default: one per core) drawing the states of ``names`` (None: every explorer
    of ``registry``) that the cache lacks. Returns at once; :func:`collect_render` waits for them."""
    n = max(1, workers or os.cpu_count() or 1)
    _mkdir(cache)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=cache))
    job = {"registry": registry, "names": names, "digest": digest, "versions": versions, "cache": str(cache),
           "workers": n, "work": str(work)}
    job_file = work / "job.json"
    job_file.write_text(json.dumps(job))
    code = "import sys, gdlab_states; gdlab_states.worker_main(sys.argv[1], int(sys.argv[2]))"
    env = worker_env(extra_path)
    preexec = (lambda: os.nice(nice)) if nice and hasattr(os, "nice") else None
    procs = [subprocess.Popen([sys.executable, "-c", code, str(job_file), str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, preexec_fn=preexec) for i in range(n)]
    return Render(procs, work, cache, source_stamp(digest, versions), time.perf_counter(), n)


class RenderReport:
    """What :func:`collect_render` found: manifests (name -> manifest) and what went wrong."""

    def __init__(self):
        self.manifests: dict[str, dict] = {}
        self.problems: list[str] = []
        self.missing: list[str] = []   # names the registry does not know
        self.no_api: list[str] = []    # explorers without spec/frame
        self.drawn = 0                 # states drawn now (not from the cache)
        self.draw_seconds = 0.0        # sum of frame() times of those states
        self.wall_seconds = 0.0        # from the start of the workers to the end of the last one
        self.wait_seconds = 0.0        # how long the build waited for them (in collect_render)


def collect_render(render: Render) -> RenderReport:
    """Wait for the workers; assemble each explorer's manifest into the cache; write the index; prune old folders."""
    report = RenderReport()
    t0 = time.perf_counter()
    results = []
    for i, proc in enumerate(render.procs):
        out, err = proc.communicate()
        result_file = render.work / f"result-{i}.json"
        if proc.returncode != 0 or not result_file.is_file():
            tail = "\n".join((out + err).strip().splitlines()[-15:])
            report.problems.append(f"worker {i} failed (exit {proc.returncode}):\n{tail}")
            continue
        results.append(json.loads(result_file.read_text()))
    report.wall_seconds = time.perf_counter() - render.started
    report.wait_seconds = time.perf_counter() - t0
    if len(results) != len(render.procs):
        shutil.rmtree(render.work, ignore_errors=True)
        return report
    described = {name: info for r in results for name, info in r["described"].items()}
    report.missing = sorted({n for r in results for n in r["missing"]})
    report.no_api = sorted({n for r in results for n in r["no_api"]})
    report.problems += [e for r in results for e in r["errors"]]
    index = {}
    for name, info in described.items():
        manifest = load_manifest(render.cache / info["key"])
        if manifest is None:
            entries = [e for r in results for e in r["entries"].get(name, [])]
            try:
                manifest = assemble(info, entries, render.work / info["key"], render.cache)
            except (RuntimeError, OSError) as exc:
                report.problems.append(str(exc))
                continue
            report.drawn += len(entries)
            report.draw_seconds += sum(e["seconds"] for e in entries)
        report.manifests[name] = manifest
        index[name] = info["key"]
    shutil.rmtree(render.work, ignore_errors=True)
    if not report.problems:
        index_path(render.cache, render.stamp).write_text(json.dumps({"explorers": index}, indent=1))
        prune(render.cache, keep={*index.values(), index_path(render.cache, render.stamp).name})
    return report


def prune(cache: Path, keep: set[str]) -> None:
    """Remove the cache's folders and indexes that are not in ``keep`` (older libraries, older specs)."""
    for path in cache.iterdir():
        if path.name in keep:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith("index-"):
            path.unlink(missing_ok=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def sync_states(manifests: dict[str, dict], cache: Path, static: Path) -> int:
    """Make ``static`` (``<outdir>/_images/gdlab-states``) hold exactly the states of ``manifests``: one folder per
    explorer (its slug), files hard-linked from the cache (copied across file systems). Returns the files added."""
    added = 0
    wanted_dirs = set()
    for name, manifest in manifests.items():
        folder = _mkdir(static / slug(name))
        wanted_dirs.add(folder.name)
        wanted = {s["file"] for s in manifest["states"].values()}
        for existing in folder.iterdir():
            if existing.name not in wanted:
                existing.unlink() if existing.is_file() else shutil.rmtree(existing)
        for file in wanted:
            target = folder / file
            if not target.exists():
                _link_or_copy(cache / manifest["key"] / file, target)
                added += 1
    if static.is_dir():
        for stale in static.iterdir():
            if stale.name not in wanted_dirs:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    return added


# --------------------------------------------------------------------------------------------------------------------
# The page (pure)


def _json_for_script(data) -> str:
    """JSON that is safe inside ``<script type="application/json">`` (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_data(manifest: dict) -> dict:
    """The JSON the page's script reads: the controls' names and readouts, the default key, and per state key
    ``[file, alt, status, width, height]``."""
    return {
        "name": manifest["name"],
        "default": manifest["default"],
        "controls": [{"name": c["name"], "widget": c["widget"], "text": c["text"], "default": c["default"]}
                     for c in manifest["controls"]],
        "states": {k: [s["file"], s["alt"], s["status"], s["width"], s["height"]]
                   for k, s in manifest["states"].items()},
    }


def _control_html(control: dict, dom_id: str) -> str:
    e = html.escape
    cid = f"{dom_id}-{slug(control['name'])}"
    i = control["default"]
    help_attr = f' title="{e(control["help"])}"' if control.get("help") else ""
    label = f'<label for="{cid}"{help_attr}>{e(control["label"])}</label>'
    if control["widget"] == "select":
        options = "".join(f'<option value="{j}"{" selected" if j == i else ""}>{e(t)}</option>'
                          for j, t in enumerate(control["text"]))
        field = f'<select id="{cid}" data-control="{e(control["name"])}">{options}</select>'
    elif control["widget"] == "range":
        field = (f'<input type="range" id="{cid}" data-control="{e(control["name"])}" min="0" '
                 f'max="{len(control["text"]) - 1}" step="1" value="{i}" '
                 f'aria-valuetext="{e(control["text"][i])}">'
                 f'<output class="gdlab-states-value" for="{cid}" id="{cid}-value">{e(control["text"][i])}</output>')
    else:  # one page value: shown, nothing to move
        label = f'<span class="gdlab-states-label"{help_attr}>{e(control["label"])}</span>'
        field = f'<span class="gdlab-states-value" id="{cid}">{e(control["text"][i])}</span>'
    return f'<div class="gdlab-states-control gdlab-states-{control["widget"]}">{label}{field}</div>'


def explorer_html(manifest: dict, base: str, dom_id: str) -> str:
    """The page explorer: controls, the default state's image and status line, the states as JSON.

    ``base``: the states' folder relative to the page, ending with ``/``; ``dom_id``: a prefix of ids unique on
    the page. The controls are ``hidden`` until gdlab_states.js runs (without scripts the page shows the default
    figure and status, as the static build did)."""
    e = html.escape
    state = manifest["states"][manifest["default"]]
    controls = "".join(_control_html(c, dom_id) for c in manifest["controls"])
    group_label = f"Controls of the explorer: {len(manifest['states'])} precomputed states"
    return (
        f'<div class="{MARKER_CLASS} {CLASS}" id="{dom_id}" data-explorer="{e(manifest["name"])}" '
        f'data-gdlab-base="{e(base)}" data-state="{e(manifest["default"])}">'
        f'<div class="gdlab-states-controls" role="group" aria-label="{e(group_label)}" hidden>{controls}</div>'
        f'<div class="gdlab-states-figure" aria-busy="false">'
        f'<img class="gdlab-states-image" src="{e(base + state["file"])}" alt="{e(state["alt"])}" '
        f'width="{state["width"]}" height="{state["height"]}"></div>'
        f'<p class="gdlab-explorer-status" aria-live="polite">{e(state["status"])}</p>'
        f'<script type="application/json" class="gdlab-states-data">{_json_for_script(page_data(manifest))}</script>'
        f"</div>"
    )


def marker_name(text: str) -> str | None:
    """The explorer named by a marker (``<div class="gdlab-page-explorer" data-explorer="NAME">``), else None."""
    m = MARKER.search(text)
    return html.unescape(m.group(1)) if m else None


def find_markers(doctree) -> Iterator[tuple[Any, str]]:
    """``(raw node, explorer name)`` for every marker in ``doctree`` (raw HTML written by ``live`` in the build)."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.raw)):
        if "html" not in node.get("format", "").split():
            continue
        text = node.astext()
        if MARKER_CLASS in text and f'class="{MARKER_CLASS} {CLASS}"' not in text:
            name = marker_name(text)
            if name is not None:
                yield node, name


# --------------------------------------------------------------------------------------------------------------------
# Sphinx


def _logger():
    from sphinx.util import logging

    return logging.getLogger(__name__)


def _enabled(app) -> bool:
    return bool(app.config.gdlab_states) and getattr(app.builder, "format", "") == "html"


def _lib_dir(app) -> Path:
    """The library whose sources key the cache (``gdlab_states_sources``, relative to the book's root)."""
    return Path(app.srcdir) / app.config.gdlab_states_sources


def _cache_dir(app) -> Path:
    return Path(app.srcdir) / app.config.gdlab_states_cache


def _stamp(app) -> str:
    """What the pages' explorers depend on besides their notebooks: the library, the versions, this file."""
    digest = source_digest(_lib_dir(app))
    own = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return hashlib.sha256(f"{source_stamp(digest, library_versions())} {own}".encode()).hexdigest()[:20]


def on_builder_inited(app) -> None:
    """Start drawing the states that the cache lacks (every explorer of the registry), in the background."""
    app._gdlab_states = {"manifests": None, "render": None}
    if not _enabled(app) or not _lib_dir(app).is_dir():
        return
    cache = _cache_dir(app)
    digest, versions = source_digest(_lib_dir(app)), library_versions()
    manifests = cached_manifests(cache, source_stamp(digest, versions))
    if manifests is not None:
        app._gdlab_states["manifests"] = manifests
        return
    _logger().info("[gdlab_states] drawing the page explorers' states in the background")
    app._gdlab_states["render"] = start_render(cache, digest, versions, registry=app.config.gdlab_states_registry,
                                               extra_path=[str(_lib_dir(app).parent)], nice=NICE)


#: The explorer cell of the chapter notebooks (its output is the marker in the book build).
EXPLORER_CELL = "live(explorer)"


def on_doctree_read(app, doctree) -> None:
    """Record the explorers of the page, and whether it has an explorer cell without a marker (an output from an
    older library, kept by the execution cache: jupyter-cache keys on the notebook's code, not on gdlab)."""
    from docutils import nodes

    names = [name for _, name in find_markers(doctree)]
    pages = app.env.__dict__.setdefault("gdlab_states_pages", {})
    stale = app.env.__dict__.setdefault("gdlab_states_stale", set())
    pages.pop(app.env.docname, None)
    stale.discard(app.env.docname)
    if names:
        pages[app.env.docname] = names
    elif any(EXPLORER_CELL in n.astext() for n in doctree.findall(nodes.literal_block)):
        stale.add(app.env.docname)


def on_purge(app, env, docname) -> None:
    env.__dict__.setdefault("gdlab_states_pages", {}).pop(docname, None)
    env.__dict__.setdefault("gdlab_states_stale", set()).discard(docname)


def on_merge(app, env, docnames, other) -> None:
    pages = env.__dict__.setdefault("gdlab_states_pages", {})
    stale = env.__dict__.setdefault("gdlab_states_stale", set())
    for docname in docnames:
        if docname in getattr(other, "gdlab_states_pages", {}):
            pages[docname] = other.gdlab_states_pages[docname]
        if docname in getattr(other, "gdlab_states_stale", set()):
            stale.add(docname)


def on_get_outdated(app, env, added, changed, removed) -> list[str]:
    """Pages with an explorer are written again when the library (or this extension) changed."""
    if not _enabled(app):
        return []
    stamp = _stamp(app)
    if getattr(env, "gdlab_states_stamp", None) == stamp:
        return []
    env.gdlab_states_stamp = stamp
    return sorted(set(env.__dict__.get("gdlab_states_pages", {})) - set(added) - set(changed) - set(removed))


def on_env_updated(app, env) -> None:
    """Collect the states (workers or cache), copy them and the script and style sheet into the output."""
    state = getattr(app, "_gdlab_states", None)
    if state is None or not _enabled(app):
        return
    log = _logger()
    env.gdlab_states_stamp = _stamp(app)
    wanted = sorted({n for names in env.__dict__.get("gdlab_states_pages", {}).values() for n in names})
    render = state.pop("render", None)
    if render is not None:
        report = collect_render(render)
        state["manifests"] = report.manifests
        n_states = sum(len(m["states"]) for m in report.manifests.values())
        if report.drawn:
            log.info(f"[gdlab_states] drew {report.drawn} states of {len(report.manifests)} explorers in "
                     f"{report.wall_seconds:.1f} s on {render.n_workers} processes beside the notebooks (frame() "
                     f"total {report.draw_seconds:.1f} s, {1000 * report.draw_seconds / report.drawn:.0f} ms per "
                     f"state; the build waited {report.wait_seconds:.1f} s for them); {n_states} states in all")
        for problem in report.problems:
            log.warning(f"[gdlab_states] {problem}", type="gdlab_states", subtype="render")
        if report.no_api and wanted:
            log.info(f"[gdlab_states] explorers without page states (no spec/frame): {', '.join(report.no_api)}")
    manifests = state.get("manifests") or {}
    stale = sorted(env.__dict__.get("gdlab_states_stale", ()))
    if manifests and stale:  # the library draws page states, but these pages were executed before it did
        log.warning(f"[gdlab_states] {', '.join(stale)}: the explorer cell ({EXPLORER_CELL}) shows no page-explorer "
                    "marker, so the page gets no controls; its output comes from an older gdlab (the execution cache "
                    "keys on the notebook's code only): run `jupyter-book clean . --all` and build again",
                    type="gdlab_states", subtype="stale")
    unknown = [n for n in wanted if n not in manifests]
    for name in unknown:
        where = [d for d, names in env.__dict__.get("gdlab_states_pages", {}).items() if name in names]
        log.warning(f"[gdlab_states] no states for the explorer {name!r} (on {', '.join(where)}): the page keeps "
                    "its static figure", type="gdlab_states", subtype="missing")
    if not wanted:
        return
    static = Path(app.outdir) / "_static"
    used = {n: manifests[n] for n in wanted if n in manifests}
    added = sync_states(used, _cache_dir(app), Path(app.outdir) / STATES_DIR)
    copy_changed(ASSETS, static)
    if added:
        log.info(f"[gdlab_states] {added} state images put into {Path(app.outdir) / STATES_DIR}")


def on_doctree_resolved(app, doctree, docname) -> None:
    """Replace each marker by the page explorer (HTML builders)."""
    state = getattr(app, "_gdlab_states", None)
    if state is None or not _enabled(app):
        return
    from docutils import nodes
    from sphinx.util.osutil import relative_uri

    manifests = state.get("manifests") or {}
    seen: dict[str, int] = {}
    for node, name in find_markers(doctree):
        manifest = manifests.get(name)
        if manifest is None:
            continue
        seen[name] = seen.get(name, 0) + 1
        dom_id = f"gdlab-{slug(name)}" + (f"-{seen[name]}" if seen[name] > 1 else "")
        base = relative_uri(app.builder.get_target_uri(docname), f"{STATES_DIR}/{slug(name)}/")
        # Not "text_html": in its dark mode pydata-sphinx-theme gives HTML outputs a light background (for
        # notebooks' tables); the explorer's controls follow the page's theme instead.
        new = nodes.raw("", explorer_html(manifest, base, dom_id), format="html")
        node.replace_self(new)
        new["classes"] = ["output", "gdlab-states-output"]  # after replace_self, which copies the old classes


def on_page_context(app, pagename, templatename, context, doctree) -> None:
    """Load the script and the style sheet on the pages that show an explorer."""
    if doctree is None or not _enabled(app):
        return
    from docutils import nodes

    if any(f'class="{MARKER_CLASS} {CLASS}"' in n.astext() for n in doctree.findall(nodes.raw)):
        app.add_css_file("gdlab_states.css")
        # async, not defer: the page's DOMContentLoaded does not wait for it (the script waits for the DOM itself)
        app.add_js_file("gdlab_states.js", loading_method="async")


def setup(app) -> dict:
    app.add_config_value("gdlab_states", True, "html", [bool])
    # Where the explorers come from (the tests point these at a fake library): the registry the workers import,
    # and the package folder, relative to the book's root, whose sources key the cache (its parent goes on the
    # workers' sys.path).
    app.add_config_value("gdlab_states_registry", REGISTRY, "html", [str])
    app.add_config_value("gdlab_states_sources", "lib/gdlab", "html", [str])
    app.add_config_value("gdlab_states_cache", CACHE_DIR, "html", [str])
    # Before gdlab_parallel (priority 500), which blocks while the notebooks execute: the states are drawn meanwhile.
    app.connect("builder-inited", on_builder_inited, priority=400)
    app.connect("doctree-read", on_doctree_read)
    app.connect("env-purge-doc", on_purge)
    app.connect("env-merge-info", on_merge)
    app.connect("env-get-outdated", on_get_outdated)
    app.connect("env-updated", on_env_updated)
    app.connect("doctree-resolved", on_doctree_resolved)
    app.connect("html-page-context", on_page_context)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
