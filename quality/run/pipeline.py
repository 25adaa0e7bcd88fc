"""The end-to-end evaluation: import -> reliability -> consensus -> split + audit -> stage 1
train, predict, evaluate, out-of-fold -> stage 2 variants (gold, calibrated noise, out-of-fold
input) -> captions from gold and predicted layouts -> robustness -> report.

Every step writes into one run folder (laid out as `workspace` says), is skipped when a cache
record shows its inputs and settings unchanged (so a rerun after a crash resumes), and logs its
settings and figures to MLflow with the data version, source version, preset and seed as tags.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from annotate.runtime.atomic import write_json
from annotate.runtime.capture import captured
from annotate.runtime.errors import UserError
from annotate.runtime.records import metric_name
from annotate.runtime.tracking import tracking, tracking_uri
from annotate.tables import store
from annotate.tables.versions import data_version, source_fingerprint
from quality import workspace
from stage2_generate.config import TrainConfig

log = logging.getLogger(__name__)

#: Nominal step durations (seconds, 2 CPU cores) per preset, for the time-left estimate.
PRESETS: dict[str, dict] = {
    # every path with data in two to three minutes on 2 cores (six stage-2 variants are most
    # of it): detectors fine-tuned from the shipped weights (pre-trained on other generated
    # images, stage1_detect.demo_weights), a tiny stage 2 that learns enough to caption by
    # layout (8 epochs: 7 distinct captions of 30 test layouts, 15 epochs: 19, at twice the
    # time); figures not meaningful
    "smoke": {"detector": "shapes-tiny.pt", "detector_epochs": 1, "imgsz": 96,
              "stage2_preset": "tiny", "stage2_epochs": 8, "stage2_batch_size": 32,
              "folds": 2, "oof_epochs": 1,
              "strong_epochs": 1, "n_boot": 100, "demo_images": 0, "perturbation": False,
              "val": 0.15, "test": 0.15, "split_seed": 0, "replicates": 1,
              "variants": ["gold", "noise", "oof", "noise+oof", "scores", "scores+oof"]},
    # four training replicates in about 14 minutes on 2 slow cores: detectors fine-tuned from
    # the shipped weights (deployed: one epoch, so it finds nearly every object but adds
    # spurious boxes; strong: eight), stage 2 from scratch; docs/robustness.md has the
    # measured trade-off
    "demo": {"detector": "shapes-tiny.pt", "detector_epochs": 1, "imgsz": 96,
             "stage2_preset": "small", "stage2_epochs": 10, "stage2_batch_size": 16,
             "folds": 2, "oof_epochs": 1,
             "strong_epochs": 8, "demo_images": 500,
             "n_boot": 1000, "perturbation": True, "val": 0.2, "test": 0.35, "split_seed": 0,
             "replicates": 4,
             # the gold-trained model and the remedy that costs least on perfect input keep
             # the run within 15 minutes (docs/robustness.md measures all six over replicates;
             # --variants adds them)
             "variants": ["gold", "oof"]},
    "full": {"detector": "yolov8n.yaml", "detector_epochs": 100, "imgsz": 320,
             # stage 2 at the library's defaults (annealed: docs/robustness.md, point 9)
             "stage2_preset": "small", "stage2_epochs": TrainConfig.epochs,
             "stage2_batch_size": TrainConfig.batch_size,
             "folds": 5, "oof_epochs": 50,
             "strong_epochs": 50, "demo_images": 600,
             "n_boot": 2000, "perturbation": True, "val": 0.1, "test": 0.2, "split_seed": 0,
             "replicates": 5,
             "variants": ["gold", "noise", "oof", "noise+oof", "scores", "scores+oof"]},
}
DATA = Path(__file__).resolve().parents[2] / "data"
#: The shipped demo sample (200 images; what the tests read).
DEMO_EXPORT = DATA / "demo" / "export.json"


def demo_data(images: int, root: Path = DATA) -> Path:
    """The demo export the preset asks for: the shipped sample, or (`demo_images` > 0) a
    larger one generated on first use by `annotate demo --n N --seed 0` (deterministic: the
    same bytes on every machine) into `data/generated/demo-N/`, written whole or not at all."""
    if not images:
        return DEMO_EXPORT
    from annotate import demo

    folder = root / "generated" / f"demo-{images}"
    if not (folder / demo.EXPORT).is_file():
        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        demo.generate(images, partial, seed=0)
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    return folder / demo.EXPORT


@dataclass
class Settings:
    data: str | None = None  # None: the preset's demo data (`demo_data`)
    preset: str = "demo"
    seed: int = 0
    tracking_uri: str | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise UserError(f"unknown preset {self.preset!r}: use one of {sorted(PRESETS)}")
        self.options = {**PRESETS[self.preset], **self.options}
        variants = list(self.options["variants"])
        unknown = sorted(set(variants) - set(LEARNED))
        if unknown or "gold" not in variants:
            raise UserError(f"variants {','.join(variants)}: " + (
                f"unknown {', '.join(unknown)} (use {', '.join(LEARNED)})" if unknown else
                "gold is needed (it chooses the operating thresholds and every variant is "
                "measured against it)"))
        self.options["variants"] = [v for v in LEARNED if v in variants]  # training order


def _fingerprint(paths: list[Path]) -> str:
    """Content hash of files and folders (relative names and bytes), for the step cache. Of a
    table-set folder only the tables count: a report written beside them (split_report.json)
    is not an input of the steps that read the set."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        if root.is_dir() and (root / store.META).exists():
            files = [f for f in files if f.suffix == ".parquet" or f.name == store.META]
        for file in files:
            if file.name.startswith(".") or file.suffix in (".html",):
                continue
            digest.update(str(file.relative_to(root.parent)).encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest() if file.exists() else b"-")
    return digest.hexdigest()


