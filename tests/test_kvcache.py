"""The K/V budget parser, the cohort buffers and their layout."""

from __future__ import annotations

import pytest
import torch

from codit.decoding.cohorts import MAX_COHORTS, Layout
from codit.decoding.kvcache import CohortCache, parse_memory
from codit.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "want"),
    [("0.5", 0.5), ("1", 1.0), (0.25, 0.25), ("4GB", 4 * 10**9), ("512MiB", 512 * 2**20),
     ("1.5 GiB", int(1.5 * 2**30)), ("2048", 2048), (None, None)],
)  # fmt: skip
def test_parse_memory(text, want):
    assert parse_memory(text) == want


@pytest.mark.parametrize("text", ["0", "1.5", "-1GB", "4 parsecs", 2.0, "GB"])
def test_parse_memory_rejects_with_the_flag_name(text):
    with pytest.raises(ConfigError, match="--kv-cache-memory"):
        parse_memory(text)


class FakeRow:
    def __init__(self, n, max_new_tokens=10_000):
        self.prompt, self.length, self.cohort = [0] * n, n, None
        self.max_new_tokens = max_new_tokens


def fill(cache, cohort, like):
    """Row i of every position holds i + 1 (so a moved row is recognisable)."""
    keys, values = cache.buffers(cohort, 0, like)
    for i in range(keys.shape[0]):
        keys[i], values[i] = i + 1.0, -(i + 1.0)
    return keys


def test_cohort_cache_resizes_keeps_content_and_reorders_rows():
    cache = CohortCache()
    like = torch.zeros(1, 2, 1, 4)
    cache.resize(7, rows=3, capacity=10)
    fill(cache, 7, like)
    assert cache.allocated_bytes() == 2 * 3 * 2 * 10 * 4 * 4
    cache.resize(7, rows=2, capacity=16, keep=[2, 0])  # row 1 left; row 2 moves to 0
    keys, values = cache.buffers(7, 0, like)
    assert keys.shape == (2, 2, 16, 4)
    assert (keys[0, :, :10] == 3.0).all() and (keys[1, :, :10] == 1.0).all()
    assert (values[0, :, :10] == -3.0).all()
    assert keys[:, :, 10:].abs().sum() == 0  # new positions are zeros: masked reads are finite
    cache.resize(7, rows=3, capacity=16)  # a row joins at the end
    keys, _ = cache.buffers(7, 0, like)
    assert (keys[1, :, :10] == 1.0).all() and keys[2].abs().sum() == 0
    cache.move(7, 0, 2, 4)
    assert (keys[2, :, :4] == 3.0).all() and keys[2, :, 4:].abs().sum() == 0
    cache.drop(7)
    assert cache.allocated_bytes() == 0 and not cache.shapes


