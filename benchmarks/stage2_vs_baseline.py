"""Why the learned stage 2 scores below the rule baseline on the demo's perfect input.

The demo's data, consensus and split (the `demo` preset: 500 generated images, val 0.2,
test 0.35, split seed 0). Stage 2 is trained as the demo trains it (preset `small`, 10 epochs,
batch 16 grouped by layout length) and with other budgets. Each model, and the rule baseline,
captions the gold test layouts and is scored against the human captions. Printed per row:

- CIDEr-D with its interval over test images;
- content F1 (are the objects and counts right?);
- `exact`: the share of captions equal to one of the image's human captions;
- `distinct`: how many different captions were written;
- `lead`: the share that opens "from left to right", the baseline's only multi-object
  phrasing;
- `best epoch`: the epoch whose validation loss the kept model had (the last one: still
  improving when training stopped).

The equal-terms table scores people, the baseline and the models against the same
leave-one-out references.

    uv run python benchmarks/stage2_vs_baseline.py [--seeds 0 1] [--epochs 10 30] [--beams 1 4]
        [--learning-rates 1e-3 3e-3] [--batch-sizes 32 16] [--patience 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pandas as pd

from annotate.formats.ls_import import import_export
from annotate.metrics.captions import caption_scores, cider_d
from annotate.stats.bootstrap import draws
from annotate.tables.views import gold_boxes
from quality.agreement.ceiling import equal_terms
from quality.gold.consensus import build_consensus
from quality.run.pipeline import PRESETS, demo_data
from quality.splits.partition import split_set
from stage2_generate.baseline import rule_captions
from stage2_generate.content import content_scores
from stage2_generate.generate import generate_captions
from stage2_generate.train import TrainConfig, train


def describe(name: str, captions: pd.DataFrame, refs: pd.Series, gold: pd.DataFrame,
             labels: list[str], baseline_per_image: np.ndarray | None) -> dict:
    captions = captions.set_index("image_id").loc[refs.index].reset_index()
    hyps = captions.caption.tolist()
    scores = caption_scores(hyps, refs.tolist(), n_boot=1000)["cider_d"]
    per_image = cider_d(hyps, refs.tolist())
    exact = np.mean([h in r for h, r in zip(hyps, refs, strict=True)])
    content = content_scores(captions, gold, labels).f1.mean()
    row = {"stage 2": name, "CIDEr-D": f"{scores['score']:.3f} [{scores['ci_low']:.3f}, "
                                       f"{scores['ci_high']:.3f}]",
           "content F1": round(float(content), 3), "exact": round(float(exact), 3),
           "distinct": len(set(hyps)),
           "lead": round(float(np.mean([h.startswith("from left to right") for h in hyps])), 3)}
    if baseline_per_image is not None:
        difference = per_image - baseline_per_image
        boot = np.array([difference[d].mean() for d in draws(len(difference), 1000, 0)])
        row["minus baseline"] = (f"{difference.mean():+.3f} [{np.quantile(boot, 0.025):+.3f}, "
                                 f"{np.quantile(boot, 0.975):+.3f}]")
    return row, per_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--learning-rates", type=float, nargs="+",
                        default=[TrainConfig.learning_rate])
    parser.add_argument("--batch-sizes", type=int, nargs="+",
                        default=[PRESETS["demo"]["stage2_batch_size"]])
    parser.add_argument("--preset", default=PRESETS["demo"]["stage2_preset"])
    parser.add_argument("--patience", type=int, default=TrainConfig.patience,
                        help="epochs without a better validation loss before stopping (as "
                             "many as --epochs: the whole schedule runs)")
    args = parser.parse_args()
    o = PRESETS["demo"]
    ts = split_set(build_consensus(import_export(demo_data(o["demo_images"]))[0]).tables,
                   o["val"], o["test"], seed=o["split_seed"])
    test = ts.images[ts.images.split == "test"]
    human = ts.captions[(ts.captions.source == "human") & ts.captions.image_id.isin(
        test.image_id)]
    refs = human.groupby("image_id").caption.agg(list)
    gold = gold_boxes(ts)
    print(f"demo data: {len(ts.images)} images, test {len(refs)} images with "
          f"{len(human)} human captions; train {int((ts.images.split == 'train').sum())} images")
    baseline = rule_captions(gold, test)
    rows, models = [], {"baseline": baseline}
    row, base_per_image = describe("rule baseline", baseline, refs, gold, ts.labels, None)
    rows.append(row)
    work = Path(tempfile.mkdtemp(prefix="twostage-s2-"))
    for epochs, rate, batch, seed in itertools.product(args.epochs, args.learning_rates,
                                                       args.batch_sizes, args.seeds):
        out = work / f"e{epochs}-lr{rate:g}-b{batch}-s{seed}"
        start = time.perf_counter()
        record = train(ts, out, TrainConfig(preset=args.preset, epochs=epochs, seed=seed,
                                            learning_rate=rate, batch_size=batch,
                                            patience=args.patience, progress=False))
        minutes = (time.perf_counter() - start) / 60
        best = min((e for e in record["history"] if "eval_loss" in e),
                   key=lambda e: e["eval_loss"])
        for beams in args.beams:
            captions = generate_captions(out, gold, test, num_beams=beams)
            name = (f"{args.preset}, {epochs} ep, lr {rate:g}, batch {batch}, seed {seed}, "
                    f"beams {beams}")
            row, _ = describe(name, captions, refs, gold, ts.labels, base_per_image)
            row["train min"] = round(minutes, 1)
            row["best epoch"] = int(best["epoch"])
            rows.append(row)
            models[name] = captions
            print(pd.DataFrame([row]).to_string(index=False), flush=True)
    print("\n" + pd.DataFrame(rows).to_string(index=False))
    fair = equal_terms(ts, models, refs.index, n_boot=1000)["metrics"]["cider_d"]
    print(f"\nequal terms (CIDEr-D, leave-one-out references, {len(refs)} images): people "
          f"{fair['people']['score']:.3f}")
    for name, entry in fair["models"].items():
        print(f"  {name:<40} {entry['score']:.3f}  minus people {entry['minus_people']:+.3f} "
              f"[{entry['minus_people_ci_low']:+.3f}, {entry['minus_people_ci_high']:+.3f}]")


if __name__ == "__main__":
    main()
