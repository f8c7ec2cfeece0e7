"""Questions a user asks about the toy world, and the facts that answer each of them.

A question is about one entity and of one kind ("where does it live", "tell me about it", "write
a story", "is it red?"). ``QUESTION_KINDS`` lists the wordings of each kind and the order in
which the entity's facts answer it: the first fact is the direct answer, the next ones are what
a longer answer adds. ``answer_sentences`` turns a question into those sentences;
``responses`` then shapes them to the instructions of the prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from codit.tiny.corpus import story
from codit.tiny.world import COLORS, Creature, Entity, Place, World, cap, facts, reference


@dataclass(frozen=True)
class Kind:
    """A kind of question: its wordings and the facts that answer it, most direct first."""

    wordings: tuple[str, ...]
    topics: tuple[str, ...]
    short: int = 1  # sentences of a plain answer


CREATURE_KINDS: dict[str, Kind] = {
    "describe": Kind(
        (
            "Tell me about the {name}.",
            "What do you know about the {name}?",
            "Describe the {name}.",
            "Can you describe the {name} for me?",
        ),
        ("identity", "food", "skill", "temper", "sound", "legs", "home"),
        3,
    ),
    "home": Kind(
        (
            "Where does the {name} live?",
            "Where can I find the {name}?",
            "In which place does the {name} live?",
        ),
        ("home", "identity", "food", "temper", "skill", "sound", "legs"),
        1,
    ),
    "food": Kind(
        ("What does the {name} eat?", "What is the favourite food of the {name}?"),
        ("food", "identity", "home", "skill", "temper", "sound", "legs"),
        1,
    ),
    "looks": Kind(
        ("What does the {name} look like?", "How big is the {name}?"),
        ("identity", "legs", "sound", "temper", "food", "skill", "home"),
        2,
    ),
    "skill": Kind(
        ("What can the {name} do?", "What is special about the {name}?"),
        ("skill", "identity", "temper", "sound", "food", "legs", "home"),
        1,
    ),
    "story": Kind(
        ("Write a short story about the {name}.", "Tell me a story about the {name}."), (), 7
    ),
    "yesno": Kind(("Is the {name} {color}?",), ("identity", "home", "food", "skill"), 2),
}
PLACE_KINDS: dict[str, Kind] = {
    "describe": Kind(
        ("Tell me about {name}.", "What is {name} like?", "Describe {name}."),
        ("identity", "landmark", "residents", "weather", "treasure"),
        3,
    ),
    "residents": Kind(
        ("Which creatures live in {name}?", "Who lives in {name}?"),
        ("residents", "identity", "landmark", "weather", "treasure"),
        1,
    ),
    "landmark": Kind(
        ("What can I see in {name}?", "What stands in the middle of {name}?"),
        ("landmark", "identity", "residents", "weather", "treasure"),
        1,
    ),
    "where": Kind(
        ("Where is {name}?", "How do I get to {name}?"),
        ("identity", "landmark", "weather", "residents", "treasure"),
        1,
    ),
}
THING_KINDS: dict[str, Kind] = {
    "describe": Kind(
        ("Tell me about the {name}.", "What is the {name}?", "Describe the {name}."),
        ("identity", "use", "place", "keeper"),
        3,
    ),
    "use": Kind(
        ("What is the {name} used for?", "Why do people want the {name}?"),
        ("use", "identity", "place", "keeper"),
        1,
    ),
    "where": Kind(
        ("Where is the {name} kept?", "Where can I find the {name}?"),
        ("place", "keeper", "identity", "use"),
        1,
    ),
    "material": Kind(("What is the {name} made of?",), ("identity", "use", "place", "keeper"), 1),
}


def kinds_of(entity: Entity) -> dict[str, Kind]:
    if isinstance(entity, Creature):
        return CREATURE_KINDS
    return PLACE_KINDS if isinstance(entity, Place) else THING_KINDS


@dataclass(frozen=True)
class Question:
    """One question: about ``entity``, of kind ``kind``, worded as ``text``.

    For a yes/no question ``claim`` is the colour asked about and ``truth`` whether it holds.
    """

    entity: Entity
    kind: str
    text: str
    claim: str | None = None
    truth: bool | None = None


def ask(rng: random.Random, entity: Entity, kind: str) -> Question:
    """Word a question of ``kind`` about ``entity``."""
    wording = rng.choice(kinds_of(entity)[kind].wordings)
    if kind != "yesno":
        return Question(entity, kind, wording.format(name=entity.name))
    assert isinstance(entity, Creature)
    truth = rng.random() < 0.5
    color = entity.color if truth else rng.choice([c for c in COLORS if c != entity.color])
    return Question(entity, kind, wording.format(name=entity.name, color=color), color, truth)


def answer_sentences(
    rng: random.Random, world: World, question: Question, hide_name: bool = False
) -> list[str]:
    """Every sentence a full answer could use, the direct answer first.

    Args:
        rng: chooses the story's traveller and wording.
        world: the facts.
        question: what was asked.
        hide_name: name the entity without its name (for "do not use the word X").
    """
    entity = question.entity
    if question.kind == "story":
        assert isinstance(entity, Creature)
        return story(rng, world, entity, rng.choice(world.travellers))
    known = facts(world, entity, reference(entity, hide_name))
    topics = [t for t in kinds_of(entity)[question.kind].topics if t in known]
    sentences = [known[t] for t in topics]
    if question.kind == "yesno":
        assert isinstance(entity, Creature)
        ref = cap(reference(entity, hide_name))
        verdict = "Yes." if question.truth else f"No. {ref} is not {question.claim}."
        sentences = [verdict, *sentences]
    return sentences
