"""A judgment study's design: which captions are judged (each system's caption of each test
image, and a held-out human caption as the system "human"; or, to compare two runs, the same
variant of each run), how many tasks are needed for the interval asked, the tasks themselves
and the Label Studio labelling config people judge them in.

Two designs: **pairwise** (an image and two captions, left/right order drawn per task and
recorded; the judge picks the better one or calls a tie) and **rating** (an image and one
caption, rated 1-5 against a short rubric; every system's caption of a chosen image is rated,
so systems are compared on the same images)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError
from annotate.tables import store
from annotate.tables.schema import HUMAN, TableSet
from annotate.tables.versions import split_versions
from quality import workspace

#: The held-out human caption's system name.
HUMAN_SYSTEM = "human"
#: Which layouts the systems captioned: the deployed detector's (what users get) or gold.
INPUTS = {"detector": workspace.CAPTIONS_PREDICTED, "gold": workspace.CAPTIONS_GOLD}
#: Planning assumptions, each overridable: judgments of one task agree beyond chance (an
#: intra-task correlation), and a pairwise judgment takes this long.
ICC = 0.3
SECONDS_PER_JUDGMENT = 15.0
Z = 1.959963984540054
#: 80% power: the standard normal's 0.8 quantile.
Z_POWER = 0.8416212335729143
#: Label Studio's names in the generated configs (the pull reads them back).
CHOICE, TIE_CHOICE, TIE_VALUE = "choice", "tie", "Both equally good (or equally bad)"
RATING, RATING_MAX = "rating", 5
DESIGNS = ("pairwise", "rating")
#: The rating design's planning assumption: the standard deviation of one judge's rating
#: difference between two systems' captions of one image (points on the 1-5 scale).
RATING_SD = 1.0
#: What each point of the rating means, shown to the judges beside the stars.
RUBRIC = (
    "5: every object named right, with its colour, shape and where it is",
    "4: the right objects, with one small slip (a colour, a shape or a position)",
    "3: mostly right, but an object is missing or one is named that is not there",
    "2: one object right, the rest wrong or missing",
    "1: wrong, or nothing to do with the picture")
#: Two runs compared by people: arm labels that prefix each variant (`A:gold`, `B:gold`).
ARMS = ("A", "B")


def system_captions(run: str | Path, systems: list[str], layouts: str = "detector",
                    seed: int = 0) -> tuple[pd.DataFrame, pd.Series, TableSet]:
    """Each system's caption of each test image of a run, and the references left for
    scoring them.

    Parameters
    ----------
    run : path
        A pipeline run folder.
    systems : list of str
        Stage-2 variant folders (`gold`, `oof`, `baseline`, ...) and, optionally, `human`: one
        human caption per image, drawn with `seed`, held out of the references.
    layouts : {"detector", "gold"}
        The captions of the deployed detector's layouts (default) or of gold layouts.
    seed : int
        Seed of the held-out human caption.

    Returns
    -------
    captions : pd.DataFrame
        image_id, system, caption: the test images every system captioned.
    references : pd.Series
        image_id -> the human captions not held out (what every system is scored against).
    split : TableSet
        The run's split set.
    """
    if layouts not in INPUTS:
        raise UserError(f"layouts must be one of {sorted(INPUTS)}, got {layouts!r}")
    if len(set(systems)) < 2:
        raise UserError(f"judging needs two systems or more, got {systems}")
    split = store.load(workspace.path(run, "split"))
    test = set(split.images.image_id[split.images.split == "test"])
    human = split.captions[(split.captions.source == HUMAN) & split.captions.image_id.isin(test)]
    human = human.sort_values(["image_id", "annotator"]).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    held = pd.Series(False, index=human.index)
    if HUMAN_SYSTEM in systems:  # one caption per image with two or more, drawn
        sizes = human.groupby("image_id").size()
        several = human[human.image_id.map(sizes) >= 2]
        pick = several.groupby("image_id").apply(
            lambda g: g.index[rng.integers(len(g))], include_groups=False)
        held.loc[pick.to_numpy()] = True
    frames = [human[held][["image_id", "caption"]].assign(system=name) if name == HUMAN_SYSTEM
              else _variant_captions(run, name, layouts, test).assign(system=name)
              for name in systems]
    return _complete(frames, len(set(systems)), human[~held], split)


def arm_captions(arms: dict[str, list[Path]], variants: list[str], layouts: str = "detector",
                 seed: int = 0) -> tuple[pd.DataFrame, pd.Series, TableSet]:
    """The captions of two runs (or two arms of training replicates) to be judged against
    each other: system `A:gold` is variant `gold` of arm A. For each image, one replicate of
    each arm is drawn (seeded, recorded as `replicate`), so that the judgments sample the
    training replicates as well as the images.

    Parameters
    ----------
    arms : dict
        {"A": [run, ...], "B": [run, ...]}: each arm's run folders (its replicates: runs that
        differ only in --seed).
    variants : list of str
        Stage-2 variants every run has (`human` is not an arm's system).
    layouts, seed
        As in `system_captions`.

    Returns
    -------
    captions : pd.DataFrame
        image_id, system, caption, replicate (index into the arm's runs).
    references : pd.Series
        image_id -> every human caption (the same in both arms).
    split : TableSet
        The split set of arm A's first run.

    Raises
    ------
    UserError
        When the runs were not evaluated on the same test data (test data version), or a
        variant is `human`.
    """
    if HUMAN_SYSTEM in variants or not variants:
        raise UserError(f"a study of two runs judges their variants against each other; got "
                        f"{variants} ('{HUMAN_SYSTEM}' is the same captions in both runs)")
    if layouts not in INPUTS:
        raise UserError(f"layouts must be one of {sorted(INPUTS)}, got {layouts!r}")
    runs = [Path(r) for arm in arms.values() for r in arm]
    sets = [store.load(workspace.path(r, "split")) for r in runs]
    versions = {str(r): split_versions(ts).get("test") for r, ts in zip(runs, sets, strict=True)}
    if len(set(versions.values())) > 1:
        raise UserError("the runs were evaluated on different test data (test data versions "
                        f"{versions}): people can only compare runs on the same test images")
    split = sets[0]
    test = set(split.images.image_id[split.images.split == "test"])
    rng = np.random.default_rng(seed)
    images = np.array(sorted(test), dtype=object)
    frames = []
    for label, arm in arms.items():
        replicate = pd.Series(rng.integers(len(arm), size=len(images)), index=images)
        for name in variants:
            made = pd.concat([_variant_captions(run, name, layouts, test).assign(replicate=k)
                              for k, run in enumerate(arm)], ignore_index=True)
            made = made[made.replicate.to_numpy() == replicate[made.image_id].to_numpy()]
            frames.append(made.assign(system=f"{label}:{name}"))
    human = split.captions[(split.captions.source == HUMAN) & split.captions.image_id.isin(test)]
    return _complete(frames, len(arms) * len(variants), human, split)


def _variant_captions(run, name: str, layouts: str, test: set) -> pd.DataFrame:
    """A stage-2 variant's captions of the test images (image_id, caption)."""
    path = workspace.path(run, "stage2") / name / INPUTS[layouts]
    if not path.exists():
        known = sorted(p.name for p in workspace.variants(run))
        raise UserError(f"{path}: no captions of system {name!r} (systems of this run: "
                        f"{[*known, HUMAN_SYSTEM]})")
    made = pd.read_parquet(path)
    return made[made.image_id.isin(test)][["image_id", "caption"]]


def _complete(frames: list[pd.DataFrame], systems: int, human: pd.DataFrame, split: TableSet
              ) -> tuple[pd.DataFrame, pd.Series, TableSet]:
    """The images every system captioned, their captions, and the references left."""
    captions = pd.concat(frames, ignore_index=True).drop_duplicates(["image_id", "system"])
    complete = captions.groupby("image_id").system.nunique()
    keep = complete.index[complete == systems]
    captions = captions[captions.image_id.isin(keep)].astype({"caption": str})
    references = human[human.image_id.isin(keep)].groupby("image_id").caption.agg(
        lambda c: [str(x) for x in c])
    return captions.reset_index(drop=True), references, split


def tasks_needed(target_ci: float, raters: int, icc: float = ICC) -> int:
    """Tasks per pair of systems for a 95% interval of +-`target_ci` on a win rate near 0.5
    (the widest case), `raters` judgments per task correlated by `icc`.

    >>> tasks_needed(0.05, 3)  # 384.1 judgments' worth, inflated 1.6x, in tasks of 3
    205
    """
    if not 0 < target_ci < 0.5 or raters < 1 or not 0 <= icc <= 1:
        raise UserError(f"need 0 < target_ci < 0.5, raters >= 1, 0 <= icc <= 1; got "
                        f"{target_ci}, {raters}, {icc}")
    effective = (Z * 0.5 / target_ci) ** 2
    return math.ceil(effective * (1 + (raters - 1) * icc) / raters)


def half_width_for_mdd(mdd: float, design: str = "pairwise") -> float:
    """The 95% half-width at which a difference of `mdd` (in win rate from 0.5; in rating
    points for the rating design) is detected with 80% power (two-sided, 5% level):
    mdd * 1.96 / (1.96 + 0.84).

    >>> tasks_needed(half_width_for_mdd(0.1), 1, icc=0.0)  # ((1.96 + 0.84) * 0.5 / 0.1)^2
    197
    """
    limit = 0.5 if design == "pairwise" else RATING_MAX - 1
    if not 0 < mdd < limit:
        raise UserError(f"need 0 < mdd < {limit} (a difference in "
                        f"{'win rate from 0.5' if design == 'pairwise' else 'mean rating'}), "
                        f"got {mdd}")
    return mdd * Z / (Z + Z_POWER)


def half_width(tasks: int, raters: int, icc: float = ICC) -> float:
    """The 95% half-width on a win rate near 0.5 that `tasks` tasks of `raters` judgments give."""
    return Z * 0.5 * math.sqrt((1 + (raters - 1) * icc) / (tasks * raters)) if tasks else math.inf


def rating_images_needed(target_ci: float, raters: int, icc: float = ICC,
                         sd: float = RATING_SD) -> int:
    """Images for a 95% interval of +-`target_ci` rating points on the difference between two
    systems' mean ratings (each image's captions rated by `raters` judges, a rating
    difference of standard deviation `sd`, ratings of one caption correlated by `icc`).

    >>> rating_images_needed(0.2, 3)  # (1.96 * 1.0 / 0.2)^2 = 96.0 judgments' worth, x 1.6 / 3
    52
    """
    if not 0 < target_ci < RATING_MAX - 1 or raters < 1 or not 0 <= icc <= 1 or sd <= 0:
        raise UserError(f"need 0 < target_ci < {RATING_MAX - 1} rating points, raters >= 1, "
                        f"0 <= icc <= 1, sd > 0; got {target_ci}, {raters}, {icc}, {sd}")
    return math.ceil((Z * sd / target_ci) ** 2 * (1 + (raters - 1) * icc) / raters)


def rating_half_width(images: int, raters: int, icc: float = ICC, sd: float = RATING_SD
                      ) -> float:
    """The 95% half-width (rating points) on a mean-rating difference that `images` give."""
    if not images:
        return math.inf
    return Z * sd * math.sqrt((1 + (raters - 1) * icc) / (images * raters))


def draw_tasks(captions: pd.DataFrame, systems: list[str], per_pair: int, seed: int = 0,
               pairs: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """For each pair of systems (every pair, or `pairs`), `per_pair` images (all when fewer)
    drawn without replacement, each a task whose left/right order is drawn by a fair coin
    (recorded).

    Returns
    -------
    pd.DataFrame
        task, image_id, left, right, left_caption, right_caption (and left_replicate,
        right_replicate when the captions say which training replicate wrote them).
    """
    rng = np.random.default_rng(seed)
    said = captions.set_index(["image_id", "system"]).caption
    images = np.array(sorted(captions.image_id.unique()), dtype=object)
    rows = []
    for a, b in pairs or itertools.combinations(systems, 2):
        chosen = rng.permutation(images)[:per_pair]
        flip = rng.random(len(chosen)) < 0.5
        for image_id, swap in zip(chosen, flip, strict=True):
            left, right = (b, a) if swap else (a, b)
            rows.append({"image_id": image_id, "left": left, "right": right,
                         "left_caption": said[image_id, left],
                         "right_caption": said[image_id, right]})
    tasks = pd.DataFrame(rows)
    if "replicate" in captions:
        replicate = captions.set_index(["image_id", "system"]).replicate
        for side in ("left", "right"):
            tasks[f"{side}_replicate"] = replicate.reindex(pd.MultiIndex.from_arrays(
                [tasks.image_id, tasks[side]])).to_numpy()
    tasks.insert(0, "task", [f"t{k:05d}" for k in range(len(tasks))])
    return tasks


def draw_rating_tasks(captions: pd.DataFrame, systems: list[str], images: int, seed: int = 0
                      ) -> pd.DataFrame:
    """`images` images (all when fewer) drawn without replacement; every system's caption of
    each is one task (so systems are compared on the same images), the tasks in a drawn
    order so that no judge sees one system's captions in a row.

    Returns
    -------
    pd.DataFrame
        task, image_id, system, caption (and replicate when the captions have it).
    """
    rng = np.random.default_rng(seed)
    pool = np.array(sorted(captions.image_id.unique()), dtype=object)
    chosen = set(rng.permutation(pool)[:images])
    columns = ["image_id", "system", "caption", *(["replicate"] if "replicate" in captions
                                                   else [])]
    tasks = captions[captions.image_id.isin(chosen) & captions.system.isin(systems)][columns]
    tasks = tasks.sort_values(["image_id", "system"]).iloc[rng.permutation(len(tasks))]
    tasks = tasks.reset_index(drop=True)
    tasks.insert(0, "task", [f"r{k:05d}" for k in range(len(tasks))])
    return tasks


def pairwise_config() -> str:
    """The Label Studio config of a blind pairwise study: the image, two captions (no system
    names), a choice between them, and a way to say they are equally good."""
    return (
        "<View>\n"
        '  <Header value="Which caption describes the picture better: the right objects, '
        'their colours and shapes, and where they are?"/>\n'
        '  <Image name="image" value="$image"/>\n'
        f'  <Pairwise name="{CHOICE}" toName="left,right"/>\n'
        '  <View style="display: flex; gap: 1em;">\n'
        '    <View style="flex: 1;"><Text name="left" value="$left_caption"/></View>\n'
        '    <View style="flex: 1;"><Text name="right" value="$right_caption"/></View>\n'
        "  </View>\n"
        f'  <Choices name="{TIE_CHOICE}" toName="image" choice="single">\n'
        f'    <Choice value="{TIE_VALUE}"/>\n'
        "  </Choices>\n"
        "</View>\n")


def rating_config() -> str:
    """The Label Studio config of a blind rating study: the image, one caption (no system
    name), 1-5 stars and the rubric that says what each point means."""
    rubric = "".join(f'    <Header size="6" value="{line}"/>\n' for line in RUBRIC)
    return (
        "<View>\n"
        '  <Header value="How well does the caption describe the picture: the right objects, '
        'their colours and shapes, and where they are?"/>\n'
        '  <Image name="image" value="$image"/>\n'
        '  <Text name="caption" value="$caption"/>\n'
        f'  <Rating name="{RATING}" toName="caption" maxRating="{RATING_MAX}" icon="star" '
        'size="medium" required="true"/>\n'
        '  <View style="margin-top: 0.5em;">\n'
        f"{rubric}"
        "  </View>\n"
        "</View>\n")
