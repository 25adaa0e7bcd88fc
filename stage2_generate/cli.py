"""`stage2-generate`: train the layout-to-caption model, generate captions, score them.

DIR is a table set folder (`annotate import`, `quality consensus`, `quality split`) or an
export file. Gold layouts are the consensus boxes (else the truth, else one annotator).
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from annotate.cliutil import run_command
from annotate.layout import DEFAULT_BINS
from annotate.readers import read_tables
from annotate.schema import coerce
from annotate.views import gold_boxes, split_images

from .model import PRESETS
from .noise import Noise, calibrate
from .score import read_captions, score_job


def cmd_train(args: argparse.Namespace) -> None:
    from .train import TrainConfig, train  # torch and transformers: only where needed

    ts = read_tables(args.dir)
    noise = (calibrate(pd.read_parquet(args.noise_from)) if args.noise_from else
             Noise(args.drop, args.spurious, args.swap, args.jitter, args.scale,
                   duplicate=args.duplicate))
    extra = coerce("boxes", pd.read_parquet(args.train_boxes)) if args.train_boxes else None
    config = TrainConfig(preset=args.preset, model=args.model, epochs=args.epochs,
                         batch_size=args.batch_size, learning_rate=args.lr, bins=args.bins,
                         patience=args.patience, seed=args.seed, noise=noise,
                         extra_share=args.train_boxes_share if extra is not None else 0.0)
    record = train(ts, args.out, config, extra)
    print(f"best validation loss {record['best_val_loss']:.4f}; wrote {args.out}")


def cmd_generate(args: argparse.Namespace) -> None:
    from .generate import generate_job

    ts = read_tables(args.dir)
    boxes = coerce("boxes", pd.read_parquet(args.boxes)) if args.boxes else gold_boxes(ts)
    captions = generate_job(args.model, boxes, split_images(ts, args.split), args.out,
                            batch_size=args.batch_size, num_beams=args.beams, progress=True)
    print(f"wrote {len(captions)} captions ({captions.source.iloc[0] if len(captions) else ''})"
          f" to {args.out}")


def cmd_score(args: argparse.Namespace) -> None:
    scores = score_job(read_captions(args.captions), read_tables(args.dir),
                       split=args.split, n_boot=args.n_boot, json_path=args.json)
    print(json.dumps(scores, indent=1))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stage2-generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train on the train split, early-stop on val")
    p.add_argument("dir", help="split table set (quality split)")
    p.add_argument("--out", required=True, help="model folder")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    p.add_argument("--model", help="local checkpoint to fine-tune (its own tokenizer)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help="coordinate bins per axis")
    p.add_argument("--patience", type=int, default=3, help="epochs without val gain")
    p.add_argument("--seed", type=int, default=0)
    noise = p.add_argument_group("input noise (robustness to stage-1 errors)")
    noise.add_argument("--drop", type=float, default=0.0, help="share of objects dropped")
    noise.add_argument("--spurious", type=float, default=0.0, help="extra objects per image")
    noise.add_argument("--swap", type=float, default=0.0, help="share of labels swapped")
    noise.add_argument("--jitter", type=float, default=0.0, help="corner sd, in box sizes")
    noise.add_argument("--scale", type=float, default=0.0, help="sd of log box size")
    noise.add_argument("--duplicate", type=float, default=0.0,
                       help="share of spurious objects put on a real object (a second box)")
    noise.add_argument("--noise-from", help="calibrate all rates from a stage-1 error table")
    noise.add_argument("--train-boxes", help="boxes Parquet (e.g. out-of-fold stage-1 output) "
                                             "to train on instead of gold for a share")
    noise.add_argument("--train-boxes-share", type=float, default=0.5)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("generate", help="one caption per image")
    p.add_argument("model", help="model folder")
    p.add_argument("dir", help="table set (images; gold boxes unless --boxes)")
    p.add_argument("--boxes", help="boxes Parquet to read instead (e.g. stage-1 predictions)")
    p.add_argument("--split", help="only images of this split")
    p.add_argument("--out", required=True, help="captions Parquet")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--beams", type=int, default=1, help="1 = greedy")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("score", help="coco-caption BLEU-1..4, ROUGE-L, CIDEr-D (+ sacreBLEU, "
                                     "chrF, content) vs human captions")
    p.add_argument("captions", help="captions Parquet (from generate) or a COCO results JSON "
                                    "(image_id, caption)")
    p.add_argument("dir", help="table set with the human captions")
    p.add_argument("--split", help="only images of this split")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--n-boot", type=int, default=1000)
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("stage2-generate", args)


if __name__ == "__main__":
    sys.exit(main())