#: Replicate seeds step by this much, so that runs with neighbouring seeds share no replicate.
REPLICATE_SEED_STRIDE = 1000


def replicate_seeds(seed: int, replicates: int) -> list[int]:
    """The training seeds of a run with `replicates` replicates: its own seed, then seed +
    1000, seed + 2000, ... — a run with `--seed 1` trains none of the models of a run with
    `--seed 0`, so two such runs are independent measurements.

    >>> replicate_seeds(0, 3), replicate_seeds(1, 3)
    ([0, 1000, 2000], [1, 1001, 2001])
    """
    return [seed + REPLICATE_SEED_STRIDE * k for k in range(replicates)]


class Pipeline:
    """Runs the steps in order with caching, progress lines and MLflow records.

    With `replicate=True` it is a training replicate of another run: it runs only the steps
    that differ between seeds (every step but `NOT_REPLICATED`) and returns its run folder
    instead of a report.
    """

    def __init__(self, out: str | os.PathLike, settings: Settings,
                 echo: Callable[[str], None] = log.info, replicate: bool = False):
        self.out = Path(out).resolve()
        self.settings = settings
        self.echo = echo
        self.cache = self.out / ".cache"
        self.runs: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        #: time spent in the replicates' own chains (their steps are not this run's)
        self.replicate_seconds = 0.0
        self.mlflow = None
        #: the steps of this run: the chain, and with replicates the step that combines them
        chain = [s for s in STEPS if not s.startswith("stage2 ") or s == "stage2 captions"
                 or s.removeprefix("stage2 ") in settings.options["variants"]]
        self.steps = chain[:-3] + ["replicates"] * (settings.options.get("replicates", 1) > 1) \
            + chain[-3:]  # people's judgments, the gallery and the report come last
        if replicate:  # a training replicate: only what differs between seeds
            self.steps = [s for s in self.steps if s not in NOT_REPLICATED]

    # ----------------------------------------------------------------- plumbing
    def _uses(self, *names: str) -> dict:
        """The settings a step depends on (its cache key): these options and the seed."""
        return {**{n: self.settings.options[n] for n in names}, "seed": self.settings.seed}

    def log_path(self, step: str) -> Path:
        """Where a step's own output (library logs, warnings, progress bars) goes."""
        return self.out / "logs" / f"{step.replace(' ', '_')}.log"

    def _start_tracking(self, mlflow, version: str) -> None:
        """The experiment of this data version and the pipeline's parent run in it."""
        from annotate.tables.versions import source_version

        mlflow.set_experiment(f"twostage-{version}")
        self.tags = {"data_version": version, "src_version": source_version(),
                     "preset": self.settings.preset, "seed": str(self.settings.seed),
                     "run_folder": str(self.out.resolve())}
        # a replicate's pipeline runs inside its parent's: its MLflow run is nested there
        self.parent = mlflow.start_run(run_name=f"evaluate-pipeline {self.settings.preset}",
                                       tags=self.tags, nested=mlflow.active_run() is not None)
        mlflow.log_params({f"preset.{k}": v for k, v in self.settings.options.items()})
        self.mlflow = mlflow

    def _step(self, name: str, inputs: list[Path], outputs: list[Path], work: Callable,
              params: dict | None = None) -> None:
        """Run `work()` unless the cache says the same inputs, the same `params` (the
        settings this step uses, and only those) and the same code (`source_fingerprint`) made
        `outputs`."""
        if name not in self.steps:  # a step a replicate leaves to its parent run
            return
        key = hashlib.sha256(json.dumps({"step": name, "params": params or {},
                                         "inputs": _fingerprint(inputs),
                                         "code": source_fingerprint()},
                                        sort_keys=True, default=str).encode()).hexdigest()
        record_path = self.cache / f"{name}.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        index = len(self.timings) + 1
        if record.get("key") == key and all(p.exists() for p in outputs):
            self.runs[name] = record.get("run_id", "")
            self.timings[name] = 0.0
            self.echo(f"[{index:2d}/{len(self.steps)}] {name:22} cached")
            return
        started = time.perf_counter()
        with captured(self.log_path(name)), \
                self.mlflow.start_run(run_name=name, nested=True, tags=self.tags) as child:
            if params:
                self.mlflow.log_params(params)
            metrics = work() or {}
            numeric = {metric_name(k): float(v) for k, v in metrics.items()
                       if isinstance(v, int | float) and pd.notna(v)}
            if numeric:
                self.mlflow.log_metrics(numeric)
            self.runs[name] = child.info.run_id
        seconds = time.perf_counter() - started
        self.timings[name] = seconds
        write_json(record_path, {"key": key, "run_id": self.runs[name], "seconds": seconds})
        spent = sum(self.timings.values()) + self.replicate_seconds
        nominal = NOMINAL[self.settings.preset]
        left = sum(nominal.get(s, 0) for s in self.steps[index:])
        if "replicates" in self.steps[index:]:  # each further replicate: the trained chain
            left += (self.settings.options["replicates"] - 1) * sum(
                nominal.get(s, 0) for s in self.steps
                if s not in (*NOT_REPLICATED, "replicates"))
        self.echo(f"[{index:2d}/{len(self.steps)}] {name:22} {seconds:7.1f} s   (run "
                  f"{spent:6.0f} s, about {left / 60:.0f} min left)")

    # ----------------------------------------------------------------- the chain
    def run(self) -> Path:
        from annotate.formats.readers import import_set

        self.out.mkdir(parents=True, exist_ok=True)
        o, seed, run = self.settings.options, self.settings.seed, self.out
        _refuse_other_variants(run, o["variants"])
        if self.settings.data is None:
            self.settings.data = str(demo_data(o["demo_images"]))
        data = Path(self.settings.data)
        tables = workspace.path(run, "tables")

        def do_import() -> dict:  # an export file, or a saved set (e.g. from `annotate pull`)
            ts, _ = import_set(data, tables)
            return ts.counts()

        # the tables' version names the experiment, so import runs before tracking starts
        self.mlflow, self.tags = _NoTracking(), {}
        self._step("import", [data], [tables], do_import)
        imported = store.load(tables)
        with tracking(tracking_uri(self.settings.tracking_uri, self.out)) as mlflow:
            with captured(self.log_path("mlflow")):
                self._start_tracking(mlflow, data_version(imported))
            try:
                with mlflow.start_run(run_name="import", nested=True, tags=self.tags) as child:
                    mlflow.log_params({"data": str(data)})
                    mlflow.log_metrics({k: float(v) for k, v in imported.counts().items()})
                    self.runs["import"] = child.info.run_id
                self._quality_steps(o, seed)
                self._stage1_steps(o, seed)
                self._stage2_steps(o, seed, ("gold",))
                self._threshold_steps(o, seed)
                self._stage2_steps(o, seed, tuple(o["variants"][1:]))
                self._caption_step(o["variants"])
                self._check_steps(o, seed)
                if o["replicates"] > 1:
                    self._replicate_steps(o, seed)
                self._write_record(data_version(imported))
                self._judging_step(o, seed)
                self._gallery_step()
                self._report_step()
                if "report" in self.steps:
                    mlflow.log_artifact(str(run / "report" / "report.html"))
                    mlflow.log_artifact(str(run / "report" / "report.json"))
            finally:
                with captured(self.log_path("mlflow")):
                    mlflow.end_run()
        return run / "report" / "report.html" if "report" in self.steps else run

    def _quality_steps(self, o: dict, seed: int) -> None:
        from quality.agreement.jobs import reliability_job
        from quality.gold.jobs import CONSENSUS_SUMMARY, consensus_job
        from quality.splits.jobs import audit_job, split_job

        run = self.out
        tables, gold, split = (workspace.path(run, n) for n in ("tables", "gold", "split"))

        def do_reliability() -> dict:
            figures, _ = reliability_job(store.load(tables), workspace.path(run, "reliability"),
                                         n_boot=o["n_boot"], seed=seed)
            return {f"alpha_{k}": figures[k]["alpha"] for k in ("labels", "boxes", "captions")
                    if figures[k]["alpha"] is not None}

        def do_consensus() -> dict:
            figures = consensus_job(store.load(tables), gold)
            return {"consensus_boxes": figures["consensus_boxes"],
                    "flags": sum(figures["flags"].values()),
                    **{f"adjudicated_{k}": v for k, v in figures["adjudication"].items()}}

        def do_split() -> dict:
            summary = split_job(store.load(gold), split, val=o["val"], test=o["test"],
                                seed=o["split_seed"], n_boot=o["n_boot"])
            return {"max_class_share_gap": summary["max_class_share_gap"]}

        def do_audit() -> dict:
            report, _ = audit_job(store.load(split), workspace.path(run, "audit"))
            return report["counts"]

        self._step("reliability", [tables], [workspace.path(run, "reliability")],
                   do_reliability, self._uses("n_boot"))
        self._step("consensus", [tables], [gold, gold / CONSENSUS_SUMMARY], do_consensus)
        # the split has its own seed: runs that differ only in --seed share their test data
        self._step("split", [gold], [split], do_split,
                   {n: o[n] for n in ("val", "test", "n_boot", "split_seed")})
        self._step("audit", [split], [workspace.path(run, "audit")], do_audit)

    def _stage1_steps(self, o: dict, seed: int) -> None:
        """Train the deployed detector (the recipe the settings give) and a strong one (the
        deployed one fine-tuned `strong_epochs` more: what a better stage 1 would give); both
        predict val and test at the lowest candidate threshold (the operating threshold is
        chosen later, by stage-2 score); out-of-fold detections of the train images come from
        the deployed recipe."""
        from quality.cascade.threshold import FLOOR
        from stage1_detect.crossfit import crossfit
        from stage1_detect.jobs import predict_job
        from stage1_detect.train import DetectorConfig, model_source, train

        run = self.out
        split = workspace.path(run, "split")
        stage1, strong = run / "stage1", run / workspace.STRONG
        config = DetectorConfig(model=o["detector"], epochs=o["detector_epochs"],
                                imgsz=o["imgsz"], seed=seed)
        weights = stage1 / "train" / "weights" / "best.pt"

        def do_train() -> dict:
            return train(store.load(split), stage1, config)["val"]

        def do_strong() -> dict:
            record = train(store.load(split), strong, DetectorConfig(
                model=str(weights), epochs=o["strong_epochs"], imgsz=o["imgsz"], seed=seed))
            return record["val"]

        def do_predict() -> dict:
            ts = store.load(split)
            return {f"{folder.name}_boxes_{part}": len(predict_job(
                folder, ts, folder / f"raw_{part}.parquet", split=part, conf=FLOOR,
                imgsz=o["imgsz"])) for folder in (stage1, strong) for part in ("val", "test")}

        def do_crossfit() -> dict:
            ts = store.load(split)
            training = ts.subset(ts.images.image_id[ts.images.split == "train"])
            boxes = crossfit(training, run / "oof", replace(config, epochs=o["oof_epochs"]),
                             folds=o["folds"], conf=FLOOR)
            return {"oof_boxes": len(boxes)}

        initial = Path(model_source(config.model))  # weights fine-tuned from: an input too
        self._step("stage1 train", [split, *[initial] * initial.is_file()],
                   [stage1 / "run.json"], do_train, asdict(config))
        self._step("stage1 strong", [split, weights], [strong / "run.json"], do_strong,
                   self._uses("strong_epochs", "imgsz"))
        self._step("stage1 predict", [weights, strong / "train" / "weights" / "best.pt", split],
                   workspace.detector_files(run, "raw"), do_predict, self._uses("imgsz"))
        self._step("stage1 crossfit", [split, *[initial] * initial.is_file()],
                   [run / "oof" / "oof_boxes.parquet"],
                   do_crossfit, self._uses("folds", "oof_epochs", "detector", "imgsz"))

    def _threshold_steps(self, o: dict, seed: int) -> None:
        """Each detector's operating threshold, chosen on validation by the gold-trained stage
        2's score; its detections at that threshold and their error tables, val and test."""
        from quality.cascade.threshold import threshold_job
        from stage1_detect.jobs import evaluate_job

        run = self.out
        split = workspace.path(run, "split")
        detectors = [run / folder for folder in workspace.DETECTORS.values()]
        stage1 = detectors[0]
        gold_model = workspace.path(run, "stage2") / "gold"

        def do_threshold() -> dict:
            ts = store.load(split)
            return {f"{folder.name}_threshold": threshold_job(gold_model, folder, ts)["chosen"]
                    for folder in detectors}

        def do_evaluate() -> dict:
            ts = store.load(split)
            out = {}
            for folder in detectors:  # val errors calibrate noise; test errors report
                for part in ("val", "test"):
                    main = folder == stage1 and part == "test"
                    report, _ = evaluate_job(
                        ts, pd.read_parquet(folder / f"predicted_{part}.parquet"),
                        run=folder if main else None, split=part, imgsz=o["imgsz"],
                        errors_path=folder / f"errors_{part}.parquet",
                        json_path=workspace.path(run, "evaluate") if main else None)
                    overall = next(r for r in report["errors"] if r["class"] == "all")
                    out.update({f"{folder.name}_{part}_{k}": v for k, v in overall.items()
                                if k != "class"})
                    if main:
                        out.update(report["map"])
            return out

        self._step("stage1 threshold", [*workspace.detector_files(run, "raw"),
                                        gold_model / "model.safetensors", split],
                   workspace.detector_files(run, "predicted"), do_threshold)
        self._step("stage1 evaluate", [*workspace.detector_files(run, "predicted"), split],
                   workspace.detector_files(run, "errors"), do_evaluate, self._uses("imgsz"))

    def _stage2_steps(self, o: dict, seed: int, variants: tuple[str, ...]) -> None:
        """Train the stage-2 variants named: `gold` (gold layouts), `noise` (noise calibrated
        on the deployed detector's validation errors at its operating threshold), `oof` (half
        the examples read the deployed recipe's out-of-fold detections at that threshold),
        `noise+oof` (both), `scores` (the noise variant reading detection scores: gold objects
        carry scores drawn from the validation detections that found an object, injected
        spurious ones from the spurious detections' scores) and `scores+oof` (that, with half
        the examples reading the out-of-fold detections and their real scores)."""
        from annotate.formats.layout import SCORE_BINS
        from stage1_detect.handover import hand_over
        from stage2_generate.noise import calibrate, calibrate_scores
        from stage2_generate.train import train

        run = self.out
        split = workspace.path(run, "split")
        stage1 = run / "stage1"
        errors_val, oof = stage1 / "errors_val.parquet", run / "oof" / "oof_boxes.parquet"
        threshold = stage1 / workspace.THRESHOLD

        def noise() -> dict:
            return {"noise": calibrate(pd.read_parquet(errors_val))}

        def scores() -> dict:  # the noise and the score distributions, from one error table
            errors = pd.read_parquet(errors_val)
            return {"noise": calibrate(errors), "score_bins": SCORE_BINS,
                    "scores": calibrate_scores(errors)}

        def oof_boxes() -> pd.DataFrame:  # handed over as the deployed detector's output
            return hand_over(pd.read_parquet(oof), json.loads(threshold.read_text()))

        half = {"extra_share": 0.5}  # of the examples read the out-of-fold detections
        recipes = {  # variant -> (inputs, () -> (extra boxes, TrainConfig options))
            "gold": ([split], lambda: (None, {})),
            "noise": ([split, errors_val], lambda: (None, noise())),
            "oof": ([split, oof, threshold], lambda: (oof_boxes(), half)),
            "noise+oof": ([split, errors_val, oof, threshold],
                          lambda: (oof_boxes(), {**half, **noise()})),
            "scores": ([split, errors_val], lambda: (None, scores())),
            "scores+oof": ([split, errors_val, oof, threshold],
                           lambda: (oof_boxes(), {**half, **scores()})),
        }
        for name in variants:
            inputs, make = recipes[name]
            folder = workspace.path(run, "stage2") / name

            def do_variant(folder=folder, make=make) -> dict:
                extra, options = make()
                config = TrainConfig(preset=o["stage2_preset"], epochs=o["stage2_epochs"],
                                     batch_size=o["stage2_batch_size"], seed=seed,
                                     progress=False, **options)
                record = train(store.load(split), folder, config, extra)
                return {"best_val_loss": record["best_val_loss"],
                        "score_bins": config.score_bins, **{
                            f"noise_{k}": v for k, v in config.noise.to_dict().items()
                            if isinstance(v, float)}}

            self._step(f"stage2 {name}", inputs, [folder / "model.safetensors"], do_variant,
                       self._uses("stage2_preset", "stage2_epochs", "stage2_batch_size"))

    def _caption_step(self, variants: list[str]) -> None:
        """Every variant (and the rule baseline, which needs no training) captions the gold,
        deployed and strong detectors' layouts of the test images, and of the validation
        images under `val/` (for the validation-vs-test check)."""
        from annotate.tables.views import gold_boxes
        from stage1_detect.handover import ULTRALYTICS_CONF, at_threshold
        from stage2_generate.baseline import rule_job
        from stage2_generate.generate import Captioner, generate_job

        run = self.out
        split = workspace.path(run, "split")
        models = [workspace.path(run, "stage2") / v for v in variants]
        baseline = workspace.path(run, "stage2") / "baseline"

        def do_captions() -> dict:
            ts = store.load(split)
            # one captioner per model: the layouts overlap (gold, detectors, parts)
            captioners = {m: Captioner(m) for m in models}
            for part in ("test", "val"):
                images = ts.images[ts.images.split == part]
                layouts = [(gold_boxes(ts), workspace.CAPTIONS_GOLD),
                           (pd.read_parquet(run / "stage1" / f"predicted_{part}.parquet"),
                            workspace.CAPTIONS_PREDICTED),
                           (pd.read_parquet(run / workspace.STRONG / f"predicted_{part}"
                                            ".parquet"), workspace.CAPTIONS_PREDICTED_STRONG)]
                for model in [*models, baseline]:
                    folder = model if part == "test" else model / workspace.VAL
                    for boxes, name in layouts:
                        if model == baseline:
                            rule_job(boxes, images, folder / name)
                        else:
                            generate_job(captioners[model], boxes, images, folder / name)
            raw = pd.read_parquet(run / "stage1" / "raw_test.parquet")
            chosen = json.loads((run / "stage1" / workspace.THRESHOLD).read_text())["chosen"]
            test = ts.images[ts.images.split == "test"]
            for threshold, name in ((ULTRALYTICS_CONF, workspace.CAPTIONS_PREDICTED_DEFAULT),
                                    (chosen, workspace.CAPTIONS_PREDICTED_UNSUPPRESSED)):
                generate_job(captioners[models[0]], at_threshold(raw, threshold), test,
                             models[0] / name)
            return {}

        self._step("stage2 captions", [split, *workspace.detector_files(run, "predicted"),
                                       run / "stage1" / "raw_test.parquet",
                                       *[m / "model.safetensors" for m in models]],
                   [*(m / workspace.VAL / workspace.CAPTIONS_PREDICTED_STRONG
                      for m in [*models, baseline]),
                    models[0] / workspace.CAPTIONS_PREDICTED_DEFAULT,
                    models[0] / workspace.CAPTIONS_PREDICTED_UNSUPPRESSED], do_captions)

    def _check_steps(self, o: dict, seed: int) -> None:
        from quality.cascade.robustness import robustness_job
        from quality.cascade.sanity import sanity_job

        run = self.out
        captions = [workspace.path(run, "stage2") / v / workspace.VAL
                    / workspace.CAPTIONS_PREDICTED_STRONG for v in (*o["variants"], "baseline")]

        def do_robustness() -> dict:
            figures = robustness_job(run, o["n_boot"], seed, perturb=o["perturbation"])
            out = {}
            for name, entry in figures["variants"].items():
                for metric, f in entry["figures"].items():
                    if isinstance(f, dict):
                        out[f"{name}_{metric}_drop"] = f["drop"]
            return out

        def do_sanity() -> dict:
            figures = sanity_job(store.load(workspace.path(run, "split")),
                                 workspace.path(run, "sanity"))
            return {"overfit_final_loss": figures["overfit_tiny_batch"]["final_loss"]}

        self._step("robustness", [workspace.path(run, "split"),
                                  *workspace.detector_files(run, "errors"), *captions,
                                  *[run / d / workspace.THRESHOLD
                                    for d in workspace.DETECTORS.values()]],
                   [workspace.path(run, "robustness")], do_robustness,
                   self._uses("n_boot", "perturbation"))
        self._step("sanity", [workspace.path(run, "split")], [workspace.path(run, "sanity")],
                   do_sanity)

    def _replicate_steps(self, o: dict, seed: int) -> None:
        """Training replicates: the trained chain again with seeds `replicate_seeds` (the same
        data and split; each its own run folder under `replicates/`, cached, an MLflow run
        nested under this one; the steps that describe the data or this run's page,
        `NOT_REPLICATED`, only here), then the figures over test images and replicates
        (`replicates.json`, `quality.cascade.replicates`)."""
        from quality.cascade.replicates import REPLICATES_FILE, replicates_job

        folders = [self.out]
        seeds = replicate_seeds(seed, o["replicates"])
        for number, child_seed in enumerate(seeds[1:], start=2):
            folder = self.out / "replicates" / f"seed-{child_seed}"
            child = Pipeline(folder, Settings(
                data=str(workspace.path(self.out, "tables")), preset=self.settings.preset,
                seed=child_seed, tracking_uri=self.mlflow.get_tracking_uri(),
                options={**self.settings.options, "replicates": 1}),
                echo=lambda line, n=number, s=child_seed: self.echo(
                    f"      replicate {n}/{len(seeds)} (seed {s}): {line}"), replicate=True)
            child.run()
            self.replicate_seconds += sum(child.timings.values())
            folders.append(folder)
        captions = [f for run in folders for f in sorted(
            (workspace.path(run, "stage2")).glob("*/captions_*.parquet"))]
        errors = [f for run in folders for f in workspace.detector_files(run, "errors")]
        self._step("replicates", [*captions, *errors], [self.out / REPLICATES_FILE],
                   lambda: _flat(replicates_job(folders, self.out / REPLICATES_FILE,
                                                n_boot=o["n_boot"], seed=seed, seeds=seeds)),
                   self._uses("n_boot", "replicates"))

    def _judging_step(self, o: dict, seed: int) -> None:
        """People judge the captions: in the pipeline's world, simulated judges with a known
        preference model (`quality.judging.simulate`) judge a blind pairwise study of the
        deployed detector's captions (the gold-trained and out-of-fold variants, the rule
        baseline and a held-out human caption), analysed as a pulled study would be."""
        from quality.judging.design import HUMAN_SYSTEM
        from quality.judging.jobs import (
            SYSTEMS,
            judgment_figures,
            judgments_job,
            plan_judging,
            simulate_judging,
        )

        run = self.out
        study = workspace.path(run, "judging").parent
        # the model systems whose captions of the detector's layouts this run has
        captions = {s: workspace.path(run, "stage2") / s / workspace.CAPTIONS_PREDICTED
                    for s in SYSTEMS if s != HUMAN_SYSTEM}
        captions = {s: path for s, path in captions.items() if path.exists()}
        systems = tuple(s for s in SYSTEMS if s == HUMAN_SYSTEM or s in captions)

        def do_judging() -> dict:
            plan_judging(run, study, systems=systems, seed=seed, log=False)
            simulate_judging(study, seed=seed, log=False)
            result = judgments_job(study, n_boot=o["n_boot"], seed=seed, log=False)
            return judgment_figures(result)

        self._step("judging", [workspace.path(run, "split"), *captions.values()],
                   [workspace.path(run, "judging")], do_judging, self._uses("n_boot"))

    def _gallery_step(self) -> None:
        """The images behind the report's figures (`quality gallery`), before the report,
        which links to it."""
        from quality.gallery.jobs import gallery_job

        run = self.out

        def do_gallery() -> dict:
            record = gallery_job(run, progress=False)
            return {"gallery_images": record["images"]["shown"],
                    "gallery_views": len(record["views"])}

        self._step("gallery", [workspace.path(run, "tables"), workspace.path(run, "gold"),
                               workspace.path(run, "split"), workspace.path(run, "audit"),
                               *workspace.detector_files(run, "errors"),
                               *workspace.detector_files(run, "predicted"),
                               *[f for v in workspace.variants(run) for f in (
                                   v / workspace.CAPTIONS_GOLD, v / workspace.CAPTIONS_PREDICTED)]],
                   [workspace.path(run, "gallery")], do_gallery)

    def _report_step(self) -> None:
        """The report reads the artifacts above and the run record (`run.json`, written just
        before it); the record is not a cache input (it names this invocation's MLflow run)."""
        from quality.report.page import REPLICATES, build

        run = self.out

        def do_report() -> dict:
            build(run, run / "report")
            return {}

        self._step("report", [workspace.path(run, "robustness"), workspace.path(run, "sanity"),
                              workspace.path(run, "reliability"), workspace.path(run, "audit"),
                              workspace.path(run, "evaluate"), workspace.path(run, "stage1"),
                              workspace.path(run, "split") / "split_report.json",
                              workspace.path(run, "gallery"), workspace.path(run, "judging"),
                              *[run / REPLICATES] * (run / REPLICATES).exists()],
                   [run / "report" / "report.html"], do_report)

    def _write_record(self, version: str) -> None:
        """run.json: the settings, the data version of the whole set and of each split, the
        source version and the MLflow runs of the steps so far: what `quality compare` checks
        before comparing and what the report shows as the run's provenance.
        The split versions are also MLflow tags (data_version.train, .val, .test)."""
        from annotate.tables.versions import split_versions

        splits = split_versions(store.load(workspace.path(self.out, "split"), validate=False))
        record = {"settings": {"preset": self.settings.preset, "seed": self.settings.seed,
                               "data": str(self.settings.data), **self.settings.options},
                  "data_version": version, "split_versions": splits,
                  "source_version": self.tags.get("src_version"),
                  "tracking_uri": self.mlflow.get_tracking_uri(),
                  "mlflow_run": self.parent.info.run_id,
                  # which MLflow run made each figure (the report shows them)
                  "mlflow": {"tracking_uri": self.mlflow.get_tracking_uri(),
                             "parent_run": self.parent.info.run_id, "steps": dict(self.runs),
                             **self.tags}}
        write_json(workspace.path(self.out, "run"), record)
        self.mlflow.set_tags({f"data_version.{name}": v for name, v in splits.items()})


