"""Pairwise LLM judging: which of two models answers the same prompts better.

Follows CodecLM (Wang et al. 2024, "CodecLM: Aligning Language Models with Tailored Synthetic
Data", arXiv:2404.05875): a judge model compares the two responses to each prompt twice, with
their order swapped, to cancel its position bias. Model A wins a pair only if it wins in both
orders and loses only if it loses in both; anything else is a tie. The report gives wins, ties and
losses, the win rate ``wins / total`` and the Capacity Recovery Ratio
``CRR = (wins + ties) / total``, each with a seeded bootstrap confidence interval.

A judgment whose verdict cannot be read is recorded as unparsable and a request the backend could
not complete as failed; such pairs are counted and reported, never guessed, and left out of
``total``. Every raw judgment is kept in ``judgments.jsonl``.

The prompt template is ``codit/prompts/pairwise_judge.txt`` (placeholders ``{instruction}``,
``{response_a}``, ``{response_b}``); the judge is any ``TextBackend``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.backends.base import GenerationParams, TextBackend
from codit.errors import DataError
from codit.evaluation.responses import Response, load_responses
from codit.io.atomic import write_json
from codit.io.jsonl import read_records
from codit.io.rundir import Run
from codit.pipelines.templates import user_template
from codit.settings import check, setting

PLACEHOLDERS = ("instruction", "response_a", "response_b")
_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


@dataclass(frozen=True)
class JudgeConfig:
    """Settings of a pairwise judging run (the backend's settings are a ``BackendConfig``)."""

    seed: int = setting(0, "seed of the bootstrap resampling")
    bootstrap: int = setting(1000, "bootstrap resamples for the intervals", ge=0)
    confidence: float = setting(0.95, "confidence level of the intervals", gt=0, lt=1)
    max_new_tokens: int = setting(1024, "longest judgment in tokens", ge=1)
    template: str | None = setting(None, "a judge prompt template file instead of the built-in one")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class Pair:
    """The two responses to one prompt."""

    id: str
    prompt: str
    a: str
    b: str


@dataclass(frozen=True)
class Judgment:
    """One call to the judge. ``order`` is "ab" when A's response was shown first."""

    id: str
    order: str
    raw: str
    verdict: str | None  # "A", "B", "C" (tie) as the judge wrote it, or None
    error: str | None = None
    cached: bool = False

    @property
    def for_a(self) -> str:
        """The outcome for model A: "win", "loss", "tie", "unparsable" or "failed"."""
        if self.error is not None:
            return "failed"
        if self.verdict is None:
            return "unparsable"
        if self.verdict == "C":
            return "tie"
        first_won = self.verdict == "A"
        return "win" if first_won == (self.order == "ab") else "loss"


def load_template(path: str | Path | None = None) -> str:
    """The judge prompt template: a file, or the built-in ``pairwise_judge.txt``.

    Raises:
        DataError: the file is missing or lacks a placeholder.
    """
    return user_template(path, "pairwise_judge", PLACEHOLDERS, "judge")


def render(template: str, instruction: str, response_a: str, response_b: str) -> str:
    """Fill the template in one pass, so braces inside the responses are left alone."""
    values = {"instruction": instruction, "response_a": response_a, "response_b": response_b}
    return re.sub(
        r"\{(instruction|response_a|response_b)\}", lambda m: values[m.group(1)], template
    )


def parse_verdict(text: str) -> str | None:
    """The verdict of a judgment: "A", "B" or "C", read from the last line that holds one.

    Returns None (unparsable) when no line holds ``[[A]]``, ``[[B]]`` or ``[[C]]``, or when that
    line holds two different ones (e.g. the judge restated the options).
    """
    for line in reversed(text.splitlines()):
        found = set(_VERDICT.findall(line))
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def pair_responses(a: list[Response], b: list[Response]) -> tuple[list[Pair], int, int]:
    """Pair two files' responses by id when every record has one, else by prompt text.

    Returns:
        The pairs (in A's order), and the number of A's and of B's records left unpaired.
    """
    by_id = all(r.key is not None for r in a + b)

    def index(records: list[Response]) -> dict[str, Response]:
        out: dict[str, Response] = {}
        for r in records:
            name = r.key if by_id else r.prompt
            if name is not None:
                out.setdefault(name, r)
        return out

    ia, ib = index(a), index(b)
    pairs = []
    for name, ra in ia.items():
        rb = ib.get(name)
        if rb is None:
            continue
        prompt = ra.prompt or rb.prompt
        if prompt is None:
            raise DataError(f"record {name!r} has no prompt in either file; the judge needs it")
        pairs.append(Pair(name, prompt, ra.response, rb.response))
    return pairs, len(a) - len(pairs), len(b) - len(pairs)


def judge_pairs(
    pairs: list[Pair], backend: TextBackend, params: GenerationParams, template: str
) -> list[Judgment]:
    """Ask the judge about every pair in both orders; returns judgments in (pair, order) order."""
    conversations = []
    for p in pairs:
        conversations.append([{"role": "user", "content": render(template, p.prompt, p.a, p.b)}])
        conversations.append([{"role": "user", "content": render(template, p.prompt, p.b, p.a)}])
    results = backend.generate(conversations, params)
    judgments = []
    for n, result in enumerate(results):
        pair, order = pairs[n // 2], ("ab", "ba")[n % 2]
        verdict = None if result.error is not None else parse_verdict(result.text)
        judgments.append(
            Judgment(pair.id, order, result.text, verdict, result.error, result.cached)
        )
    return judgments


def pair_outcome(first: Judgment, second: Judgment) -> str:
    """CodecLM's rule: "win" or "loss" only if both orders agree, else "tie";
    "failed" or "unparsable" if either judgment is."""
    outcomes = {first.for_a, second.for_a}
    for bad in ("failed", "unparsable"):
        if bad in outcomes:
            return bad
    if outcomes == {"win"}:
        return "win"
    if outcomes == {"loss"}:
        return "loss"
    return "tie"


def win_rate(outcomes: list[str]) -> float:
    return outcomes.count("win") / len(outcomes)


def capacity_recovery(outcomes: list[str]) -> float:
    return (outcomes.count("win") + outcomes.count("tie")) / len(outcomes)


def bootstrap_interval(
    outcomes: list[str],
    statistic: Callable[[list[str]], float],
    samples: int,
    seed: int,
    confidence: float = 0.95,
) -> list[float] | None:
    """A percentile bootstrap interval of ``statistic`` over resampled pairs (None if no pairs)."""
    if not outcomes or samples < 1:
        return None
    rng = random.Random(seed)
    values = sorted(statistic(rng.choices(outcomes, k=len(outcomes))) for _ in range(samples))
    tail = (1 - confidence) / 2
    lo = values[int(tail * (samples - 1))]
    hi = values[int(round((1 - tail) * (samples - 1)))]
    return [lo, hi]


def summarize(judgments: list[Judgment], config: JudgeConfig) -> dict[str, Any]:
    """Counts, win rate and CRR with their intervals, from judgments in (pair, order) order."""
    outcomes = [pair_outcome(judgments[i], judgments[i + 1]) for i in range(0, len(judgments), 2)]
    decided = [o for o in outcomes if o in ("win", "tie", "loss")]
    return {
        "pairs": len(outcomes),
        "wins": outcomes.count("win"),
        "ties": outcomes.count("tie"),
        "losses": outcomes.count("loss"),
        "unparsable": outcomes.count("unparsable"),
        "failed": outcomes.count("failed"),
        "total": len(decided),
        "win_rate": win_rate(decided) if decided else None,
        "crr": capacity_recovery(decided) if decided else None,
        "win_rate_ci": bootstrap_interval(
            decided, win_rate, config.bootstrap, config.seed, config.confidence
        ),
        "crr_ci": bootstrap_interval(
            decided, capacity_recovery, config.bootstrap, config.seed, config.confidence
        ),
        "confidence": config.confidence,
    }


JUDGE_CHUNK = 16  # pairs per backend call; a stop or a crash loses at most one chunk


def judgment_record(j: Judgment, outcome: str) -> dict[str, Any]:
    """One line of ``judgments.jsonl``; its id is the pair's id and the order."""
    return {
        "id": f"{j.id}:{j.order}",
        "pair": j.id,
        "order": j.order,
        "verdict": j.verdict,
        "outcome_for_a": j.for_a,
        "pair_outcome": outcome,
        "judgment": j.raw,
        "error": j.error,
        "cached": j.cached,
    }


def judgment_of(record: dict[str, Any]) -> Judgment:
    """A judgment read back from ``judgments.jsonl``."""
    return Judgment(
        str(record["pair"]),
        str(record["order"]),
        str(record.get("judgment") or ""),
        record.get("verdict"),
        record.get("error"),
        bool(record.get("cached")),
    )


def run_judge(
    a_path: Path,
    b_path: Path,
    backend: TextBackend | Callable[[], TextBackend],
    output: Path,
    config: JudgeConfig,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Judge file A against file B; writes ``judgments.jsonl`` and ``metrics.json`` into ``output``.

    Judgments are appended as each chunk of pairs is judged; a rerun judges only the pairs not in
    ``judgments.jsonl`` yet (failed requests stay there as ``failed``: delete the file to ask
    again; the response cache makes that cheap). ``backend`` may be a function that opens it,
    called once the inputs are known to be good.
    """
    template = load_template(config.template)
    pairs, unpaired_a, unpaired_b = pair_responses(load_responses(a_path), load_responses(b_path))
    if not pairs:
        raise DataError(
            f"{a_path} and {b_path} share no record (by id or by prompt); nothing to judge"
        )
    params = GenerationParams(max_new_tokens=config.max_new_tokens, temperature=0.0)
    judge: TextBackend = backend if hasattr(backend, "generate") else backend()  # type: ignore[operator,assignment]
    settings = {
        "judge": f"{judge.kind}:{judge.model}",
        "max_new_tokens": config.max_new_tokens,
        "template": template,
    }
    path = output / "judgments.jsonl"
    with Run(path, "eval judge", settings, config, errors=output / "errors.jsonl") as writing:
        done = {
            r["id"]: judgment_of(r)
            for r in read_records(path, missing_ok=True)
            if "pair" in r and "order" in r
        }
        todo = [p for p in pairs if f"{p.id}:ab" not in done or f"{p.id}:ba" not in done]
        for start in range(0, len(todo), JUDGE_CHUNK):
            writing.check_stop()
            chunk = todo[start : start + JUDGE_CHUNK]
            judged = judge_pairs(chunk, judge, params, template)
            for i in range(0, len(judged), 2):
                outcome = pair_outcome(judged[i], judged[i + 1])
                for j in judged[i : i + 2]:
                    writing.records.write(judgment_record(j, outcome))
                    done[f"{j.id}:{j.order}"] = j
        writing.check_stop()
        judgments = [done[f"{p.id}:{order}"] for p in pairs for order in ("ab", "ba")]
        metrics = summarize(judgments, config)
        metrics.update({"unpaired_a": unpaired_a, "unpaired_b": unpaired_b, "run": run or {}})
        write_json(output / "metrics.json", metrics)
        writing.finish(pairs=len(pairs), judged_now=len(todo))
    return metrics


def format_summary(metrics: dict[str, Any]) -> str:
    """The judge's report as a few plain-text lines."""

    def pct(value: float | None, ci: list[float] | None) -> str:
        if value is None:
            return "n/a"
        return f"{value:.3f}" + (f"  [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")

    level = f"{metrics['confidence']:.0%} CI"
    lines = [
        f"pairs judged       {metrics['pairs']}  (unpaired: A {metrics['unpaired_a']}, B {metrics['unpaired_b']})",
        f"wins / ties / losses  {metrics['wins']} / {metrics['ties']} / {metrics['losses']}  (of {metrics['total']})",
        f"win rate           {pct(metrics['win_rate'], metrics['win_rate_ci'])}  {level}",
        f"CRR (wins+ties)    {pct(metrics['crr'], metrics['crr_ci'])}  {level}",
    ]
    if metrics["unparsable"] or metrics["failed"]:
        lines.append(
            f"left out: {metrics['unparsable']} pairs with an unparsable judgment,"
            f" {metrics['failed']} with a failed request (see judgments.jsonl)"
        )
    return "\n".join(lines)
