"""A real Label Studio server for the integration tests, in its own environment (it pins its own
label-studio-sdk), bound to 127.0.0.1, with data dir, HOME and TMPDIR under a temp folder and a
clean environment (unprefixed variables such as PORT or HOST leak into its settings)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

VERSION = os.environ.get("TWOSTAGE_LABEL_STUDIO", "1.23.2")
ADMIN = "admin@example.com"


@dataclass
class Server:
    url: str
    token: str  # legacy API token of the admin
    document_root: Path
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Unavailable(RuntimeError):
    """Label Studio could not be installed or started here."""


def _uv() -> str:
    for candidate in (shutil.which("uv"), Path(__file__).parent.parent / ".tools/bin/uv",
                      "/opt/uvtool/bin/uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise Unavailable("uv not found (needed to run Label Studio in its own environment)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(root: Path, document_root: Path) -> dict[str, str]:
    env = {
        "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8", "LABEL_STUDIO_BASE_DATA_DIR": str(root / "data"),
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false", "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        # the ML backend test serves `stage1-detect serve` on 127.0.0.1, which Label Studio
        # refuses to call unless told (as every user running both on one machine must): the
        # backend's own check, and the subnet ban that the webhook Label Studio creates for
        # every backend applies regardless of the first (docs/serving.md)
        "ML_BLOCK_LOCAL_IP": "false", "USE_DEFAULT_BANNED_SUBNETS": "false",
    }
    for key in ("UV_CACHE_DIR", "UV_PYTHON_INSTALL_DIR", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL",
                "PIP_INDEX_URL", "SSL_CERT_FILE", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.setdefault("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))
    for folder in ("home", "tmp", "data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return env


def server_args(root: Path, port: int, password: str, token: str) -> list[str]:
    """Options shared by `label-studio init` and `start`. Values go in `--name=value` form: a
    generated password may start with '-' and would otherwise be read as an option."""
    return [f"--data-dir={root / 'data'}", f"--username={ADMIN}", f"--password={password}",
            f"--user-token={token}", "--internal-host=127.0.0.1", f"--port={port}",
            "--no-browser"]


def start(root: Path, document_root: Path, timeout: float = 400) -> Server:
    """Install (cached by uv), initialise and start Label Studio; wait until it answers."""
    command = [_uv(), "tool", "run", "--python", _base_python(), "--from",
               f"label-studio=={VERSION}", "label-studio"]
    env = _environment(root, document_root)
    token = secrets.token_hex(20)
    port = _free_port()
    common = server_args(root, port, secrets.token_urlsafe(12), token)
    log = root / "label-studio.log"
    with open(log, "w") as out:
        init = subprocess.run([*command, "init", "twostage", *common,
                               "--enable-legacy-api-token"], env=env, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout, check=False)
    if init.returncode != 0:
        raise Unavailable(f"label-studio init failed (exit {init.returncode}); see {log}: "
                          f"{log.read_text()[-800:]}")
    with open(log, "a") as out:
        process = subprocess.Popen([*command, "start", "twostage", *common], env=env,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"label-studio exited ({process.returncode}); see {log}")
        port = _port_from_log(log) or port  # a busy port moves silently: the log says where
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return Server(f"http://127.0.0.1:{port}", token, document_root, process, log)
        except OSError:
            time.sleep(1)
    process.kill()
    raise Unavailable(f"label-studio did not answer within {timeout:.0f} s; see {log}")


def _base_python() -> str:
    """The interpreter behind our venv: uv builds Label Studio's environment from it (no
    interpreter download)."""
    return getattr(sys, "_base_executable", sys.executable)


def _port_from_log(log: Path) -> int | None:
    found = re.findall(r"https?://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return int(found[-1]) if found else None
