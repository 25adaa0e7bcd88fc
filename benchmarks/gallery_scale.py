"""The gallery at scale: `quality gallery` on the demo generator's 10,000 images (several
annotators each, their boxes and captions), cold (every picture copied) and warm (pictures
cached by content hash, pages rebuilt), with peak memory. Each case runs in a fresh process.

    uv run python benchmarks/gallery_scale.py [--images 10000]

The generated set is kept in data/generated/demo-N/ (`annotate demo --n N --seed 0`); its
import is timed apart.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def case(tables: str, out: str) -> dict:
    from quality.gallery.jobs import gallery_job

    started = time.perf_counter()
    record = gallery_job(tables, out, progress=True)
    seconds = time.perf_counter() - started
    pages = sum(v["pages"] for v in record["views"].values())
    size = sum(f.stat().st_size for f in Path(out).rglob("*.html"))
    return {"seconds": seconds, "views": len(record["views"]), "pages": pages,
            "largest_page_kb": max(f.stat().st_size for f in Path(out).rglob("*.html")) / 1024,
            "html_mb": size / 2**20, "images": record["images"]["shown"],
            "disputed": record["views"]["disagreement/all"]["items"],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--case", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(*args.case)))
        return
    from annotate.formats.readers import import_set
    from quality.run.pipeline import demo_data

    started = time.perf_counter()
    export = demo_data(args.images)
    print(f"demo set of {args.images} images: {export} ({time.perf_counter() - started:.0f} s "
          "to generate or find)")
    with tempfile.TemporaryDirectory() as tmp:
        tables = Path(tmp) / "tables"
        started = time.perf_counter()
        ts, _ = import_set(export, tables)
        annotators = ts.annotations[ts.annotations.source == "human"]
        print(f"import: {time.perf_counter() - started:.1f} s; {len(ts.images)} images, "
              f"{annotators.annotator.nunique()} annotators, "
              f"{len(annotators) / len(ts.images):.1f} per image, {len(ts.boxes)} boxes")
        out = Path(tmp) / "gallery"
        for name in ("cold", "warm (pictures cached)"):
            done = subprocess.run([sys.executable, __file__, "--case", str(tables), str(out)],
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{name:24} {result['seconds']:6.1f} s  peak {result['peak_mb']:5.0f} MB  "
                  f"{result['images']} images shown ({result['disputed']} disputed), "
                  f"{result['views']} views, {result['pages']} pages, "
                  f"{result['html_mb']:.1f} MB of HTML, largest page "
                  f"{result['largest_page_kb']:.0f} KB")
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
