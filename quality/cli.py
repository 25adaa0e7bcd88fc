"""`quality`: reliability, consensus and the human ceiling of a table set.

DIR is a table set folder (`annotate import --out DIR`) or an export file read on the fly.
"""

from __future__ import annotations

import argparse
import sys

from annotate import store
from annotate.atomic import write_json, write_text
from annotate.cliutil import run_command
from annotate.errors import UserError
from annotate.readers import read_tables

from .adequacy import adequacy
from .audit import (
    DEFAULT_MIN_CORRELATION,
    DEFAULT_PHASH_DISTANCE,
    IMAGE_KINDS,
    KINDS,
    audit,
    repair,
)
from .ceiling import human_ceiling
from .consensus import TIES, build_consensus
from .leakage import identifier_leaks, input_leaks
from .reliability import reliability
from .splits import fold_set, split_report, split_set
from .units import DEFAULT_IOU


def cmd_reliability(args: argparse.Namespace) -> None:
    ts = read_tables(args.dir)
    result = reliability(ts, args.iou, args.n_boot, args.seed, args.top)
    report = result.to_dict()
    if args.ceiling:
        report["human_ceiling"] = human_ceiling(ts, args.n_boot, args.seed)
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from .plots import reliability_figure, save_figure  # matplotlib only when asked

        save_figure(reliability_figure(result), args.plot)
    print(f"{'':10} {'alpha':>7} {'95% CI':>17} {'units':>7} {'values':>7}")
    for kind, a in result.alphas.items():
        if not a.n_units:
            print(f"{kind:10} {'no units (nothing of this kind was rated twice)':>33}")
            continue
        print(f"{kind:10} {a.alpha:7.3f} [{a.ci_low:7.3f}, {a.ci_high:7.3f}] "
              f"{a.n_units:7d} {a.n_values:7d}")
        if kind in result.present_only:
            p = result.present_only[kind]
            print(f"{'  no absent':10} {p.alpha:7.3f} [{p.ci_low:7.3f}, {p.ci_high:7.3f}] "
                  f"{p.n_units:7d} {p.n_values:7d}")
    print(result.annotators.set_index("annotator").round(3).to_string())
    for path in (args.json, args.plot):
        if path:
            print(f"wrote {path}")


