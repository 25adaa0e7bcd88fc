"""The layer contract of docs/architecture.md holds (import-linter), and covers every module of
the package that holds two layers (`quality`), so a new module cannot slip past it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10: pytest's own dependency
    import tomli as tomllib

from tests.conftest import REPO


def contract() -> dict:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return layers


def test_imports_point_down_only():
    linter = shutil.which("lint-imports", path=str(REPO / ".venv" / "bin")) or shutil.which(
        "lint-imports")
    done = subprocess.run([linter or sys.executable, *([] if linter else ["-m", "importlinter"])],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_every_quality_module_has_a_layer():
    named = {m for layer in contract()["layers"] for m in re.split(r"\s*[:|]\s*", layer)}
    modules = {f"quality.{p.stem}" for p in (REPO / "quality").glob("*.py")
               if p.stem != "__init__"}
    assert modules <= named, sorted(modules - named)
    assert {"annotate", "stage1_detect", "stage2_generate"} <= named
