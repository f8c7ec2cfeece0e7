"""Per-slot K/V buffers written in place, and the memory budget that sizes them.

Each model gets one ``SlotCache``: for every layer a keys and a values tensor of shape
(slots, kv_heads, capacity, head_dim), allocated on first use from the shapes the layer
actually produces. A row owns one slot for its whole life: its prompt is prefilled into the
slot, every decoding step writes one position, and when it finishes the slot is simply handed
to the next prompt (stale positions are never read: the masks stop at each row's length).
Nothing is concatenated, re-padded or copied per step.

``capacity`` (positions allocated per slot) grows geometrically up to ``slot_tokens`` when a
row needs more (one copy per doubling, so amortised O(1) per token); with ``grow=False`` (CUDA,
where captured graphs need fixed addresses) it starts at ``slot_tokens``.

Why per-slot and not paged: attention over a slice of a per-slot buffer is a strided view,
while a paged pool must gather each row's pages before SDPA. Measured on this machine's CPU
(one thread, fp32, 8 KV heads of 64, page 16), the gather made attention 2.2-2.5x slower at
batch 8 and 3.3-8.7x slower at batch 32 (T = 128 / 1024). The cost is memory: a slot holds up
to ``slot_tokens`` positions whatever its row uses (see ``kv_stats``).
"""

from __future__ import annotations

import re
from typing import Any

import torch

from codit.errors import ConfigError

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(value: str | float | None) -> int | float | None:
    """``"4GB"`` / ``"512MiB"`` -> bytes (int); ``0.5`` or ``"0.5"`` -> a fraction (float).

    Raises:
        ConfigError: when the value is neither a size nor a fraction in (0, 1].
    """
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0.0 < float(value) <= 1.0:
            return float(value)
        raise ConfigError(f"--kv-cache-memory as a number must be in (0, 1], got {value}")
    text = str(value).strip().lower().replace(" ", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", text)
    if match and match.group(2) in _UNITS:
        number = float(match.group(1))
        if match.group(2) == "" and 0.0 < number <= 1.0:
            return number  # a bare number up to 1 is a fraction ("1": all free memory)
        if number > 0 and not (match.group(2) == "" and "." in match.group(1)):
            return int(number * _UNITS[match.group(2)])
    raise ConfigError(
        f"--kv-cache-memory must be a size like 4GB or 512MiB, or a fraction of free device "
        f"memory in (0, 1], got {value!r}"
    )


def text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def bytes_per_token(model: Any) -> int:
    """K/V bytes one token takes in ``model`` (all layers, keys and values)."""
    config = text_config(model)
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    dtype = next(model.parameters()).dtype
    item = torch.empty((), dtype=dtype).element_size()
    return int(config.num_hidden_layers * 2 * kv_heads * head_dim * item)


def free_bytes(device: torch.device) -> int:
    """Free memory on ``device`` (CUDA: the driver's count plus what torch holds unused)."""
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(torch.cuda.mem_get_info(device)[0]) + cached
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


class SlotCache:
    """One model's K/V: per layer (slots, kv_heads, capacity, head_dim) keys and values.

    Args:
        slots: rows that can be held at once.
        slot_tokens: most positions a slot can hold.
        grow: start small and grow ``capacity`` on demand (else allocate ``slot_tokens``).
    """

    def __init__(self, slots: int, slot_tokens: int, grow: bool = True):
        self.slots = slots
        self.slot_tokens = slot_tokens
        self.capacity = min(slot_tokens, 256) if grow else slot_tokens
        self.keys: dict[int, torch.Tensor] = {}
        self.values: dict[int, torch.Tensor] = {}
        # Positions below ``zeroed`` hold zeros or real K/V in every slot, so a masked read
        # there is finite (0 * NaN would poison the attention output); zeroed on demand.
        self.zeroed = 0

    def buffers(self, layer: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's (keys, values) buffers, allocated on first use like ``like`` (B, H, T, d)."""
        keys = self.keys.get(layer)
        if keys is None:
            shape = (self.slots, like.shape[1], self.capacity, like.shape[3])
            keys = self.keys[layer] = like.new_empty(shape)
            values = self.values[layer] = like.new_empty(shape)
            keys[:, :, : self.zeroed].zero_()
            values[:, :, : self.zeroed].zero_()
        return keys, self.values[layer]

    def readable(self, span: int) -> None:
        """Make positions ``0 .. span-1`` of every slot safe to read (masked) and allocated."""
        self.reserve(span)
        if span <= self.zeroed:
            return
        new = min(self.capacity, max(span, 2 * self.zeroed, 64))
        for store in (self.keys, self.values):
            for buf in store.values():
                buf[:, :, self.zeroed : new].zero_()
        self.zeroed = new

    def reserve(self, positions: int) -> None:
        """Make every slot hold at least ``positions`` (<= ``slot_tokens``) positions."""
        if positions <= self.capacity:
            return
        new = min(self.slot_tokens, max(positions, 2 * self.capacity))
        for store in (self.keys, self.values):
            for layer, old in store.items():
                grown = old.new_empty(old.shape[0], old.shape[1], new, old.shape[3])
                grown[:, :, : self.capacity] = old
                store[layer] = grown
        self.capacity = new

    def move(self, src: int, dst: int, length: int) -> None:
        """Copy slot ``src``'s first ``length`` positions into slot ``dst``."""
        for store in (self.keys, self.values):
            for buf in store.values():
                buf[dst, :, :length] = buf[src, :, :length]

    def allocated_bytes(self) -> int:
        return sum(k.numel() * k.element_size() for k in self.keys.values()) * 2
