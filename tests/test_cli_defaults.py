"""Every command takes its defaults from the job it calls: parsed with nothing but its required
arguments, each option equals the job function's (or its settings class's) default. A default
changed in one place changes the command and the pipeline alike."""

from __future__ import annotations

import pytest

from annotate.cli import build_parser as annotate_parser
from annotate.formats import ls_client
from annotate.formats.export import export_job
from annotate.runtime.cliutil import default
from quality.agreement.ceiling import human_ceiling
from quality.agreement.jobs import reliability_job
from quality.agreement.relabel import plan_relabel
from quality.cascade.robustness import robustness_job
from quality.cascade.sanity import sanity_job
from quality.cli import build_parser as quality_parser
from quality.compare import compare_job, plan_replicates
from quality.gallery.jobs import gallery_job
from quality.gold.adjudicate import adjudicate_pull, adjudicate_push
from quality.gold.jobs import consensus_job
from quality.judging.jobs import judgments_job, plan_judging, pull_judging, simulate_judging
from quality.judging.simulate import Judges
from quality.splits.jobs import audit_job, split_job
from stage1_detect.cli import build_parser as stage1_parser
from stage1_detect.crossfit import crossfit
from stage1_detect.jobs import evaluate_job, predict_job
from stage1_detect.serving.app import serve
from stage1_detect.serving.bulk import preannotate
from stage1_detect.train import DetectorConfig
from stage2_generate.baseline import rule_job
from stage2_generate.cli import build_parser as stage2_parser
from stage2_generate.config import TrainConfig
from stage2_generate.generate import generate_captions
from stage2_generate.noise import Noise
from stage2_generate.score import score_job

TRAINING = {"model": "model", "epochs": "epochs", "imgsz": "imgsz", "batch": "batch",
            "seed": "seed", "patience": "patience"}
# (parser, argv, job, {option dest: job parameter})
CASES = [
    (annotate_parser, ["export", "D", "--out", "O"], export_job,
     {"format": "fmt", "source": "source"}),
    (annotate_parser, ["pull", "--project", "P", "--out", "O"], ls_client.pull,
     {"timeout": "timeout"}),
    (quality_parser, ["reliability", "D"], reliability_job,
     {"iou": "iou", "top": "top", "ceiling": "ceiling", "n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["plan-relabel", "D", "--target-ci", "0.1"], plan_relabel,
     {"kind": "kind", "annotators": "extra", "per_group": "per_group",
      "min_per_class": "min_per_class", "assurance": "assurance", "iou": "iou",
      "n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["adjudicate", "D"], adjudicate_push,
     {"top": "top", "kind": "kind", "iou": "iou"}),
    (quality_parser, ["adjudicate", "D"], adjudicate_pull, {"timeout": "timeout"}),
    (quality_parser, ["consensus", "D", "--out", "O"], consensus_job,
     {"iou": "iou", "tie": "tie"}),
    (quality_parser, ["ceiling", "D"], human_ceiling, {"n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["split", "D", "--out", "O"], split_job,
     {"val": "val", "test": "test", "folds": "folds", "n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["robustness", "D"], robustness_job,
     {"perturbation": "perturb", "n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["compare", "A", "B"], compare_job, {"n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["gallery", "D"], gallery_job, {"page_size": "page_size", "thumb": "thumb"}),
    (quality_parser, ["plan-judging", "R", "--out", "S"], plan_judging,
     {"layouts": "layouts", "target_ci": "target_ci", "raters_per_item": "raters_per_item",
      "icc": "icc", "seconds_per_judgment": "seconds_per_judgment", "seed": "seed"}),
    (quality_parser, ["judge-pull", "S"], pull_judging, {"timeout": "timeout"}),
    (quality_parser, ["judge-simulate", "S"], simulate_judging, {"seed": "seed"}),
    (quality_parser, ["judge-simulate", "S"], Judges,
     {"judges": "judges", "lapse": "lapse", "left_bias": "left_bias",
      "temperature": "temperature"}),
    (quality_parser, ["judgments", "S"], judgments_job, {"n_boot": "n_boot", "seed": "seed"}),
    (quality_parser, ["plan-replicates", "C", "--target", "0.1"], plan_replicates,
     {"figure": "figure", "max_replicates": "max_replicates"}),
    (quality_parser, ["sanity", "D"], sanity_job, {"overfit": "overfit"}),
    (quality_parser, ["audit", "D"], audit_job,
     {"phash_distance": "phash_distance", "min_correlation": "min_correlation"}),
    (stage1_parser, ["train", "D", "--out", "O"], DetectorConfig, TRAINING),
    (stage1_parser, ["crossfit", "D", "--out", "O"], DetectorConfig, TRAINING),
    (stage1_parser, ["crossfit", "D", "--out", "O"], crossfit, {"folds": "folds", "conf": "conf"}),
    (stage1_parser, ["predict", "R", "D", "--out", "O"], predict_job,
     {"conf": "conf", "batch": "batch"}),
    (stage1_parser, ["evaluate", "R", "D"], evaluate_job, {"conf": "conf", "iou": "iou"}),
    (stage1_parser, ["serve", "R"], serve, {"host": "host", "port": "port"}),
    (stage1_parser, ["preannotate", "P"], preannotate, {"batch": "batch"}),
    (stage2_parser, ["train", "D", "--out", "O"], TrainConfig,
     {"preset": "preset", "epochs": "epochs", "batch_size": "batch_size", "lr": "learning_rate",
      "group_by_length": "group_by_length", "bins": "bins", "patience": "patience",
      "seed": "seed"}),
    (stage2_parser, ["train", "D", "--out", "O"], Noise,
     {n: n for n in ("drop", "spurious", "swap", "jitter", "scale", "duplicate")}),
    (stage2_parser, ["generate", "M", "D", "--out", "O"], generate_captions,
     {"batch_size": "batch_size", "beams": "num_beams"}),
    (stage2_parser, ["baseline", "D", "--out", "O"], rule_job, {"bins": "bins"}),
    (stage2_parser, ["score", "C", "D"], score_job, {"n_boot": "n_boot", "seed": "seed"}),
]


@pytest.mark.parametrize(("parser", "argv", "job", "names"), CASES,
                         ids=[f"{c[1][0]}-{getattr(c[2], '__name__', c[2])}" for c in CASES])
def test_a_command_default_is_its_jobs_default(parser, argv, job, names):
    args = parser().parse_args(argv)
    for dest, param in names.items():
        assert getattr(args, dest) == default(job, param), (argv[0], dest)


def test_every_subcommand_is_covered():
    """A new subcommand must join the table above (or say here why it has no defaults)."""
    import argparse

    no_job_defaults = {("annotate", "import"), ("annotate", "config"), ("annotate", "demo"),
                       ("annotate", "push"), ("annotate", "summary"), ("quality", "threshold"),
                       ("quality", "report"), ("quality", "judge-push")}
    covered = {(p().prog, argv[0]) for p, argv, _, _ in CASES}
    for parser in (annotate_parser, quality_parser, stage1_parser, stage2_parser):
        built = parser()
        sub = next(a for a in built._actions if isinstance(a, argparse._SubParsersAction))
        for name in sub.choices:
            assert (built.prog, name) in covered | no_job_defaults, (built.prog, name)


def test_default_reads_functions_and_settings_classes():
    def job(ts, *, n_boot: int = 7):
        return ts

    assert default(job, "n_boot") == 7
    assert default(DetectorConfig, "epochs") == DetectorConfig().epochs
    assert default(TrainConfig, "noise") == Noise()
    with pytest.raises(TypeError, match="no default"):
        default(job, "ts")
