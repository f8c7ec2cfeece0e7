"""CodecLM's Contrastive Filtering, step 5 of ``codeclm.py``.

For a chunk of instructions, round after round: the strong and the target model answer, the
strong model scores both answers 1-10 twice with their order swapped (a position bias cancels
out), and the gap G = S(strong) - S(target) decides. G > theta keeps (instruction, strong
answer), G < -theta keeps (instruction, target answer), and otherwise one rubric action drawn by
the instruction's id, the round and the seed makes the instruction harder for the next round;
after the last round it is dropped. Each instruction's ``history`` records every round (its
instruction, scores, gap, action and decision) and travels with its record.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from codit.backends.cost import Metered
from codit.io.records import RecordWriter
from codit.pipelines.codeclm_parse import (
    IMPROVED_SCHEMA,
    SCORES_SCHEMA,
    Rubric,
    parse_improved,
    parse_scores,
)
from codit.pipelines.codeclm_steps import Chain, generation_params
from codit.pipelines.llm import ask, user
from codit.pipelines.outputs import model_name
from codit.pipelines.replies import ParseError
from codit.pipelines.templates import load_template, render

if TYPE_CHECKING:
    from codit.pipelines.codeclm_config import CodecLMConfig


def contrastive_filter(
    chains: list[Chain],
    roles: dict[str, Metered],
    rubrics: dict[str, list[Rubric]],
    config: CodecLMConfig,
    writers: dict[str, RecordWriter],
) -> None:
    """Step 5 for a chunk of chains: answer, judge, keep / improve / drop, for every round."""
    explained = config.judge_format == "explained"
    judge_template = load_template("codeclm_judge_explained" if explained else "codeclm_judge")
    improve_template = load_template("codeclm_improve")
    answer_params = generation_params(config)
    # the paper's format is one line of two scores: no JSON schema to wrap it in
    judge_params = dataclasses.replace(
        generation_params(config, SCORES_SCHEMA if explained else None),
        temperature=config.judge_temperature,
    )
    improve_params = generation_params(config, IMPROVED_SCHEMA)
    reasks = (config.parse_retries, config.reask_temperature)
    orders = [(0, 1), (1, 0)] if config.swap_order else [(0, 1)]  # 0 = strong, 1 = target
    models = {"strong": model_name(str(config.strong)), "target": model_name(str(config.target))}

    def fail(
        chain: Chain, iteration: int, stage: str, error: str | None, replies: list[str]
    ) -> None:
        if not chain.history or chain.history[-1]["iteration"] != iteration:
            chain.history.append({"iteration": iteration, "instruction": chain.instruction})
        chain.history[-1].update(decision="failed", stage=stage)
        writers["errors"].write(
            {
                "id": chain.id,
                "stage": stage,
                "iteration": iteration,
                "error": error,
                "replies": replies,
                "metadata": chain.metadata.to_dict(),
                "history": chain.history,
            }
        )

    active = chains
    for iteration in range(1, config.max_iterations + 1):
        if not active:
            break
        questions = [user(c.instruction) for c in active]
        # An empty answer is asked again; the target may keep it (that too is its behaviour),
        # the strong model may not.
        strong = ask(roles["strong"], questions, answer_params, _nonempty, *reasks)
        target = ask(roles["target"], questions, answer_params, _nonempty, *reasks)
        answered: list[tuple[Chain, tuple[str, str], int]] = []
        for chain, s, t in zip(active, strong, target, strict=True):
            t_text = t.value if t.value is not None else ("" if t.replies else None)
            if s.value is None:
                error = f"the strong model's answer failed: {s.error}"
                fail(chain, iteration, "answer", error, list(s.replies))
            elif t_text is None:
                error = f"the target model's answer failed: {t.error}"
                fail(chain, iteration, "answer", error, list(t.replies))
            else:
                answered.append((chain, (s.value, t_text), s.unparsable + t.unparsable))

        prompts = [
            user(
                render(
                    judge_template,
                    instruction=chain.instruction,
                    response_1=texts[a],
                    response_2=texts[b],
                )
            )
            for chain, texts, _ in answered
            for a, b in orders
        ]
        verdicts = ask(
            roles["judge"],
            prompts,
            judge_params,
            lambda text, i: parse_scores(text),
            *reasks,
        )
        to_improve: list[Chain] = []
        for n, (chain, texts, reasked) in enumerate(answered):
            mine = verdicts[n * len(orders) : (n + 1) * len(orders)]
            failed = next((v for v in mine if v.value is None), None)
            if failed is not None:
                fail(chain, iteration, "judge", failed.error, [r for v in mine for r in v.replies])
                continue
            scores: list[list[float]] = [[], []]
            for (first, second), v in zip(orders, mine, strict=True):
                assert v.value is not None
                scores[first].append(v.value[0])
                scores[second].append(v.value[1])
            gap = statistics.fmean(scores[0]) - statistics.fmean(scores[1])
            step: dict[str, Any] = {
                "iteration": iteration,
                "instruction": chain.instruction,
                "strong_scores": scores[0],
                "target_scores": scores[1],
                "gap": gap,
                "unparsable": reasked + sum(v.unparsable for v in mine),
            }
            chain.history.append(step)
            source = (
                "strong"
                if gap > config.gap_threshold
                else "target"
                if gap < -config.gap_threshold
                else None
            )
            if source == "target" and not config.keep_target_wins:
                step["decision"] = "dropped"
                _drop(
                    writers,
                    chain,
                    "the target won by more than the threshold (--no-keep-target-wins)",
                )
            elif source is not None:
                step["decision"] = f"kept_{source}"
                writers["kept"].write(
                    {
                        "id": chain.id,
                        "messages": [
                            {"role": "user", "content": chain.instruction},
                            {"role": "assistant", "content": texts[0 if source == "strong" else 1]},
                        ],
                        "meta": {
                            "method": "codeclm",
                            "source": source,
                            "iteration": iteration,
                            "gap": gap,
                            "metadata": chain.metadata.to_dict(),
                            "basic_instruction": chain.basic,
                            "history": chain.history,
                            "models": models,
                        },
                    }
                )
            elif iteration == config.max_iterations:
                step["decision"] = "dropped"
                _drop(
                    writers,
                    chain,
                    f"|gap| stayed at most {config.gap_threshold:g} for {iteration} rounds",
                )
            elif not rubrics.get(chain.metadata.key):
                fail(
                    chain, iteration, "improve", "no rubric was written for this metadata entry", []
                )
            else:
                to_improve.append(chain)

        # Self-Rubrics improvement: one randomly chosen action per instruction and round.
        actions = [
            random.Random(f"{config.seed}:{c.id}:{iteration}").choice(rubrics[c.metadata.key])
            for c in to_improve
        ]
        prompts = [
            user(
                render(
                    improve_template,
                    use_case=c.metadata.use_case,
                    skills=", ".join(c.metadata.skills),
                    rubric=r.rubric,
                    action=r.action,
                    instruction=c.instruction,
                )
            )
            for c, r in zip(to_improve, actions, strict=True)
        ]
        improved = ask(
            roles["strong"],
            prompts,
            improve_params,
            _improved_of([c.instruction for c in to_improve]),
            *reasks,
        )
        active = []
        for chain, rubric, answer in zip(to_improve, actions, improved, strict=True):
            step = chain.history[-1]
            step["action"] = {"rubric": rubric.rubric, "action": rubric.action}
            step["unparsable"] += answer.unparsable
            if answer.value is None:
                fail(chain, iteration, "improve", answer.error, list(answer.replies))
                continue
            step["decision"] = "improved"
            chain.instruction = answer.value
            active.append(chain)


def _nonempty(text: str, i: int) -> str:
    if not text.strip():
        raise ParseError("the answer is empty")
    return text


def _improved_of(originals: list[str]) -> Callable[[str, int], str]:
    """The parser of the improver's replies to ``originals``, by position."""
    return lambda text, i: parse_improved(text, originals[i])


def _drop(writers: dict[str, RecordWriter], chain: Chain, reason: str) -> None:
    writers["dropped"].write(
        {
            "id": chain.id,
            "reason": reason,
            "instruction": chain.instruction,
            "metadata": chain.metadata.to_dict(),
            "history": chain.history,
        }
    )
