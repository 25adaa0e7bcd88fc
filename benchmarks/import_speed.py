"""`annotate import` of a large Label Studio snapshot export vs a bare `json.load` of the file.

Writes a snapshot export shaped like Label Studio 1.23's (users and predictions expanded; every
field the server writes): N tasks x 3 annotators, 1-3 boxes and a caption each, one prediction
per task. Then times, each in a fresh interpreter, (a) `json.load` of the file and (b) the
import (`ls_import.import_export`, tables built and validated), and reports wall time and peak
memory above the interpreter's resting size (the modules already imported). The import walks a
large file in forked processes (one per core), so its memory is also sampled as the whole
process tree's: the sum of each process's proportional set size (Linux `smaps_rollup`: pages
two processes share count half in each), every 0.1 s.

    uv run python benchmarks/import_speed.py --tasks 100000          # 465 MB, a few minutes
    uv run python benchmarks/import_speed.py --tasks 100000 --lean   # the same tasks, 309 MB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABELS = ["red circle", "blue square", "green triangle", "yellow star", "purple hexagon"]
WORDS = ["a", "small", "large", "red", "blue", "green", "circle", "square", "left", "of",
         "right", "above", "below", "next", "to", "the", "two"]

MEASURE = r"""
import json, resource, sys, time
start = time.perf_counter()
mode, path = sys.argv[1], sys.argv[2]
if mode == "import":
    from annotate.formats.ls_import import import_export
rest = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if mode == "cli":  # the whole command, interpreter and library imports included
    import tempfile
    from annotate.cli import main
    with tempfile.TemporaryDirectory() as out:
        main(["import", path, "--out", out, "--images-root", "/nonexistent"])
    t0, rest, n = start, 0, 0
elif mode == "json":
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    n = len(data)
else:
    ts, summary = import_export(path, images_root="/nonexistent", hash_images=False)
    n = len(ts.boxes)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": (peak - rest) / 1024, "rows": n,
                  "process_mb": peak / 1024, "process_seconds": time.perf_counter() - start}))
"""


def _region(rng: random.Random, rid: str, score: float | None = None) -> dict:
    x, y = round(rng.uniform(0, 70), 4), round(rng.uniform(0, 70), 4)
    w, h = round(rng.uniform(5, 30), 4), round(rng.uniform(5, 30), 4)
    region = {"id": rid, "from_name": "label", "to_name": "image", "type": "rectanglelabels",
              "original_width": 640, "original_height": 480, "image_rotation": 0,
              "value": {"x": x, "y": y, "width": w, "height": h,
                        "rotation": 0, "rectanglelabels": [rng.choice(LABELS)]}}
    if score is not None:
        region["score"] = score
    return region


def _annotation(rng: random.Random, task: int, k: int, user: int) -> dict:
    aid = task * 3 + k
    result = [_region(rng, f"a{aid}r{j}") for j in range(rng.randint(1, 3))]
    result.append({"id": f"a{aid}c", "from_name": "caption", "to_name": "image",
                   "type": "textarea",
                   "value": {"text": [" ".join(rng.choices(WORDS, k=rng.randint(6, 14)))]}})
    stamp = f"2026-0{1 + k}-1{k}T10:{k}{k}:{rng.randint(10, 59)}.123456Z"
    return {"id": aid, "completed_by": {"id": user, "email": f"annotator{user}@example.com",
                                        "first_name": "", "last_name": ""},
            "result": result, "was_cancelled": False, "ground_truth": False, "created_at": stamp,
            "updated_at": stamp, "draft_created_at": None,
            "lead_time": round(rng.uniform(3, 60), 3),
            "prediction": {}, "result_count": len(result),
            "unique_id": f"{rng.getrandbits(128):032x}", "import_id": None, "last_action": None,
            "bulk_created": False, "task": task, "project": 1, "updated_by": user,
            "parent_prediction": None, "parent_annotation": None, "last_created_by": None}


#: What `--lean` leaves out: bookkeeping fields the import never reads, so the same tasks make a
#: smaller file (json.load costs per byte, the import per task and region).
LEAN_TASK = {"drafts", "meta", "created_at", "updated_at", "allow_skip", "inner_id",
             "total_annotations", "cancelled_annotations", "total_predictions", "comment_count",
             "unresolved_comment_count", "last_comment_updated_at", "project", "updated_by",
             "comment_authors", "file_upload"}
LEAN_ANNOTATION = {"unique_id", "import_id", "last_action", "bulk_created", "parent_prediction",
                   "parent_annotation", "last_created_by", "draft_created_at", "prediction",
                   "result_count", "ground_truth", "project", "task", "updated_at",
                   "updated_by"}
LEAN_PREDICTION = {"created_ago", "cluster", "neighbors", "mislabeling", "created_at",
                   "updated_at", "model", "model_run", "task", "project"}


def _lean(record: dict) -> dict:
    """`record` without the bookkeeping fields (and the zero rotations) the import skips."""
    out = {k: v for k, v in record.items() if k not in LEAN_TASK}
    out["annotations"] = [{k: v for k, v in a.items() if k not in LEAN_ANNOTATION}
                          for a in record["annotations"]]
    out["predictions"] = [{k: v for k, v in p.items() if k not in LEAN_PREDICTION}
                          for p in record["predictions"]]
    for annotation in out["annotations"]:
        for region in annotation["result"]:
            region.pop("image_rotation", None)
            region["value"].pop("rotation", None)
    return out


def make_export(n_tasks: int, path: Path, seed: int = 0, lean: bool = False) -> Path:
    """Write the export task by task (never the whole list in memory); `lean` leaves out the
    fields the import skips (100k tasks: 309 MB instead of 465 MB)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        for task in range(1, n_tasks + 1):
            users = rng.sample(range(2, 12), 3)
            record = {
                "id": task,
                "annotations": [_annotation(rng, task, k, u) for k, u in enumerate(users)],
                "drafts": [],
                "predictions": [{
                    "id": task, "result": [_region(rng, f"p{task}r{j}", round(rng.random(), 4))
                                           for j in range(rng.randint(1, 3))],
                    "model_version": "yolo-v1", "created_ago": "0 minutes",
                    "score": round(rng.random(), 4), "cluster": None, "neighbors": None,
                    "mislabeling": 0.0, "created_at": "2026-01-01T00:00:00.000000Z",
                    "updated_at": "2026-01-01T00:00:00.000000Z", "model": None,
                    "model_run": None, "task": task, "project": 1}],
                "data": {"image": f"/data/local-files/?d=images/{task:07d}.jpg"},
                "meta": {}, "created_at": "2026-01-01T00:00:00.000000Z",
                "updated_at": "2026-01-01T00:00:00.000000Z", "allow_skip": True,
                "inner_id": task, "total_annotations": 3, "cancelled_annotations": 0,
                "total_predictions": 1, "comment_count": 0, "unresolved_comment_count": 0,
                "last_comment_updated_at": None, "project": 1, "updated_by": 1,
                "comment_authors": [], "file_upload": None}
            record = _lean(record) if lean else record
            out.write(("," if task > 1 else "") + json.dumps(record, separators=(",", ":")))
        out.write("]")
    return path


