"""ECD's steps for a chunk of chains, one round at a time (see ``ecd.py`` for the method).

``choose_operation`` draws a round's operation (and, for a verifiable round, its IFEval
constraint); ``evolve`` rewrites the instructions; ``respond`` answers them. The checks of the
answers (chosen and rejected) are in ``ecd_checks.py``. Every step asks a whole chunk at once,
re-asks unparsable replies a bounded number of times, and records what fails.
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
from codit.pipelines.constraints import Constraint, draw_constraint, states
from codit.pipelines.ecd_parse import (
    EVOLUTION_SCHEMA,
    Evolution,
    parse_evolution,
    parse_response,
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
        add_unparsable(chain, answer.unparsable)
        if answer.value is None:
            stop(chain, round_, "respond", answer.error, answer.replies)
        else:
            chain.stages[-1].response = answer.value


def add_unparsable(chain: Chain, count: int) -> None:
    """Count re-asked replies in the round being made."""
    chain.pending["unparsable"] = chain.pending.get("unparsable", 0) + count
