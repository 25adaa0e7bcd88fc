"""`stage1-detect`: train the detector on a table set's gold boxes, predict boxes tables,
evaluate (mAP + per-object error table), make out-of-fold predictions, and serve the detector
to Label Studio as an ML backend (pre-annotations when an annotator opens a task, or for a
whole project with `preannotate`).

DIR is a table set folder with a `split` column (`quality split`) or an export file.
"""

from __future__ import annotations

import argparse
import logging
import sys

import pandas as pd

from annotate.formats.ls_client import connect
from annotate.formats.readers import read_tables
from annotate.runtime.cliutil import default, run_command
from annotate.tables.views import GOLD_CHOICES
from stage1_detect.coco_eval import read_predictions
from stage1_detect.crossfit import OOF_BOXES, crossfit
from stage1_detect.jobs import evaluate_job, predict_job
from stage1_detect.serving.app import serve
from stage1_detect.serving.bulk import preannotate
from stage1_detect.serving.images import ImageSource
from stage1_detect.serving.labels import parse_label_map
from stage1_detect.serving.predictor import Predictor
from stage1_detect.train import DetectorConfig, train


def _config(args: argparse.Namespace) -> DetectorConfig:
    return DetectorConfig(model=args.weights or args.model, epochs=args.epochs,
                          imgsz=args.imgsz, batch=args.batch, device=args.device,
                          seed=args.seed, gold=args.gold, patience=args.patience)


def cmd_train(args: argparse.Namespace) -> None:
    record = train(read_tables(args.dir), args.out, _config(args))
    print(f"val mAP50 {record['val'].get('map50', float('nan')):.3f}, mAP50-95 "
          f"{record['val'].get('map50_95', float('nan')):.3f}; weights {record['weights']}")


