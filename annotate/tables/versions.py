"""Versions that make a figure traceable: a content hash of the data, the source revision."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from annotate.tables.schema import TABLES, TableSet


def data_version(ts: TableSet) -> str:
    """sha256 (16 hex) of the four tables' contents and the label map, independent of row
    order and of where the image files live: an image whose bytes were hashed (`sha256`) is
    identified by them, not by its path, so the same data in another checkout or on another
    machine has the same version (and `quality compare` accepts it as the same test data)."""
    digest = hashlib.sha256()
    for name in TABLES:
        table = ts.table(name)
        if name == "images" and "sha256" in table:
            table = table.assign(path=table.path.where(table.sha256.isna(), ""))
        table = table[sorted(table.columns)]
        rows = pd.util.hash_pandas_object(table, index=False).to_numpy()
        rows.sort()
        digest.update(name.encode())
        digest.update(rows.tobytes())
    digest.update("\n".join(ts.labels).encode())
    return digest.hexdigest()[:16]


def source_version() -> str:
    """`git describe --tags --dirty --always` of this source tree (a tag, commits since it and
    the commit, '-dirty' with local changes; the bare commit before the first tag), or the
    installed package version when it is not a git checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        return subprocess.run(["git", "describe", "--tags", "--dirty", "--always"], cwd=root,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"twostage {metadata.version('twostage')}"


#: The toolkit's packages: their code decides what every artifact holds.
PACKAGES = ("annotate", "stage1_detect", "stage2_generate", "quality")


@functools.lru_cache(maxsize=4)
def source_fingerprint(root: Path | None = None) -> str:
    """sha256 (16 hex) of the toolkit's own code (every `.py` file of `PACKAGES` under `root`,
    default this checkout, by relative name and bytes). Unlike `source_version` it changes
    with every edit, committed or not, and it is the same in any checkout of the same code;
    the pipeline's step cache keys on it, so an artifact made by other code is never reused as
    if this code had made it."""
    root = Path(__file__).resolve().parents[2] if root is None else root
    digest = hashlib.sha256()
    for package in PACKAGES:
        for file in sorted((root / package).rglob("*.py")):
            digest.update(str(file.relative_to(root)).encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:16]


def split_versions(ts: TableSet, column: str = "split") -> dict[str, str]:
    """`data_version` of each split's rows (its images with their split, annotations, boxes and
    captions): two runs evaluated on the same test data have the same "test" version whatever
    their training data, and moving one image between splits changes both versions."""
    if column not in ts.images.columns:
        return {}
    out = {}
    for name, images in ts.images.groupby(ts.images[column].astype(str)):
        keep = images.image_id
        out[name] = data_version(TableSet(
            images=images, labels=ts.labels,
            **{t: ts.table(t)[ts.table(t).image_id.isin(keep)]
               for t in ("annotations", "boxes", "captions")}))
    return out
