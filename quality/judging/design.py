"""A judgment study's design: which captions are judged (each system's caption of each test
image, and a held-out human caption as the system "human"), how many tasks each pair of
systems needs for the interval asked, the tasks themselves with the left/right order drawn
per task, and the Label Studio labelling config people judge them in."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from annotate.runtime.errors import UserError
from annotate.tables import store
from annotate.tables.schema import HUMAN, TableSet
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
    frames = []
    for name in systems:
        if name == HUMAN_SYSTEM:
            frames.append(human[held][["image_id", "caption"]].assign(system=name))
            continue
        path = workspace.path(run, "stage2") / name / INPUTS[layouts]
        if not path.exists():
            known = sorted(p.name for p in workspace.variants(run))
            raise UserError(f"{path}: no captions of system {name!r} (systems of this run: "
                            f"{[*known, HUMAN_SYSTEM]})")
        made = pd.read_parquet(path)
        frames.append(made[made.image_id.isin(test)][["image_id", "caption"]].assign(system=name))
    captions = pd.concat(frames, ignore_index=True).drop_duplicates(["image_id", "system"])
    complete = captions.groupby("image_id").system.nunique()
    keep = complete.index[complete == len(set(systems))]
    captions = captions[captions.image_id.isin(keep)].astype({"caption": str})
    references = human[~held & human.image_id.isin(keep)].groupby("image_id").caption.agg(
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


def half_width_for_mdd(mdd: float) -> float:
    """The 95% half-width at which a win-rate difference of `mdd` from 0.5 is detected with
    80% power (two-sided, 5% level): mdd * 1.96 / (1.96 + 0.84).

    >>> tasks_needed(half_width_for_mdd(0.1), 1, icc=0.0)  # ((1.96 + 0.84) * 0.5 / 0.1)^2
    197
    """
    if not 0 < mdd < 0.5:
        raise UserError(f"need 0 < mdd < 0.5 (a difference in win rate from 0.5), got {mdd}")
    return mdd * Z / (Z + Z_POWER)


def half_width(tasks: int, raters: int, icc: float = ICC) -> float:
    """The 95% half-width on a win rate near 0.5 that `tasks` tasks of `raters` judgments give."""
    return Z * 0.5 * math.sqrt((1 + (raters - 1) * icc) / (tasks * raters)) if tasks else math.inf


def draw_tasks(captions: pd.DataFrame, systems: list[str], per_pair: int, seed: int = 0
               ) -> pd.DataFrame:
    """For each pair of systems, `per_pair` images (all when fewer) drawn without
    replacement, each a task whose left/right order is drawn by a fair coin (recorded).

    Returns
    -------
    pd.DataFrame
        task, image_id, left, right, left_caption, right_caption.
    """
    rng = np.random.default_rng(seed)
    said = captions.set_index(["image_id", "system"]).caption
    images = np.array(sorted(captions.image_id.unique()), dtype=object)
    rows = []
    for a, b in itertools.combinations(systems, 2):
        chosen = rng.permutation(images)[:per_pair]
        flip = rng.random(len(chosen)) < 0.5
        for image_id, swap in zip(chosen, flip, strict=True):
            left, right = (b, a) if swap else (a, b)
            rows.append({"image_id": image_id, "left": left, "right": right,
                         "left_caption": said[image_id, left],
                         "right_caption": said[image_id, right]})
    tasks = pd.DataFrame(rows)
    tasks.insert(0, "task", [f"t{k:05d}" for k in range(len(tasks))])
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
