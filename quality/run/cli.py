"""`evaluate-pipeline`: the whole chain on the shipped demo data (default) or your data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from annotate.runtime.cliutil import default, run_command
from quality.run.pipeline import LEARNED, PRESETS, Pipeline, Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evaluate-pipeline", description=__doc__)
    parser.add_argument("--data",
                        help="Label Studio export, COCO instances JSON, YOLO data.yaml, or a "
                             "table set folder (`annotate pull --out`); default: the demo data "
                             "(each preset's `demo_images`: the demo preset generates "
                             f"{PRESETS['demo']['demo_images']} images on first use, the smoke "
                             "preset reads the shipped 200)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=default(Settings, "preset"),
                        help="smoke: CI-sized, figures not meaningful; demo: meaningful on 2 "
                             "CPU cores in about 10 min; full: benchmarks and GPUs")
    parser.add_argument("--out", required=True, help="run folder (steps already done are reused)")
    parser.add_argument("--seed", type=int, default=default(Settings, "seed"),
                        help="training and resampling randomness (the split keeps its own)")
    parser.add_argument("--split-seed", type=int,
                        help="the train/val/test split's seed: runs with the same split seed "
                             "and data share their test data, so they can be compared "
                             "(default: the preset's, 0)")
    parser.add_argument("--replicates", type=int,
                        help="train every component K times with seeds SEED, SEED + 1000, "
                             "SEED + 2000, ... and give every figure that compares trained "
                             "models an interval over test images and these training "
                             "replicates (default: the "
                             "preset's: smoke 1, demo 4, full 5)")
    parser.add_argument("--variants", type=lambda text: [v.strip() for v in text.split(",")],
                        help="stage-2 variants to train, comma-separated, gold among them: "
                             f"{', '.join(LEARNED)} (default: the preset's: smoke and full "
                             f"all, demo {','.join(PRESETS['demo']['variants'])})")
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
                        options={key: value for key, value in (
                            ("split_seed", args.split_seed), ("replicates", args.replicates),
                            ("variants", args.variants))
                            if value is not None})
    page = Pipeline(args.out, settings, echo=print).run()
    for line in headline(json.loads(page.with_name("report.json").read_text())):
        print(line)
    print(f"report: {page} (step logs: {Path(args.out) / 'logs'})")
    if args.baseline:
        from quality.compare import compare_job, resolve_run

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
    """The figures a reader wants first, from report.json: the deployed detector's mAP and
    the verdict (the cascade's drop with its interval, the costliest error, the best robust
    variant, the stronger detector, the baseline and the human ceiling)."""
    lines = []
    test = report.get("stage1", {}).get("test", {})
    if "map" in test:
        lines.append(f"deployed detector: mAP50 {test['map']['map50']:.3f}, mAP50-95 "
                     f"{test['map']['map50_95']:.3f} on {test.get('images', '?')} test images")
    replicates = report.get("replicates")
    if replicates:  # the verdict over training replicates replaces one model's
        return lines + list(replicates["verdict"])
    return lines + list(report.get("summary", {}).get("verdict", []))


if __name__ == "__main__":
    sys.exit(main())
