"""ECD's steps for a chunk of chains, one round at a time (see ``ecd.py`` for the method).

``choose_operation`` draws a round's operation (and, for a verifiable round, its IFEval
constraint); ``evolve`` rewrites the instructions; ``respond`` answers them; ``check_chosen``
checks each new answer (code for verifiable constraints, the judge for the whole instruction) and
writes its SFT record; ``check_rejected`` checks that the previous answer misses the new
requirement and writes the preference pair. Every step asks a whole chunk at once, re-asks
unparsable replies a bounded number of times, and records what fails.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from codit.backends.base import GenerationParams
from codit.backends.cost import Metered
from codit.io.records import RecordWriter
from codit.pipelines.constraints import Constraint, draw_constraint, states
from codit.pipelines.ecd_parse import (
    EVOLUTION_SCHEMA,
    Evolution,
    parse_evolution,
    parse_response,
    parse_verdict,
)
from codit.pipelines.llm import Answer, ask, user
from codit.pipelines.replies import ParseError
from codit.pipelines.templates import load_template, render

if TYPE_CHECKING:
    from codit.pipelines.ecd_config import EcdConfig


# ECD's own families of evolution, as its abstract names them (content, style, format,
# reasoning, breadth); the paper's prompts could not be read, so these texts are codit's.
ECD_FAMILIES = {
    "content": "add one requirement on what the answer must contain: a point to cover, an example, a fact or an aspect to include or to leave out.",
    "style": "add one requirement on how the answer is written: its tone, register, audience, persona or point of view.",
    "format": "add one requirement on the answer's form: its structure, length, layout, order of parts or markup.",
    "reasoning": "if the instruction can be solved in a few simple steps, ask explicitly for several steps of reasoning.",
}
# Evol-Instruct's in-depth operations (Xu et al. 2023), in our words; "reasoning" is shared.
EVOL_INSTRUCT = {
    "constraints": "add one more constraint or requirement that the answer must satisfy.",
    "deepen": "ask for more depth or breadth on one of the issues the instruction raises.",
    "concretize": "replace a general concept in the instruction with a more specific one.",
    "reasoning": ECD_FAMILIES["reasoning"],
    "complicate_input": "add a small piece of input the answer must work with, such as a table, a list or a code snippet.",
}
# In-depth operations use template ecd_evolve_depth, "breadth" ecd_evolve_breadth, and
# "verifiable" (codit's: an IFEval constraint the last response breaks) ecd_evolve_verifiable.
DEPTH_OPERATIONS = {**ECD_FAMILIES, **EVOL_INSTRUCT}
OPERATIONS = (*DEPTH_OPERATIONS, "breadth", "verifiable")
OPERATION_SETS = {
    "ecd": (*ECD_FAMILIES, "breadth"),
    "evol-instruct": (*EVOL_INSTRUCT, "breadth"),
}


def expand_operations(names: tuple[str, ...]) -> tuple[str, ...]:
    """Operation names with the set names (``ecd``, ``evol-instruct``) expanded, repeats dropped;
    comma-separated items are split."""
    out: list[str] = []
    for item in names:
        for name in (n.strip() for n in item.split(",")):
            for op in OPERATION_SETS.get(name, (name,) if name else ()):
                if op not in out:
                    out.append(op)
    return tuple(out)


@dataclass
class Stage:
    """One link of a chain: an instruction, its response, and how it was made and checked."""

    round: int
    instruction: str
    response: str
    operation: str  # "seed", "verifiable", an in-depth operation, or "breadth"
    constraints: list[Constraint]  # every verifiable constraint of the instruction
    added: dict[str, Any] | None = None  # the new requirement: a constraint, or {"text": ...}
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass
class Chain:
    """One seed's evolution chain (mutable while in flight)."""

    id: str
    stages: list[Stage]
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # one per round, for the report
    stopped: str | None = None
    pending: dict[str, Any] = field(default_factory=dict)  # the round being made, as recorded
    new: Constraint | None = None  # the verifiable constraint the round adds, if any


