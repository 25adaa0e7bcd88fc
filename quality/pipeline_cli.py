"""`evaluate-pipeline`: the whole chain on the shipped demo data (default) or your data."""

from __future__ import annotations

import argparse
import sys

from annotate.cliutil import run_command

from .pipeline import DEMO_EXPORT, PRESETS, Pipeline, Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate-pipeline", description=__doc__)
    parser.add_argument("--data", default=str(DEMO_EXPORT),
                        help="Label Studio export, COCO instances JSON, YOLO data.yaml, or a "
                             "table set folder (`annotate pull --out`); default: the demo data")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="smoke: CI-sized, figures not meaningful; demo: meaningful on 2 "
                             "CPU cores in <= 15 min; full: benchmarks and GPUs")
    parser.add_argument("--out", required=True, help="run folder (steps already done are reused)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: "
                                               "$MLFLOW_TRACKING_URI, else OUT/mlflow.db)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.func = run
    return run_command("evaluate-pipeline", args)


def run(args: argparse.Namespace) -> None:
    settings = Settings(data=args.data, preset=args.preset, seed=args.seed,
                        tracking_uri=args.tracking_uri)
    print(f"report: {Pipeline(args.out, settings).run()}")


if __name__ == "__main__":
    sys.exit(main())