def cmd_consensus(args: argparse.Namespace) -> None:
    result = build_consensus(read_tables(args.dir), iou_threshold=args.iou, tie=args.tie)
    out = store.save(result.tables, args.out)
    write_text(out / "consensus_flags.csv", result.flags.to_csv(index=False))
    kept = result.clusters.kept
    print(f"{int(kept.sum())} consensus boxes from {len(kept)} box clusters; "
          f"{(result.tables.captions.source == 'consensus').sum()} consensus captions")
    counts = result.flags.kind.value_counts()
    print("flagged for review: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "none"))
    print(f"wrote {out} (flags: {out / 'consensus_flags.csv'})")


def cmd_ceiling(args: argparse.Namespace) -> None:
    result = human_ceiling(read_tables(args.dir), args.n_boot, args.seed)
    if args.json:
        write_json(args.json, result)
    rows = {"pooled": result["pooled"], **result["annotators"]}
    print(f"{'':24} {'BLEU':>7} {'chrF':>7} {'CIDEr-D':>8} {'ROUGE-L':>8}")
    for name, scores in rows.items():
        print(f"{name:24} {scores['bleu']['score']:7.2f} {scores['chrf']['score']:7.2f} "
              f"{scores['cider_d']['score']:8.3f} {scores['rouge_l']['score']:8.3f}")
    if args.json:
        print(f"wrote {args.json}")


def cmd_split(args: argparse.Namespace) -> None:
    ts = read_tables(args.dir)
    if args.folds:
        result, column, asked = fold_set(ts, args.folds, args.seed), "fold", None
    else:
        result, column = split_set(ts, args.val, args.test, args.seed), "split"
        asked = {"train": 1 - args.val - args.test, "val": args.val, "test": args.test}
    report = split_report(result, column, asked)
    summary = {**report.to_dict(), "settings": {"val": args.val, "test": args.test,
                                                "folds": args.folds, "seed": args.seed}}
    if column == "split":
        summary["adequacy"] = adequacy(result, n_boot=args.n_boot, seed=args.seed)
    out = store.save(result, args.out)
    write_json(out / "split_report.json", summary)
    print(report.table.to_string())
    print(f"largest class-share difference between {column}s: "
          f"{report.max_class_share_gap:.3f}; size error {report.max_size_error_pp:.2f} pp")
    for name, figures in summary.get("adequacy", {}).items():
        widths = ", ".join(f"{m} +-{v['ci_width'] / 2:.3f}" for m, v in figures.items()
                           if isinstance(v, dict))
        print(f"{name} ({figures['images']} images): 95% CI {widths} (human captions)")
    print(f"wrote {out} and {out / 'split_report.json'}")


def cmd_audit(args: argparse.Namespace) -> None:
    ts = read_tables(args.dir)
    found = audit(ts, args.phash_distance, args.min_correlation,
                  check_images=not args.no_images, progress=True)
    report = {**found.to_dict(), "input_leaks": input_leaks(ts).to_dict("records"),
              "identifier_leaks": identifier_leaks(ts).to_dict("records")}
    for kind, n in found.counts().items():
        print(f"{kind:24} {n}")
    print(f"{'input_leaks':24} {len(report['input_leaks'])}")
    print(f"{'identifier_leaks':24} {len(report['identifier_leaks'])}")
    if len(found.unreadable):
        print(f"{len(found.unreadable)} images could not be read (no near-duplicate check)")
    if len(found.findings):
        print(found.findings.head(args.top).to_string(index=False))
    if args.repair:
        kinds = KINDS if args.repair_kinds == "all" else tuple(args.repair_kinds.split(","))
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise UserError(f"unknown --repair-kinds {sorted(unknown)}: use {KINDS} or all")
        repaired, moves = repair(ts, found, kinds)
        out = store.save(repaired, args.out)
        write_text(out / "repair_moves.csv", moves.to_csv(index=False))
        report["repair"] = {"moved": len(moves), "out": str(out)}
        print(f"repair: moved {len(moves)} images; wrote {out} ({out / 'repair_moves.csv'})")
    if args.json:
        write_json(args.json, report)
        print(f"wrote {args.json}")


def cmd_robustness(args: argparse.Namespace) -> None:
    from . import workspace
    from .robustness import analyse_run

    figures = analyse_run(args.dir, args.n_boot, args.seed, perturb=not args.no_perturbation)
    write_json(workspace.path(args.dir, "robustness"), figures)
    for name, entry in figures["variants"].items():
        for metric, f in entry["figures"].items():
            if isinstance(f, dict):
                print(f"{name:10} {metric:8} gold {f['gold']:.3f}  predicted {f['predicted']:.3f}"
                      f"  drop {f['drop']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]")
    print(f"wrote {workspace.path(args.dir, 'robustness')}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import build

    page = build(args.dir, args.out, args.n_boot, args.seed, overfit=not args.no_overfit)
    print(f"wrote {page} and {page.with_name('report.json')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("dir", help="table set folder or export file")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for CIs")

    p = sub.add_parser("reliability", parents=[common],
                       help="Krippendorff's alpha for labels, boxes, captions, counts")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--plot", help="write a figure (alphas, annotator agreement), e.g. out.png")
    p.add_argument("--iou", type=float, default=DEFAULT_IOU, help="IoU to match boxes")
    p.add_argument("--top", type=int, default=20, help="units with most disagreement to list")
    p.add_argument("--ceiling", action="store_true", help="add the human caption ceiling")
    p.set_defaults(func=cmd_reliability)

    p = sub.add_parser("consensus", parents=[common],
                       help="add consensus boxes and captions (source 'consensus')")
    p.add_argument("--out", required=True, help="folder for the set with consensus rows")
    p.add_argument("--iou", type=float, default=DEFAULT_IOU, help="IoU to match boxes")
    p.add_argument("--tie", choices=TIES, default="keep",
                   help="a box drawn by exactly half the annotators (flagged either way)")
    p.set_defaults(func=cmd_consensus)

    p = sub.add_parser("ceiling", parents=[common],
                       help="each annotator's captions scored against the others'")
    p.add_argument("--json", help="write the figures to this JSON file")
    p.set_defaults(func=cmd_ceiling)

    p = sub.add_parser("split", parents=[common],
                       help="group-aware stratified train/val/test split (or K folds)")
    p.add_argument("--out", required=True, help="folder for the split set")
    p.add_argument("--val", type=float, default=0.1, help="share of images in val")
    p.add_argument("--test", type=float, default=0.1, help="share of images in test")
    p.add_argument("--folds", type=int, help="K folds (column `fold`) instead of a split")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("robustness", parents=[common],
                       help="gold vs predicted stage-2 input, attribution, perturbation curves")
    p.add_argument("--no-perturbation", action="store_true", help="skip the curves (faster)")
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("report", parents=[common],
                       help="one static HTML page + report.json from a run folder")
    p.add_argument("--out", required=True, help="folder for report.html and report.json")
    p.add_argument("--no-overfit", action="store_true", help="skip the overfit check (~10 s)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("audit", help="duplicates and split groups across splits; --repair")
    p.add_argument("dir", help="table set folder or export file")
    p.add_argument("--json", help="write every finding to this JSON file")
    p.add_argument("--phash-distance", type=int, default=DEFAULT_PHASH_DISTANCE,
                   help="near duplicates: most differing pHash bits (of 64)")
    p.add_argument("--min-correlation", type=float, default=DEFAULT_MIN_CORRELATION,
                   help="near duplicates: least thumbnail correlation")
    p.add_argument("--no-images", action="store_true", help="skip reading image files")
    p.add_argument("--top", type=int, default=20, help="findings to print")
    p.add_argument("--repair", action="store_true",
                   help="merge duplicate clusters into groups and move them whole (--out)")
    p.add_argument("--out", help="folder for the repaired set (with --repair)")
    p.add_argument("--repair-kinds", default=",".join(IMAGE_KINDS),
                   help="findings to repair, comma-separated, or 'all' (default: image "
                        "duplicates and split groups; duplicate captions of short template "
                        "sentences would merge most of a set)")
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "repair", False) and not args.out:
        parser.error("audit --repair needs --out DIR for the repaired set")
    return run_command("quality", args)


if __name__ == "__main__":
    sys.exit(main())