def test_layout_groups_rows_by_length_grows_and_frees_cohorts():
    cache = CohortCache()
    layout = Layout([cache], slots=8, slot_tokens=1000)
    short = [FakeRow(20), FakeRow(22), FakeRow(21)]
    long = FakeRow(300)
    layout.place(short + [long])
    assert len(layout.cohorts) == 2  # 20..22 together (within 4), 300 alone
    a, b = layout.cohorts
    assert a.rows == sorted(short, key=lambda r: r.length) and b.rows == [long]
    assert (a.capacity, b.capacity) == (20 + 16, 300 + 300 // 8)  # the opener's + headroom
    assert layout.order() == a.rows + b.rows
    assert layout.segments() == [(a.id, 0, 3, 22, 20), (b.id, 3, 1, 300, 300)]
    assert layout.allocated_tokens() == 3 * 36 + 337
    like = torch.zeros(1, 1, 1, 2)
    fill(cache, a.id, like)
    for _ in range(14):  # the longest short row (22) fills its 36 positions in 14 steps
        layout.reserve_step()
        for r in short + [long]:
            r.length += 1
    assert layout.growths == 0 and a.capacity == 36
    layout.reserve_step()  # 36 + 1 positions needed: grown by 16
    assert layout.growths == 1 and a.capacity == 37 + 16
    keys, _ = cache.buffers(a.id, 0, like)
    assert keys.shape[2] == 53 and (keys[2, :, :36] == 3.0).all()
    layout.remove([a.rows[0]])  # the first row leaves: the others move up, one copy
    keys, _ = cache.buffers(a.id, 0, like)
    assert keys.shape[0] == 2 and (keys[0, :, :36] == 2.0).all() and (keys[1, :, :36] == 3.0).all()
    peak = layout.peak_tokens
    layout.remove([long])
    assert len(layout.cohorts) == 1 and b.id not in cache.shapes
    assert layout.peak_tokens == peak >= layout.allocated_tokens() == 2 * 53


def test_fixed_layout_moves_the_last_rows_into_holes():
    cache = CohortCache()
    layout = Layout([cache], slots=4, slot_tokens=64, fixed=True)
    rows = [FakeRow(n) for n in (5, 40, 9, 12)]
    layout.place(rows)
    [cohort] = layout.cohorts
    assert cache.shapes[cohort.id] == (4, 64) and layout.allocated_tokens() == 256
    like = torch.zeros(1, 1, 1, 2)
    fill(cache, cohort.id, like)
    first, last = cohort.rows[0], cohort.rows[3]
    layout.remove([first])
    keys, _ = cache.buffers(cohort.id, 0, like)
    assert cohort.rows[0] is last and len(cohort.rows) == 3
    assert (keys[0, :, : last.length] == 4.0).all()  # the last row's K/V moved to row 0
    assert cache.shapes[cohort.id] == (4, 64)  # never resized


def test_layout_never_opens_more_than_max_cohorts():
    layout = Layout([CohortCache()], slots=64, slot_tokens=10_000)
    layout.place([FakeRow(10 * 2**i) for i in range(MAX_COHORTS + 3)])
    assert len(layout.cohorts) == MAX_COHORTS
    assert sum(len(c.rows) for c in layout.cohorts) == MAX_COHORTS + 3


def test_at_the_cap_the_two_closest_cohorts_merge_with_their_content():
    """A row far from every cohort, at the cap: the pair whose union wastes least merges
    (here 7000 and 7500: 562 positions) instead of the row joining the closest (1115)."""
    cache = CohortCache()
    layout = Layout([cache], slots=64, slot_tokens=10_000)
    rows = [FakeRow(1000 * (i + 1)) for i in range(MAX_COHORTS - 1)] + [FakeRow(7500)]
    layout.place(rows)
    assert len(layout.cohorts) == MAX_COHORTS
    like = torch.zeros(1, 1, 1, 2)
    for c in layout.cohorts:
        keys, values = cache.buffers(c.id, 0, like)
        keys.fill_(c.rows[0].length)
        values.fill_(-c.rows[0].length)
    short = FakeRow(10)
    layout.place([short])
    assert len(layout.cohorts) == MAX_COHORTS and layout.merges == 1
    merged = rows[-1].cohort
    assert merged is rows[-2].cohort and merged.rows == [rows[-1], rows[-2]]
    assert short.cohort.rows == [short]
    keys, values = cache.buffers(merged.id, 0, like)
    assert keys.shape[0] == 2 and keys.shape[2] == merged.capacity == 7500 + 7500 // 8
    assert (keys[0] == 7500).all() and (values[0] == -7500).all()
    assert (keys[1, :, : 7000 + 7000 // 8] == 7000).all()
    assert keys[1, :, 7000 + 7000 // 8 :].abs().sum() == 0
    assert layout.order() == [r for c in layout.cohorts for r in c.rows]


def test_a_cohort_never_grows_past_what_its_rows_can_reach():
    """Rows of 20 prompt tokens that may draw 30 more: the cohort opens at 36 positions and
    its next growth stops at 50 (not 37 + 16), the most a row can hold."""
    cache = CohortCache()
    layout = Layout([cache], slots=4, slot_tokens=1000)
    rows = [FakeRow(20, max_new_tokens=30), FakeRow(20, max_new_tokens=30)]
    layout.place(rows)
    [cohort] = layout.cohorts
    assert cohort.capacity == 36
    for _ in range(16):  # rows of 20 fill 36 positions in 16 steps
        layout.reserve_step()
        for r in rows:
            r.length += 1
    assert layout.growths == 0
    layout.reserve_step()
    assert layout.growths == 1 and cohort.capacity == 50
    reach_small = FakeRow(8, max_new_tokens=4)  # opens its own cohort: capped at 12
    layout.place([reach_small])
    assert reach_small.cohort.capacity == 12
