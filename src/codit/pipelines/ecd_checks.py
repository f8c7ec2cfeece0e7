"""ECD's checks of a round (see ``ecd.py`` for the method): is chosen right, is rejected wrong?

``check_chosen`` checks each new answer (code for every verifiable constraint, the judge for the
whole instruction) and writes its SFT record or ends its chain; ``check_rejected`` checks that
the previous answer misses the new requirement (code for a verifiable one, the judge otherwise)
and writes the preference pair, or drops it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codit.backends.base import GenerationParams
from codit.backends.cost import Metered
from codit.io.records import RecordWriter
from codit.pipelines.ecd_parse import parse_verdict
from codit.pipelines.ecd_steps import Chain, Stage, add_unparsable
from codit.pipelines.llm import Answer, ask, user
from codit.pipelines.templates import load_template, render

if TYPE_CHECKING:
    from codit.pipelines.ecd_config import EcdConfig


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
            add_unparsable(chain, verdict.unparsable)
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
    add_unparsable(chain, answer.unparsable)
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
