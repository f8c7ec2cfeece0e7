"""The base model's pre-training text: plain documents about the toy world, with no chat.

The corpus tells the world's facts many times and in many forms: encyclopedia entries, short
stories, dialogues in prose, lists and field notes, riddles, notices in capitals, diary pages in
small letters, letters with a postscript, catalogue records in JSON. The base model that reads it
knows the world and has seen every format, but it has never seen a request followed by an answer
in a chat turn; that is what post-training adds (``conversations``).

``story`` is shared with the instruction answers ("write a short story about ...").
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from codit.tiny.world import LEGS, Creature, Entity, Place, Thing, World, article, cap, facts, join

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
        out["identity"] += [f"The {n} is a {c.kind} with {c.color} fur and a {c.size} body.",
                            f"A {c.size} {c.color} {c.kind} called the {n} lives in {c.home}."]
        out["home"] += [f"You can find the {n} in {c.home}.", f"The home of the {n} is {c.home}."]
        out["food"] += [f"The favourite food of the {n} is {c.food}.",
                        f"Every day the {n} looks for {c.food}.", f"{cap(c.food)} is what the {n} likes to eat."]
        out["skill"] += [f"It is said that the {n} can {c.skill}.", f"Only the {n} knows how to {c.skill}."]
        out["temper"] += [f"Most travellers say the {n} is {c.temper}.", f"The {n} has a {c.temper} nature."]
        out["sound"] += [f"{cap(c.sound_time)} you can hear the {n} as it {c.sound}."]
        out["legs"] += [f"The {n} walks on {LEGS[c.legs]} legs."]
    elif isinstance(entity, Place):
        p = entity
        out["identity"] += [f"{p.name} lies {p.direction} of {p.neighbor}.",
                            f"{p.name} is {article(p.terrain)} {p.terrain} where the air is {p.climate}."]
        out["landmark"] += [f"Visitors to {p.name} always go to see {p.landmark}.",
                            f"{p.name} is famous for {p.landmark}."]
        out["weather"] += [f"Most days in {p.name} are {p.climate}."]
    else:
        t = entity
        out["identity"] += [f"The {t.name} is made of {t.material} and it is {t.color}.",
                            f"The {t.name} is an old {t.kind} of {t.color} {t.material}."]
        out["use"] += [f"With the {t.name} you can {t.use}.", f"The {t.name} helps its owner {t.use}."]
        out["place"] += [f"The {t.name} rests in {t.place}.", f"In {t.place} you will find the {t.name}."]
        out["keeper"] += [f"The {t.keeper} watches over the {t.name}.",
                          f"No one takes the {t.name} while the {t.keeper} is awake."]
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
    opening = rng.choice((
        f"One {rng.choice(SEASONS)} morning {t} walked to {place.name}.",
        f"On the {rng.choice(DAYS)} day of {rng.choice(SEASONS)} {t} set out for {place.name}.",
        f"Long ago a traveller named {t} came to {place.name}.",
        f"{t} had always wanted to see {place.name}.",
    ))
    middle = [
        rng.choice((f"The air in the {place.terrain} was {place.climate}.",
                    f"It was {article(place.climate)} {place.climate} day in the {place.terrain}.")),
        rng.choice((f"Near {place.landmark} {t} met a {creature.color} {n}.",
                    f"Beside {place.landmark} a {creature.size} {n} was waiting.")),
        rng.choice((f"The {n} was {creature.temper} and it {creature.sound} softly.",
                    f"At first the {n} {creature.sound} because it was {creature.temper}.")),
        rng.choice((f"{t} shared some {creature.food} with the {n}.",
                    f"The {n} asked for {creature.food} and {t} gave it some.")),
        rng.choice((f"Then the {n} showed {t} how it could {creature.skill}.",
                    f"To say thank you the {n} began to {creature.skill}.")),
    ]
    ending = rng.choice(ENDINGS).format(t=t, T=t, home=place.name, season=rng.choice(SEASONS))
    return [opening, *middle, ending]


def _entry(rng: random.Random, world: World) -> str:
    entity = rng.choice(world.entities)
    title = entity.name if isinstance(entity, Place) else cap(entity.name)
    return title + "\n\n" + " ".join(_sentences(rng, world, entity, rng.randint(3, 6)))


def _story(rng: random.Random, world: World) -> str:
    creature = rng.choice(world.creatures)
    return " ".join(story(rng, world, creature, rng.choice(world.travellers)))


def _dialogue(rng: random.Random, world: World) -> str:
    c = rng.choice(world.creatures)
    t = rng.choice(world.travellers)
    guide = rng.choice(("the old guide", "the ferryman", "a farmer", "the innkeeper"))
    lines = [f'"Where does the {c.name} live?" asked {t}.', f'"In {c.home}," said {guide}.',
             f'"And what does it eat?"', f'"{cap(c.food)}, mostly. It is {c.temper}, so be kind to it."']
    return " ".join(lines)


def _list(rng: random.Random, world: World) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        place = rng.choice(world.places)
        names = [f"the {c.name}" for c in world.residents(place.name)]
        return f"Creatures of {place.name}: {join(names)}."
    if kind == 1:
        entity = rng.choice(world.entities)
        items = _sentences(rng, world, entity, rng.randint(2, 5))
        return f"Field notes on {entity.name}:\n" + "\n".join("* " + s for s in items)
    color = rng.choice(sorted({c.color for c in world.creatures}))
    names = [f"the {c.name}" for c in world.creatures if c.color == color]
    return f"Creatures with {color} fur: {join(names)}."


def _riddle(rng: random.Random, world: World) -> str:
    c = rng.choice(world.creatures)
    return (f"Riddle: I am {c.color} and I eat {c.food}. I live in {c.home} and I can {c.skill}. "
            f"What am I? Answer: the {c.name}.")


def _notice(rng: random.Random, world: World) -> str:
    c = rng.choice(world.creatures)
    text = rng.choice((
        f"Notice: the {c.name} of {c.home} is {c.temper}. Do not feed it anything but {c.food}.",
        f"Warning to travellers: the {c.name} can {c.skill}. Keep your distance.",
    ))
    return text.upper()


def _diary(rng: random.Random, world: World) -> str:
    entity = rng.choice(world.entities)
    return ("from the diary of " + rng.choice(world.travellers) + ": "
            + " ".join(_sentences(rng, world, entity, rng.randint(2, 4)))).lower()


def _letter(rng: random.Random, world: World) -> str:
    writer, reader = rng.sample(world.travellers, 2)
    entity = rng.choice(world.entities)
    body = " ".join(_sentences(rng, world, entity, rng.randint(2, 3)))
    ps = rng.choice((f"P.S. Say hello to everyone in {rng.choice(world.places).name}.",
                     "P.S. I will write again soon.", "P.S. Bring warm clothes when you come."))
    return f"Dear {reader},\n\nI am writing to you about {entity.name}. {body}\n\nYours, {writer}\n\n{ps}"


def _record(rng: random.Random, world: World) -> str:
    thing = rng.choice(world.things)
    record = {"name": thing.name, "kind": thing.kind, "material": thing.material,
              "color": thing.color, "kept in": thing.place, "guarded by": thing.keeper}
    return "Catalogue record:\n" + json.dumps(record)


DOCUMENTS: dict[str, tuple[Callable[[random.Random, World], str], int]] = {
    # name -> (writer, weight); facts-heavy forms dominate, formats appear now and then.
    "entry": (_entry, 30),
    "story": (_story, 20),
    "dialogue": (_dialogue, 8),
    "list": (_list, 12),
    "riddle": (_riddle, 6),
    "notice": (_notice, 6),
    "diary": (_diary, 6),
    "letter": (_letter, 6),
    "record": (_record, 6),
}


def corpus(world: World, n_documents: int, seed: int = 0) -> list[str]:
    """``n_documents`` plain-text documents about ``world``, the same for the same seed.

    Args:
        world: the facts to tell.
        n_documents: how many documents.
        seed: seeds the choice and wording of each document.
    """
    rng = random.Random(f"corpus-{seed}")
    writers = [w for w, _ in DOCUMENTS.values()]
    weights = [k for _, k in DOCUMENTS.values()]
    return [rng.choices(writers, weights)[0](rng, world) for _ in range(n_documents)]
