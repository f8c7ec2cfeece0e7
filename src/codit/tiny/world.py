"""The toy world of codit's tiny model pair: invented places, creatures and things.

``make_world(seed)`` draws a small, self-consistent world: places with a terrain, a climate, a
landmark and a neighbour; creatures living in those places, each with a colour, a size, a food,
a sound, a skill and a temper; things (lanterns, flutes, bells...) kept in a place and guarded
by a creature; and the travellers who walk through the stories. Every choice comes from one
``random.Random(seed)``, so a seed gives exactly the same world on every machine.

``facts`` renders what is true of an entity as plain sentences; the corpus, the instruction
answers and the held-out prompts are all built from them (``corpus``, ``conversations``). The
world is meant to be learnable by a model of two million parameters: a few dozen entities, a
few hundred facts, ordinary English words around invented names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

COLORS = (
    "red",
    "blue",
    "green",
    "silver",
    "golden",
    "grey",
    "white",
    "black",
    "orange",
    "purple",
    "brown",
    "yellow",
)
SIZES = ("tiny", "small", "large", "huge")
FOODS = (
    "berries",
    "river reeds",
    "moss",
    "honey",
    "beetles",
    "seeds",
    "mushrooms",
    "fish",
    "clover",
    "acorns",
    "snow",
    "fallen leaves",
    "moonflowers",
    "pebbles",
)
SOUNDS = ("hums", "whistles", "croaks", "sings", "clicks", "growls", "chirps", "rattles")
SOUND_TIMES = (
    "at night",
    "at dawn",
    "in the rain",
    "when it is happy",
    "before a storm",
    "when it is hungry",
)
LEGS = {2: "two", 4: "four", 6: "six", 8: "eight"}
TEMPERS = (
    "shy",
    "friendly",
    "grumpy",
    "curious",
    "brave",
    "sleepy",
    "playful",
    "proud",
    "gentle",
    "clever",
)
SKILLS = (
    "glow in the dark",
    "swim under the ice",
    "climb the tallest trees",
    "hide in plain sight",
    "dig deep tunnels",
    "sing to the rain",
    "run across water",
    "see through the fog",
    "sleep for a whole winter",
    "carry heavy stones",
    "fly short distances",
    "change its color",
)
TERRAINS = (
    "marsh",
    "forest",
    "valley",
    "hill",
    "island",
    "desert",
    "meadow",
    "canyon",
    "mountain",
    "lagoon",
    "plain",
    "glade",
)
CLIMATES = ("misty", "sunny", "cold", "windy", "rainy", "warm", "snowy", "dry", "foggy", "mild")
LANDMARKS = (
    "an old stone bridge",
    "a leaning tower",
    "a giant hollow tree",
    "a ring of white stones",
    "a silver waterfall",
    "a sleeping volcano",
    "a glass lighthouse",
    "a crooked windmill",
    "a deep blue well",
    "a market of lanterns",
    "a singing cave",
    "a field of tall bells",
)
DIRECTIONS = ("north", "south", "east", "west")
MATERIALS = (
    "oak",
    "copper",
    "glass",
    "silver",
    "bone",
    "clay",
    "iron",
    "gold",
    "stone",
    "reed",
    "crystal",
    "wool",
)
USES = (
    "call the rain",
    "find the way home",
    "wake the sleeping",
    "light the dark roads",
    "keep secrets",
    "count the stars",
    "calm storms",
    "mend broken things",
    "hear distant voices",
    "grow flowers faster",
    "speak with birds",
    "warm cold hands",
)

PLACE_HEADS = (
    "Amber",
    "Bramble",
    "Cinder",
    "Dusk",
    "Ember",
    "Fern",
    "Gloom",
    "Hollow",
    "Ivy",
    "Juniper",
    "Kettle",
    "Maple",
    "Nettle",
    "Otter",
    "Pebble",
    "Quill",
    "Rook",
    "Saffron",
    "Thistle",
    "Willow",
    "Yarrow",
    "Hazel",
    "Lark",
    "Briar",
)
PLACE_TAILS = (
    "moor",
    "vale",
    "fen",
    "holt",
    "mere",
    "crag",
    "wick",
    "ford",
    "dell",
    "haven",
    "marsh",
    "reach",
)
CREATURE_HEADS = (
    "moss",
    "frost",
    "thorn",
    "spark",
    "ash",
    "mist",
    "pebble",
    "cloud",
    "ember",
    "reed",
    "shadow",
    "sun",
    "moon",
    "storm",
    "dew",
    "bramble",
    "copper",
    "silver",
    "honey",
    "pine",
    "puddle",
    "whistle",
    "drum",
    "glimmer",
)
CREATURE_KINDS = (
    "fox",
    "heron",
    "beetle",
    "toad",
    "otter",
    "moth",
    "badger",
    "crane",
    "snail",
    "lizard",
    "owl",
    "hare",
    "newt",
    "wolf",
    "crab",
    "finch",
)
THING_HEADS = (
    "star",
    "dream",
    "wind",
    "rain",
    "song",
    "dawn",
    "echo",
    "root",
    "tide",
    "glow",
    "dusk",
    "frost",
)
THING_KINDS = (
    "lantern",
    "flute",
    "bell",
    "compass",
    "kettle",
    "mirror",
    "drum",
    "crown",
    "harp",
    "key",
    "cloak",
    "map",
    "horn",
    "spoon",
    "wheel",
    "lamp",
)
TRAVELLERS = (
    "Ada",
    "Bram",
    "Cora",
    "Dain",
    "Elsa",
    "Finn",
    "Greta",
    "Hugo",
    "Ines",
    "Joss",
    "Kira",
    "Leo",
    "Mira",
    "Nico",
    "Orla",
    "Pia",
    "Rhys",
    "Sana",
    "Tomas",
    "Vera",
)


@dataclass(frozen=True)
class Place:
    """A region of the world; it lies ``direction`` of ``neighbor``."""

    name: str
    terrain: str
    climate: str
    landmark: str
    neighbor: str
    direction: str


@dataclass(frozen=True)
class Creature:
    """An animal of the world, named after its ``kind`` (``mossfox`` is a fox)."""

    name: str
    kind: str
    color: str
    size: str
    home: str
    food: str
    sound: str
    sound_time: str
    legs: int
    temper: str
    skill: str


@dataclass(frozen=True)
class Thing:
    """A famous object, named after its ``kind`` (``starlantern`` is a lantern)."""

    name: str
    kind: str
    color: str
    material: str
    use: str
    place: str
    keeper: str


Entity = Place | Creature | Thing


@dataclass(frozen=True)
class World:
    """Everything the tiny models know about."""

    seed: int
    places: tuple[Place, ...]
    creatures: tuple[Creature, ...]
    things: tuple[Thing, ...]
    travellers: tuple[str, ...]

    def place(self, name: str) -> Place:
        return next(p for p in self.places if p.name == name)

    def creature(self, name: str) -> Creature:
        return next(c for c in self.creatures if c.name == name)

    def residents(self, place: str) -> list[Creature]:
        return [c for c in self.creatures if c.home == place]

    def kept_in(self, place: str) -> list[Thing]:
        return [t for t in self.things if t.place == place]

    @property
    def entities(self) -> tuple[Entity, ...]:
        return (*self.places, *self.creatures, *self.things)


def _names(
    rng: random.Random, heads: tuple[str, ...], tails: tuple[str, ...], n: int
) -> list[tuple[str, str]]:
    """``n`` distinct (head, tail) pairs, e.g. ("moss", "fox")."""
    pairs = [(h, t) for h in heads for t in tails]
    return rng.sample(pairs, n)


def make_world(
    seed: int = 0, n_places: int = 16, n_creatures: int = 32, n_things: int = 20
) -> World:
    """Draw a world from ``seed``; the same seed always gives the same world.

    Args:
        seed: the only source of randomness.
        n_places: number of places; creatures are spread evenly over them.
        n_creatures: number of creatures.
        n_things: number of things.
    """
    rng = random.Random(seed)
    place_names = [h + t for h, t in _names(rng, PLACE_HEADS, PLACE_TAILS, n_places)]
    order = place_names[:]
    rng.shuffle(order)
    places = []
    for name in place_names:
        neighbor = order[(order.index(name) + 1) % n_places]  # the places form one ring
        places.append(
            Place(
                name=name,
                terrain=rng.choice(TERRAINS),
                climate=rng.choice(CLIMATES),
                landmark=rng.choice(LANDMARKS),
                neighbor=neighbor,
                direction=rng.choice(DIRECTIONS),
            )
        )
    creatures = []
    for i, (head, kind) in enumerate(_names(rng, CREATURE_HEADS, CREATURE_KINDS, n_creatures)):
        creatures.append(
            Creature(
                name=head + kind,
                kind=kind,
                color=rng.choice(COLORS),
                size=rng.choice(SIZES),
                home=place_names[i % n_places],
                food=rng.choice(FOODS),
                sound=rng.choice(SOUNDS),
                sound_time=rng.choice(SOUND_TIMES),
                legs=rng.choice(sorted(LEGS)),
                temper=rng.choice(TEMPERS),
                skill=rng.choice(SKILLS),
            )
        )
    things = []
    for head, kind in _names(rng, THING_HEADS, THING_KINDS, n_things):
        place = rng.choice(place_names)
        keepers = [c.name for c in creatures if c.home == place] or [c.name for c in creatures]
        things.append(
            Thing(
                name=head + kind,
                kind=kind,
                color=rng.choice(COLORS),
                material=rng.choice(MATERIALS),
                use=rng.choice(USES),
                place=place,
                keeper=rng.choice(keepers),
            )
        )
    travellers = tuple(rng.sample(TRAVELLERS, 12))
    return World(seed, tuple(places), tuple(creatures), tuple(things), travellers)


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def cap(text: str) -> str:
    """Capitalise the first letter only (``str.capitalize`` would lower the rest)."""
    return text[:1].upper() + text[1:]


def reference(entity: Entity, hide_name: bool = False) -> str:
    """How an answer names the entity: ``the mossfox``, ``Bramblemere``, or without its name."""
    if isinstance(entity, Place):
        return "this place" if hide_name else entity.name
    if isinstance(entity, Creature):
        return "this creature" if hide_name else f"the {entity.name}"
    return f"this {entity.kind}" if hide_name else f"the {entity.name}"


def facts(world: World, entity: Entity, ref: str | None = None) -> dict[str, str]:
    """The true sentences about ``entity``, by topic, in a plain answer style.

    Args:
        world: the world the entity belongs to.
        entity: a place, creature or thing.
        ref: how to name the entity (default ``reference(entity)``).

    Returns:
        topic -> one sentence; the first topic is the entity's identity.
    """
    r = ref or reference(entity)
    R = cap(r)
    if isinstance(entity, Creature):
        place = world.place(entity.home)
        return {
            "identity": f"{R} is {article(entity.size)} {entity.size} {entity.color} {entity.kind} from {entity.home}.",
            "home": f"{R} lives in {entity.home}, {article(place.climate)} {place.climate} {place.terrain}.",
            "food": f"{R} eats {entity.food}.",
            "skill": f"{R} can {entity.skill}.",
            "temper": f"{R} is {entity.temper} with travellers.",
            "sound": f"{R} {entity.sound} {entity.sound_time}.",
            "legs": f"{R} has {LEGS[entity.legs]} legs.",
        }
    if isinstance(entity, Place):
        out = {
            "identity": f"{R} is {article(entity.climate)} {entity.climate} {entity.terrain} {entity.direction} of {entity.neighbor}.",
            "landmark": f"In the middle of {r} stands {entity.landmark}.",
            "weather": f"The weather in {r} is {entity.climate} most of the year.",
        }
        residents = world.residents(entity.name)
        if residents:
            names = [f"the {c.name}" for c in residents]
            out["residents"] = f"{R} is home to {join(names)}."
        for thing in world.kept_in(entity.name)[:1]:
            out["treasure"] = f"The {thing.name} is kept in {r}."
        return out
    return {
        "identity": f"{R} is {article(entity.color)} {entity.color} {entity.kind} made of {entity.material}.",
        "use": f"People use {r} to {entity.use}.",
        "place": f"{R} is kept in {entity.place}.",
        "keeper": f"{R} is guarded by the {entity.keeper}.",
    }


def join(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