def choose_operation(
    chain: Chain, round_: int, config: EcdConfig
) -> tuple[dict[str, Any], Constraint | None]:
    """This round's operation, drawn by the chain's id, the round and the seed (so reruns agree).

    A verifiable round gets a constraint that the latest response breaks; when no IFEval type
    yields one, the round falls back to an in-depth operation.
    """
    rng = random.Random(f"{config.seed}:{chain.id}:{round_}")
    last = chain.stages[-1]
    others = [op for op in config.operations if op != "verifiable"]
    if rng.random() < config.verifiable_rounds:
        constraint = draw_constraint(
            rng, last.instruction, last.response, last.constraints, config.constraint_types
        )
        if constraint is not None:
            return {"operation": "verifiable", "constraint": constraint.to_dict()}, constraint
        depth = [op for op in others if op in DEPTH_OPERATIONS] or list(ECD_FAMILIES)
        return {
            "operation": rng.choice(depth),
            "fallback": "no verifiable constraint separates the last response",
        }, None
    return {"operation": rng.choice(others)}, None


def evolve(
    chains: list[Chain],
    round_: int,
    evolver: Metered,
    params: GenerationParams,
    config: EcdConfig,
    stop: Callable[..., None],
) -> None:
    """Rewrite each chain's last instruction with its round's operation."""
    templates = {
        name: load_template(f"ecd_evolve_{name}") for name in ("depth", "breadth", "verifiable")
    }
    prompts, parsers = [], []
    for chain in chains:
        last, op = chain.stages[-1], chain.pending["operation"]
        if op == "verifiable":
            assert chain.new is not None
            prompts.append(
                user(
                    render(
                        templates["verifiable"],
                        instruction=last.instruction,
                        requirement=chain.new.text,
                    )
                )
            )
            parsers.append(_stating(chain.new, last.instruction))
        elif op == "breadth":
            prompts.append(user(render(templates["breadth"], instruction=last.instruction)))
            parsers.append(functools.partial(parse_evolution, previous=last.instruction))
        else:
            prompts.append(
                user(
                    render(
                        templates["depth"],
                        instruction=last.instruction,
                        method=DEPTH_OPERATIONS[op],
                    )
                )
            )
            parsers.append(functools.partial(parse_evolution, previous=last.instruction))
    answers = ask(
        evolver,
        prompts,
        dataclasses.replace(params, json_schema=EVOLUTION_SCHEMA),
        lambda text, i: parsers[i](text),
        config.parse_retries,
        config.reask_temperature,
    )
    for chain, answer in zip(chains, answers, strict=True):
        chain.pending["unparsable"] = answer.unparsable
        last, op = chain.stages[-1], chain.pending["operation"]
        evolution = answer.value
        if evolution is None and chain.new is not None:
            # The evolver never stated the requirement: state it as IFEval's prompts do.
            evolution = Evolution(f"{last.instruction}\n\n{chain.new.text}")
            chain.pending["stated_by"] = "code"
        if evolution is None:
            stop(chain, round_, "evolve", answer.error, answer.replies)
            continue
        if chain.new is not None:
            constraints, added = [*last.constraints, chain.new], chain.pending["constraint"]
        elif op == "breadth":
            constraints, added = [], None  # a new instruction: the old constraints do not apply
        else:
            constraints, added = list(last.constraints), {"text": evolution.added}
        chain.stages.append(Stage(round_, evolution.instruction, "", op, constraints, added))


def _stating(constraint: Constraint, previous: str) -> Callable[[str], Evolution]:
    def parse(text: str) -> Evolution:
        evolution = parse_evolution(text, previous)
        if not states(constraint, evolution.instruction):
            raise ParseError(
                f"the evolved instruction does not state the requirement: {constraint.text}"
            )
        return Evolution(evolution.instruction, constraint.text)

    return parse


def respond(
    chains: list[Chain],
    round_: int,
    responder: Metered,
    params: GenerationParams,
    config: EcdConfig,
    stop: Callable[..., None],
) -> None:
    """The responder's answer to each chain's newest instruction (unusable answers are re-asked)."""
    answers: list[Answer[str]] = ask(
        responder,
        [user(c.stages[-1].instruction) for c in chains],
        params,
        lambda text, i: parse_response(text),
        config.parse_retries,
        config.reask_temperature,
    )
    for chain, answer in zip(chains, answers, strict=True):
        _add_unparsable(chain, answer.unparsable)
        if answer.value is None:
            stop(chain, round_, "respond", answer.error, answer.replies)
        else:
            chain.stages[-1].response = answer.value