def _refuse_other_variants(run: Path, variants: list[str]) -> None:
    """A run folder that holds trained stage-2 variants this run does not train would mix them
    into its figures (every analysis reads the variants it finds): refuse, naming them."""
    folder = workspace.path(run, "stage2")
    others = sorted(p.name for p in folder.iterdir() if (p / "model.safetensors").exists()
                    and p.name not in variants) if folder.is_dir() else []
    if others:
        raise UserError(f"{folder} holds stage-2 variants this run does not train "
                        f"({', '.join(others)}; this run: {', '.join(variants)}): use another "
                        f"--out, or --variants {','.join([*variants, *others])}")


def _flat(block: dict) -> dict:
    """The replicate-aware drop of each detector and variant, for MLflow."""
    return {f"{detector}_{variant}_drop": entry["drop"]["value"]
            for detector, variants in block["gap"].items()
            for variant, entry in variants.items()}


class _NoTracking:
    """Stands in for mlflow before the data version (and so the experiment) is known."""

    class _Run:
        class info:
            run_id = ""

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def start_run(self, **kwargs):
        return self._Run()

    def log_params(self, params):
        return None

    def log_metrics(self, metrics):
        return None


#: The learned stage-2 variants, in training order (gold first: it chooses the thresholds).
LEARNED = ("gold", "noise", "oof", "noise+oof", "scores", "scores+oof")
STEPS = ["import", "reliability", "consensus", "split", "audit", "stage1 train",
         "stage1 strong", "stage1 predict", "stage1 crossfit", "stage2 gold", "stage1 threshold",
         "stage1 evaluate", "stage2 noise", "stage2 oof", "stage2 noise+oof", "stage2 scores",
         "stage2 scores+oof", "stage2 captions",
         "robustness", "sanity", "judging", "gallery", "report"]
#: Steps a training replicate skips: they describe the data (reliability, the leakage audit,
#: the sanity checks), the test set's reaction to injected errors and per-image analyses
#: (robustness), or make the parent's page (judging, gallery, report); the replicate figures
#: read only the captions and error tables of each replicate.
NOT_REPLICATED = ("reliability", "audit", "robustness", "sanity", "judging", "gallery",
                  "report")
NOMINAL = {
    "smoke": dict.fromkeys(STEPS, 8),
    # seconds per step measured on a slow 2-core machine (docs/robustness.md)
    "demo": {"import": 1, "reliability": 10, "consensus": 1, "split": 2, "audit": 1,
             "stage1 train": 8, "stage1 strong": 28, "stage1 predict": 3,
             "stage1 crossfit": 10, "stage2 gold": 40, "stage1 threshold": 10,
             "stage1 evaluate": 3, "stage2 noise": 42, "stage2 oof": 40, "stage2 noise+oof": 42,
             "stage2 scores": 45, "stage2 scores+oof": 45,
             "stage2 captions": 15, "robustness": 60, "sanity": 8, "replicates": 12,
             "judging": 14, "gallery": 5, "report": 3},
    "full": dict.fromkeys(STEPS, 300),
}
