"""Where each row's K/V lives: length cohorts, their capacity, and when they are copied.

Every running row grows by one K/V position per step, so rows that start with about the same
length keep about the same length for life. ``Layout`` puts a freshly admitted row into the
cohort whose longest row is closest to its prompt length (within ``tolerance``), or opens a new
cohort; a cohort's buffers hold exactly its rows, each with ``capacity`` positions, and grow by
about 1/8 (at least 16 positions, never past the most its rows can reach: prompt plus
``max_new_tokens``) when its longest row fills them. So allocated K/V stays near what rows hold
(at most 1/8 of headroom plus the spread inside a cohort), each growth copies the cohort once
(amortised ~8 positions copied per position written), and attention runs one SDPA per cohort
per layer over a strided view of its buffer. (Growth by 1/16 held 1.14x on the benchmark's
long tail but copied about twice as much: contrastive kept 0.747x of its 64-token speed at 1024
new tokens, 0.777x with 1/8 and the reach cap, side by side; 1/8 holds 1.165x.)

The batch is the concatenation of the cohorts' rows (``order``): a cohort's rows are
contiguous, so a step slices them out of the batch without a gather. A row that leaves is replaced by
its cohort's last row (one row copied), leaving an empty row at the end of the buffers that the
next row to join reuses; once 1/``HOLES`` of a cohort's rows are empty its buffers shrink (one
copy of the cohort), and an empty cohort is freed. At ``MAX_COHORTS`` a row far from every
cohort makes the two cohorts closest in capacity merge, when that wastes fewer positions than
the row joining the closest cohort.

``fixed=True`` (CUDA, where captured graphs need buffers at fixed addresses) keeps one cohort of
``slots`` rows x ``slot_tokens`` positions allocated once: the per-slot layout.

This module decides and bookkeeps; ``kvcache.CohortCache`` stores; nothing here runs a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codit.decoding.kvcache import CohortCache

GROW_MIN = 16  # positions a cohort grows by at least
GROW_SHARE = 8  # ... or 1/8 of its capacity (never past what its rows can reach)
HOLES = 8  # a cohort's buffers keep up to 1/HOLES of their rows empty before they shrink
MAX_COHORTS = 8  # more means more SDPA calls per layer; past it rows join the closest cohort
# or, when that wastes less, the two cohorts closest in capacity merge to make room


@dataclass(eq=False)
class Cohort:
    """Rows decoded from one K/V buffer per layer; ``rows`` in buffer (and batch) order."""

    id: int
    capacity: int
    rows: list[Any] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Positions its longest row holds (see ``held``)."""
        return max((held(r) for r in self.rows), default=0)

    @property
    def reach(self) -> int:
        """Most positions any of its rows can ever hold (see ``reach``)."""
        return max((reach(r) for r in self.rows), default=0)


def held(row: Any) -> int:
    """Positions a row holds; a row placed but not yet prefilled counts its prompt, so rows
    admitted together with equal prompts share one cohort."""
    return max(row.length, len(row.prompt))


def reach(row: Any) -> int:
    """Most positions a row can hold: its prompt and every token it may still draw."""
    return len(row.prompt) + row.max_new_tokens


