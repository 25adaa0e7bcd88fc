"""The layer contracts of docs/architecture.md hold (import-linter) and cover every module: a
new module or subpackage cannot slip past them."""

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


def contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def named(layers: list[str]) -> set[str]:
    return {m for layer in layers for m in re.split(r"\s*[:|]\s*", layer)}


def children(package: str) -> set[str]:
    """Modules and subpackages directly inside `package` (a dotted name)."""
    folder = REPO.joinpath(*package.split("."))
    return ({p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
            | {p.name for p in folder.iterdir() if (p / "__init__.py").exists()})


def test_imports_point_down_only():
    linter = shutil.which("lint-imports", path=str(REPO / ".venv" / "bin")) or shutil.which(
        "lint-imports")
    done = subprocess.run([linter or sys.executable, *([] if linter else ["-m", "importlinter"])],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{len(contracts())} kept, 0 broken" in done.stdout


def test_every_quality_part_has_a_layer():
    layers = named(contracts()["layers"]["layers"])
    assert {f"quality.{c}" for c in children("quality")} <= layers
    assert {"annotate", "stage1_detect", "stage2_generate"} <= layers


def test_every_module_inside_a_layered_subpackage_has_a_layer():
    for contract in contracts().values():
        for container in contract.get("containers", []):
            missing = children(container) - named(contract["layers"])
            assert not missing, (container, sorted(missing))


def test_the_report_may_not_import_what_computes():
    forbidden = set(contracts()["report-reads"]["forbidden_modules"])
    computing = {"quality.agreement", "quality.gold", "quality.splits", "quality.cascade",
                 "stage1_detect", "stage2_generate", "annotate.metrics"}
    assert computing <= forbidden