def measure(mode: str, path: Path) -> dict:
    """Run one measurement in a fresh interpreter; add the peak of the process tree's memory
    (`tree_mb`, sampled)."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([sys.executable, "-c", MEASURE, mode, str(path)], env=env,
                                stdout=out, stderr=subprocess.DEVNULL, text=True)
        tree = 0
        while proc.poll() is None:
            tree = max(tree, _tree_pss(proc.pid))
            time.sleep(0.1)
        if proc.returncode:
            raise RuntimeError(f"{mode} measurement failed (exit {proc.returncode})")
        out.seek(0)
        result = json.loads(out.read().strip().splitlines()[-1])
    return {**result, "tree_mb": tree / 1024}


def _tree_pss(pid: int) -> int:
    """Proportional set size (kB) of `pid` and its descendants; 0 for what has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            pss = next(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            children = [int(child) for child in handle.read().split()]
    except (OSError, StopIteration):
        return 0
    return pss + sum(_tree_pss(child) for child in children)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--export", help="reuse this export instead of writing a new one")
    parser.add_argument("--lean", action="store_true",
                        help="write the export without the bookkeeping fields the import skips "
                        "(the same tasks in about two thirds of the bytes)")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.export) if args.export else make_export(
            args.tasks, Path(tmp) / "export.json", lean=args.lean)
        size_mb = path.stat().st_size / 2**20
        print(f"export: {path} ({size_mb:.0f} MB)")
        results = {}
        modes = ("json", "import", "cli")
        # interleaved (json, import, cli, json, ...): a machine whose speed drifts during the
        # run (seen here: 20% within a day) then slows every mode alike
        measured = {mode: [] for mode in modes}
        for _ in range(args.repeats):
            for mode in modes:
                measured[mode].append(measure(mode, path))
        for mode, runs in measured.items():
            results[mode] = min(runs, key=lambda r: r["seconds"])
            r = results[mode]
            tree = r["tree_peak_mb"] = max(run["tree_mb"] for run in runs)
            print(f"{mode:>7}: {r['seconds']:6.2f} s, peak {r['peak_mb']:6.0f} MB above rest "
                  f"({r['peak_mb'] / size_mb:.2f}x the file); whole process "
                  f"{r['process_seconds']:6.2f} s, {r['process_mb']:6.0f} MB "
                  f"({r['process_mb'] / size_mb:.2f}x); process tree, children included, "
                  f"{tree:6.0f} MB ({tree / size_mb:.2f}x)")
        ratio = results["import"]["seconds"] / results["json"]["seconds"]
        pairs = [i["seconds"] / j["seconds"] for i, j in zip(measured["import"], measured["json"],
                                                              strict=True)]
        print("import / json.load time, each repeat: "
              + ", ".join(f"{pair:.2f}x" for pair in pairs))
        print(f"import / json.load time: {ratio:.2f}x; import peak memory "
              f"{results['import']['peak_mb'] / size_mb:.2f}x the file size")
        cli, bare = results["cli"], results["json"]
        print(f"`annotate import` command / `python -c json.load` process: "
              f"{cli['process_seconds'] / bare['process_seconds']:.2f}x time, "
              f"{cli['process_mb'] / size_mb:.2f}x the file in the process's peak memory, "
              f"{cli['tree_peak_mb'] / size_mb:.2f}x in the process tree's")


if __name__ == "__main__":
    main()
