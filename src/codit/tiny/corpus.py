"""The base model's pre-training text: plain documents about the toy world, with no chat.

The corpus tells the world's facts many times and in many forms: encyclopedia entries, short
stories, dialogues in prose, lists and field notes, riddles, notices in capitals, diary pages in
small letters, letters with a postscript, catalogue records in JSON. Each page gathers a few of
these about one entity. The base model that reads it knows the world and has seen every format,
but it has never seen a request followed by an answer in a chat turn; that is what
post-training adds (``conversations``).

``story`` is shared with the instruction answers ("write a short story about ...").
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from codit.tiny.world import (
    LEGS,
    Creature,
    Entity,
    Place,
    World,
    article,
    cap,
    facts,
    join,
    reference,
)

SEASONS = ("spring", "summer", "autumn", "winter")
DAYS = ("first", "second", "third", "fourth", "fifth", "seventh", "tenth")
ENDINGS = (
    "In the end {t} went home happy.",
    "{T} never forgot that day.",
    "That night {t} wrote everything down in a small book.",
    "From then on {t} visited {home} every {season}.",
    "And that is why the people of {home} still tell this story.",
)


def variants(world: World, entity: Entity) -> dict[str, list[str]]:
    """Several wordings of each fact, for the corpus; the first one is ``facts``' wording."""
    base = facts(world, entity)
    out = {topic: [sentence] for topic, sentence in base.items()}
    if isinstance(entity, Creature):
        c, n = entity, entity.name
        out["identity"] += [
            f"The {n} is a {c.kind} with {c.color} fur and a {c.size} body.",
            f"A {c.size} {c.color} {c.kind} called the {n} lives in {c.home}.",
        ]
        out["home"] += [f"You can find the {n} in {c.home}.", f"The home of the {n} is {c.home}."]
        out["food"] += [
            f"The favourite food of the {n} is {c.food}.",
            f"Every day the {n} looks for {c.food}.",
            f"{cap(c.food)} is what the {n} likes to eat.",
        ]
        out["skill"] += [
            f"It is said that the {n} can {c.skill}.",
            f"Only the {n} knows how to {c.skill}.",
        ]
        out["temper"] += [
            f"Most travellers say the {n} is {c.temper}.",
            f"The {n} has a {c.temper} nature.",
        ]
        out["sound"] += [f"{cap(c.sound_time)} you can hear the {n} as it {c.sound}."]
        out["legs"] += [f"The {n} walks on {LEGS[c.legs]} legs."]
    elif isinstance(entity, Place):
        p = entity
        out["identity"] += [
            f"{p.name} lies {p.direction} of {p.neighbor}.",
            f"{p.name} is {article(p.terrain)} {p.terrain} where the air is {p.climate}.",
        ]
        out["landmark"] += [
            f"Visitors to {p.name} always go to see {p.landmark}.",
            f"{p.name} is famous for {p.landmark}.",
        ]
        out["weather"] += [f"Most days in {p.name} are {p.climate}."]
    else:
        t = entity
        out["identity"] += [
            f"The {t.name} is made of {t.material} and it is {t.color}.",
            f"The {t.name} is an old {t.kind} of {t.color} {t.material}.",
        ]
        out["use"] += [
            f"With the {t.name} you can {t.use}.",
            f"The {t.name} helps its owner {t.use}.",
        ]
        out["place"] += [
            f"The {t.name} rests in {t.place}.",
            f"In {t.place} you will find the {t.name}.",
        ]
        out["keeper"] += [
            f"The {t.keeper} watches over the {t.name}.",
            f"No one takes the {t.name} while the {t.keeper} is awake.",
        ]
    return out


def _sentences(rng: random.Random, world: World, entity: Entity, k: int) -> list[str]:
    """``k`` facts about the entity, each in a random wording, in a random order."""
    options = variants(world, entity)
    topics = rng.sample(sorted(options), min(k, len(options)))
    return [rng.choice(options[topic]) for topic in topics]


