"""How often the tiny models follow the held-out verifiable instructions (IFEval's metrics).

Three settings answer the same held-out prompts: ``tiny-base`` alone (through the same chat
template, which it never saw in training), ``tiny-instruct`` decoding directly, and
``tiny-instruct`` with CoDIT against ``tiny-base``. Generation goes through
``codit.generation.texts.LocalGenerator``, the same engine as ``codit generate``; loading the
prompts and scoring (prompt- and instruction-level accuracy, strict and loose) are
``codit.evaluation.ifeval``'s, so the numbers mean exactly what ``codit eval ifeval`` reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from codit.io.atomic import write_lines
from codit.io.lock import locked
from codit.settings import check, setting
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

    models_dir: str | None = setting(
        None, "directory holding tiny-base/ and tiny-instruct/ (default: the shipped pair)"
    )
    heldout: str | None = setting(
        None, "held-out prompts in IFEval jsonl (default: the shipped file)"
    )
    settings: tuple[str, ...] = setting(
        ("base", "direct", "codit"), "which settings to run", choices=tuple(SETTINGS)
    )
    limit: int | None = setting(None, "use only the first N prompts", ge=1, optional=True)
    max_new_tokens: int = setting(256, "most tokens per response", ge=1)
    temperature: float = setting(0.0, "0 is greedy", ge=0)
    seed: int = setting(0, "sampling seed")
    batch_size: int = setting(16, "prompts decoded at once", ge=1)
    output_dir: str | None = setting(
        None, "also write each setting's responses and verdicts here as jsonl"
    )

    def __post_init__(self) -> None:
        check(self)


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
    for name in config.settings:
        model, base, mode = SETTINGS[name]
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
        results.append(Result(name, texts, summarize(verdicts)))
        if config.output_dir:
            rows = [
                {**asdict(p), "response": t, **v.to_dict()}
                for p, t, v in zip(prompts, texts, verdicts, strict=True)
            ]
            write_lines(Path(config.output_dir) / f"{name}.jsonl", rows)
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
