"""``codit annotate``: a judge's 1-10 grade, the length and the repetition flag of every response.

The CoDIT authors (Ichinose et al. 2026, arXiv:2604.13538; their public code) annotate each
generated (instruction, response) with a single-answer grade from an LLM judge (gpt-oss-120b,
a WildBench-derived prompt: analysis first, then the score), the response's token length, and a
repetition flag; their Best-of-N baseline and their filters read these. ``run_annotate`` does
the same with any text backend and codit's own prompt (``annotation.grade``).

Read top to bottom: read and check every input record, open the judge with the response cache
beside the output, and grade the records not yet in the output, a chunk at a time; each record
is appended, with its ``annotation``, as soon as its chunk is graded. A reply without a readable
score is asked again (another seed, a temperature of at least ``reask_temperature``) up to
``parse_retries`` times; if none can be read the record is written unscored (``score: null``,
every reply and the reason kept), never given a guessed score. A killed run loses at most one
chunk of unwritten records, and rerunning the same command finishes the file with every id once
and repeats no finished judge call (the cache).

Output record: the input record unchanged, plus::

    "annotation": {"score": 7, "judge": "openai:gpt-oss-120b", "judgments": ["...Score: [[7]]"],
                   "error": null, "chars": 812, "tokens": 190, "tokens_from": "meta.completion_tokens",
                   "length_capped": false, "repetition": {"repetitive": false, "fired": [], ...}}
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codit.annotation.files import (
    Item,
    check_paths,
    read_items,
    read_records,
    report_path,
    with_cache,
    write_json,
)
from codit.annotation.grade import load_template, parse_score, render
from codit.annotation.measures import TokenCounter, measures
from codit.annotation.repetition import DEFAULT_RULE
from codit.backends.base import GenerationParams, TextBackend
from codit.backends.cost import Metered
from codit.backends.spec import BackendConfig
from codit.config import to_dict
from codit.errors import DataError
from codit.io.rundir import Run
from codit.pipelines.llm import ask, open_roles, user
from codit.pipelines.outputs import check_spec, distribution, model_name
from codit.settings import check, setting

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class AnnotateConfig:
    """Settings of ``codit annotate``."""

    input: str | None = setting(
        None, "records to grade (codit generate output, or any responses file)"
    )
    output: str | None = setting(None, "JSONL of annotated records (appended to; a rerun resumes)")
    judge: str | None = setting(None, "the judge: openai:MODEL@URL, local:MODEL or codit:...")
    tokenizer: str | None = setting(
        None,
        "count response tokens with this tokenizer (hub id, directory or tiny-instruct); "
        "default: the record's meta.completion_tokens",
    )
    template: str | None = setting(
        None, "a grading prompt file ({instruction}, {response}) instead of the built-in"
    )
    max_new_tokens: int = setting(2048, "longest judgment in tokens (analysis and score)", ge=1)
    temperature: float = setting(0.0, "the judge's sampling temperature", ge=0)
    parse_retries: int = setting(2, "re-asks of a judgment whose score cannot be read", ge=0)
    reask_temperature: float = setting(
        0.7, "lowest temperature of a re-ask (a greedy re-ask repeats itself)", ge=0
    )
    seed: int = setting(0, "the judge's sampling seed")
    limit: int | None = setting(None, "grade only the first N records", ge=1, optional=True)
    chunk_size: int = setting(
        64, "records graded together; a crash loses at most one chunk's unwritten ones", ge=1
    )
    backend: BackendConfig = field(default_factory=BackendConfig)

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_paths(self.input, self.output, problems)
        check_spec("--judge", self.judge, problems)
        check(self, problems)

    def settings(self, template: str) -> dict[str, Any]:
        """What shapes the annotations: a rerun into the same output must keep these."""
        values = to_dict(self)
        for name in ("input", "output", "backend", "chunk_size", "limit", "template"):
            values.pop(name)
        values["judge"] = model_name(str(self.judge))
        values["template_sha256"] = hashlib.sha256(template.encode()).hexdigest()[:16]
        values["repetition_rule"] = to_dict(DEFAULT_RULE)
        return values


def run_annotate(
    config: AnnotateConfig,
    *,
    backends: dict[str, TextBackend] | None = None,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Annotate ``config.input`` into ``config.output``, resuming an earlier run.

    Args:
        config: the run's settings.
        backends: {"judge": a ready backend} instead of opening ``config.judge`` (tests).
        on_progress: called with ("grade", done, total) after each chunk.

    Returns:
        The report, also written to ``OUTPUT.report.json``.

    Raises:
        DataError: an input record is malformed or has no query for the judge.
        BackendError: the judge failed for good; finished calls and records are kept.
    """
    started = time.time()
    output = Path(str(config.output))
    template = load_template(config.template)
    items = read_items(str(config.input), config.limit)
    for item in items:
        if item.response.prompt is None:
            raise DataError(
                f"{config.input}, record {item.line} has no user turn for the judge to read"
            )
    count, counter_name = _token_counter(config.tokenizer)
    judge_name = model_name(str(config.judge))
    progress = on_progress or (lambda stage, done, total: None)
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed
    )
    with Run(output, "annotate", config.settings(template), config) as run:
        run.manifest["models"] = {"judge": judge_name}
        roles = open_roles(
            {"judge": str(config.judge)}, with_cache(config.backend, output), backends
        )
        done = run.done_ids()
        todo = [item for item in items if item.id not in done]
        complete = False
        try:
            for start in range(0, len(todo), config.chunk_size):
                chunk = todo[start : start + config.chunk_size]
                for record in grade_chunk(
                    chunk, roles["judge"], params, template, config, count, counter_name, judge_name
                ):
                    run.records.write(record)
                progress("grade", start + len(chunk), len(todo))
                run.check_stop()
            complete = True
        finally:
            run.records.sync()
            report = build_report(
                output, roles, complete, len(items), len(items) - len(todo), time.time() - started
            )
            write_json(report_path(output), report)
        run.finish(records=report["records"])
    return report


