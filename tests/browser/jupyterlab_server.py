"""A private Jupyter Lab server for the Jupyter Lab acceptance test (``tests/browser/test_jupyterlab.py``).

:func:`start_lab` copies the chapter notebooks of ``book/`` (or of ``$GDLAB_LAB_BOOK``, e.g. a candidate fix) into a
temporary folder and starts the venv's ``jupyter-lab`` on it, on a free port of 127.0.0.1, without token or password
and with every Jupyter folder that it could write to (settings, workspaces, runtime, config, data) inside that
temporary folder, so the repository and the user's ``~/.jupyter`` are never touched. The Lab settings make the test
see what a student sees, all of it:

- ``windowingMode: "none"``: JupyterLab 4 virtualises notebooks (``contentVisibility`` by default in 4.6); with
  ``none`` every cell is attached and rendered, so the whole notebook can be inspected;
- ``autosave: false``: nothing is ever written back to the copied notebooks, so "opening does not modify the file" can
  be checked on disk;
- no news or update checks (no network, no toast over the notebook).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The notebooks to test: book/, or another folder (e.g. a candidate fix) given as $GDLAB_LAB_BOOK.
BOOK = Path(os.environ.get("GDLAB_LAB_BOOK") or REPO / "book").resolve()
VENV = REPO / ".venv"
JUPYTER_LAB = VENV / "bin" / "jupyter-lab"
VENV_PYTHON = VENV / "bin" / "python"

#: User settings of the Lab (``<plugin id>: {setting: value}``), written as ``<pkg>/<plugin>.jupyterlab-settings``.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}

#: Environment variables of the test run that a student's shell does not have and that change what the notebooks do:
#: the book build's static explorers and the test's own Jupyter and matplotlib settings.
SCRUBBED_ENV = ("GDLAB_STATIC_EXPLORERS", "JUPYTER_PATH",
                "JUPYTER_CONFIG_PATH", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "MPLBACKEND")

STARTUP_TIMEOUT_S = 90


@dataclass
class LabServer:
    """A running Jupyter Lab: its process, URL, notebook folder (a copy of ``book/``) and log file."""

    process: subprocess.Popen
    base: str  # http://127.0.0.1:<port>/
    root: Path  # the server's root_dir: copies of book/*.ipynb
    log_path: Path
    settings_dir: Path
    _log_file: object = field(repr=False, default=None)
    _opener: object = field(repr=False, default=None)  # urllib opener with the server's cookies
    _xsrf: str = field(repr=False, default="")

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def get_json(self, path: str, timeout: float = 10):
        """GET ``path`` from the server's REST API and decode the JSON answer."""
        with urllib.request.urlopen(self.url(path), timeout=timeout) as response:
            return json.loads(response.read().decode())

    def request(self, method: str, path: str, timeout: float = 10) -> int:
        """Send a body-less ``method`` request (e.g. DELETE) to the REST API; return the HTTP status. Requests other
        than GET carry the server's ``_xsrf`` cookie and header (without a token, the server requires them)."""
        if self._opener is None:
            jar = http.cookiejar.CookieJar()
            self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            self._opener.open(self.url("lab"), timeout=timeout).close()  # sets the _xsrf cookie
            self._xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
        req = urllib.request.Request(self.url(path), method=method, headers={"X-XSRFToken": self._xsrf})
        try:
            with self._opener.open(req, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def shutdown_kernels(self) -> list[str]:
        """Delete every session (and with it its kernel), so that the next chapter gets both cores. Returns the
        failures (``"<status> <session path>"``), if any."""
        failed = []
        for session in self.get_json("api/sessions"):
            status = self.request("DELETE", f"api/sessions/{session['id']}")
            if status != 204:
                failed.append(f"{status} {session.get('path')}")
        return failed

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Shut the server (and its kernels) down: SIGTERM, then SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_settings(settings_dir: Path, settings: dict[str, dict] = LAB_SETTINGS) -> None:
    """Write each ``{plugin id: values}`` as ``<settings_dir>/<package>/<plugin>.jupyterlab-settings``."""
    for plugin_id, values in settings.items():
        package, plugin = plugin_id.split(":")
        path = settings_dir / package / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2), encoding="utf-8")


