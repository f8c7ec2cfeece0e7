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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from codit.backends.base import GenerationParams
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
    rounds = _Filter.open(config, roles, rubrics, writers)
    active = chains
    for iteration in range(1, config.max_iterations + 1):
        if not active:
            break
        answered = rounds.answer(active, iteration)
        to_improve = rounds.judge(answered, iteration)
        active = rounds.improve(to_improve, iteration)


Answered = tuple[Chain, tuple[str, str], int]  # (chain, (strong, target) answers, re-asks)


@dataclass(frozen=True)
class _Filter:
    """The settings, templates and writers one chunk's rounds share; one method per step."""

    config: CodecLMConfig
    roles: dict[str, Metered]
    rubrics: dict[str, list[Rubric]]
    writers: dict[str, RecordWriter]
    judge_template: str
    improve_template: str
    answer_params: GenerationParams
    judge_params: GenerationParams
    improve_params: GenerationParams
    orders: list[tuple[int, int]]  # the answers' order in each judging: 0 = strong, 1 = target
    models: dict[str, str]

    @classmethod
    def open(
        cls,
        config: CodecLMConfig,
        roles: dict[str, Metered],
        rubrics: dict[str, list[Rubric]],
        writers: dict[str, RecordWriter],
    ) -> _Filter:
        explained = config.judge_format == "explained"
        # the paper's format is one line of two scores: no JSON schema to wrap it in
        judge_params = dataclasses.replace(
            generation_params(config, SCORES_SCHEMA if explained else None),
            temperature=config.judge_temperature,
        )
        return cls(
            config,
            roles,
            rubrics,
            writers,
            load_template("codeclm_judge_explained" if explained else "codeclm_judge"),
            load_template("codeclm_improve"),
            generation_params(config),
            judge_params,
            generation_params(config, IMPROVED_SCHEMA),
            [(0, 1), (1, 0)] if config.swap_order else [(0, 1)],
            {"strong": model_name(str(config.strong)), "target": model_name(str(config.target))},
        )

    @property
    def reasks(self) -> tuple[int, float]:
        return self.config.parse_retries, self.config.reask_temperature

    def answer(self, active: list[Chain], iteration: int) -> list[Answered]:
        """Both models answer every instruction; a chain whose answer failed ends here."""
        questions = [user(c.instruction) for c in active]
        # An empty answer is asked again; the target may keep it (that too is its behaviour),
        # the strong model may not.
        strong = ask(self.roles["strong"], questions, self.answer_params, _nonempty, *self.reasks)
        target = ask(self.roles["target"], questions, self.answer_params, _nonempty, *self.reasks)
        answered: list[Answered] = []
        for chain, s, t in zip(active, strong, target, strict=True):
            t_text = t.value if t.value is not None else ("" if t.replies else None)
            if s.value is None:
                error = f"the strong model's answer failed: {s.error}"
                self.fail(chain, iteration, "answer", error, list(s.replies))
            elif t_text is None:
                error = f"the target model's answer failed: {t.error}"
                self.fail(chain, iteration, "answer", error, list(t.replies))
            else:
                answered.append((chain, (s.value, t_text), s.unparsable + t.unparsable))
        return answered

    def judge(self, answered: list[Answered], iteration: int) -> list[Chain]:
        """Score both answers in every order, average the gap, decide; the chains to improve."""
        prompts = [
            user(
                render(
                    self.judge_template,
                    instruction=chain.instruction,
                    response_1=texts[a],
                    response_2=texts[b],
                )
            )
            for chain, texts, _ in answered
            for a, b in self.orders
        ]
        verdicts = ask(
            self.roles["judge"],
            prompts,
            self.judge_params,
            lambda text, i: parse_scores(text),
            *self.reasks,
        )
        per_chain = len(self.orders)
        to_improve: list[Chain] = []
        for n, (chain, texts, reasked) in enumerate(answered):
            mine = verdicts[n * per_chain : (n + 1) * per_chain]
            failed = next((v for v in mine if v.value is None), None)
            if failed is not None:
                replies = [r for v in mine for r in v.replies]
                self.fail(chain, iteration, "judge", failed.error, replies)
                continue
            scores: list[list[float]] = [[], []]
            for (first, second), v in zip(self.orders, mine, strict=True):
                assert v.value is not None
                scores[first].append(v.value[0])
                scores[second].append(v.value[1])
            step: dict[str, Any] = {
                "iteration": iteration,
                "instruction": chain.instruction,
                "strong_scores": scores[0],
                "target_scores": scores[1],
                "gap": statistics.fmean(scores[0]) - statistics.fmean(scores[1]),
                "unparsable": reasked + sum(v.unparsable for v in mine),
            }
            chain.history.append(step)
            if self.decide(chain, texts, step):
                to_improve.append(chain)
        return to_improve

    def decide(self, chain: Chain, texts: tuple[str, str], step: dict[str, Any]) -> bool:
        """Keep, drop or fail a judged chain by its gap; True when it goes on to be improved."""
        config, gap, iteration = self.config, step["gap"], step["iteration"]
        source = (
            "strong"
            if gap > config.gap_threshold
            else "target"
            if gap < -config.gap_threshold
            else None
        )
        if source == "target" and not config.keep_target_wins:
            step["decision"] = "dropped"
            reason = "the target won by more than the threshold (--no-keep-target-wins)"
            _drop(self.writers, chain, reason)
        elif source is not None:
            step["decision"] = f"kept_{source}"
            self.writers["kept"].write(self.record(chain, texts, source, step))
        elif iteration == config.max_iterations:
            step["decision"] = "dropped"
            reason = f"|gap| stayed at most {config.gap_threshold:g} for {iteration} rounds"
            _drop(self.writers, chain, reason)
        elif not self.rubrics.get(chain.metadata.key):
            error = "no rubric was written for this metadata entry"
            self.fail(chain, iteration, "improve", error, [])
        else:
            return True
        return False

    def record(
        self, chain: Chain, texts: tuple[str, str], source: str, step: dict[str, Any]
    ) -> dict[str, Any]:
        """The kept pair: the instruction and the winning answer, as a TRL conversation."""
        return {
            "id": chain.id,
            "messages": [
                {"role": "user", "content": chain.instruction},
                {"role": "assistant", "content": texts[0 if source == "strong" else 1]},
            ],
            "meta": {
                "method": "codeclm",
                "source": source,
                "iteration": step["iteration"],
                "gap": step["gap"],
                "metadata": chain.metadata.to_dict(),
                "basic_instruction": chain.basic,
                "history": chain.history,
                "models": self.models,
            },
        }

    def improve(self, to_improve: list[Chain], iteration: int) -> list[Chain]:
        """Self-Rubrics improvement: one randomly chosen action per instruction and round."""
        actions = [
            random.Random(f"{self.config.seed}:{c.id}:{iteration}").choice(
                self.rubrics[c.metadata.key]
            )
            for c in to_improve
        ]
        prompts = [
            user(
                render(
                    self.improve_template,
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
            self.roles["strong"],
            prompts,
            self.improve_params,
            _improved_of([c.instruction for c in to_improve]),
            *self.reasks,
        )
        active = []
        for chain, rubric, answer in zip(to_improve, actions, improved, strict=True):
            step = chain.history[-1]
            step["action"] = {"rubric": rubric.rubric, "action": rubric.action}
            step["unparsable"] += answer.unparsable
            if answer.value is None:
                self.fail(chain, iteration, "improve", answer.error, list(answer.replies))
                continue
            step["decision"] = "improved"
            chain.instruction = answer.value
            active.append(chain)
        return active

    def fail(
        self, chain: Chain, iteration: int, stage: str, error: str | None, replies: list[str]
    ) -> None:
        """End a chain in this round: the error, its replies and its history to the errors file."""
        if not chain.history or chain.history[-1]["iteration"] != iteration:
            chain.history.append({"iteration": iteration, "instruction": chain.instruction})
        chain.history[-1].update(decision="failed", stage=stage)
        self.writers["errors"].write(
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
