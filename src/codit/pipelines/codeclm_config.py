"""The settings of ``codit codeclm``: one frozen dataclass, the source of its flags and manifest.

Each field's default, help, range and choices are declared with ``codit.settings.setting``;
``__post_init__`` adds only the rules that tie fields together or parse a backend spec. The
pipeline is ``codeclm.py``; its steps import this module, never the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codit.backends.spec import BackendConfig
from codit.config import to_dict
from codit.io.options import OutputOptions
from codit.pipelines.outputs import check_output, check_spec, model_name
from codit.settings import check, setting

JUDGE_FORMATS = ("scores", "explained")


@dataclass(frozen=True)
class CodecLMConfig:
    """Settings of ``codit codeclm``.

    The defaults follow the paper where it gives a value (theta 3, 4 iterations, 4 rubrics, a
    pool of about 200, at most 3 skills, temperature 0.7 for the writing steps and 0 for the
    judge, a judge that answers with one line of two scores, 2048 tokens); the budget counts
    basic instructions unless ``num_pairs`` is set (``--config codeclm-paper`` sets it).
    docs/methods/codeclm.md lists each setting against the paper.
    """

    strong: str | None = setting(
        None, "strong LLM that writes, answers and judges: openai:MODEL@URL or local:MODEL"
    )
    target: str | None = setting(
        None, "target LLM to tailor the data to: openai:MODEL@URL or local:MODEL"
    )
    seeds: str | None = setting(
        None, "seed instructions (JSONL, JSON, CSV, Parquet or a datasets directory)"
    )
    prompt_field: str | None = setting(
        None, "field of the seeds holding the instruction (default: auto)"
    )
    id_field: str | None = setting(
        None, "field of the seeds holding their id (default: id, else a hash)"
    )
    output: str | None = setting(None, "JSONL file of SFT records (appended to; a rerun resumes)")
    num_instructions: int = setting(
        500,
        "basic instructions to write in all, in one pass over the pool (ignored with --num-pairs)",
        ge=1,
    )
    num_pairs: int | None = setting(
        None,
        "kept pairs to make (the paper's budgets, 500 to 8000, count these): new instructions "
        "are decoded from the pool until this many are kept or the pool is spent",
        ge=1,
        optional=True,
    )
    max_top_ups: int = setting(
        8, "with --num-pairs, most extra decoding passes over the pool (codit's bound)", ge=0
    )
    limit: int | None = setting(None, "read only the first N seeds", ge=1, optional=True)
    max_skills: int = setting(3, "most skills in one seed's metadata", ge=1)
    pool_size: int = setting(200, "metadata entries after augmentation", ge=1)
    min_combination_skills: int = setting(1, "fewest skills in a sampled metadata entry", ge=1)
    max_combination_skills: int = setting(3, "most skills in a sampled metadata entry")
    num_rubrics: int = setting(4, "rubric/action pairs per metadata entry (Self-Rubrics)", ge=1)
    max_iterations: int = setting(
        4, "most rounds per instruction; writing it counts as the first", ge=1
    )
    gap_threshold: float = setting(
        3.0, "theta: keep a pair when |S(strong) - S(target)| exceeds it", ge=0.0
    )
    swap_order: bool = setting(True, "judge twice with the answers' order swapped and average")
    keep_target_wins: bool = setting(
        True, "keep (instruction, target answer) when the gap is below -theta"
    )
    temperature: float = setting(
        0.7,
        "sampling temperature of metadata, instructions, Self-Rubrics, improvements and answers "
        "(the paper: 0.7 for the first three)",
        ge=0.0,
    )
    judge_temperature: float = setting(
        0.0, "sampling temperature of the judge (the paper: 0)", ge=0.0
    )
    judge_format: str = setting(
        "scores",
        "scores: one line with the two scores (the paper's judge prompt); explained: a short "
        "explanation first, then the scores (JSON)",
        choices=JUDGE_FORMATS,
    )
    max_new_tokens: int = setting(2048, "longest reply of any step, in tokens", ge=1)
    parse_retries: int = setting(2, "re-asks of a reply that cannot be parsed", ge=0)
    reask_temperature: float = setting(
        0.7, "lowest temperature of a re-ask (a greedy re-ask repeats itself)", ge=0.0
    )
    seed: int = setting(0, "seed of the pool sampling, the action choice and the backends")
    chunk_size: int = setting(
        64,
        "instructions in flight together; a crash loses at most one chunk's unwritten records",
        ge=1,
    )
    pool_only: bool = setting(
        False, "stop after writing the metadata pool (OUTPUT.pool.jsonl), to review it"
    )
    backend: BackendConfig = field(default_factory=BackendConfig)
    output_options: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        problems: list[str] = []
        check_spec("--strong", self.strong, problems)
        check_spec("--target", self.target, problems)
        if not self.seeds:
            problems.append("--seeds is required")
        check_output(self.output, problems)
        if self.max_combination_skills < self.min_combination_skills:
            problems.append("--max-combination-skills must be >= --min-combination-skills")
        check(self, problems)

    def settings(self) -> dict[str, Any]:
        """What shapes the records: a rerun into the same output must keep these."""
        values = to_dict(self)
        for name in ("output", "backend", "chunk_size", "pool_only", "output_options"):
            values.pop(name)
        values["strong"] = model_name(str(self.strong))
        values["target"] = model_name(str(self.target))
        return values
