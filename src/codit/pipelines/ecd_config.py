"""The settings of ``codit ecd``: one frozen dataclass, the source of its flags and manifest.

Each field's default, help, range and choices are declared with ``codit.settings.setting``;
``__post_init__`` normalizes the comma lists and adds only the rules that tie fields together
or parse a backend spec. The pipeline is ``ecd.py``; its steps import this module, never the
orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codit.backends.spec import BackendConfig
from codit.config import to_dict
from codit.io.options import OutputOptions
from codit.pipelines.constraints import KINDS
from codit.pipelines.ecd_steps import OPERATION_SETS, OPERATIONS, expand_operations
from codit.pipelines.outputs import check_output, check_spec, model_name
from codit.settings import check, setting


@dataclass(frozen=True)
class EcdConfig:
    """Settings of ``codit ecd``."""

    seeds: str | None = setting(
        None, "seed instructions (JSONL, JSON, CSV, Parquet or a datasets directory)"
    )
    prompt_field: str | None = setting(
        None, "field of the seeds holding the instruction (default: auto)"
    )
    id_field: str | None = setting(
        None, "field of the seeds holding their id (default: id, else a hash)"
    )
    output: str | None = setting(
        None, "JSONL file of preference records (appended to; a rerun resumes)"
    )
    evolver: str | None = setting(
        None, "LLM that evolves the instructions: openai:MODEL@URL or local:MODEL"
    )
    responder: str | None = setting(
        None, "LLM that answers every stage: openai:MODEL@URL or local:MODEL"
    )
    judge: str | None = setting(
        None, "LLM that checks free-form requirements (default: the evolver)"
    )
    rounds: int = setting(4, "evolution rounds per seed (Evol-Instruct: 4)", ge=1)
    verifiable_share: float | None = setting(
        None,
        "share of rounds that add a verifiable (IFEval) constraint, the other rounds drawn from "
        "--operations (default: verifiable is drawn like any other listed operation, so never "
        "unless listed)",
        ge=0.0,
        le=1.0,
        optional=True,
    )
    constraint_types: tuple[str, ...] = setting(
        (), "IFEval types a verifiable round may add, comma-separated (default: all usable ones)"
    )
    operations: tuple[str, ...] = setting(
        OPERATION_SETS["ecd"],
        "evolution operations, comma-separated, drawn uniformly each round: ecd (the paper's "
        "families: content, style, format, reasoning, breadth), evol-instruct (constraints, "
        "deepen, concretize, reasoning, complicate_input, breadth), single names, and verifiable "
        "(codit's: an IFEval constraint the last response breaks)",
    )
    judge_chosen: bool = setting(
        True, "ask the judge whether each chosen answer follows its whole instruction"
    )
    temperature: float = setting(
        0.7, "sampling temperature of the evolver and the responder", ge=0.0
    )
    judge_temperature: float = setting(0.0, "sampling temperature of the judge", ge=0.0)
    max_new_tokens: int = setting(2048, "longest reply of any step, in tokens", ge=1)
    parse_retries: int = setting(2, "re-asks of a reply that cannot be parsed or used", ge=0)
    reask_temperature: float = setting(
        0.7, "lowest temperature of a re-ask (a greedy re-ask repeats itself)", ge=0.0
    )
    seed: int = setting(0, "seed of the operation and constraint draws and of the backends")
    limit: int | None = setting(None, "read only the first N seeds", ge=1, optional=True)
    chunk_size: int = setting(
        32, "chains in flight together; a crash loses at most one chunk's unwritten records", ge=1
    )
    backend: BackendConfig = field(default_factory=BackendConfig)
    output_options: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        names = expand_operations(self.operations)
        object.__setattr__(self, "operations", names)
        types = tuple(n.strip() for t in self.constraint_types for n in t.split(",") if n.strip())
        object.__setattr__(self, "constraint_types", types)
        problems: list[str] = []
        if not self.seeds:
            problems.append("--seeds is required")
        check_output(self.output, problems)
        check_spec("--evolver", self.evolver, problems)
        check_spec("--responder", self.responder, problems)
        check_spec("--judge", self.judge, problems, required=False)
        unknown = [n for n in names if n not in OPERATIONS]
        share = self.verifiable_share
        if unknown or not names:
            problems.append(
                f"--operations takes {', '.join([*OPERATION_SETS, *OPERATIONS])}, "
                f"not {', '.join(unknown) or 'nothing'}"
            )
        elif share is not None and share < 1 and names == ("verifiable",):
            problems.append(
                "--verifiable-share below 1 needs another operation in --operations for the other rounds"
            )
        strange = [t for t in types if t not in KINDS]
        if strange:
            problems.append(
                f"--constraint-types takes {', '.join(KINDS)}, not {', '.join(strange)}"
            )
        check(self, problems)

    @property
    def verifiable_rounds(self) -> float:
        """The chance that a round adds a verifiable constraint."""
        if self.verifiable_share is not None:
            return self.verifiable_share
        return self.operations.count("verifiable") / max(1, len(self.operations))

    @property
    def judge_spec(self) -> str:
        return str(self.judge or self.evolver)

    def settings(self) -> dict[str, Any]:
        """What shapes the records: a rerun into the same output must keep these."""
        values = to_dict(self)
        for name in ("output", "backend", "chunk_size", "output_options"):
            values.pop(name)
        values.update(
            evolver=model_name(str(self.evolver)),
            responder=model_name(str(self.responder)),
            judge=model_name(self.judge_spec),
        )
        return values