def grade_chunk(
    chunk: list[Item],
    judge: TextBackend,
    params: GenerationParams,
    template: str,
    config: AnnotateConfig,
    count: TokenCounter | None,
    counter_name: str | None,
    judge_name: str,
) -> list[dict[str, Any]]:
    """Grade one chunk of records; returns them annotated, in order."""
    conversations = [
        user(render(template, str(item.response.prompt), item.response.response)) for item in chunk
    ]
    answers = ask(
        judge,
        conversations,
        params,
        lambda reply, i: parse_score(reply),
        config.parse_retries,
        config.reask_temperature,
    )
    out = []
    for item, answer in zip(chunk, answers, strict=True):
        annotation = {
            "score": answer.value,
            "judge": judge_name,
            "judgments": list(answer.replies),
            "error": answer.error,
            **measures(item.record, item.response.response, count, counter_name),
        }
        out.append({**item.record, "annotation": annotation})
    return out


def _token_counter(name: str | None) -> tuple[TokenCounter | None, str | None]:
    """A function counting a text's tokens with the named tokenizer (no special tokens)."""
    if name is None:
        return None, None
    from codit.models.loading import load_tokenizer

    tokenizer = load_tokenizer(name)
    return (lambda text: len(tokenizer.encode(text, add_special_tokens=False))), name


def build_report(
    output: Path,
    roles: dict[str, Metered],
    complete: bool,
    inputs: int,
    already_done: int,
    seconds: float,
) -> dict[str, Any]:
    """The report of the annotated file on disk (a resumed run's covers the whole file); ``cost``
    is this run's alone."""
    annotations = [
        r["annotation"] for r in read_records(output, missing_ok=True) if "annotation" in r
    ]
    scores = [a["score"] for a in annotations if a["score"] is not None]
    unscored = [a for a in annotations if a["score"] is None]
    repetition = [a["repetition"] for a in annotations]
    tokens = [a["tokens"] for a in annotations if a["tokens"] is not None]
    return {
        "complete": complete,
        "seconds": round(seconds, 2),
        "records": {
            "inputs": inputs,
            "annotated": len(annotations),
            "already_done": already_done,
            "scored": len(scores),
            "unscored": len(unscored),
            "unscored_failed_requests": sum(
                a["error"] is not None and not a["judgments"] for a in unscored
            ),
        },
        "score": distribution([float(s) for s in scores]),
        "repetition": {
            "checked": sum(r["checked"] for r in repetition),
            "repetitive": sum(r["repetitive"] for r in repetition),
            "by_rule": dict(Counter(rule for r in repetition for rule in r["fired"])),
        },
        "length_capped": sum(a["length_capped"] is True for a in annotations),
        "tokens": distribution([float(t) for t in tokens]),
        "cost": {role: meter.report() for role, meter in roles.items()},
    }
