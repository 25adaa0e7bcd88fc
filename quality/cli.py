"""`quality`: the data-quality jobs of a table set (reliability, consensus, re-labelling and
adjudication, the human ceiling, splits, the leakage audit, sanity checks) and the jobs over a
run folder (operating threshold, robustness, report, comparison of two runs).

DIR is a table set folder (`annotate import --out DIR`) or an export file read on the fly;
for threshold, robustness and report it is a run folder (`evaluate-pipeline --out DIR`).
Every default is the job function's own (`annotate.runtime.cliutil.default`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from annotate.formats.readers import read_tables
from annotate.runtime.atomic import write_json
from annotate.runtime.cliutil import default, run_command
from annotate.runtime.errors import UserError
from quality.agreement.ceiling import human_ceiling
from quality.agreement.jobs import reliability_job
from quality.agreement.relabel import (
    PLANNED_KINDS,
    SAMPLE_FILE,
    merge_sets,
    plan_job,
    plan_relabel,
    study_check,
)
from quality.agreement.reliability import ALPHA_KINDS
from quality.cascade.robustness import robustness_job
from quality.cascade.sanity import sanity_job
from quality.compare import compare_job, plan_replicates, resolve_run
from quality.gallery.jobs import gallery_folder, gallery_job
from quality.gold.adjudicate import adjudicate_pull, adjudicate_push
from quality.gold.consensus import TIES
from quality.gold.jobs import CONSENSUS_FLAGS, consensus_job
from quality.judging.design import DESIGNS, RATING_MAX
from quality.judging.jobs import (
    ANALYSIS,
    PLAN,
    SYSTEMS,
    TARGET_CI,
    judgments_job,
    plan_judging,
    pull_judging,
    push_judging,
    read_plan,
    simulate_judging,
)
from quality.judging.simulate import Judges, RatingJudges
from quality.splits.audit import FINDING_KINDS
from quality.splits.jobs import REPAIR_MOVES, SPLIT_REPORT, audit_job, split_job


def cmd_reliability(args: argparse.Namespace) -> None:
    ts = read_tables(args.dir)
    for extra in args.add or []:
        ts, added = merge_sets(ts, read_tables(extra))
        print(f"added {extra}: {added['annotations_added']} annotations on {added['images']} "
              f"images ({added['labelled_twice_by_one_person']} by someone who had labelled "
              "the image before, kept as a second rater named '... (again)')")
    _, result = reliability_job(ts, args.json, iou=args.iou, n_boot=args.n_boot,
                                seed=args.seed, top=args.top, ceiling=args.ceiling,
                                plot=args.plot)
    print(f"{'':10} {'alpha':>7} {'95% CI':>17} {'units':>7} {'values':>7}")
    for kind, a in result.alphas.items():
        if not a.n_units:
            print(f"{kind:10} {'no units (nothing of this kind was rated twice)':>33}")
            continue
        print(f"{kind:10} {a.alpha:7.3f} [{a.ci_low:7.3f}, {a.ci_high:7.3f}] "
              f"{a.n_units:7d} {a.n_values:7d}")
        if kind in result.present_only:
            p = result.present_only[kind]
            floor = result.box_floor()["floor"] if kind == "boxes" else None
            floor = f"  (floor {floor:.2f}: matched boxes)" if floor is not None else ""
            print(f"{'  no absent':10} {p.alpha:7.3f} [{p.ci_low:7.3f}, {p.ci_high:7.3f}] "
                  f"{p.n_units:7d} {p.n_values:7d}{floor}")
    print(result.annotators.set_index("annotator").round(3).to_string())
    for path in (args.json, args.plot):
        if path:
            print(f"wrote {path}")
    if args.plan:
        check = study_check(result.alphas, args.plan, args.tracking_uri)
        verdict = ("met" if check["met"] else
                   f"NOT met: about {check['more_images']} more images labelled alike would "
                   "reach it")
        print(f"target: {check['kind']} alpha {check['alpha']:.3f} "
              f"[{check['ci_low']:.3f}, {check['ci_high']:.3f}], +-{check['half_width']:.3f} on "
              f"{check['images']} images against the planned +-{check['target_ci']:g}: {verdict}")
        print(f"wrote {Path(args.plan).parent / 'reliability.json'}")


def cmd_plan_relabel(args: argparse.Namespace) -> None:
    plan = plan_job(read_tables(args.dir), args.out, args.target_ci, kind=args.kind,
                    extra=args.annotators, prior_alpha=args.prior_alpha,
                    per_group=args.per_group or None, min_per_class=args.min_per_class,
                    iou=args.iou, n_boot=args.n_boot, seed=args.seed,
                    cost_per_hour=args.cost_per_hour, assurance=args.assurance,
                    tracking_uri=args.tracking_uri)
    pilot = plan["pilot"]
    print(f"pilot ({pilot['route']}): {plan['kind']} alpha {pilot['alpha']:.3f} "
          f"[{pilot['ci_low']:.3f}, {pilot['ci_high']:.3f}] on {pilot['images']} images with "
          f"{pilot['labels_per_image']} labels each")
    print(f"+-{plan['target_ci']:g} needs {plan['needed_images']} images with "
          f"{plan['labels_per_image']} labels each; {plan['already_labelled']} have them")
    print(f"sample: {plan['sample_size']} images to label again "
          f"({plan['annotations']} annotations); expected interval "
          f"+-{plan['expected_half_width']:.3f}")
    if plan["shortfall"]:
        print(f"NOTE: {plan['shortfall']} images short: the set has no more images labelled "
              "fewer times (one per group); raise --annotators, or --per-group")
    cost = plan["cost"]
    if cost["hours"] is not None:
        money = f", {cost['total']:.2f} at {cost['per_hour']:g} per hour" if cost["total"] else ""
        print(f"expected cost: {cost['hours']:.1f} hours at the median "
              f"{cost['seconds_per_annotation']:.0f} s per annotation{money}")
    print(f"wrote {Path(args.out) / SAMPLE_FILE}")


def cmd_adjudicate(args: argparse.Namespace) -> None:
    from annotate.formats.ls_client import connect

    ts = read_tables(args.dir)
    connection = connect(args.url, args.api_key)
    if args.pull:
        record = adjudicate_pull(connection, ts, args.out, images_root=args.images_root
                                 or args.document_root, timeout=args.timeout,
                                 tracking_uri=args.tracking_uri)
        print(f"{record['reviewed_images']} of {record['pushed_images']} images decided by "
              f"{', '.join(record['reviewers']) or 'nobody yet'}"
              + (f" ({record['several_reviews']} reviewed twice: the latest decision counts)"
                 if record["several_reviews"] else ""))
        if record.get("objects") is not None:
            share = record["overturned_share"]
            print(f"the vote was overturned for {record['overturned']} of {record['objects']} "
                  f"objects{f' ({share:.0%})' if share is not None else ''}: "
                  f"{record['relabelled']} relabelled, {record['removed']} removed, "
                  f"{record['added']} added; {record['captions_overturned']} of "
                  f"{record['captions']} captions replaced")
        print(f"wrote {record['out']} (consensus takes the decisions) and "
              f"{Path(args.out) / 'adjudication.json'}")
        return
    if not args.project:
        raise UserError("--project names the review project to create (or --pull)")
    record = adjudicate_push(connection, ts, args.project, args.out, args.document_root,
                             kind=args.kind, top=args.top, iou=args.iou,
                             tracking_uri=args.tracking_uri)
    print(f"review project {record['project_id']}: {record['units']} disputed {args.kind} "
          f"units on {record['images']} images, every annotator's version as a prediction")
    print(f"wrote {Path(args.out) / 'review.json'}; when the reviewer is done: quality "
          f"adjudicate {args.dir} --pull --out {args.out}")


def cmd_consensus(args: argparse.Namespace) -> None:
    figures = consensus_job(read_tables(args.dir), args.out, iou=args.iou, tie=args.tie)
    print(f"{figures['consensus_boxes']} consensus boxes from {figures['box_clusters']} box "
          f"clusters; {figures['consensus_captions']} consensus captions")
    flags = figures["flags"]
    print("flagged for review: " + (", ".join(f"{n} {k}" for k, n in flags.items()) or "none"))
    decided = figures["adjudication"]
    if decided:
        print(f"adjudicated: {decided['images']} images decided by a reviewer instead of the "
              f"vote; the vote was overturned for {decided['overturned']} of "
              f"{decided['objects']} objects and {decided['captions_overturned']} of "
              f"{decided['captions']} captions")
    print(f"wrote {args.out} (flags: {args.out}/{CONSENSUS_FLAGS})")


def cmd_ceiling(args: argparse.Namespace) -> None:
    result = human_ceiling(read_tables(args.dir), args.n_boot, args.seed)
    if args.json:
        write_json(args.json, result)
    rows = {"pooled": result["pooled"], **result["annotators"]}
    print(f"{'':24} {'BLEU-4':>7} {'ROUGE-L':>8} {'CIDEr-D':>8} {'chrF':>7}")
    for name, scores in rows.items():
        print(f"{name:24} {scores['bleu_4']['score']:7.3f} {scores['rouge_l']['score']:8.3f} "
              f"{scores['cider_d']['score']:8.3f} {scores['chrf']['score']:7.2f}")
    if args.json:
        print(f"wrote {args.json}")


def cmd_split(args: argparse.Namespace) -> None:
    summary = split_job(read_tables(args.dir), args.out, val=args.val, test=args.test,
                        folds=args.folds, seed=args.seed, n_boot=args.n_boot)
    column = "fold" if args.folds else "split"
    print(pd.DataFrame(summary["splits"]).to_string(index=False))
    print(f"largest class-share difference between {column}s: "
          f"{summary['max_class_share_gap']:.3f}; size error "
          f"{summary['max_size_error_pp']:.2f} pp")
    for name, figures in summary.get("adequacy", {}).items():
        widths = ", ".join(f"{m} +-{v['ci_width'] / 2:.3f} (paired MDD {v['paired_mdd']:.3f})"
                           if v.get("paired_mdd") is not None else
                           f"{m} +-{v['ci_width'] / 2:.3f}"
                           for m, v in figures.items() if isinstance(v, dict))
        print(f"{name} ({figures['images']} images): 95% CI {widths} (human captions)")
    print(f"wrote {args.out} and {args.out}/{SPLIT_REPORT}")


def cmd_audit(args: argparse.Namespace) -> None:
    kinds = FINDING_KINDS if args.repair_kinds == "all" else tuple(args.repair_kinds.split(","))
    report, found = audit_job(read_tables(args.dir), args.json,
                              phash_distance=args.phash_distance,
                              min_correlation=args.min_correlation,
                              check_images=not args.no_images,
                              repair_out=args.out if args.repair else None, repair_kinds=kinds,
                              progress=True)
    for kind, n in report["counts"].items():
        print(f"{kind:24} {n}")
    if len(found.unreadable):
        print(f"{len(found.unreadable)} images could not be read (no near-duplicate check)")
    if len(found.findings):
        print(found.findings.head(args.top).to_string(index=False))
    if "repair" in report:
        print(f"repair: moved {report['repair']['moved']} images; wrote {args.out} "
              f"({args.out}/{REPAIR_MOVES})")
    if args.json:
        print(f"wrote {args.json}")


def cmd_robustness(args: argparse.Namespace) -> None:
    from quality import workspace

    figures = robustness_job(args.dir, args.n_boot, args.seed, perturb=args.perturbation)
    for name, entry in figures["variants"].items():
        for metric, f in entry["figures"].items():
            if isinstance(f, dict):
                print(f"{name:10} {metric:8} gold {f['gold']:.3f}  predicted {f['predicted']:.3f}"
                      f"  drop {f['drop']:.3f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]")
    print(f"wrote {workspace.path(args.dir, 'robustness')}")


def cmd_threshold(args: argparse.Namespace) -> None:
    from annotate.tables import store
    from quality import workspace
    from quality.cascade.threshold import threshold_job

    run = Path(args.dir)
    model = Path(args.model) if args.model else workspace.path(run, "stage2") / "gold"
    record = threshold_job(model, run / args.detector,
                           store.load(workspace.path(run, "split")))
    for point in record["curve"]:
        mark = "  <- chosen" if point["threshold"] == record["chosen"] else ""
        print(f"threshold {point['threshold']:.2f}  validation {record['metric']} "
              f"{point['score']:.3f}  boxes/image {point['boxes_per_image']:.2f}{mark}")
    for point in record["suppression"]:
        print(f"threshold {point['threshold']:.2f}, suppressed at IoU {point['iou']:.1f}  "
              f"validation {record['metric']} {point['score']:.3f}  boxes/image "
              f"{point['boxes_per_image']:.2f}")
    suppressed = ("" if record["suppress_iou"] is None else
                  f", overlaps suppressed at IoU {record['suppress_iou']:g}")
    print(f"wrote {run / args.detector / workspace.THRESHOLD} and the detections handed over at "
          f"{record['chosen']:g}{suppressed} (predicted_val/test.parquet)")


def cmd_compare(args: argparse.Namespace) -> None:
    arms = _arms(args.runs)
    runs = [[resolve_run(r, args.tracking_uri) for r in arm] for arm in arms]
    result = compare_job(*runs, json_path=args.json, page_dir=args.out, force=args.force,
                         n_boot=args.n_boot, seed=args.seed, images_only=args.images_only,
                         judgments=args.judgments, tracking_uri=args.tracking_uri)
    print_comparison(result)
    for path in (args.json, args.out and f"{args.out}/compare.html"):
        if path:
            print(f"wrote {path}")


#: Stands for `--` between the arms on the command line (argparse drops a bare `--`).
ARM_SEPARATOR = "::"


def _arms(runs: list[str]) -> tuple[list[str], list[str]]:
    """`A B` (one run each) or `A1 A2 ... -- B1 B2 ...` (each arm's training replicates)."""
    if ARM_SEPARATOR in runs:
        at = runs.index(ARM_SEPARATOR)
        arms = runs[:at], runs[at + 1:]
        if ARM_SEPARATOR in arms[1]:
            raise UserError("quality compare takes two arms: A1 A2 ... -- B1 B2 ...")
    elif len(runs) == 2:
        arms = runs[:1], runs[1:]
    else:
        raise UserError(f"{len(runs)} runs without `--`: give two runs (A B), or each arm's "
                        "replicates separated by `--` (A1 A2 A3 -- B1 B2 B3)")
    if not arms[0] or not arms[1]:
        raise UserError("an arm of the comparison has no run: A1 A2 ... -- B1 B2 ...")
    return arms


def print_comparison(result: dict) -> None:
    """Notes first (forced, different training data), then every figure and the verdict."""
    for note in result["notes"]:
        print(f"NOTE: {note}")
    diff = result["settings_diff"]
    print("settings that differ: " + (", ".join(f"{k} {a!r} -> {b!r}"
                                                for k, (a, b) in diff.items()) or "none"))
    rows = [(f"{variant}: {metric} ({given})", f)
            for variant, inputs in result["stage2"].items()
            for given, figures in inputs.items()
            for metric, f in figures.items() if isinstance(f, dict)]
    rows += [(f"detector: {name}", f) for name, f in result["stage1"].items()
             if isinstance(f, dict) and "verdict" in f]
    print(f"replicates: A {result['replicates']['a']}, B {result['replicates']['b']}; "
          f"intervals resample: {result['resampled']['unit']}")
    for name, f in rows:
        share = (f.get("variance") or {}).get("training_share")
        split = f"  training {share:.0%} of the variance" if share is not None else ""
        split += _rerun_suffix(f)
        print(f"{name:34} A {f['a']:7.3f}  B {f['b']:7.3f}  B-A {f['difference']:+7.3f} "
              f"[{f['ci_low']:+.3f}, {f['ci_high']:+.3f}]  {f['verdict']}{split}")
    if result["stage1"].get("hand_over_note"):
        print(f"NOTE (detector): {result['stage1']['hand_over_note']}")
    for variant, f in (result.get("people") or {}).get("figures", {}).items():
        print(f"{'people: ' + variant + ' (B over A)':34} win rate {f['win_rate']:.3f} "
              f"[{f['ci_low']:.3f}, {f['ci_high']:.3f}] on {f['images']} images, "
              f"{f['judgments']} judgments  {f['verdict']}{_rerun_suffix(f)}")
    print(f"verdict: {result['verdict'].get('line') or result['verdict']['verdict']}")


def _rerun_suffix(figure: dict) -> str:
    """The end of a printed comparison row: how likely a rerun makes its call again."""
    if figure.get("rerun_same_call") is None:
        return ""
    return f"  a rerun makes this call {figure['rerun_same_call']:.0%}"


def cmd_plan_replicates(args: argparse.Namespace) -> None:
    record = plan_replicates(args.compare, args.target, figure=args.figure,
                             max_replicates=args.max_replicates)
    result = record["plan"]
    print(f"{record['figure']}: training spread {record['training_sd']:.4f} per model, "
          f"per-image spread {record['image_sd']:.4f} on {result['images']} test images")
    for k, mdd in result["mdd_by_replicates"].items():
        mark = "  <- enough" if k == result["replicates"] else ""
        print(f"{k:3d} replicates per arm: detects {mdd:.4f}{mark}")
    if result["replicates"] is None:
        more = (f"about {result['images_needed_with_max']} test images with "
                f"{args.max_replicates} replicates" if result["images_needed_with_max"] else
                "no number of test images: the training spread alone is larger")
        print(f"{args.target:g} needs more than {args.max_replicates} replicates on these "
              f"images: {more}")


def cmd_gallery(args: argparse.Namespace) -> None:
    record = gallery_job(args.dir, args.out, page_size=args.page_size, thumb=args.thumb)
    views = record["views"]
    print(f"{len(views)} views, {sum(v['pages'] for v in views.values())} pages, "
          f"{record['images']['shown']} images ({record['images']['unreadable']} not readable)")
    for entry in [v for v in views.values() if "/cell-" not in v["page"]][:15]:
        print(f"  {entry['items']:6d} {entry['unit']:8} {entry['title']}")
    print(f"open {gallery_folder(args.dir, args.out) / 'index.html'}")


def cmd_plan_judging(args: argparse.Namespace) -> None:
    runs, versus = args.runs, None
    if len(runs) > 1 or ARM_SEPARATOR in runs:
        runs, versus = _arms(runs)
    else:
        runs = runs[0]
    systems = tuple(args.systems.split(",")) if args.systems else None
    plan = plan_judging(runs, args.out, systems=systems, design=args.design, versus=versus,
                        layouts=args.layouts, target_ci=args.target_ci, mdd=args.mdd,
                        raters_per_item=args.raters_per_item, icc=args.icc,
                        seconds_per_judgment=args.seconds_per_judgment, seed=args.seed,
                        tracking_uri=args.tracking_uri)
    wanted = (f"a difference of {args.mdd} at 80% power" if args.mdd else
              f"+-{plan['settings']['target_ci']}")
    cost = (f"{args.raters_per_item} judges per task: {plan['judgments']} judgments, about "
            f"{plan['judging_hours']:.1f} h of judging at {args.seconds_per_judgment:g} s each")
    if plan["design"] == "rating":
        print(f"rating 1-{RATING_MAX} of {', '.join(plan['systems'])}: {plan['images_planned']} "
              f"images (of {plan['images_needed']} needed for {wanted} points on a difference "
              f"of mean ratings), {len(plan['tasks'])} tasks, {cost}")
        print(f"expected 95% half-width on a difference: {plan['half_width_expected']:.3f} "
              "points" + (f" ({plan['note']})" if plan.get("note") else ""))
    else:
        print(f"{plan['pairs']} pairs of {', '.join(plan['systems'])}: {plan['tasks_per_pair']} "
              f"tasks each (of {plan['tasks_per_pair_needed']} needed for {wanted} on a win "
              f"rate), {cost}")
        print(f"expected 95% half-width on each win rate: {plan['half_width_expected']:.3f}"
              + (f" ({plan['note']})" if plan.get("note") else ""))
    print(f"wrote {Path(args.out) / PLAN}; next: quality judge-push {args.out} --project NAME")


def cmd_judge_push(args: argparse.Namespace) -> None:
    from annotate.formats.ls_client import connect

    record = push_judging(connect(args.url, args.api_key), args.study, args.project,
                          args.document_root, tracking_uri=args.tracking_uri)
    print(f"project {record['project_id']}: {record['tasks_created']} tasks created, "
          f"{record['tasks_existing']} already there (blind: no system names, the left/right "
          f"order kept in {Path(args.study) / PLAN}); next: quality judge-pull {args.study}")


def cmd_judge_pull(args: argparse.Namespace) -> None:
    from annotate.formats.ls_client import connect

    record = pull_judging(connect(args.url, args.api_key), args.study, timeout=args.timeout,
                          tracking_uri=args.tracking_uri)
    skipped = ", ".join(f"{n} {reason}" for reason, n in record["skipped"].items()) or "none"
    print(f"{record['read']} answers read, {record['kept']} kept (skipped: {skipped}); "
          f"{record['tasks_judged']} of {record['tasks']} tasks judged by {record['judges']} "
          f"judges; next: quality judgments {args.study}")


def cmd_judge_simulate(args: argparse.Namespace) -> None:
    if read_plan(args.study).get("design") == "rating":
        judges = RatingJudges(judges=args.judges, raters_per_item=args.judges, lapse=args.lapse,
                              noise=args.noise, leniency=args.leniency)
        record = simulate_judging(args.study, judges, seed=args.seed,
                                  tracking_uri=args.tracking_uri)
        print(f"{record['judgments']} simulated ratings; the truth (expected mean ratings): "
              + ", ".join(f"{t['system']} {t['mean']:.2f}" for t in record["truth"]["means"]))
        return
    judges = Judges(judges=args.judges, raters_per_item=args.judges, lapse=args.lapse,
                    left_bias=args.left_bias, temperature=args.temperature)
    record = simulate_judging(args.study, judges, seed=args.seed, tracking_uri=args.tracking_uri)
    print(f"{record['judgments']} simulated judgments; the truth (expected win rates): "
          + ", ".join(f"{t['a']} over {t['b']} {t['win_rate']:.3f}" for t in record["truth"]))


def cmd_judgments(args: argparse.Namespace) -> None:
    result = judgments_job(args.study, n_boot=args.n_boot, seed=args.seed,
                           tracking_uri=args.tracking_uri)
    judges = result["judges"]
    if result["design"] == "rating":
        print(f"{result['judgments']} ratings of {result['tasks']} captions on "
              f"{result['images']} images by {result['judges_count']} judges; 95% intervals "
              "resample images")
        for m in result["means"]:
            print(f"  {m['system']:12} mean rating {m['mean']:.2f} [{m['ci_low']:.2f}, "
                  f"{m['ci_high']:.2f}] ({m['ratings']} ratings)")
        print("judges agree (ordinal): alpha " + f"{judges['alpha']:.3f} [{judges['ci_low']:.3f}, "
              f"{judges['ci_high']:.3f}]" + (f" ({judges['warning']})" if judges["warning"]
                                             else "") + "; leniency " + ", ".join(
            f"{j['judge']} {j['leniency']:+.2f}" for j in judges["judges"]))
    else:
        print(f"{result['judgments']} judgments of {result['tasks']} tasks on "
              f"{result['images']} images by {result['judges_count']} judges "
              f"({result['ties']} ties, counted half); 95% intervals resample images")
        for pair in result["win_rates"]:
            print(f"  {pair['a']} over {pair['b']}: {pair['win_rate']:.3f} [{pair['ci_low']:.3f}, "
                  f"{pair['ci_high']:.3f}] ({pair['judgments']} judgments, {pair['ties']} ties)")
        print("Bradley-Terry: " + ", ".join(
            f"{r['system']} {r['score']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}]"
            for r in result["bradley_terry"]))
        bias = result["position_bias"]
        print(f"left chosen {bias['left_share']:.3f} [{bias['ci_low']:.3f}, "
              f"{bias['ci_high']:.3f}]"
              + (" - a position bias" if bias["biased"] else " (no position bias shown)"))
        print(f"judges agree: alpha {judges['alpha']:.3f} [{judges['ci_low']:.3f}, "
              f"{judges['ci_high']:.3f}]" + (f" ({judges['warning']})" if judges["warning"]
                                             else ""))
    for metric, m in result["metrics"]["metrics"].items():
        print(f"  {metric:8} tau-b {m['tau_b']:+.3f} [{m['tau_b_ci'][0]:+.3f}, "
              f"{m['tau_b_ci'][1]:+.3f}], tau-c {m['tau_c']:+.3f}; orders "
              f"{m['system_agreement']:.0%} of system pairs as the judges do")
    for line in result["verdict"]:
        print(line)
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    print(f"wrote {Path(args.study) / ANALYSIS}")


def cmd_report(args: argparse.Namespace) -> None:
    from quality.report.page import build

    page = build(args.dir, args.out)
    print(f"wrote {page} and {page.with_name('report.json')}")


def cmd_sanity(args: argparse.Namespace) -> None:
    figures = sanity_job(read_tables(args.dir), args.json, overfit=args.overfit)
    for key, value in figures.items():
        if not isinstance(value, dict):
            print(f"{key:32} {value}")
    check = figures.get("overfit_tiny_batch")
    if check:
        print(f"overfit 8 examples: loss {check['first_loss']:.3f} -> {check['final_loss']:.4f} "
              f"({'passed' if check['passed'] else 'FAILED: a bug, not a data problem'})")
    if args.json:
        print(f"wrote {args.json}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("dir", help="table set folder or export file")
    common.add_argument("--seed", type=int, help="seed of the resampling (default: the job's)")
    common.add_argument("--n-boot", type=int, help="bootstrap resamples for CIs (default: the "
                                                   "job's)")

    def job_defaults(p: argparse.ArgumentParser, job, **names: str) -> None:
        """The subcommand's defaults for `--seed`, `--n-boot` and `names` (dest=parameter)
        from the job function's signature."""
        p.set_defaults(**{dest: default(job, param) for dest, param in
                          {"seed": "seed", "n_boot": "n_boot", **names}.items()})

    p = sub.add_parser("reliability", parents=[common],
                       help="Krippendorff's alpha for labels, boxes, captions, counts")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--plot", help="write a figure (alphas, annotator agreement), e.g. out.png")
    p.add_argument("--iou", type=float, default=default(reliability_job, "iou"),
                   help="IoU to match boxes")
    p.add_argument("--top", type=int, default=default(reliability_job, "top"),
                   help="units with most disagreement to list")
    p.add_argument("--ceiling", action=argparse.BooleanOptionalAction,
                   default=default(reliability_job, "ceiling"),
                   help="the human caption ceiling (each annotator against the others)")
    p.add_argument("--add", action="append", metavar="PULLED",
                   help="a re-labelled set (annotate pull) to add to DIR first; repeatable")
    p.add_argument("--plan", metavar="SAMPLE.json",
                   help="the study's plan: say whether its target interval was met (recorded "
                        "as reliability.json beside it and in MLflow)")
    p.add_argument("--tracking-uri", help="MLflow for --plan (default: $MLFLOW_TRACKING_URI, "
                                          "else the study folder's mlflow.db)")
    job_defaults(p, reliability_job)
    p.set_defaults(func=cmd_reliability)

    p = sub.add_parser("plan-relabel", parents=[common],
                       help="how many images to label again for alpha's interval to be "
                            "+-target wide, and a stratified sample of them")
    p.add_argument("--target-ci", type=float, required=True,
                   help="half-width of alpha's 95%% interval to reach, e.g. 0.05")
    p.add_argument("--kind", choices=PLANNED_KINDS, default=default(plan_relabel, "kind"))
    p.add_argument("--annotators", type=int, default=default(plan_relabel, "extra"),
                   help="extra people per sampled image (default 1: each gets a second label)")
    p.add_argument("--prior-alpha", type=float,
                   help="plan from this alpha instead of the agreement observed (needed when "
                        "no image was labelled twice)")
    p.add_argument("--per-group", type=int, default=default(plan_relabel, "per_group"),
                   help="at most this many images per group (0: no limit)")
    p.add_argument("--min-per-class", type=int, default=default(plan_relabel, "min_per_class"),
                   help="rare classes get at least this many sampled images")
    p.add_argument("--assurance", type=float, default=default(plan_relabel, "assurance"),
                   help="share of studies whose interval should be no wider than the target "
                        "(0.5: the expected width is the target)")
    p.add_argument("--cost-per-hour", type=float, help="annotation cost per hour, for the "
                                                       "expected cost")
    p.add_argument("--iou", type=float, default=default(plan_relabel, "iou"),
                   help="IoU to match boxes")
    p.add_argument("--out", default="relabel",
                   help="study folder: sample.json, later the push/pull records (default: "
                        "./relabel)")
    p.add_argument("--tracking-uri", help="MLflow (default: $MLFLOW_TRACKING_URI, else the "
                                          "study folder's mlflow.db)")
    job_defaults(p, plan_relabel)
    p.set_defaults(func=cmd_plan_relabel)

    p = sub.add_parser("adjudicate", help="the most disputed units to a Label Studio review "
                                          "project (every annotator's version a prediction); "
                                          "--pull brings the decisions back")
    p.add_argument("dir", help="table set folder or export file (several annotators)")
    p.add_argument("--top", type=int, default=default(adjudicate_push, "top"),
                   help="units with most disagreement to review")
    p.add_argument("--kind", choices=ALPHA_KINDS,
                   default=default(adjudicate_push, "kind"), help="whose review list to take")
    p.add_argument("--project", help="title of the review project to create")
    p.add_argument("--out", default="review", help="review folder: review.json, then pulled/, "
                                                   "adjudicated/, adjudication.json")
    p.add_argument("--pull", action="store_true",
                   help="pull the review project recorded in --out and write the decisions")
    p.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL)")
    p.add_argument("--api-key", help="access token (default: $LABEL_STUDIO_API_KEY)")
    p.add_argument("--document-root", help="the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
    p.add_argument("--images-root", help="--pull: where image references resolve")
    p.add_argument("--timeout", type=float, default=default(adjudicate_pull, "timeout"),
                   help="--pull: seconds for the export")
    p.add_argument("--iou", type=float, default=default(adjudicate_push, "iou"),
                   help="IoU to match boxes")
    p.add_argument("--tracking-uri", help="MLflow (default: $MLFLOW_TRACKING_URI, else the "
                                          "review folder's mlflow.db)")
    p.set_defaults(func=cmd_adjudicate)

    p = sub.add_parser("consensus", parents=[common],
                       help="add consensus boxes and captions (source 'consensus')")
    p.add_argument("--out", required=True, help="folder for the set with consensus rows")
    p.add_argument("--iou", type=float, default=default(consensus_job, "iou"),
                   help="IoU to match boxes")
    p.add_argument("--tie", choices=TIES, default=default(consensus_job, "tie"),
                   help="a box drawn by exactly half the annotators (flagged either way)")
    p.set_defaults(func=cmd_consensus)

    p = sub.add_parser("ceiling", parents=[common],
                       help="each annotator's captions scored against the others'")
    p.add_argument("--json", help="write the figures to this JSON file")
    job_defaults(p, human_ceiling)
    p.set_defaults(func=cmd_ceiling)

    p = sub.add_parser("split", parents=[common],
                       help="group-aware stratified train/val/test split (or K folds)")
    p.add_argument("--out", required=True, help="folder for the split set")
    p.add_argument("--val", type=float, default=default(split_job, "val"),
                   help="share of images in val")
    p.add_argument("--test", type=float, default=default(split_job, "test"),
                   help="share of images in test")
    p.add_argument("--folds", type=int, help="K folds (column `fold`) instead of a split")
    job_defaults(p, split_job)
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("robustness", parents=[common],
                       help="gold vs predicted stage-2 input, attribution, perturbation curves")
    p.add_argument("--perturbation", action=argparse.BooleanOptionalAction,
                   default=default(robustness_job, "perturb"),
                   help="the perturbation curves (--no-perturbation is faster)")
    job_defaults(p, robustness_job)
    p.set_defaults(func=cmd_robustness)

    p = sub.add_parser("threshold", help="a detector's operating threshold: the one whose "
                                         "detections give the best stage-2 score on val")
    p.add_argument("dir", help="run folder (split/, the detector folder, stage2/gold)")
    p.add_argument("--detector", default="stage1",
                   help="detector folder in the run, holding raw_val.parquet (and "
                        "raw_test.parquet) predicted at a low --conf (default: stage1)")
    p.add_argument("--model", help="stage-2 model that captions (default: DIR/stage2/gold)")
    p.set_defaults(func=cmd_threshold)

    p = sub.add_parser("compare", help="two runs, or two arms of training replicates "
                                       "(A1 A2 A3 -- B1 B2 B3), on their common test images: "
                                       "differences with intervals over images and training "
                                       "replicates, a verdict (refused when the test data "
                                       "differ)")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders (or MLflow run ids with --tracking-uri): A B, or "
                        "A1 A2 ... -- B1 B2 ... (runs of an arm differ only in --seed)")
    p.add_argument("--images-only", action="store_true",
                   help="with one run per arm, give verdicts from the test images alone "
                        "(labelled so): a trained model is one draw, so by default such a "
                        "comparison says it cannot tell")
    p.add_argument("--json", help="write every figure here (compare.json)")
    p.add_argument("--out", help="folder for compare.html")
    p.add_argument("--force", action="store_true",
                   help="compare even when the test data differ (on the common images)")
    p.add_argument("--judgments", metavar="STUDY",
                   help="a judgment study of these arms (plan-judging A -- B, judged, "
                        "`quality judgments`): people's preference decides the verdict")
    p.add_argument("--tracking-uri", help="MLflow: where run ids are looked up and the "
                                          "comparison is recorded (default: run B's)")
    p.add_argument("--seed", type=int, default=default(compare_job, "seed"))
    p.add_argument("--n-boot", type=int, default=default(compare_job, "n_boot"),
                   help="bootstrap resamples for CIs")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("plan-replicates", help="how many training replicates per arm (and "
                                               "test images) a difference needs, from a "
                                               "comparison with replicates (compare.json) "
                                               "or a pipeline run with replicates")
    p.add_argument("compare", help="compare.json of `quality compare A1 A2 ... -- B1 B2 ...`, "
                                   "or a run folder of `evaluate-pipeline --replicates K` (its "
                                   "replicates.json)")
    p.add_argument("--target", type=float, required=True,
                   help="the smallest difference worth finding (in the figure's units)")
    p.add_argument("--figure", default=default(plan_replicates, "figure"),
                   help="which figure's spreads to plan with (default: the verdict's)")
    p.add_argument("--max-replicates", type=int,
                   default=default(plan_replicates, "max_replicates"))
    p.set_defaults(func=cmd_plan_replicates)

    p = sub.add_parser("report", help="one static HTML page + report.json from the artifacts "
                                      "of a run folder (reads only; computes nothing)")
    p.add_argument("dir", help="run folder")
    p.add_argument("--out", required=True, help="folder for report.html and report.json")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("plan-judging", help="a blind study of a run's captions (pairwise or "
                                            "1-5 ratings), or of two runs' captions against "
                                            "each other (A -- B): tasks, size for --target-ci, "
                                            "cost (then judge-push, judge-pull, judgments)")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="a pipeline run folder; or two arms, A B or A1 A2 ... -- B1 B2 ... "
                        "(each arm's training replicates), to judge A's variants against B's")
    p.add_argument("--out", required=True, help="study folder")
    p.add_argument("--systems", help="stage-2 variants of the run and 'human' (a held-out "
                                     f"human caption); default {','.join(SYSTEMS)}, with two "
                                     "arms gold")
    p.add_argument("--design", choices=DESIGNS, default=default(plan_judging, "design"),
                   help="pairwise choices (left/right randomised) or 1-5 ratings with a rubric")
    p.add_argument("--layouts", choices=("detector", "gold"),
                   default=default(plan_judging, "layouts"),
                   help="judge captions of the deployed detector's layouts or of gold")
    p.add_argument("--target-ci", type=float,
                   help="95%% half-width wanted on each win rate (default "
                        f"{TARGET_CI['pairwise']}) or on a difference of mean ratings (default "
                        f"{TARGET_CI['rating']} points)")
    p.add_argument("--mdd", type=float, help="instead of --target-ci: the difference to detect "
                                             "(win rate from 0.5, or rating points; 80%% "
                                             "power, 5%% level)")
    p.add_argument("--raters-per-item", type=int,
                   default=default(plan_judging, "raters_per_item"), help="judges per task")
    p.add_argument("--icc", type=float, default=default(plan_judging, "icc"),
                   help="assumed correlation of one task's judgments")
    p.add_argument("--seconds-per-judgment", type=float,
                   default=default(plan_judging, "seconds_per_judgment"),
                   help="assumed time per judgment, for the cost")
    p.add_argument("--seed", type=int, default=default(plan_judging, "seed"))
    p.add_argument("--tracking-uri", help="MLflow (default: $MLFLOW_TRACKING_URI, else the "
                                          "study folder's mlflow.db)")
    p.set_defaults(func=cmd_plan_judging)

    for name, func, text in (("judge-push", cmd_judge_push, "push a judgment study to Label "
                              "Studio, blind (image and two captions; no system names)"),
                             ("judge-pull", cmd_judge_pull, "read a judgment study's answers "
                              "back (judgments.parquet; skipped answers counted)")):
        p = sub.add_parser(name, help=text)
        p.add_argument("study", help="study folder (quality plan-judging --out)")
        if name == "judge-push":
            p.add_argument("--project", required=True, help="title of the project to create")
            p.add_argument("--document-root",
                           help="the server's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
        else:
            p.add_argument("--timeout", type=float, default=default(pull_judging, "timeout"),
                           help="seconds for the export")
        p.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL)")
        p.add_argument("--api-key", help="access token (default: $LABEL_STUDIO_API_KEY)")
        p.add_argument("--tracking-uri", help="MLflow (default: $MLFLOW_TRACKING_URI, else "
                                              "the study folder's mlflow.db)")
        p.set_defaults(func=func)

    p = sub.add_parser("judge-simulate", help="simulated judges for a planned study (a known "
                                              "preference model: demos and checks)")
    p.add_argument("study", help="study folder")
    p.add_argument("--judges", type=int, default=default(Judges, "judges"),
                   help="judges (each judges every task)")
    p.add_argument("--lapse", type=float, default=default(Judges, "lapse"),
                   help="chance a judge answers at random")
    p.add_argument("--left-bias", type=float, default=default(Judges, "left_bias"),
                   help="pairwise: added to the left's logit")
    p.add_argument("--temperature", type=float, default=default(Judges, "temperature"),
                   help="pairwise: quality difference that moves the odds by e")
    p.add_argument("--noise", type=float, default=default(RatingJudges, "noise"),
                   help="rating: standard deviation of a judge's noise, in points")
    p.add_argument("--leniency", type=float, default=default(RatingJudges, "leniency"),
                   help="rating: points every judge adds")
    p.add_argument("--seed", type=int, default=default(simulate_judging, "seed"))
    p.add_argument("--tracking-uri", help="MLflow (default: the study folder's mlflow.db)")
    p.set_defaults(func=cmd_judge_simulate)

    p = sub.add_parser("judgments", help="a judgment study's win rates, Bradley-Terry scores, "
                                         "position bias, judge agreement and metric vs people")
    p.add_argument("study", help="study folder")
    p.add_argument("--n-boot", type=int, default=default(judgments_job, "n_boot"))
    p.add_argument("--seed", type=int, default=default(judgments_job, "seed"))
    p.add_argument("--tracking-uri", help="MLflow (default: the study folder's mlflow.db)")
    p.set_defaults(func=cmd_judgments)

    p = sub.add_parser("gallery", help="the images behind the figures: static offline pages "
                                       "(disputed units, annotators, detector errors, captions, "
                                       "leakage)")
    p.add_argument("dir", help="run folder, or table set folder or export file")
    p.add_argument("--out", help="gallery folder (default: DIR/gallery, or gallery/ beside an "
                                 "export file)")
    p.add_argument("--page-size", type=int, default=default(gallery_job, "page_size"),
                   help="images per page")
    p.add_argument("--thumb", type=int, default=default(gallery_job, "thumb"),
                   help="longest side of a thumbnail, pixels")
    p.set_defaults(func=cmd_gallery)

    p = sub.add_parser("sanity", help="label sanity counts and the overfit-a-tiny-batch check")
    p.add_argument("dir", help="table set folder or export file")
    p.add_argument("--json", help="write the figures here (the report reads DIR/sanity.json)")
    p.add_argument("--overfit", action=argparse.BooleanOptionalAction,
                   default=default(sanity_job, "overfit"),
                   help="the overfit-a-tiny-batch check (--no-overfit saves ~10 s)")
    p.set_defaults(func=cmd_sanity)

    p = sub.add_parser("audit", help="duplicates and split groups across splits; --repair")
    p.add_argument("dir", help="table set folder or export file")
    p.add_argument("--json", help="write every finding to this JSON file")
    p.add_argument("--phash-distance", type=int, default=default(audit_job, "phash_distance"),
                   help="near duplicates: most differing pHash bits (of 64)")
    p.add_argument("--min-correlation", type=float,
                   default=default(audit_job, "min_correlation"),
                   help="near duplicates: least thumbnail correlation")
    p.add_argument("--no-images", action="store_true", help="skip reading image files")
    p.add_argument("--top", type=int, default=20, help="findings to print")
    p.add_argument("--repair", action="store_true",
                   help="merge duplicate clusters into groups and move them whole (--out)")
    p.add_argument("--out", help="folder for the repaired set (with --repair)")
    p.add_argument("--repair-kinds", default=",".join(default(audit_job, "repair_kinds")),
                   help="findings to repair, comma-separated, or 'all' (default: image "
                        "duplicates and split groups; duplicate captions of short template "
                        "sentences would merge most of a set)")
    p.set_defaults(func=cmd_audit)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["compare"], ["plan-judging"]) and "--" in argv:  # arms, for `_arms`
        argv[argv.index("--")] = ARM_SEPARATOR
    args = parser.parse_args(argv)
    if getattr(args, "repair", False) and not args.out:
        parser.error("audit --repair needs --out DIR for the repaired set")
    return run_command("quality", args)


if __name__ == "__main__":
    sys.exit(main())
