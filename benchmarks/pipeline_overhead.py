"""Our stage-1 prediction and stage-2 generation against calling ultralytics `predict` and
transformers `generate` directly on the same inputs (target: ours <= 1.15x the raw models),
on a finished run folder (default: runs/demo from `make evaluate`). Also prints the run's step
timings from its cache records.

    uv run python benchmarks/pipeline_overhead.py [--run runs/demo]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from annotate.formats.layout import encode_layouts
from annotate.tables import store
from annotate.tables.views import reference_boxes
from quality import workspace
from stage1_detect.engine import ultralytics
from stage1_detect.predict import predict
from stage2_generate.generate import generate_captions
from stage2_generate.model import load


def timed(work, repeat: int = 3) -> float:
    work()  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", default="runs/demo")
    args = parser.parse_args()
    run = Path(args.run)
    print("step timings of the run (s):")
    for record in sorted((run / ".cache").glob("*.json")):
        print(f"  {record.stem:22} {json.loads(record.read_text())['seconds']:8.1f}")
    ts = store.load(workspace.path(run, "split"))
    images = ts.images[ts.images.split != "train"]
    weights = json.loads((run / "stage1" / "run.json").read_text())["weights"]
    imgsz = json.loads((run / "stage1" / "run.json").read_text())["config"]["imgsz"]
    paths = images.path.tolist()
    yolo = ultralytics().YOLO

    def raw_predict():  # what a user calling ultralytics directly does: load, then predict
        model = yolo(weights)
        return [model.predict(paths[k:k + 32], imgsz=imgsz, conf=0.25, device="cpu",
                              verbose=False) for k in range(0, len(paths), 32)]

    raw = timed(raw_predict)
    ours = timed(lambda: predict(weights, images, conf=0.25, imgsz=imgsz, device="cpu"))
    print(f"stage 1 on {len(paths)} images: ultralytics load + predict {raw:.2f} s, ours "
          f"{ours:.2f} s ({ours / raw:.2f}x)")

    folder = workspace.path(run, "stage2") / "gold"
    texts = encode_layouts(reference_boxes(ts), images).tolist()

    def raw_generate():  # load, then generate, as with transformers directly
        s2, tokenizer = load(folder)
        s2.eval()
        for k in range(0, len(texts), 32):
            batch = tokenizer(texts[k:k + 32], return_tensors="pt", padding=True)
            with torch.no_grad():
                out = s2.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=48)
            tokenizer.batch_decode(out, skip_special_tokens=True)

    raw = timed(raw_generate)
    ours = timed(lambda: generate_captions(folder, reference_boxes(ts), images, device="cpu"))
    print(f"stage 2 on {len(texts)} layouts: transformers generate {raw:.2f} s, ours {ours:.2f} s"
          f" ({ours / raw:.2f}x; both load the model, ours also encodes the layouts)")


if __name__ == "__main__":
    main()
