"""CUDA graphs of the decoding step: both models' forwards, the rule and the draw, replayed.

A decoding step without admissions has fixed shapes once its batch is padded to a width
bucket and its attention span to a length bucket, and every tensor it reads lives at a fixed
address (the engine's row state and its one K/V cohort of ``fixed_slots``, allocated once on
CUDA). So the step is captured once per (width, span, settings) key in a ``torch.cuda.CUDAGraph`` and
replayed: one launch instead of hundreds of kernels and their Python. Warm-up and capture run
the real step on the real state; that is harmless because the step is idempotent until its
outputs are consumed (it writes the same K/V at the same positions). A step that cannot be
captured (a model that syncs with the host inside its forward, say) runs eagerly from then on.
On CPU nothing here is used: the engine runs the same step function directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

import torch

log = logging.getLogger(__name__)


def width_bucket(width: int, slots: int) -> int:
    """Rows a captured step runs: powers of two to 8, then multiples of 8 (64: of 16)."""
    if width <= 8:
        bucket = 1 << max(0, width - 1).bit_length()
    elif width <= 64:
        bucket = -(-width // 8) * 8
    else:
        bucket = -(-width // 16) * 16
    return min(bucket, slots)


def span_bucket(span: int, limit: int, step: int = 256) -> int:
    """Positions a captured step reads: multiples of ``step``, at most ``limit``."""
    return min(-(-span // step) * step, limit)


class StepGraphs:
    """Captured decoding steps keyed by shape and settings; eager fallback per key."""

    def __init__(self) -> None:
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.eager: set[Hashable] = set()

    def run(self, key: Hashable, step: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The step's output (a tensor owned by the graph: read it before the next run)."""
        if key in self.eager:
            return step()
        entry = self.graphs.get(key)
        if entry is None:
            try:
                entry = self._capture(step)
            except Exception as err:  # capture is an optimisation; the eager step is exact
                log.warning(
                    "running this decoding step eagerly (CUDA graph capture failed: %s)", err
                )
                self.eager.add(key)
                return step()
            self.graphs[key] = entry
        graph, out = entry
        graph.replay()
        return out

    def _capture(
        self, step: Callable[[], torch.Tensor]
    ) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            step()  # warm-up: lazy initialisations happen outside the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = step()
        return graph, out