def story(rng: random.Random, world: World, creature: Creature, traveller: str) -> list[str]:
    """A short story (a list of sentences) in which a traveller meets ``creature`` at home."""
    place = world.place(creature.home)
    t, n = traveller, creature.name
    opening = rng.choice(
        (
            f"One {rng.choice(SEASONS)} morning {t} walked to {place.name}.",
            f"On the {rng.choice(DAYS)} day of {rng.choice(SEASONS)} {t} set out for {place.name}.",
            f"Long ago a traveller named {t} came to {place.name}.",
            f"{t} had always wanted to see {place.name}.",
        )
    )
    middle = [
        rng.choice(
            (
                f"The air in the {place.terrain} was {place.climate}.",
                f"It was {article(place.climate)} {place.climate} day in the {place.terrain}.",
            )
        ),
        rng.choice(
            (
                f"Near {place.landmark} {t} met a {creature.color} {n}.",
                f"Beside {place.landmark} a {creature.size} {n} was waiting.",
            )
        ),
        rng.choice(
            (
                f"The {n} was {creature.temper} and it {creature.sound} softly.",
                f"At first the {n} {creature.sound} because it was {creature.temper}.",
            )
        ),
        rng.choice(
            (
                f"{t} shared some {creature.food} with the {n}.",
                f"The {n} asked for {creature.food} and {t} gave it some.",
            )
        ),
        rng.choice(
            (
                f"Then the {n} showed {t} how it could {creature.skill}.",
                f"To say thank you the {n} began to {creature.skill}.",
            )
        ),
    ]
    ending = rng.choice(ENDINGS).format(t=t, T=t, home=place.name, season=rng.choice(SEASONS))
    return [opening, *middle, ending]


def _entry(rng: random.Random, world: World, entity: Entity) -> str:
    title = entity.name if isinstance(entity, Place) else cap(entity.name)
    return title + "\n\n" + " ".join(_sentences(rng, world, entity, rng.randint(3, 6)))


def _story(rng: random.Random, world: World, entity: Entity) -> str:
    if isinstance(entity, Creature):
        return " ".join(story(rng, world, entity, rng.choice(world.travellers)))
    if isinstance(entity, Place):  # a story about one of its creatures
        residents = world.residents(entity.name) or list(world.creatures)
        return " ".join(story(rng, world, rng.choice(residents), rng.choice(world.travellers)))
    return (
        f"Long ago the people of {entity.place} made the {entity.name} to {entity.use}. "
        f"They chose {entity.material} because it lasts. Since then the {entity.keeper} has "
        f"guarded it day and night, and only a {rng.choice(('brave', 'kind', 'patient'))} "
        f"traveller may hold it."
    )


def _dialogue(rng: random.Random, world: World, entity: Entity) -> str:
    t = rng.choice(world.travellers)
    guide = rng.choice(("the old guide", "the ferryman", "a farmer", "the innkeeper"))
    if isinstance(entity, Creature):
        return (
            f'"Where does the {entity.name} live?" asked {t}. "In {entity.home}," said {guide}. '
            f'"And what does it eat?" "{cap(entity.food)}, mostly. It is {entity.temper}, so be kind to it."'
        )
    if isinstance(entity, Place):
        return (
            f'"What is {entity.name} like?" asked {t}. "It is {entity.climate}," said {guide}. '
            f'"Go and see {entity.landmark} there."'
        )
    return (
        f'"What is the {entity.name} for?" asked {t}. "To {entity.use}," said {guide}. '
        f'"But the {entity.keeper} will not let you take it."'
    )


def _notes(rng: random.Random, world: World, entity: Entity) -> str:
    items = _sentences(rng, world, entity, rng.randint(2, 5))
    return f"Field notes on {reference(entity)}:\n" + "\n".join("* " + s for s in items)


def _list(rng: random.Random, world: World, entity: Entity) -> str:
    place = (
        entity.name
        if isinstance(entity, Place)
        else (entity.home if isinstance(entity, Creature) else entity.place)
    )
    names = [f"the {c.name}" for c in world.residents(place)]
    things = [f"the {t.name}" for t in world.kept_in(place)]
    text = f"Creatures of {place}: {join(names)}."
    return text + (f" Treasures of {place}: {join(things)}." if things else "")


def _riddle(rng: random.Random, world: World, entity: Entity) -> str:
    if isinstance(entity, Creature):
        return (
            f"Riddle: I am {entity.color} and I eat {entity.food}. I live in {entity.home} "
            f"and I can {entity.skill}. What am I? Answer: the {entity.name}."
        )
    if isinstance(entity, Place):
        return (
            f"Riddle: I am {article(entity.climate)} {entity.climate} {entity.terrain} and "
            f"{entity.landmark} stands in me. What am I? Answer: {entity.name}."
        )
    return (
        f"Riddle: I am made of {entity.material} and people use me to {entity.use}. "
        f"What am I? Answer: the {entity.name}."
    )


