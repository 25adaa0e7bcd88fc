"""What an import read, kept, changed and rejected, with reasons and locations: nothing is lost or
altered silently. One class for every exchange format (Label Studio, COCO, YOLO)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from annotate.formats.jsonio import ExportError
from annotate.tables.schema import HUMAN, TableSet, is_model_source

#: Region overshoot beyond the image border that is clipped (float round-off, sloppy models);
#: anything larger is rejected. Fraction of the image side.
CLIP_TOLERANCE = 0.01
#: Locations kept per reason (the count is always complete).
EXAMPLES = 3


@dataclass
class ImportSummary:
    """Counts of an import. `rejected`: items dropped, by reason; `nulled`: values that were
    unusable and set to null while their item was kept; both keep a few locations."""

    source: str
    shape: str = ""
    tasks_read: int = 0
    tasks_kept: int = 0
    annotations_read: int = 0
    annotations_kept: int = 0
    skipped: int = 0
    boxes: int = 0
    captions: int = 0
    crowd_regions: int = 0
    predictions: int = 0
    prediction_boxes: int = 0
    predictions_as_ids: int = 0
    clipped_boxes: int = 0
    images_missing: int = 0
    images_outside_root: int = 0
    images_inline: int = 0
    annotators_from_updated_by: int = 0
    annotator_ids: dict[str, str] = field(default_factory=dict)
    ignored_results: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)
    nulled: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    labels: list[str] = field(default_factory=list)

    def reject(self, reason: str, where: str | list[str], n: int = 1) -> None:
        """Count `n` items dropped for `reason`; keep a few locations as examples."""
        self._count(self.rejected, reason, where, n)

    def null(self, reason: str, where: str | list[str], n: int = 1) -> None:
        """Count `n` values set to null for `reason` (their items are kept)."""
        self._count(self.nulled, reason, where, n)

    def absorb(self, other: ImportSummary) -> None:
        """Add `other`'s counts, notes and examples to ours (`other` read the items after ours:
        its examples come after ours, as one reader would have kept them)."""
        for name, value in vars(other).items():
            if isinstance(value, bool) or name in ("source", "shape", "labels"):
                continue
            if isinstance(value, int):
                setattr(self, name, getattr(self, name) + value)
            elif isinstance(value, Counter):
                getattr(self, name).update(value)
        self.annotator_ids.update(other.annotator_ids)
        self.notes.extend(note for note in other.notes if note not in self.notes)
        for reason, wheres in other.examples.items():
            kept = self.examples[reason]
            kept.extend(wheres[: max(0, EXAMPLES - len(kept))])

    def _count(self, counter: Counter, reason: str, where: str | list[str], n: int) -> None:
        if n <= 0:
            return
        counter[reason] += n
        wheres = [where] if isinstance(where, str) else list(where)
        self.examples[reason].extend(wheres[: EXAMPLES - len(self.examples[reason])])

    def reject_where(self, reasons: list[tuple[np.ndarray, str]], wheres: pd.Series | None = None,
                     locate=None) -> np.ndarray:
        """Apply (mask, reason) pairs in order (an item counts under its first reason only);
        return the mask of items that pass every check. Locations come from `wheres`, or from
        `locate(positions)` for the few examples only (cheap on millions of rows)."""
        n = len(wheres) if wheres is not None else len(reasons[0][0]) if reasons else 0
        rejected = np.zeros(n, dtype=bool)
        for mask, reason in reasons:
            mask = np.asarray(mask, dtype=bool) & ~rejected
            if mask.any():
                at = np.flatnonzero(mask)[:EXAMPLES]
                self.reject(reason, list(wheres.iloc[at]) if wheres is not None else locate(at),
                            int(mask.sum()))
            rejected |= mask
        return ~rejected

    def count_kept(self, ts: TableSet) -> None:
        """Fill the kept figures from the table set the import produced."""
        self.tasks_kept = len(ts.images)
        self.annotations_kept = len(ts.annotations)
        self.boxes = int((ts.boxes.source == HUMAN).sum())
        self.prediction_boxes = int(is_model_source(ts.boxes.source).sum())
        self.captions = int((ts.captions.source == HUMAN).sum())
        self.labels = list(ts.labels)

    def require_something_kept(self) -> None:
        """An import that keeps no image is an error, not an empty set."""
        if self.tasks_kept == 0:
            reasons = "; ".join(f"{n} {r}" for r, n in self.rejected.most_common(3))
            raise ExportError(f"{self.source}: nothing imported: {self.tasks_read} "
                              f"tasks/images read, none kept" + (f" ({reasons})" if reasons
                                                                 else ""))

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "examples"}
        out["ignored_results"] = dict(self.ignored_results)
        for name in ("rejected", "nulled"):
            out[name] = {r: {"count": n, "examples": self.examples[r]}
                         for r, n in getattr(self, name).items()}
        return out

    def __str__(self) -> str:
        lines = [
            f"{self.source} ({self.shape})",
            f"  tasks:       {self.tasks_read} read, {self.tasks_kept} kept",
            f"  annotations: {self.annotations_read} read, {self.annotations_kept} kept, "
            f"{self.skipped} skipped (was_cancelled)",
            f"  boxes:       {self.boxes} human, {self.prediction_boxes} predicted "
            f"(from {self.predictions} predictions)"
            + (f", {self.crowd_regions} crowd regions" if self.crowd_regions else ""),
            f"  captions:    {self.captions}",
            f"  labels:      {', '.join(self.labels) or '-'}",
        ]
        if self.annotator_ids:
            shown = ", ".join(f"{k} -> {v}" for k, v in list(self.annotator_ids.items())[:5])
            extra = len(self.annotator_ids) - 5
            more = f" and {extra} more" if extra > 0 else ""
            lines.append(f"  annotators:  user ids named by the email seen for them elsewhere in "
                         f"the file: {shown}{more}")
        if self.predictions_as_ids:
            lines.append(f"  note: {self.predictions_as_ids} predictions were given as ids only; "
                         "export a snapshot with predictions expanded (or use `annotate pull`) "
                         "to import them")
        if self.images_missing:
            lines.append(f"  note: {self.images_missing} images not found locally (references "
                         "kept; sizes from original_width/height)")
        if self.images_outside_root:
            lines.append(f"  note: {self.images_outside_root} image references point outside "
                         "the images root; not opened (references kept; --allow-outside-root "
                         "to read them)")
        if self.annotators_from_updated_by:
            lines.append(f"  note: {self.annotators_from_updated_by} annotations had no "
                         "completed_by; their annotator is the user in updated_by (who last "
                         "saved them)")
        if self.images_inline:
            lines.append(f"  note: {self.images_inline} images were inline data: URLs (decoded)")
        if self.clipped_boxes:
            lines.append(f"  note: {self.clipped_boxes} boxes overshot the image by less than "
                         f"{CLIP_TOLERANCE:.0%} and were clipped to it")
        lines.extend(f"  note: {note}" for note in self.notes)
        for kind, n in sorted(self.ignored_results.items()):
            lines.append(f"  ignored: {n} results of type {kind!r} (not boxes or text)")
        for name, counter in (("nulled", self.nulled), ("rejected", self.rejected)):
            total = sum(counter.values())
            if name == "rejected" or total:
                lines.append(f"  {name + ':':<12} {total}" + ("" if total else " (none)"))
            for reason, n in counter.most_common():
                lines.append(f"    {n:>6}  {reason}  e.g. {'; '.join(self.examples[reason])}")
        return "\n".join(lines)