def cmd_predict(args: argparse.Namespace) -> None:
    boxes = predict_job(args.run, read_tables(args.dir), args.out, split=args.split,
                        conf=args.conf, imgsz=args.imgsz, batch=args.batch, device=args.device,
                        progress=True)
    print(f"wrote {len(boxes)} boxes ({boxes.source.iloc[0] if len(boxes) else 'none'}) "
          f"to {args.out}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    ts = read_tables(args.dir)
    predicted = read_predictions(args.predictions, ts) if args.predictions else None
    report, _ = evaluate_job(ts, predicted, run=args.run, split=args.split, gold=args.gold,
                             iou=args.iou, conf=args.conf, imgsz=args.imgsz,
                             device=args.device, errors_path=args.errors, json_path=args.json)
    coco = report["coco"]
    print(f"COCOeval of {coco['detections']} stored boxes on {coco['images']} images "
          f"(gold: {report['gold']}):")
    for name, label in COCO_LINES.items():
        print(f"  {label:<52} = {coco[name]:.4f}")
    excluded = report["excluded_detections"]
    if any(excluded.values()):
        print(f"left out: {excluded['unknown_image']} detections on images the set does not "
              f"have, {excluded['unknown_category']} of categories it does not have")
    if "map" in report:
        print(f"ultralytics val: mAP50 {report['map']['map50']:.3f}  mAP50-95 "
              f"{report['map']['map50_95']:.3f}")
    print(pd.DataFrame(report["errors"]).set_index("class").round(3).to_string())
    if args.errors:
        print(f"wrote the error table to {args.errors}")


#: COCOeval's summary lines, as pycocotools prints them.
COCO_LINES = {
    "ap": "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "ap50": "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
    "ap75": "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
    "ap_small": "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "ap_medium": "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "ap_large": "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
    "ar1": "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
    "ar10": "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
    "ar100": "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
    "ar_small": "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
    "ar_medium": "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
    "ar_large": "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
}


def cmd_crossfit(args: argparse.Namespace) -> None:
    boxes = crossfit(read_tables(args.dir), args.out, _config(args), folds=args.folds,
                     conf=args.conf, progress=True)
    print(f"wrote {len(boxes)} out-of-fold boxes to {args.out}/{OOF_BOXES}")


def cmd_serve(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s "
                        "%(message)s")
    predictor = Predictor(args.run, ImageSource.from_environment(args.document_root),
                          threshold=args.threshold,
                          suppress_iou=None if args.no_suppress else "run",
                          label_map=parse_label_map(args.label_map), imgsz=args.imgsz,
                          device=args.device)
    about = predictor.describe()
    print(f"serving {about['model_version']} ({len(about['classes'])} classes) at threshold "
          f"{about['threshold']:.2f} ({about['threshold_from']}), suppression IoU "
          f"{about['suppress_iou']}; connect Label Studio to http://{args.host}:{args.port}",
          flush=True)
    serve(predictor, args.host, args.port)


def cmd_preannotate(args: argparse.Namespace) -> None:
    print(preannotate(connect(args.url, args.api_key), args.project, backend=args.backend,
                      batch=args.batch))


def _training_args(p: argparse.ArgumentParser) -> None:
    """The training settings, with `DetectorConfig`'s defaults."""
    p.add_argument("--model", default=default(DetectorConfig, "model"),
                   help="model config: yolov8n.yaml, yolo11n.yaml, ... or 'tiny' (ours)")
    p.add_argument("--weights", help="local weights (best.pt) to fine-tune instead")
    for name in ("epochs", "imgsz", "batch", "seed", "patience"):
        p.add_argument(f"--{name}", type=int, default=default(DetectorConfig, name))
    p.add_argument("--device", help="cpu, 0, or 0,1 for DDP (default: GPU 0 if any, else cpu)")
    p.add_argument("--gold", help=f"gold boxes: {GOLD_CHOICES}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stage1-detect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train on the train split, validate on val")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="run directory")
    _training_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="detector boxes as a boxes table (Parquet)")
    p.add_argument("run", help="run directory or weights file")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="boxes Parquet")
    p.add_argument("--split", help="only images of this split")
    p.add_argument("--conf", type=float, default=default(predict_job, "conf"),
                   help="least confidence kept (default: every box an operating threshold may "
                        "keep; `quality threshold` chooses that threshold)")
    p.add_argument("--imgsz", type=int, help="default: the training size")
    p.add_argument("--batch", type=int, default=default(predict_job, "batch"))
    p.add_argument("--device")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="mAP and the per-object error table")
    p.add_argument("run", nargs="?", help="run directory (omit with --predictions)")
    p.add_argument("dir")
    p.add_argument("--predictions", "--boxes", dest="predictions",
                   help="score these stored boxes instead of predicting: a boxes table "
                        "(.parquet) or a COCO results file (.json)")
    p.add_argument("--split", help="images of this split (default: all)")
    p.add_argument("--gold", help=f"gold boxes: {GOLD_CHOICES}")
    p.add_argument("--iou", type=float, default=default(evaluate_job, "iou"),
                   help="IoU to match")
    p.add_argument("--conf", type=float, default=default(evaluate_job, "conf"),
                   help="least confidence kept when predicting")
    p.add_argument("--imgsz", type=int, help="mAP image size (default: the training size)")
    p.add_argument("--device")
    p.add_argument("--errors", help="write the error table (Parquet) here")
    p.add_argument("--json", help="write the figures here")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("crossfit", help="out-of-fold predictions from K grouped folds")
    p.add_argument("dir")
    p.add_argument("--out", required=True, help="folder for the K runs and oof_boxes.parquet")
    p.add_argument("--folds", type=int, default=default(crossfit, "folds"))
    p.add_argument("--conf", type=float, default=default(crossfit, "conf"),
                   help="least confidence kept")
    _training_args(p)
    p.set_defaults(func=cmd_crossfit)

    p = sub.add_parser("serve", help="serve the detector as a Label Studio ML backend")
    p.add_argument("run", help="pipeline run folder, stage-1 run folder or weights file")
    p.add_argument("--host", default=default(serve, "host"))
    p.add_argument("--port", type=int, default=default(serve, "port"))
    p.add_argument("--threshold", type=float,
                   help="least confidence shown (default: the run's threshold.json choice, "
                        "else 0.25)")
    p.add_argument("--no-suppress", action="store_true",
                   help="no class-agnostic suppression even where the run chose it")
    p.add_argument("--label-map", help="'model class=Project label,...' where names differ "
                                       "(else predicted_values, then names, decide)")
    p.add_argument("--document-root", help="Label Studio's local-files document root "
                                           "(default: $LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
    p.add_argument("--imgsz", type=int, help="default: the training size")
    p.add_argument("--device")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("preannotate", help="pre-annotate a whole Label Studio project "
                                           "through its ML backend, in batches (resumable)")
    p.add_argument("project", help="project id or title")
    p.add_argument("--backend", help="the backend's URL, connected to the project first if "
                                     "it is not (default: the project's backend)")
    p.add_argument("--batch", type=int, default=default(preannotate, "batch"))
    p.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL)")
    p.add_argument("--api-key", help="default: $LABEL_STUDIO_API_KEY")
    p.set_defaults(func=cmd_preannotate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "evaluate" and not (args.run or args.predictions):
        parser.error("evaluate needs a run directory or --predictions")
    return run_command("stage1-detect", args)


if __name__ == "__main__":
    sys.exit(main())
