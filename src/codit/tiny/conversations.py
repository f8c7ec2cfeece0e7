"""Instruction conversations for post-training, and held-out prompts for evaluation.

Every (entity, kind of question) pair of the world is either a training pair or a held-out
pair, chosen by the seed: the instruct model is post-trained on conversations about training
pairs only, and evaluated on prompts about held-out pairs, so no held-out question (with or
without its instructions) was ever seen in post-training. The base model read about every
entity in the corpus, so both models know the facts the held-out questions ask about.

Most prompts carry zero to three verifiable instructions (``instructions``) appended to the
question, as in IFEval; the answer (``responses``) follows all of them, which is checked with
``codit.evaluation.checks`` before an example is kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from codit.evaluation.checks import follows
from codit.tiny.instructions import FAMILIES, compatible, phrase
from codit.tiny.questions import Question, ask, kinds_of
from codit.tiny.responses import draw_arguments, respond
from codit.tiny.world import Entity, World

SYSTEM_PROMPTS = (
    "You are a helpful guide to the world.",
    "You answer questions about the places, creatures and things of the world.",
    "You are a friendly assistant.",
)
REPEAT = "combination:repeat_prompt"
CONSTRAINED = "detectable_format:constrained_response"
# How many instructions a prompt carries: (0, 1, 2, 3) with these weights.
TRAIN_COUNTS = (20, 45, 27, 8)
HELDOUT_COUNTS = (0, 50, 40, 10)


@dataclass(frozen=True)
class Example:
    """One single-turn conversation with its verifiable instructions (IFEval fields)."""

    key: int
    prompt: str
    response: str
    instruction_id_list: list[str] = field(default_factory=list)
    kwargs: list[dict[str, Any]] = field(default_factory=list)
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        """The conversation in TRL's conversational format."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [
            *head,
            {"role": "user", "content": self.prompt},
            {"role": "assistant", "content": self.response},
        ]

    def ifeval(self) -> dict[str, Any]:
        """The prompt as a line of IFEval's ``input_data.jsonl``."""
        return {
            "key": self.key,
            "prompt": self.prompt,
            "instruction_id_list": self.instruction_id_list,
            "kwargs": self.kwargs,
        }


def split_pairs(
    world: World, seed: int, heldout_share: float = 0.12
) -> tuple[list[tuple[Entity, str]], list[tuple[Entity, str]]]:
    """(training pairs, held-out pairs) of (entity, question kind)."""
    pairs = [(e, k) for e in world.entities for k in kinds_of(e)]
    rng = random.Random(f"split-{seed}")
    rng.shuffle(pairs)
    cut = round(len(pairs) * heldout_share)
    return pairs[cut:], pairs[:cut]


def _draw_ids(rng: random.Random, question: Question, k: int) -> list[str]:
    ids: list[str] = []
    if question.kind == "yesno" and k and rng.random() < 0.5:
        ids.append(CONSTRAINED)
    pool = [i for i in FAMILIES if i != CONSTRAINED or question.kind == "yesno"]
    while len(ids) < k:
        options = [i for i in pool if compatible(ids, i)]
        if not options:
            break
        ids.append(rng.choice(options))
    # the repeat instruction is the prompt's last sentence, as in IFEval
    return sorted(ids, key=lambda i: i == REPEAT)


def make_example(
    rng: random.Random, world: World, entity: Entity, kind: str, k: int, key: int
) -> Example | None:
    """One conversation about ``entity`` with ``k`` instructions, or None if the draw fails.

    A draw fails when the answer cannot follow every instruction (e.g. a forbidden word that is
    the whole answer); the caller draws again.
    """
    question = ask(rng, entity, kind)
    ids = _draw_ids(rng, question, k)
    kwargs = draw_arguments(rng, world, question, ids)
    variant = {i: rng.randrange(4) for i in ids}
    # the repeated request holds no counts (they conflict with REPEAT), so it can be worded now
    request = (
        " ".join([question.text] + [phrase(i, kwargs[i], variant[i]) for i in ids[:-1]])
        if REPEAT in ids
        else ""
    )
    response, kwargs = respond(
        rng, world, question, request, ids, kwargs, kinds_of(entity)[kind].short
    )
    prompt = " ".join([question.text] + [phrase(i, kwargs[i], variant[i]) for i in ids])
    arguments = [kwargs[i] for i in ids]
    if not response.strip() or not all(
        follows(i, response, a, prompt=prompt) for i, a in zip(ids, arguments, strict=True)
    ):
        return None
    return Example(key, prompt, response, ids, arguments)


def _examples(
    rng: random.Random,
    world: World,
    pairs: list[tuple[Entity, str]],
    n: int,
    counts: tuple[int, ...],
    system_share: float,
    unique_from: set[str],
) -> list[Example]:
    out: list[Example] = []
    seen = set(unique_from)
    while len(out) < n:
        entity, kind = rng.choice(pairs)
        k = rng.choices(range(len(counts)), counts)[0]
        example = make_example(rng, world, entity, kind, k, key=len(out))
        if example is None or example.prompt in seen:
            continue
        seen.add(example.prompt)
        if rng.random() < system_share:
            example = Example(
                example.key,
                example.prompt,
                example.response,
                example.instruction_id_list,
                example.kwargs,
                rng.choice(SYSTEM_PROMPTS),
            )
        out.append(example)
    return out


def instruction_data(
    world: World, n_train: int, n_heldout: int, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """(post-training conversations, held-out evaluation prompts), the same for the same seed.

    Args:
        world: the facts.
        n_train: number of training conversations (prompts are distinct).
        n_heldout: number of held-out prompts; each carries at least one instruction.
        seed: seeds the split of question pairs and every draw.
    """
    train_pairs, heldout_pairs = split_pairs(world, seed)
    rng = random.Random(f"conversations-{seed}")
    train = _examples(rng, world, train_pairs, n_train, TRAIN_COUNTS, 0.1, set())
    heldout = _examples(
        rng, world, heldout_pairs, n_heldout, HELDOUT_COUNTS, 0.0, {e.prompt for e in train}
    )
    return train, heldout