class Layout:
    """The cohorts of every model's ``CohortCache`` (the same layout for all of them).

    Args:
        caches: one ``CohortCache`` per model.
        slots: most rows at once (the batch size).
        slot_tokens: most positions one row may hold.
        fixed: one cohort of ``slots`` x ``slot_tokens``, allocated once and never resized.
        tolerance: a row joins a cohort whose longest row is within ``max(4, tolerance * n)``
            positions of its prompt length ``n``.
    """

    def __init__(
        self,
        caches: list[CohortCache],
        slots: int,
        slot_tokens: int,
        fixed: bool = False,
        tolerance: float = 1 / 16,
    ):
        self.caches = caches
        self.slots = slots
        self.slot_tokens = slot_tokens
        self.fixed = fixed
        self.tolerance = tolerance
        self.cohorts: list[Cohort] = []
        self._next_id = 0
        self.growths = 0  # resizes for capacity, for tests and the benchmark
        self.merges = 0  # cohorts merged to stay within MAX_COHORTS
        self.peak_tokens = 0  # most positions allocated at once
        if fixed:
            self._open(slot_tokens, slots)

    # ---- queries -------------------------------------------------------------------------
    def order(self) -> list[Any]:
        """Every row, cohort after cohort: batch row ``i`` is ``order()[i]``."""
        return [r for c in self.cohorts for r in c.rows]

    def segments(self) -> list[tuple[int, int, int, int, int]]:
        """(cohort id, first batch row, rows, longest length, shortest length) per non-empty
        cohort."""
        out, start = [], 0
        for c in self.cohorts:
            if c.rows:
                lengths = [held(r) for r in c.rows]
                out.append((c.id, start, len(c.rows), max(lengths), min(lengths)))
                start += len(c.rows)
        return out

    def allocated_tokens(self) -> int:
        """Positions the buffers hold (rows x capacity over cohorts, empty rows included)."""
        return sum(rows * cap for rows, cap in self.caches[0].shapes.values())

    # ---- changes ---------------------------------------------------------------------------
    def place(self, rows: list[Any]) -> None:
        """Put admitted rows (about to hold their prompts) into cohorts; each touched cohort
        is resized once."""
        touched: dict[int, Cohort] = {}
        for row in sorted(rows, key=lambda r: len(r.prompt)):
            need = len(row.prompt)
            cohort = self.cohorts[0] if self.fixed else self._closest(need, reach(row))
            if cohort is None:
                if len(self.cohorts) >= MAX_COHORTS:
                    kept, gone = self._merge_cheapest()
                    if gone.id in touched:
                        del touched[gone.id]
                        touched[kept.id] = kept
                cohort = self._open(self._headroom(need, reach(row)), 0)
            cohort.rows.append(row)
            row.cohort = cohort
            if need > cohort.capacity:
                cohort.capacity = self._headroom(need, cohort.reach)
            touched[cohort.id] = cohort
        if not self.fixed:
            for cohort in touched.values():
                self._resize(cohort, cohort.capacity)

    def remove(self, rows: list[Any]) -> None:
        """Take finished rows out (their cohorts' buffers copied once each, or freed)."""
        touched: dict[int, Cohort] = {}
        for row in rows:
            touched[row.cohort.id] = row.cohort
        gone = {id(r) for r in rows}
        for cohort in touched.values():
            keep = [i for i, r in enumerate(cohort.rows) if id(r) not in gone]
            if self.fixed:  # the last rows move into the holes: one row copy each
                self._fill_holes(cohort, keep)
                continue
            if not keep:
                cohort.rows = []
                self.cohorts.remove(cohort)
                for c in self.caches:
                    c.drop(cohort.id)
            elif len(keep) * HOLES >= (HOLES - 1) * self.caches[0].shapes[cohort.id][0]:
                self._fill_holes(cohort, keep)  # few holes: the last rows move in, no resize
            else:
                cohort.rows = [cohort.rows[i] for i in keep]
                self._resize(cohort, cohort.capacity, keep)
        for row in rows:
            row.cohort = None

    def reserve_step(self) -> None:
        """Make room for one more position in every cohort whose longest row is at capacity."""
        for cohort in self.cohorts:
            need = cohort.length + 1
            if need > cohort.capacity and not self.fixed:
                self._resize(cohort, self._headroom(need, cohort.reach))
                self.growths += 1

    # ---- internals -------------------------------------------------------------------------
    def _headroom(self, need: int, most: int) -> int:
        """Capacity for ``need`` positions: a share more, never past ``most``, what the
        cohort's rows can reach (so rows near their cap make it grow once more, exactly)."""
        more = need + max(GROW_MIN, need // GROW_SHARE)
        return max(need, min(self.slot_tokens, most, more))

    def _closest(self, need: int, most: int) -> Cohort | None:
        """The cohort a row of ``need`` positions (``most`` at its end) joins; None: open a
        new one (at the cap, after merging the two cohorts whose union wastes least, when
        that wastes less than joining the closest)."""
        if not self.cohorts:
            return None
        best = min(self.cohorts, key=lambda c: abs(c.length - need))
        if abs(best.length - need) <= max(4, int(self.tolerance * need)):
            return best
        if len(self.cohorts) < MAX_COHORTS:
            return None
        if need <= best.capacity:
            join = best.capacity - need  # the row's positions it will not use
        else:
            grown = self._headroom(need, max(best.reach, most))
            join = len(best.rows) * (grown - best.capacity) + grown - need
        return best if join <= self._cheapest_pair()[2] else None

    def _cheapest_pair(self) -> tuple[Cohort, Cohort, int]:
        """(longer, shorter, positions wasted) of the two cohorts whose merge wastes least:
        the shorter one's rows take the longer one's capacity."""
        by_length = sorted(self.cohorts, key=lambda c: c.capacity)
        pairs = [
            (hi, lo, len(lo.rows) * (hi.capacity - lo.capacity))
            for lo, hi in zip(by_length, by_length[1:], strict=False)
        ]
        return min(pairs, key=lambda p: p[2])

    def _merge_cheapest(self) -> tuple[Cohort, Cohort]:
        """Merge the cheapest pair into the longer cohort (one copy of both); (kept, gone)."""
        kept, gone, _ = self._cheapest_pair()
        for c in self.caches:
            c.merge(kept.id, gone.id, len(kept.rows), len(gone.rows), kept.capacity)
        kept.rows += gone.rows
        for row in gone.rows:
            row.cohort = kept
        self.cohorts.remove(gone)
        self.merges += 1
        self.peak_tokens = max(self.peak_tokens, self.allocated_tokens())
        return kept, gone

    def _open(self, capacity: int, rows: int) -> Cohort:
        cohort = Cohort(self._next_id, capacity)
        self._next_id += 1
        self.cohorts.append(cohort)
        for c in self.caches:
            c.resize(cohort.id, rows, capacity)
        self.peak_tokens = max(self.peak_tokens, self.allocated_tokens())
        return cohort

    def _resize(self, cohort: Cohort, capacity: int, keep: list[int] | None = None) -> None:
        cohort.capacity = capacity
        for c in self.caches:
            c.resize(cohort.id, len(cohort.rows), capacity, keep)
        self.peak_tokens = max(self.peak_tokens, self.allocated_tokens())

    def _fill_holes(self, cohort: Cohort, keep: list[int]) -> None:
        rows = cohort.rows
        n = len(keep)
        kept = set(keep)
        holes = [i for i in range(n) if i not in kept]
        movers = [i for i in keep if i >= n]
        for dst, src in zip(holes, movers, strict=True):
            for c in self.caches:
                c.move(cohort.id, src, dst, rows[src].length)
            rows[dst] = rows[src]
        del rows[n:]
