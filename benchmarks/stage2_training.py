"""Stage 2 on the demo data: caption quality with gold input versus training time, and
generation speed.

Makes a demo set (simulated annotators), builds consensus, splits it, then for each epoch budget
trains a fresh model and scores greedy captions of the test split against the human captions
(sacreBLEU, CIDEr-D, content), and times generation at batch 32.

    uv run python benchmarks/stage2_training.py [--images 1000] [--epochs 5 15 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from annotate import demo
from annotate.formats.ls_import import import_export
from annotate.metrics.captions import caption_scores
from annotate.tables.views import reference_boxes
from quality.gold.consensus import build_consensus
from quality.splits.partition import split_set
from stage2_generate.content import content_score
from stage2_generate.generate import generate_captions
from stage2_generate.train import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--epochs", type=int, nargs="+", default=[5, 15, 40])
    parser.add_argument("--preset", default="small")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="twostage-bench-"))
    export = demo.generate(args.images, work / "demo", seed=1)
    ts = split_set(build_consensus(import_export(export)[0]).tables, 0.1, 0.1)
    test = ts.images[ts.images.split == "test"]
    human = ts.captions[(ts.captions.source == "human") & ts.captions.image_id.isin(
        test.image_id)]
    refs = human.groupby("image_id").caption.agg(list)
    gold = reference_boxes(ts)
    print(f"{args.images} demo images, preset {args.preset}, test split {len(test)} images; "
          f"{os.cpu_count()} CPU cores")
    print(f"{'epochs':>6} {'train min':>9} {'sacreBLEU':>9} {'CIDEr-D':>8} {'content':>8} "
          f"{'captions/s':>10}")
    for epochs in args.epochs:
        out = work / f"model_{epochs}"
        start = time.perf_counter()
        train(ts, out, TrainConfig(preset=args.preset, epochs=epochs, patience=epochs,
                                   progress=False))
        minutes = (time.perf_counter() - start) / 60
        start = time.perf_counter()
        captions = generate_captions(out, gold, test, batch_size=32)
        rate = len(captions) / (time.perf_counter() - start)
        captions = captions[captions.image_id.isin(refs.index)]
        scores = caption_scores(captions.caption.tolist(), refs.loc[captions.image_id].tolist(),
                                n_boot=0)
        content = content_score(captions, gold, ts.labels, n_boot=0)["score"]
        print(f"{epochs:6d} {minutes:9.1f} {scores['sacrebleu']['score']:9.1f} "
              f"{scores['cider_d']['score']:8.3f} {content:8.3f} {rate:10.0f}")


if __name__ == "__main__":
    main()
