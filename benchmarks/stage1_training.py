"""Stage 1 on the demo data: mAP50-95 on the test split versus training minutes, and CPU
inference speed (ms per image at batch 1 and 32).

    uv run python benchmarks/stage1_training.py [--images 1000] [--epochs 5 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from annotate import demo
from annotate.formats.ls_import import import_export
from quality.gold.consensus import build_consensus
from quality.splits.partition import split_set
from stage1_detect.evaluate import map_scores
from stage1_detect.predict import predict
from stage1_detect.train import DetectorConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 12])
    parser.add_argument("--model", default="yolov8n.yaml")
    parser.add_argument("--imgsz", type=int, default=160)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="twostage-stage1-"))
    export = demo.generate(args.images, work / "demo", seed=1)
    ts = split_set(build_consensus(import_export(export)[0]).tables, 0.1, 0.1)
    test = ts.images[ts.images.split == "test"]
    print(f"{args.images} demo images, {args.model} at {args.imgsz} px, {os.cpu_count()} CPU "
          f"cores; test split {len(test)} images")
    print(f"{'epochs':>6} {'train min':>9} {'mAP50':>6} {'mAP50-95':>9}")
    record = None
    for epochs in args.epochs:
        out = work / f"run_{epochs}"
        start = time.perf_counter()
        record = train(ts, out, DetectorConfig(model=args.model, epochs=epochs,
                                               imgsz=args.imgsz, device="cpu"))
        minutes = (time.perf_counter() - start) / 60
        scores = map_scores(out, record["data_yaml"], "test", device="cpu")
        print(f"{epochs:6d} {minutes:9.1f} {scores['map50']:6.3f} {scores['map50_95']:9.3f}")
    for batch in (1, 32):
        predict(record["weights"], test.head(batch), batch=batch, device="cpu")  # warm up
        start = time.perf_counter()
        predict(record["weights"], test, batch=batch, device="cpu")
        ms = (time.perf_counter() - start) * 1000 / len(test)
        print(f"CPU inference at batch {batch:2d}: {ms:.1f} ms/image (end to end: read, "
              "resize, model, NMS)")


if __name__ == "__main__":
    main()
