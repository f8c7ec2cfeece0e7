"""K/V buffers written in place, grouped in length cohorts, and the memory budget.

Each model gets one ``CohortCache``. A cohort is a group of rows of about the same length; for
every layer it owns a keys and a values tensor of shape (rows, kv_heads, capacity, head_dim),
allocated (zeroed) on first use from the shapes the layer actually produces. A row keeps its
place in its cohort for life: its prompt is prefilled there, every decoding step writes one
position, and attention reads the cohort's first positions as a strided view (no gather).
Which rows go together and when a cohort grows is decided by ``cohorts.Layout``; this module
only stores, and ``resize`` is its one operation that copies (a cohort that grows, gains or
loses rows: never per step).

Why cohorts and not one (slots, H, T, d) buffer or a paged pool: rows admitted together with
prompts of similar length keep similar lengths for life (every row grows by one position per
step), so a cohort's capacity stays close to what each of its rows holds, while a single
per-slot buffer reserves the longest row's length for every slot (3.1x the bytes held on the
long-tail workload). A paged pool holds no more than the rows' pages, but every step must
gather each row's pages before SDPA: measured on this machine's CPU (one thread, fp32, 8 KV
heads of 64, page 16), that made attention 2.2-2.5x slower at batch 8 and 3.3-8.7x slower at
batch 32 (T = 128 / 1024). See ``benchmarks/decode_throughput.py`` for allocated vs held.
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


class CohortCache:
    """One model's K/V: per cohort and layer, (rows, kv_heads, capacity, head_dim) keys and values.

    Attributes:
        shapes: cohort id -> (rows, capacity) that its buffers have (or will have when a layer
            first runs).
    """

    def __init__(self) -> None:
        self.shapes: dict[int, tuple[int, int]] = {}
        self.layers: dict[int, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}

    def buffers(
        self, cohort: int, layer: int, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's (keys, values) for ``cohort``, allocated on first use like ``like``."""
        store = self.layers.setdefault(cohort, {})
        pair = store.get(layer)
        if pair is None:
            rows, capacity = self.shapes[cohort]
            shape = (rows, like.shape[1], capacity, like.shape[3])
            # zeros: positions a mask hides must still be finite (0 * NaN would poison SDPA)
            pair = store[layer] = (like.new_zeros(shape), like.new_zeros(shape))
        return pair

    def resize(self, cohort: int, rows: int, capacity: int, keep: list[int] | None = None) -> None:
        """Give ``cohort`` ``rows`` x ``capacity`` positions; old row ``keep[i]`` becomes row
        ``i`` (None: rows keep their places), its positions copied up to the new capacity."""
        old = self.shapes.get(cohort)
        self.shapes[cohort] = (rows, capacity)
        if old is None or old == (rows, capacity) and keep is None:
            return
        store = self.layers.get(cohort, {})
        for layer, pair in store.items():
            grown = []
            for buf in pair:
                new = buf.new_empty(rows, buf.shape[1], capacity, buf.shape[3])
                span = min(capacity, buf.shape[2])
                if keep is None:
                    n = min(rows, buf.shape[0])
                    new[:n, :, :span] = buf[:n, :, :span]
                else:
                    n = len(keep)
                    if keep:
                        index = torch.tensor(keep, device=buf.device)
                        new[:n, :, :span] = buf[index, :, :span]
                # only what was not copied is zeroed (masked positions must be finite)
                new[:n, :, span:].zero_()
                new[n:].zero_()
                grown.append(new)
            store[layer] = (grown[0], grown[1])

    def merge(self, kept: int, gone: int, rows: int, more: int, capacity: int) -> None:
        """Append ``gone``'s ``more`` rows after ``kept``'s ``rows`` (``capacity`` >= both
        capacities); ``gone`` is dropped. Rows listed but not yet in a buffer (placed, not
        prefilled) sit at the end of each and are copied as zeros."""
        (k_rows, k_cap), (g_rows, g_cap) = self.shapes[kept], self.shapes[gone]
        self.shapes[kept] = (rows + more, capacity)
        store, other = self.layers.get(kept, {}), self.layers.pop(gone, {})
        for layer in set(store) | set(other):
            merged = []
            for j in (0, 1):
                like = (store.get(layer) or other[layer])[j]
                new = like.new_zeros(rows + more, like.shape[1], capacity, like.shape[3])
                # buffers may hold empty rows past their live ones (holes not yet shrunk)
                if layer in store:
                    n = min(k_rows, rows)
                    new[:n, :, :k_cap] = store[layer][j][:n]
                if layer in other:
                    n = min(g_rows, more)
                    new[rows : rows + n, :, :g_cap] = other[layer][j][:n]
                merged.append(new)
            store[layer] = (merged[0], merged[1])
        self.layers[kept] = store
        self.shapes.pop(gone)

    def move(self, cohort: int, src: int, dst: int, length: int) -> None:
        """Copy row ``src``'s first ``length`` positions into row ``dst`` of ``cohort``."""
        for pair in self.layers.get(cohort, {}).values():
            for buf in pair:
                buf[dst, :, :length] = buf[src, :, :length]

    def drop(self, cohort: int) -> None:
        self.shapes.pop(cohort, None)
        self.layers.pop(cohort, None)

    def allocated_bytes(self) -> int:
        """Bytes of the buffers that exist (layers not yet run count nothing)."""
        return sum(
            2 * k.numel() * k.element_size()
            for store in self.layers.values()
            for k, _ in store.values()
        )
