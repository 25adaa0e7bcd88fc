"""`annotate`: import/export annotation exchange formats, labeling configs and demo data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from annotate import demo
from annotate.formats import ls_client, ls_export, readers
from annotate.formats.export import FORMATS, export_job
from annotate.formats.labels import label_config, read_labels
from annotate.formats.ls_import import DEFAULT_IMAGE_FIELD
from annotate.runtime.atomic import write_text
from annotate.runtime.cliutil import default, run_command
from annotate.runtime.errors import UserError
from annotate.tables import store
from annotate.tables.schema import coerce
from annotate.tables.views import annotator_table


def cmd_import(args: argparse.Namespace) -> None:
    labels = read_labels(args.labels) if args.labels else None
    config = label_config(args.labels)  # a labeling config decides more than the labels
    field_name = args.image_field or (config.image_field() if config else None)
    _, summary = readers.import_set(
        args.export, args.out, strict=args.strict, fmt=args.format, labels=labels,
        images_root=args.images_root, caption_field=args.caption_field,
        image_field=field_name, coco_captions=args.captions,
        allow_outside_root=args.allow_outside_root, image_size=args.image_size,
        annotator=args.annotator,
        controls=config.controls(field_name or DEFAULT_IMAGE_FIELD) if config else None)
    print(summary)
    print(f"wrote {args.out}")


def _size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from err
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return width, height


def cmd_export(args: argparse.Namespace) -> None:
    predictions = coerce("boxes", pd.read_parquet(args.predictions)) if args.predictions else None
    written = export_job(store.load(args.dir), args.out, args.format, predictions=predictions,
                         document_root=args.document_root,
                         include_annotations=not args.no_annotations, source=args.source,
                         annotator=args.annotator, copy=args.copy)
    print("wrote " + ", ".join(str(path) for path in written))


def cmd_config(args: argparse.Namespace) -> None:
    config = ls_export.labeling_config(read_labels(args.labels), caption=not args.no_caption)
    if args.out:
        write_text(args.out, config)
    else:
        sys.stdout.write(config)


def cmd_demo(args: argparse.Namespace) -> None:
    export = demo.generate(args.n, args.out, seed=args.seed)
    print(f"wrote {args.n} images, {export}, label_config.xml and truth/ to {args.out}")


def cmd_summary(args: argparse.Namespace) -> None:
    ts = store.load(args.dir)
    per, counts = annotator_table(ts), ts.counts()
    if args.json:
        print(json.dumps({"counts": counts, "labels": ts.labels,
                          "annotators": per.reset_index().to_dict("records")}, default=str))
        return
    print(f"{args.dir}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print(f"labels: {', '.join(ts.labels)}")
    print(per.to_string())


def cmd_push(args: argparse.Namespace) -> None:
    ts = readers.read_tables(args.dir)
    labels = read_labels(args.labels) if args.labels else None
    if args.sample:  # a bad sample file is refused before any server is reached
        ts = ls_client.sample_subset(ts, args.sample)
        if args.predictions:
            raise UserError("a blind push shows no predictions: leave --predictions out")
    connection = ls_client.connect(args.url, args.api_key)
    if not args.sample:
        predictions = (coerce("boxes", pd.read_parquet(args.predictions)) if args.predictions
                       else None)
        print(ls_client.push(connection, ts, args.project, args.document_root, predictions, labels))
        return
    summary, record = ls_client.push_sample(connection, ts, args.project, args.sample,
                                  args.document_root, labels, args.tracking_uri)
    print(summary)
    print(f"blind re-label project {summary.project_id}: {record['images']} sampled images, "
          "no earlier annotations or predictions shown; recorded in "
          f"{Path(args.sample).parent / 'push.json'} (MLflow run "
          f"{record['mlflow']['run_id']})")


def cmd_pull(args: argparse.Namespace) -> None:
    connection = ls_client.connect(args.url, args.api_key)
    ts, summary, export = ls_client.pull(connection, args.project, args.out,
                               args.images_root or args.document_root, args.timeout)
    print(summary)
    print(f"wrote {args.out} (raw export: {export})")
    if args.sample:
        record = ls_client.record_pull(connection, args.project, ts, summary, export, args.out,
                             args.sample, args.tracking_uri)
        print(f"{record['labelled_images']} of {record['sampled_images']} sampled images "
              f"labelled; recorded in {Path(args.sample).parent / 'pull.json'}")


def _server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL)")
    p.add_argument("--api-key", help="personal access token or legacy token (default: "
                                     "$LABEL_STUDIO_API_KEY; prefer the variable: flags are "
                                     "visible to other users of the machine)")
    p.add_argument("--project", required=True, help="project title or id")
    p.add_argument("--document-root", help="the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
                                           " (images under it are served as local files)")
    p.add_argument("--sample", help="a re-label study's sample.json (quality plan-relabel): push "
                                    "only those images, blind; record the step in its folder")
    p.add_argument("--tracking-uri", help="MLflow for --sample records (default: "
                                          "$MLFLOW_TRACKING_URI, else the study folder's "
                                          "mlflow.db)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="annotate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="Label Studio export, COCO or YOLO -> table set")
    p.add_argument("export", help="Label Studio JSON/JSON-MIN export, COCO instances or "
                                  "captions JSON, YOLO data.yaml (or a folder of per-annotator "
                                  "YOLO sets)")
    p.add_argument("--out", required=True, help="folder for the table set")
    p.add_argument("--format", choices=readers.FORMATS, default="auto")
    p.add_argument("--images-root", help="where image references resolve (default: the "
                                         "export's folder)")
    p.add_argument("--labels", help="label map: comma list, .txt (one per line), .json list, or "
                                    "a Label Studio labeling config .xml")
    p.add_argument("--caption-field", default="caption",
                   help="name of the caption TextArea (and the caption key of JSON-MIN rows)")
    p.add_argument("--image-field", help="task data key of the image (default: the labeling "
                                         "config's Image value when --labels is a config, "
                                         "else 'image')")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 2) if anything is rejected, nulled or outside the images "
                        "root, instead of importing the rest")
    p.add_argument("--allow-outside-root", action="store_true",
                   help="open image references that resolve outside --images-root (absolute "
                        "paths, ../, file://); by default they are kept unopened and counted")
    p.add_argument("--image-size", type=_size, metavar="WxH",
                   help="YOLO: size of images whose files are absent (labels are normalised)")
    p.add_argument("--annotator", help="YOLO: the annotator's name (default: 'yolo'; a folder "
                                       "of per-annotator sets uses the sub-folder names)")
    p.add_argument("--captions", help="COCO captions JSON to read with COCO instances")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="table set -> Label Studio tasks, COCO or YOLO")
    p.add_argument("dir", help="table set folder")
    p.add_argument("--out", required=True, help="tasks JSON file (labelstudio) or folder")
    p.add_argument("--format", choices=FORMATS, default=default(export_job, "fmt"))
    p.add_argument("--predictions", help="boxes Parquet to attach as pre-annotations")
    p.add_argument("--document-root", help="Label Studio LOCAL_FILES_DOCUMENT_ROOT: image paths "
                                           "under it become /data/local-files/ URLs")
    p.add_argument("--no-annotations", action="store_true",
                   help="leave human annotations out (fresh tasks for a new annotation round)")
    p.add_argument("--source", default=default(export_job, "source"),
                   help="yolo: which boxes (human, consensus, model:<version>)")
    p.add_argument("--annotator", help="yolo: which annotator's boxes, for human boxes")
    p.add_argument("--copy", action="store_true", help="yolo: copy images instead of symlinks")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("config", help="print a Label Studio labeling config")
    p.add_argument("--labels", required=True, help="comma list or file (see import --labels)")
    p.add_argument("--no-caption", action="store_true", help="boxes only, no caption TextArea")
    p.add_argument("--out", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("demo", help="generate demo images + a Label Studio export")
    p.add_argument("--n", type=int, default=200, help="number of images (the shipped sample "
                                                      "has 200)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("push", help="table set -> tasks of a Label Studio project (idempotent)")
    p.add_argument("dir", help="table set folder or export file")
    _server_args(p)
    p.add_argument("--predictions", help="boxes Parquet (stage-1 output) as pre-annotations")
    p.add_argument("--labels", help="label map for a new project (default: the set's)")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", help="Label Studio project -> table set (full snapshot export)")
    _server_args(p)
    p.add_argument("--out", required=True, help="folder for the table set")
    p.add_argument("--images-root", help="where image references resolve (default: "
                                         "--document-root)")
    p.add_argument("--timeout", type=float, default=default(ls_client.pull, "timeout"),
                   help="seconds to wait for the export")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("summary", help="counts and per-annotator figures of a table set")
    p.add_argument("dir")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command("annotate", args)


if __name__ == "__main__":
    sys.exit(main())
