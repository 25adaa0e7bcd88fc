"""The examples in the public docstrings run and give what they say (published values where
they exist: Krippendorff's 0.743, the coco-caption demo, ...)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

PACKAGES = ("annotate", "quality", "stage1_detect", "stage2_generate")


def modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            source = Path(importlib.util.find_spec(info.name).origin or "")
            if source.suffix == ".py" and ">>> " in source.read_text(encoding="utf-8"):
                found.append(info.name)
    return found


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples(name):
    # numpy's own print options: importing ultralytics (any test before this one may) installs
    # a global float formatter that rewrites every array repr
    with np.printoptions(formatter=None, linewidth=75, precision=8):
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_the_published_examples_are_among_them():
    assert {"quality.agreement.alpha", "annotate.runtime.jsonable",
            "annotate.runtime.tracking"} <= set(modules_with_examples())
