"""`stage2-generate`: train the layout-to-caption model, generate captions, score them.

DIR is a table set folder (`annotate import`, `quality consensus`, `quality split`) or an
export file. Gold layouts are the consensus boxes (else the truth, else one annotator).
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from annotate.formats.layout import SCORE_BINS
from annotate.formats.readers import read_tables
from annotate.runtime.cliutil import default, run_command
from annotate.runtime.errors import UserError
from annotate.tables.schema import coerce
from annotate.tables.views import gold_boxes, split_images
from stage2_generate.baseline import rule_job
from stage2_generate.config import BATCH_SIZE, NUM_BEAMS, TrainConfig
from stage2_generate.model import PRESETS
from stage2_generate.noise import Noise, calibrate, calibrate_scores
from stage2_generate.score import read_captions, score_job


def cmd_train(args: argparse.Namespace) -> None:
    from stage2_generate.train import train  # torch and transformers: only where needed

    ts = read_tables(args.dir)
    noise = (calibrate(pd.read_parquet(args.noise_from)) if args.noise_from else
             Noise(args.drop, args.spurious, args.swap, args.jitter, args.scale,
                   duplicate=args.duplicate))
    extra = coerce("boxes", pd.read_parquet(args.train_boxes)) if args.train_boxes else None
    if args.score_bins and not args.scores_from:
        raise UserError("--score-bins needs --scores-from ERRORS: the detector's validation "
                        "error table, whose scores the gold layouts' scores are drawn from")
    scores = calibrate_scores(pd.read_parquet(args.scores_from)) if args.score_bins else None
    config = TrainConfig(preset=args.preset, model=args.model, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.lr,
                         group_by_length=args.group_by_length, bins=args.bins,
                         patience=args.patience, seed=args.seed, noise=noise,
                         extra_share=args.train_boxes_share if extra is not None else 0.0,
                         score_bins=args.score_bins, scores=scores)
    record = train(ts, args.out, config, extra)
    print(f"best validation loss {record['best_val_loss']:.4f}; wrote {args.out}")


def _layouts(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The boxes stage 2 reads (`--boxes`, else the gold boxes) and the images to caption."""
    ts = read_tables(args.dir)
    boxes = coerce("boxes", pd.read_parquet(args.boxes)) if args.boxes else gold_boxes(ts)
    return boxes, split_images(ts, args.split)


def cmd_generate(args: argparse.Namespace) -> None:
    from stage2_generate.generate import generate_job

    boxes, images = _layouts(args)
    captions = generate_job(args.model, boxes, images, args.out, batch_size=args.batch_size,
                            num_beams=args.beams, progress=True)
    print(f"wrote {len(captions)} captions ({captions.source.iloc[0] if len(captions) else ''})"
          f" to {args.out}")


def cmd_baseline(args: argparse.Namespace) -> None:
    boxes, images = _layouts(args)
    captions = rule_job(boxes, images, args.out, bins=args.bins)
    print(f"wrote {len(captions)} rule-baseline captions to {args.out}")


def cmd_score(args: argparse.Namespace) -> None:
    scores = score_job(read_captions(args.captions), read_tables(args.dir),
                       split=args.split, n_boot=args.n_boot, seed=args.seed,
                       json_path=args.json)
    print(json.dumps(scores, indent=1))


def _layout_args(p: argparse.ArgumentParser) -> None:
    """What a captioning command reads and writes (`_layouts` reads them)."""
    p.add_argument("dir", help="table set (images; gold boxes unless --boxes)")
    p.add_argument("--boxes", help="boxes Parquet to read instead (e.g. stage-1 predictions)")
    p.add_argument("--split", help="only images of this split")
    p.add_argument("--out", required=True, help="captions Parquet")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stage2-generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train on the train split, early-stop on val")
    p.add_argument("dir", help="split table set (quality split)")
    p.add_argument("--out", required=True, help="model folder")
    p.add_argument("--preset", choices=sorted(PRESETS), default=default(TrainConfig, "preset"))
    p.add_argument("--model", help="local checkpoint to fine-tune (its own tokenizer)")
    p.add_argument("--epochs", type=int, default=default(TrainConfig, "epochs"))
    p.add_argument("--batch-size", type=int, default=default(TrainConfig, "batch_size"))
    p.add_argument("--lr", type=float, default=default(TrainConfig, "learning_rate"))
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction,
                   default=default(TrainConfig, "group_by_length"),
                   help="batch layouts of similar length together (less padding, faster)")
    p.add_argument("--bins", type=int, default=default(TrainConfig, "bins"),
                   help="coordinate bins per axis")
    p.add_argument("--patience", type=int, default=default(TrainConfig, "patience"),
                   help="epochs without val gain")
    p.add_argument("--seed", type=int, default=default(TrainConfig, "seed"))
    noise = p.add_argument_group("input noise (robustness to stage-1 errors)")
    for name, text in (("drop", "share of objects dropped"),
                       ("spurious", "extra objects per image"),
                       ("swap", "share of labels swapped"), ("jitter", "corner sd, in box sizes"),
                       ("scale", "sd of log box size"),
                       ("duplicate", "share of spurious objects put on a real object (a second "
                                     "box)")):
        noise.add_argument(f"--{name}", type=float, default=default(Noise, name), help=text)
    noise.add_argument("--noise-from", help="calibrate all rates from a stage-1 error table")
    noise.add_argument("--train-boxes", help="boxes Parquet (e.g. out-of-fold stage-1 output) "
                                             "to train on instead of gold for a share")
    noise.add_argument("--train-boxes-share", type=float, default=0.5)
    scored = p.add_argument_group("detection scores in the layout")
    scored.add_argument("--score-bins", type=int, default=default(TrainConfig, "score_bins"),
                        help=f"score buckets per object (0: classes and boxes only; "
                             f"{SCORE_BINS} is the pipeline's)")
    scored.add_argument("--scores-from", metavar="ERRORS",
                        help="stage-1 validation error table: gold objects get scores drawn "
                             "from its found detections, injected spurious ones from its "
                             "spurious detections")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="one caption per image")
    p.add_argument("model", help="model folder")
    _layout_args(p)
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--beams", type=int, default=NUM_BEAMS,
                   help="1 = greedy")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("baseline", help="the rule baseline's captions (templates over the "
                                        "layout encoding, no training): the floor a learned "
                                        "stage 2 must beat")
    _layout_args(p)
    p.add_argument("--bins", type=int, default=default(rule_job, "bins"),
                   help="coordinate bins per axis (as the learned model's encoding)")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("score", help="coco-caption BLEU-1..4, ROUGE-L, CIDEr-D (+ sacreBLEU, "
                                     "chrF, content) vs human captions")
    p.add_argument("captions", help="captions Parquet (from generate) or a COCO results JSON "
                                    "(image_id, caption)")
    p.add_argument("dir", help="table set with the human captions")
    p.add_argument("--split", help="only images of this split")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--n-boot", type=int, default=default(score_job, "n_boot"))
    p.add_argument("--seed", type=int, default=default(score_job, "seed"))
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("stage2-generate", args)


if __name__ == "__main__":
    sys.exit(main())