def _notice(rng: random.Random, world: World, entity: Entity) -> str:
    if isinstance(entity, Creature):
        text = rng.choice(
            (
                f"Notice: the {entity.name} of {entity.home} is {entity.temper}. Do not feed it anything but {entity.food}.",
                f"Warning to travellers: the {entity.name} can {entity.skill}. Keep your distance.",
            )
        )
    elif isinstance(entity, Place):
        text = (
            f"Welcome to {entity.name}. The weather is {entity.climate}. Visit {entity.landmark}."
        )
    else:
        text = f"Notice: the {entity.name} is guarded by the {entity.keeper}. Do not touch it."
    return text.upper()


def _diary(rng: random.Random, world: World, entity: Entity) -> str:
    return (
        "from the diary of "
        + rng.choice(world.travellers)
        + ": "
        + " ".join(_sentences(rng, world, entity, rng.randint(2, 4)))
    ).lower()


def _letter(rng: random.Random, world: World, entity: Entity) -> str:
    writer, reader = rng.sample(world.travellers, 2)
    body = " ".join(_sentences(rng, world, entity, rng.randint(2, 3)))
    ps = rng.choice(
        (
            f"P.S. Say hello to everyone in {rng.choice(world.places).name}.",
            "P.S. I will write again soon.",
            "P.S. Bring warm clothes when you come.",
        )
    )
    return f"Dear {reader},\n\nI am writing to you about {reference(entity)}. {body}\n\nYours, {writer}\n\n{ps}"


def _record(rng: random.Random, world: World, entity: Entity) -> str:
    if isinstance(entity, Creature):
        fields = {
            "name": entity.name,
            "kind": entity.kind,
            "color": entity.color,
            "home": entity.home,
            "food": entity.food,
            "legs": entity.legs,
        }
    elif isinstance(entity, Place):
        fields = {
            "name": entity.name,
            "terrain": entity.terrain,
            "climate": entity.climate,
            "neighbor": entity.neighbor,
        }
    else:
        fields = {
            "name": entity.name,
            "kind": entity.kind,
            "material": entity.material,
            "color": entity.color,
            "kept in": entity.place,
            "guarded by": entity.keeper,
        }
    return "Catalogue record:\n" + json.dumps(fields)


Writer = Callable[[random.Random, World, Entity], str]
# name -> (writer, weight); facts-heavy forms dominate, formats appear now and then.
DOCUMENTS: dict[str, tuple[Writer, int]] = {
    "entry": (_entry, 30),
    "story": (_story, 20),
    "dialogue": (_dialogue, 8),
    "notes": (_notes, 8),
    "list": (_list, 6),
    "riddle": (_riddle, 6),
    "notice": (_notice, 6),
    "diary": (_diary, 6),
    "letter": (_letter, 6),
    "record": (_record, 6),
}


def page(rng: random.Random, world: World, entity: Entity) -> str:
    """Two to four documents about one entity, as one text: a wiki page, a chapter, a file.

    Keeping a page on one subject teaches the base model to stay on the subject of its context,
    as real base models do; a page never continues past its end (see ``train``).
    """
    writers = [w for w, _ in DOCUMENTS.values()]
    weights = [k for _, k in DOCUMENTS.values()]
    chosen: list[Writer] = []
    for _ in range(rng.randint(2, 4)):
        writer = rng.choices(writers, weights)[0]
        if writer not in chosen:
            chosen.append(writer)
    return "\n\n".join(writer(rng, world, entity) for writer in chosen)


def corpus(world: World, n_pages: int, seed: int = 0) -> list[str]:
    """``n_pages`` plain-text pages about ``world``, the same for the same seed.

    Args:
        world: the facts to tell.
        n_pages: how many pages; each is about one entity, drawn uniformly.
        seed: seeds the choice of entities, forms and wordings.
    """
    rng = random.Random(f"corpus-{seed}")
    return [page(rng, world, rng.choice(world.entities)) for _ in range(n_pages)]
