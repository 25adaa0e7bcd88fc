"""Pillow's own image opener, whoever patched `PIL.Image.open`."""

from __future__ import annotations

import io
import os
import sys

from PIL import Image


def open_image(source: str | os.PathLike | io.BytesIO) -> Image.Image:
    """`PIL.Image.open` as Pillow defines it.

    Once ultralytics is imported, `PIL.Image.open` is its wrapper, which on a file Pillow
    cannot identify tries to pip-install a HEIF plugin (failing offline with ImportError
    instead of Pillow's `UnidentifiedImageError`). Reading a set must neither install packages
    nor depend on what was imported before, so this calls the original.
    """
    patches = sys.modules.get("ultralytics.utils.patches")
    return getattr(patches, "_image_open", Image.open)(source)