def check_chosen(
    chains: list[Chain],
    round_: int,
    judge: Metered,
    params: GenerationParams,
    config: EcdConfig,
    stop: Callable[..., None],
    writers: dict[str, RecordWriter],
    models: dict[str, str],
) -> None:
    """Code checks every verifiable constraint; the judge, the whole instruction. A failure ends
    the chain; a pass writes the stage's SFT record."""
    verdicts: list[Answer[bool] | None] = [None] * len(chains)
    if config.judge_chosen:
        template = load_template("ecd_check_follows")
        prompts = [
            user(
                render(
                    template, instruction=c.stages[-1].instruction, response=c.stages[-1].response
                )
            )
            for c in chains
        ]
        verdicts = list(_ask_judge(judge, prompts, params, config))
    for chain, verdict in zip(chains, verdicts, strict=True):
        stage = chain.stages[-1]
        stage.checks["chosen_constraints"] = {
            c.id: c.holds(stage.response) for c in stage.constraints
        }
        if verdict is not None:
            _add_unparsable(chain, verdict.unparsable)
            if verdict.value is None:
                stop(chain, round_, "judge", verdict.error, verdict.replies)
                continue
            stage.checks["chosen_judge"] = verdict.value
        broken = [k for k, ok in stage.checks["chosen_constraints"].items() if not ok]
        if broken or stage.checks.get("chosen_judge") is False:
            _drop_chosen(chain, round_, broken, writers["dropped"])
            continue
        writers["sft"].write(_sft_record(chain, round_, models))
        if round_ == 0:
            chain.outcomes.append(
                {"round": 0, **chain.pending, "operation": "seed", "outcome": "sft"}
            )


def check_rejected(
    chains: list[Chain],
    round_: int,
    judge: Metered,
    params: GenerationParams,
    config: EcdConfig,
    writers: dict[str, RecordWriter],
    models: dict[str, str],
) -> None:
    """The previous response must miss the new requirement; if it does, write the pair."""
    template = load_template("ecd_check_requirement")
    by_judge = [c for c in chains if c.stages[-1].operation not in ("verifiable", "breadth")]
    prompts = [
        user(
            render(template, requirement=_requirement(c.stages[-1]), response=c.stages[-2].response)
        )
        for c in by_judge
    ]
    answers = _ask_judge(judge, prompts, params, config)
    judged = {c.id: a for c, a in zip(by_judge, answers, strict=True)}
    for chain in chains:
        stage, previous = chain.stages[-1], chain.stages[-2]
        if stage.operation == "breadth":
            chain.outcomes.append({"round": round_, **chain.pending, "outcome": "sft_only_breadth"})
            continue
        if not _check_rejected_one(chain, round_, judged.get(chain.id), writers["errors"]):
            continue
        same = stage.response.strip() == previous.response.strip()  # no contrast to learn from
        if same or stage.checks["rejected_meets_new"]:
            _drop_rejected(chain, round_, same, writers["dropped"])
            continue
        chain.outcomes.append({"round": round_, **chain.pending, "outcome": "pair"})
        writers["pairs"].write(_pair_record(chain, round_, models))


def _ask_judge(
    judge: Metered, prompts: list[list[dict[str, str]]], params: GenerationParams, config: EcdConfig
) -> list[Answer[bool]]:
    """The judge's yes/no verdicts on the prompts (unparsable replies are re-asked)."""
    return ask(
        judge,
        prompts,
        params,
        lambda text, i: parse_verdict(text),
        config.parse_retries,
        config.reask_temperature,
    )


def _add_unparsable(chain: Chain, count: int) -> None:
    chain.pending["unparsable"] = chain.pending.get("unparsable", 0) + count


def _where(chain: Chain, round_: int) -> dict[str, Any]:
    """The fields that name a round of a chain in the side files."""
    return {"id": f"{chain.id}:{round_}", "chain": chain.id, "round": round_}


