"""The K/V budget parser and the per-slot buffers."""

from __future__ import annotations

import pytest
import torch

from codit.decoding.kvcache import SlotCache, parse_memory
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


def test_slot_cache_grows_keeps_content_and_moves_slots():
    cache = SlotCache(slots=3, slot_tokens=1000)
    like = torch.zeros(1, 2, 1, 4)
    cache.readable(10)
    keys, values = cache.buffers(0, like)
    assert keys.shape == (3, 2, 256, 4) and cache.zeroed == 64
    assert keys[:, :, :64].abs().sum() == 0  # masked reads there are finite
    keys[1, :, :10] = 7.0
    cache.readable(300)  # past the capacity: doubled, old positions copied
    keys, _ = cache.buffers(0, like)
    assert keys.shape[2] == 512 and cache.capacity == 512
    assert (keys[1, :, :10] == 7.0).all() and keys[:, :, 10:300].abs().sum() == 0
    cache.move(1, 0, 10)
    assert (keys[0, :, :10] == 7.0).all()
    assert cache.allocated_bytes() == 2 * 3 * 2 * 512 * 4 * 4
    cache.readable(5000)  # never past slot_tokens
    assert cache.capacity == 1000
