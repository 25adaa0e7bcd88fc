"""`evaluate-pipeline`: the whole chain on the shipped demo data (default) or your data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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
    parser.add_argument("--seed", type=int, default=0,
                        help="training and resampling randomness (the split keeps its own)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="the train/val/test split's seed: runs with the same split seed "
                             "and data share their test data, so they can be compared")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: "
                                               "$MLFLOW_TRACKING_URI, else OUT/mlflow.db)")
    parser.add_argument("--baseline", help="an earlier run folder (or MLflow run id) to compare "
                                           "this run against at the end (`quality compare`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.func = run
    return run_command("evaluate-pipeline", args)


def run(args: argparse.Namespace) -> None:
    settings = Settings(data=args.data, preset=args.preset, seed=args.seed,
                        tracking_uri=args.tracking_uri,
                        options={"split_seed": args.split_seed})
    page = Pipeline(args.out, settings, echo=print).run()
    for line in headline(json.loads(page.with_name("report.json").read_text())):
        print(line)
    print(f"report: {page} (step logs: {Path(args.out) / 'logs'})")
    if args.baseline:
        from .compare import compare_job, resolve_run

        out = Path(args.out)
        result = compare_job(resolve_run(args.baseline, args.tracking_uri), out,
                             json_path=out / "compare.json", page_dir=out / "compare",
                             tracking_uri=args.tracking_uri)
        for note in result["notes"]:
            print(f"NOTE: {note}")
        print(f"against the baseline {args.baseline} (A) this run (B): "
              f"{result['verdict'].get('line') or result['verdict']['verdict']}; "
              f"details: {out / 'compare' / 'compare.html'}")


def headline(report: dict) -> list[str]:
    """The figures a reader wants first, from report.json: the cascade's drop (gold vs
    predicted input, with its paired CI) per detector, the perfect-input score and the human
    ceiling and the model against it on equal terms, on CIDEr-D."""
    lines = []
    test = report.get("stage1", {}).get("test", {})
    if "map" in test:
        lines.append(f"detector: mAP50 {test['map']['map50']:.3f}, mAP50-95 "
                     f"{test['map']['map50_95']:.3f} on {test.get('images', '?')} test images")
    for name, entry in report.get("robustness", {}).get("variants", {}).items():
        if not name.startswith("gold"):
            continue
        f = entry["figures"]["cider_d"]
        detector = name.removeprefix("gold").strip(", ") or "trained detector"
        lines.append(f"CIDEr-D, stage 2 trained on gold ({detector}): perfect input "
                     f"{f['gold']:.3f}, predicted "
                     f"{f['predicted']:.3f}, drop {f['drop']:.3f} [{f['ci_low']:.3f}, "
                     f"{f['ci_high']:.3f}]")
    variants = report.get("robustness", {}).get("variants", {})
    versus = next((v["versus_people"]["metrics"].get("cider_d") for v in variants.values()
                   if v.get("versus_people")), None)
    if versus and "gold input" in versus["models"]:
        people, model = versus["people"], versus["models"]["gold input"]
        lines.append(f"human ceiling CIDEr-D {people['score']:.3f} [{people['ci_low']:.3f}, "
                     f"{people['ci_high']:.3f}] vs model (perfect input) {model['score']:.3f} "
                     f"on equal terms (each against the other annotators)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