def _drop_chosen(chain: Chain, round_: int, broken: list[str], dropped: RecordWriter) -> None:
    """End a chain whose new answer breaks a constraint or fails the judge."""
    stage = chain.stages[-1]
    reason = (
        f"chosen breaks {', '.join(broken)}"
        if broken
        else "the judge finds chosen does not follow the instruction"
    )
    key = "chosen_breaks_constraint" if broken else "chosen_fails_judge"
    chain.stopped = f"{key} in round {round_}"
    chain.outcomes.append({"round": round_, **chain.pending, "outcome": key})
    dropped.write(
        {
            **_where(chain, round_),
            "outcome": key,
            "reason": reason,
            "instruction": stage.instruction,
            "response": stage.response,
            "checks": stage.checks,
            **chain.pending,
        }
    )


def _sft_record(chain: Chain, round_: int, models: dict[str, str]) -> dict[str, Any]:
    """A stage whose answer passed its checks, as a TRL conversation."""
    stage = chain.stages[-1]
    return {
        "id": f"{chain.id}:{round_}",
        "messages": [
            {"role": "user", "content": stage.instruction},
            {"role": "assistant", "content": stage.response},
        ],
        "meta": {
            "method": "ecd",
            "chain": chain.id,
            "round": round_,
            "operation": stage.operation,
            "constraints": [c.to_dict() for c in stage.constraints],
            "checks": stage.checks,
            "models": models,
        },
    }


def _check_rejected_one(
    chain: Chain, round_: int, answer: Answer[bool] | None, errors: RecordWriter
) -> bool:
    """Whether the previous answer meets the new requirement, into the stage's checks: by code
    for a verifiable constraint, else by the judge's ``answer``. False when the judge failed
    (the round goes to the errors file)."""
    stage, previous = chain.stages[-1], chain.stages[-2]
    if chain.new is not None:
        stage.checks["rejected_meets_new"] = chain.new.holds(previous.response)
        stage.checks["rejected_checked_by"] = "code"
        return True
    assert answer is not None  # every chain without a verifiable constraint was judged
    _add_unparsable(chain, answer.unparsable)
    if answer.value is None:
        chain.outcomes.append({"round": round_, **chain.pending, "outcome": "error_judge"})
        errors.write(
            {
                **_where(chain, round_),
                "stage": "judge",
                "error": answer.error,
                "replies": list(answer.replies),
                **chain.pending,
            }
        )
        return False
    stage.checks["rejected_meets_new"] = answer.value
    stage.checks["rejected_checked_by"] = "judge"
    return True


def _drop_rejected(chain: Chain, round_: int, same: bool, dropped: RecordWriter) -> None:
    """Drop a pair whose rejected answer is the chosen text or already meets the requirement."""
    stage, previous = chain.stages[-1], chain.stages[-2]
    outcome = "rejected_same_as_chosen" if same else "rejected_meets_new"
    chain.outcomes.append({"round": round_, **chain.pending, "outcome": outcome})
    dropped.write(
        {
            **_where(chain, round_),
            "outcome": outcome,
            "reason": "rejected is the same text as chosen"
            if same
            else "rejected already meets the new requirement",
            "instruction": stage.instruction,
            "response": stage.response,
            "previous_response": previous.response,
            "checks": stage.checks,
            **chain.pending,
        }
    )


def _pair_record(chain: Chain, round_: int, models: dict[str, str]) -> dict[str, Any]:
    """The preference pair of a round: the new answer chosen, the previous one rejected."""
    stage, previous = chain.stages[-1], chain.stages[-2]
    stated = {"stated_by": chain.pending["stated_by"]} if "stated_by" in chain.pending else {}
    return {
        "id": f"{chain.id}:{round_}",
        "prompt": [{"role": "user", "content": stage.instruction}],
        "chosen": [{"role": "assistant", "content": stage.response}],
        "rejected": [{"role": "assistant", "content": previous.response}],
        "meta": {
            "method": "ecd",
            "chain": chain.id,
            "round": round_,
            "operation": stage.operation,
            "added": stage.added,
            "constraints": [c.to_dict() for c in stage.constraints],
            "verification": stage.checks,
            "previous_instruction": previous.instruction,
            "evolution": [s.instruction for s in chain.stages],
            "models": models,
            **stated,
        },
    }


def _requirement(stage: Stage) -> str:
    """What the previous answer must miss: the requirement the evolver says it added, or the
    whole evolved instruction when it named none."""
    return str((stage.added or {}).get("text") or stage.instruction)
