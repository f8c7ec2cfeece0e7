"""Progress bars and the cost summary of the prompted commands (``codeclm``, ``ecd``).

The pipelines report progress as ``(stage, done, total)`` callbacks; ``StageBars`` shows one tqdm
bar per stage on stderr, opening a new bar when the stage changes.
"""

from __future__ import annotations

import sys
from typing import Any


class StageBars:
    """One progress bar per pipeline stage; call it as the pipeline's ``on_progress``."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self._stage: str | None = None
        self._bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(
                total=total,
                desc=stage,
                unit="item",
                disable=self.disable or None,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def bar(total: int, unit: str, no_progress: bool) -> Any:
    """A tqdm bar on stderr (hidden with ``--no-progress`` or when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(
        total=total, unit=unit, disable=no_progress or None, file=sys.stderr, dynamic_ncols=True
    )


def print_cost(report: dict[str, Any]) -> None:
    """One line per role: calls, cache hits, failures and tokens of this run."""
    for role, cost in report.get("cost", {}).items():
        extra = cost.get("backend", {})
        retries = f", {extra['retries']} retries" if extra.get("retries") else ""
        fallback = ", structured output refused" if extra.get("structured_fallbacks") else ""
        print(
            f"codit: {role} ({cost['model']}): {cost['calls']} calls, {cost['cache_hits']} from the cache, "
            f"{cost['failed']} failed{retries}{fallback}; {cost['prompt_tokens']} prompt + "
            f"{cost['completion_tokens']} completion tokens",
            file=sys.stderr,
        )


def run_with_bars(pipeline: Any, config: Any, output: Any, no_progress: bool) -> Any:
    """Run a prompted pipeline with stage bars; on a backend failure say how to resume, re-raise."""
    from codit.errors import BackendError
    from codit.pipelines.outputs import side

    bars = StageBars(disable=no_progress)
    try:
        return pipeline(config, on_progress=bars)
    except BackendError:
        print(
            f"codit: finished calls are cached and finished records kept; rerun the same command "
            f"to resume (report so far: {side(output, 'report', '.json')})",
            file=sys.stderr,
        )
        raise
    finally:
        bars.close()
