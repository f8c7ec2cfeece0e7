"""How often the tiny models follow the held-out verifiable instructions (IFEval's metrics).

Three settings answer the same held-out prompts: ``tiny-base`` alone (through the same chat
template, which it never saw in training), ``tiny-instruct`` decoding directly, and
``tiny-instruct`` with CoDIT against ``tiny-base``. Generation goes through
``codit.generation.texts.LocalGenerator``, the same engine as ``codit generate``; loading the
prompts and scoring (prompt- and instruction-level accuracy, strict and loose) are
``codit.evaluation.ifeval``'s, so the numbers mean exactly what ``codit eval ifeval`` reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codit.errors import ConfigError
from codit.io.atomic import write_lines
from codit.io.lock import locked
from codit.tiny.build import HELDOUT_PATH

# name -> (model, base model or None, mode); models are names under the models directory.
SETTINGS: dict[str, tuple[str, str | None, str]] = {
    "base": ("tiny-base", None, "direct"),
    "direct": ("tiny-instruct", None, "direct"),
    "codit": ("tiny-instruct", "tiny-base", "codit"),
}
LABELS = {"base": "tiny-base", "direct": "tiny-instruct, direct", "codit": "tiny-instruct, CoDIT"}


@dataclass(frozen=True)
class EvalConfig:
    """Settings of ``codit tiny eval``. Fields become flags."""

    models_dir: str | None = field(
        default=None,
        metadata={
            "help": "directory holding tiny-base/ and tiny-instruct/ (default: the shipped pair)"
        },
    )
    heldout: str | None = field(
        default=None,
        metadata={"help": "held-out prompts in IFEval jsonl (default: the shipped file)"},
    )
    settings: tuple[str, ...] = field(
        default=("base", "direct", "codit"),
        metadata={"help": "which of base, direct, codit to run"},
    )
    limit: int | None = field(default=None, metadata={"help": "use only the first N prompts"})
    max_new_tokens: int = field(default=256, metadata={"help": "most tokens per response"})
    temperature: float = field(default=0.0, metadata={"help": "0 is greedy"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    batch_size: int = field(default=16, metadata={"help": "prompts decoded at once"})
    output_dir: str | None = field(
        default=None,
        metadata={"help": "also write each setting's responses and verdicts here as jsonl"},
    )

    def __post_init__(self) -> None:
        problems = [
            f"--settings takes base, direct or codit, not {s!r}"
            for s in self.settings
            if s not in SETTINGS
        ]
        if self.limit is not None and self.limit < 1:
            problems.append(f"--limit must be >= 1, got {self.limit}")
        if self.max_new_tokens < 1:
            problems.append(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            problems.append(f"--temperature must be >= 0, got {self.temperature}")
        if self.batch_size < 1:
            problems.append(f"--batch-size must be >= 1, got {self.batch_size}")
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class Result:
    """One setting's answers and their IFEval metrics (``codit.evaluation.ifeval.summarize``)."""

    setting: str
    responses: list[str]
    metrics: dict[str, Any]


def evaluate(config: EvalConfig) -> tuple[list[Result], list[Any]]:
    """Answer the held-out prompts in each setting and score the answers.

    Returns:
        (one result per setting, the ``IFEvalPrompt`` list that was used).

    Raises:
        OutputLocked: another run is writing ``config.output_dir``.
    """
    if not config.output_dir:
        return _evaluate(config)
    with locked(Path(config.output_dir), "tiny eval"):  # two runs would mix their answers
        return _evaluate(config)


def _evaluate(config: EvalConfig) -> tuple[list[Result], list[Any]]:
    from codit.evaluation.ifeval import evaluate as verdicts_of
    from codit.evaluation.ifeval import load_prompts, summarize
    from codit.generation.texts import LocalGenerator
    from codit.models.loading import TINY_MODELS_DIR

    prompts = load_prompts(config.heldout or HELDOUT_PATH)[: config.limit]
    root = Path(config.models_dir) if config.models_dir else TINY_MODELS_DIR
    conversations = [[{"role": "user", "content": p.prompt}] for p in prompts]
    results = []
    for setting in config.settings:
        model, base, mode = SETTINGS[setting]
        generator = LocalGenerator(
            str(root / model), str(root / base) if base else None, device="cpu"
        )
        texts = [
            g.text
            for g in generator.generate(
                conversations,
                mode,
                batch_size=config.batch_size,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                seed=config.seed,
            )
        ]
        verdicts = verdicts_of(
            prompts, {str(p.key): t for p, t in zip(prompts, texts, strict=True)}
        )
        results.append(Result(setting, texts, summarize(verdicts)))
        if config.output_dir:
            rows = [
                {**asdict(p), "response": t, **v.to_dict()}
                for p, t, v in zip(prompts, texts, verdicts, strict=True)
            ]
            write_lines(Path(config.output_dir) / f"{setting}.jsonl", rows)
    return results, prompts


def table(results: list[Result]) -> str:
    """The four accuracies of each setting as a markdown table, in percent."""
    lines = [
        "| model | prompt-level strict | instruction-level strict | prompt-level loose | instruction-level loose |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        m = r.metrics
        lines.append(
            f"| {LABELS[r.setting]} | {100 * m['prompt_level_strict']:.1f} "
            f"| {100 * m['instruction_level_strict']:.1f} | {100 * m['prompt_level_loose']:.1f} "
            f"| {100 * m['instruction_level_loose']:.1f} |"
        )
    return "\n".join(lines)


def breakdown(results: list[Result]) -> str:
    """Strict accuracy per instruction id (percent), one column per setting."""
    counts = results[0].metrics["per_instruction_count"]
    lines = [
        "| instruction | n | " + " | ".join(LABELS[r.setting] for r in results) + " |",
        "|---|---|" + "---|" * len(results),
    ]
    for i, n in counts.items():
        cells = [f"{100 * r.metrics['per_instruction'][i]:.0f}" for r in results]
        lines.append(f"| `{i}` | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