def copy_notebooks(dest: Path, book: Path = BOOK) -> list[str]:
    """Copy the book's pages (``book/*.ipynb``, and the ``.md`` pages and ``.bib`` that links may point at) into
    ``dest`` (the server's root); return the copied file names."""
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for path in sorted(p for pattern in ("*.ipynb", "*.md", "*.bib") for p in book.glob(pattern)):
        shutil.copy2(path, dest / path.name)
        names.append(path.name)
    return names


def server_env(workdir: Path) -> dict[str, str]:
    """The server's environment: the caller's, minus :data:`SCRUBBED_ENV`, with every Jupyter/IPython folder in ``workdir``
    and the venv's ``bin`` first on ``PATH`` (as after ``source .venv/bin/activate``)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                     ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(workdir / sub)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    return env


def wait_until_up(server: LabServer, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Poll ``/api/status`` and ``/lab`` until both answer 200; raise RuntimeError (with the log's tail) otherwise."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jupyter-lab exited with code {server.process.returncode}:\n{server.log_tail()}")
        try:
            server.get_json("api/status", timeout=3)
            with urllib.request.urlopen(server.url("lab"), timeout=5) as response:
                if response.status == 200:
                    return
                last = f"/lab -> {response.status}"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.3)
    raise RuntimeError(f"jupyter-lab did not answer within {timeout_s:.0f} s ({last}):\n{server.log_tail()}")


def start_lab(workdir: Path, log_path: Path) -> LabServer:
    """Copy the notebooks to ``workdir/notebooks``, start the venv's ``jupyter-lab`` on them and wait until it answers.

    ``--LabApp.expose_app_in_browser`` makes ``window.jupyterapp`` available to the test, which runs Lab commands
    (``notebook:run-all-cells``) and reads the notebook model through it.
    """
    root = workdir / "notebooks"
    copy_notebooks(root)
    settings_dir = workdir / "lab-settings"
    write_settings(settings_dir)
    (workdir / "workspaces").mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        str(JUPYTER_LAB),
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        "--IdentityProvider.token=",
        "--PasswordIdentityProvider.hashed_password=",
        "--ServerApp.open_browser=False",
        "--ServerApp.log_level=INFO",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--KernelSpecManager.ensure_native_kernel=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")  # containers and CI run as root
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (closed by LabServer.stop)
    log_file.write("$ " + " ".join(cmd) + "\n")
    log_file.flush()
    process = subprocess.Popen(cmd, cwd=root, env=server_env(workdir), stdout=log_file, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    server = LabServer(process=process, base=f"http://127.0.0.1:{port}/", root=root, log_path=log_path,
                       settings_dir=settings_dir, _log_file=log_file)
    try:
        wait_until_up(server)
    except Exception:
        server.stop()
        raise
    return server


def lab_available() -> str | None:
    """None if the venv has a ``jupyter-lab`` and a python to run kernels on, else the reason why not."""
    if not JUPYTER_LAB.is_file():
        return f"no {JUPYTER_LAB} (create the venv: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt)"
    if not VENV_PYTHON.is_file():
        return f"no {VENV_PYTHON}"
    return None


if __name__ == "__main__":  # manual use: start a server on a scratch folder and keep it up until Ctrl-C
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="gdlab-lab-"))
    lab = start_lab(tmp, tmp / "jupyter-lab.log")
    print(f"Jupyter Lab at {lab.base}lab (log {lab.log_path}); Ctrl-C stops it", file=sys.stderr)
    try:
        lab.process.wait()
    except KeyboardInterrupt:
        lab.stop()
