"""The cascade's verdict on a larger run, and why the robust variants do what they do.

Runs `evaluate-pipeline --preset demo` (or the run folder given) on a larger generated demo set
with stage-2 epochs of your choice, then prints, from the run's artifacts: each detector's
operating threshold and error rates; per detector and stage-2 variant the perfect-input and
predicted-input scores, the drop, the gap closed and the change against the gold-trained model
(paired 95% intervals over test images: one trained model each); the same figures over test
images x training replicates from the run's replicates step (`replicates.json`: what a verdict
may rest on), with the hand-over's threshold and suppression effects and the verdict sentences;
and the facts that explain them: how many of the deployed detector's
spurious boxes sit on a real object (duplicates) against what the calibrated noise injects,
the out-of-fold detections' error profile against the deployed detector's, and whether each
stage-2 variant was still improving when training stopped.

    uv run python benchmarks/robustness_study.py [--images 1000] [--stage2-epochs 30] \
        [--variants gold,oof,scores,scores+oof]
    cp -r runs/demo runs/long && uv run python benchmarks/robustness_study.py \
        --images 500 --stage2-epochs 40 --out runs/long   # the demo, stage 2 trained longer
    uv run python benchmarks/robustness_study.py --run runs/demo      # only read a run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd

from annotate.tables import store
from annotate.tables.views import gold_boxes
from quality.cascade.robustness import MISLOCATED_IOU
from quality.cascade.summary import detector_rates
from quality.run.pipeline import LEARNED, Pipeline, Settings, demo_data
from stage1_detect.evaluate import match_errors
from stage1_detect.handover import hand_over
from stage2_generate.noise import DUPLICATE_IOU, calibrate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--stage2-epochs", type=int, default=30)
    parser.add_argument("--variants", default=",".join(LEARNED),
                        help="stage-2 variants to train (default: all six)")
    parser.add_argument("--run", help="an existing run folder: read it, run nothing")
    parser.add_argument("--out", help="run folder (default: a new temporary one); steps whose "
                                      "inputs and settings did not change are reused")
    args = parser.parse_args()
    if args.run:
        run = Path(args.run)
    else:
        work = Path(tempfile.mkdtemp(prefix="twostage-robustness-"))
        run = Path(args.out) if args.out else work / "run"
        started = time.perf_counter()
        data = demo_data(args.images) if args.out else demo_data(args.images, work)
        Pipeline(run, Settings(data=str(data), preset="demo",
                               options={"stage2_epochs": args.stage2_epochs,
                                        "variants": args.variants.split(",")})).run()
        print(f"pipeline: {args.images} images, stage-2 epochs {args.stage2_epochs}: "
              f"{(time.perf_counter() - started) / 60:.1f} min ({run})")
    report(run)


def report(run: Path) -> None:
    summary = json.loads((run / "robustness.json").read_text())["summary"]
    print(f"test images: {summary['test_images']}; metric {summary['metric']}")
    for name, d in summary["detectors"].items():
        print(f"{name:18} threshold {d.get('threshold')}  recall {d['recall']:.3f}  "
              f"spurious {d['spurious_rate']:.3f}  wrong label {d['wrong_label_rate']:.3f}  "
              f"mislocated {d['mislocated_rate']:.3f}")
    for detector, variants in summary["gap"].items():
        for variant, e in variants.items():
            line = (f"{detector:18} {variant:10} gold {e['gold']:.3f}  predicted "
                    f"{e['predicted']:.3f}  drop {e['drop']:.3f} [{e['ci_low']:.3f}, "
                    f"{e['ci_high']:.3f}]")
            if e["reduction"] is not None and variant != "gold":
                line += (f"  closes {e['reduction']:.0%} [{e['reduction_ci_low']:.0%}, "
                         f"{e['reduction_ci_high']:.0%}]  predicted {e['predicted_change']:+.3f}"
                         f" [{e['predicted_change_ci_low']:+.3f}, "
                         f"{e['predicted_change_ci_high']:+.3f}]  gold {e['gold_change']:+.3f}"
                         f" [{e['gold_change_ci_low']:+.3f}, {e['gold_change_ci_high']:+.3f}]")
            print(line)
    for detector, e in summary["baseline"].items():
        print(f"{detector:18} {'baseline':10} gold {e['gold']:.3f}  predicted "
              f"{e['predicted']:.3f}  drop {e['drop']:.3f}")
    if (run / "replicates.json").exists():
        over_replicates(json.loads((run / "replicates.json").read_text()))
    explain(run)


def _ci(figure: dict, percent: bool = False) -> str:
    """'value [low, high]' of a replicates.json figure ({value|difference, ci_low, ci_high})."""
    value = figure.get("value", figure.get("difference"))
    if value is None:
        return "n/a"
    form = "{:.0%}" if percent else "{:+.3f}"
    return (f"{form.format(value)} [{form.format(figure['ci_low'])}, "
            f"{form.format(figure['ci_high'])}]")


def over_replicates(block: dict) -> None:
    """The figures over test images x training replicates (the pipeline's replicates step):
    what a verdict may rest on; the single-model lines above resample test images only."""
    print(f"\nover {block['test_images']} test images x {block['replicates']} training "
          f"replicates (seeds {', '.join(map(str, block['seeds']))}):")
    for detector, variants in block["gap"].items():
        for variant, e in variants.items():
            line = (f"{detector:18} {variant:10} gold {e['gold']:.3f}  predicted "
                    f"{e['predicted']:.3f}  drop {_ci(e['drop'])}")
            if variant != "gold":
                line += (f"  closes {_ci(e['reduction'], percent=True)}  - gold-trained: "
                         f"predicted {_ci(e['predicted_change'])}, gold "
                         f"{_ci(e['gold_change'])}")
            print(line)
    for name in ("strong_saves", "threshold_effect", "suppression_effect"):
        figure = block.get(name)
        if figure:
            print(f"{name.replace('_', ' ')}: {_ci(figure.get('difference', figure))}")
    effect = (block.get("suppression_effect") or {}).get("difference", {}).get("value")
    drop = block["gap"]["deployed detector"]["gold"]["drop"]["value"]
    if effect is not None and drop + effect > 0:  # point value only: no interval of a ratio
        print(f"suppression closes {effect / (drop + effect):.0%} of the drop the gold-trained "
              "model would have without it (point value)")
    for sentence in block["verdict"]:
        print(f"> {sentence}")


def explain(run: Path) -> None:
    """The error profile the variants learn from, against the one they meet."""
    errors = pd.read_parquet(run / "stage1" / "errors_val.parquet")
    spurious = errors[errors.status == "spurious"]
    noise = calibrate(errors)
    print(f"deployed detector, val: {len(spurious)} spurious boxes, "
          f"{(spurious.iou.fillna(0) >= DUPLICATE_IOU).mean():.0%} on a real object "
          f"(IoU >= {DUPLICATE_IOU}); median confidence {spurious.score.median():.2f} against "
          f"{errors.score[errors.status == 'matched'].median():.2f} for matches")
    print(f"calibrated noise: drop {noise.drop:.3f}, spurious {noise.spurious:.2f} per image "
          f"({noise.duplicate:.0%} duplicates), swap {noise.swap:.3f}, jitter {noise.jitter:.3f}")
    ts = store.load(run / "split")
    handed = json.loads((run / "stage1" / "threshold.json").read_text())
    train_ids = ts.images.image_id[ts.images.split == "train"]
    oof = hand_over(pd.read_parquet(run / "oof" / "oof_boxes.parquet"), handed)
    profiles = {"deployed (val)": errors,
                "out-of-fold (train)": match_errors(gold_boxes(ts)[
                    gold_boxes(ts).image_id.isin(train_ids)], oof, image_ids=train_ids)}
    for name, table in profiles.items():
        rates = detector_rates(table, MISLOCATED_IOU)
        print(f"{name:20} " + "  ".join(f"{k} {v:.3f}" for k, v in rates.items()
                                        if isinstance(v, float)))
    for folder in sorted((run / "stage2").iterdir()):
        record = folder / "twostage.json"
        if not record.exists():
            continue
        history = [h["eval_loss"] for h in json.loads(record.read_text())["history"]
                   if "eval_loss" in h]
        best = int(np.argmin(history)) + 1
        print(f"stage 2 {folder.name:10} epochs run {len(history)}, best epoch {best}, "
              f"best val loss {min(history):.4f}"
              + ("  (still improving at the end)" if best == len(history) else ""))


if __name__ == "__main__":
    main()
