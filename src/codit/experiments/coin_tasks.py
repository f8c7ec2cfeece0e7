"""The toy benchmark of ``codit experiment coin``: five questions about one kind of sentence.

CoIN (Yan et al., 2024) trains on FLAN tasks and is scored PromptBench-style: each task is asked
with six instructions the model has not been trained on, each instruction perturbed at four
levels (character, word, sentence, semantic), zero-shot greedy answers of a few tokens, exact
match; the spread over the six instructions measures how much the wording matters. This module
is that benchmark in miniature, over the world the tiny pair knows.

Every input is the same kind of sentence, an encounter such as "Ada saw a small red fox near
Fernmere." (three sentence shapes), and the five tasks ask a different question about it:
``size`` (big or small?), ``warm`` (is its colour warm?), ``fly`` (can that kind of animal
fly?), ``water`` (does it live in water?) and ``fur`` (does it have fur?). Only the instruction
says which question is asked, so a model that misreads a perturbed instruction answers the wrong
one: the instruction matters, as it does for an LLM. Each answer is one word; the two answers
of a task are equally likely.

Every task has four training wordings, six unseen test wordings and a hand-written rewording of
each test wording (the semantic level); the character, word and sentence levels come from
``codit.paraphrase.perturb``. Everything is pure and seeded.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Collection
from dataclasses import dataclass

from codit.paraphrase.perturb import PERTURBATIONS
from codit.tiny.world import COLORS, SIZES, World

LEVELS = ("clean", "char", "word", "sentence", "semantic")
PERTURBED = LEVELS[1:]
SHAPES = (
    "{who} saw a {size} {color} {kind} near {where}.",
    "Near {where}, {who} met a {size} {color} {kind}.",
    "A {size} {color} {kind} crossed the path of {who} in {where}.",
)
WARM = frozenset({"red", "orange", "yellow", "golden", "brown"})
FLYING = frozenset({"heron", "crane", "owl", "finch", "moth", "beetle"})
AQUATIC = frozenset({"otter", "toad", "newt", "crab"})
FURRY = frozenset({"fox", "otter", "badger", "hare", "wolf"})


@dataclass(frozen=True)
class Instance:
    """One input of a task and its gold label; ``key`` identifies it (train and test never share one)."""

    key: str
    text: str
    label: str


@dataclass(frozen=True)
class Task:
    """A task: which part of the encounter it judges, the values that mean ``answers[0]``, and
    its wordings."""

    name: str
    slot: str  # size, color or kind
    positive: frozenset[str]  # slot values whose answer is answers[0]
    answers: tuple[str, str]
    train: tuple[str, ...]  # wordings used in training
    test: tuple[str, ...]  # six unseen wordings, the benchmark's instructions
    reworded: tuple[str, ...]  # the semantic-level rewording of each test wording


def encounter(rng: random.Random, world: World, task: Task) -> Instance:
    """A random encounter sentence whose answer to ``task`` is either answer with equal chance."""
    pools = {
        "size": list(SIZES),
        "color": list(COLORS),
        "kind": sorted({c.kind for c in world.creatures}),
    }
    parts = {slot: rng.choice(pool) for slot, pool in pools.items()}
    yes = rng.random() < 0.5
    parts[task.slot] = rng.choice([v for v in pools[task.slot] if (v in task.positive) == yes])
    parts |= {"who": rng.choice(world.travellers), "where": rng.choice(world.places).name}
    text = "Sentence: " + rng.choice(SHAPES).format(**parts)
    return Instance(f"{task.name}/{text}", text, task.answers[0 if yes else 1])


TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "size",
            "size",
            frozenset({"large", "huge"}),
            ("big", "small"),
            train=(
                "Is the animal in the sentence big or small?",
                "Say whether the animal that was seen is big or small.",
                "Read the sentence: was the animal big or small?",
                "Big or small: which describes the animal below?",
            ),
            test=(
                "Was the animal in this sentence big or small?",
                "Decide if the animal is big or small.",
                "Tell me whether the animal is big or small.",
                "Classify the animal's size as big or small.",
                "Is the animal described below big or small?",
                "State if the animal was big or small.",
            ),
            reworded=(
                "Would you call the animal in the sentence big or small?",
                "Work out whether the animal is big or small.",
                "Does the sentence describe a big animal or a small one?",
                "Report if the animal was big or small.",
                "Judge the size of the animal: big or small?",
                "Big or small, what was the animal that is described?",
            ),
        ),
        Task(
            "warm",
            "color",
            WARM,
            ("yes", "no"),
            train=(
                "Is the animal's colour a warm colour?",
                "Say whether the animal that was seen has a warm colour.",
                "Read the sentence: is the animal warmly coloured?",
                "Does the animal below have a warm colour?",
            ),
            test=(
                "Is the animal in this sentence a warm color?",
                "Decide if the animal's colour is warm.",
                "Tell me whether the animal has a warm colour.",
                "Check if the colour of the animal is a warm one.",
                "Is the colour of the animal described below warm?",
                "State if the animal's color is warm.",
            ),
            reworded=(
                "Would you call the animal's colour warm?",
                "Work out whether the animal has a warm colour.",
                "Does the sentence describe an animal of a warm colour?",
                "Report if the animal's colour is warm.",
                "Judge the colour of the animal: is it warm?",
                "Is the described animal warmly coloured?",
            ),
        ),
        Task(
            "fly",
            "kind",
            FLYING,
            ("yes", "no"),
            train=(
                "Can the animal in the sentence fly?",
                "Say whether the animal that was seen can fly.",
                "Read the sentence: is the animal able to fly?",
                "Does the animal below fly?",
            ),
            test=(
                "Is the animal in this sentence able to fly?",
                "Decide if the animal can fly.",
                "Tell me whether the animal flies.",
                "Check if the animal can fly.",
                "Can the animal described below fly?",
                "State if the animal is a flyer.",
            ),
            reworded=(
                "Would the animal in the sentence be able to take to the air?",
                "Work out whether the animal can fly.",
                "Does the sentence describe an animal that flies?",
                "Report if the animal can fly.",
                "Judge the animal: can it fly?",
                "Is the described animal capable of flight?",
            ),
        ),
        Task(
            "water",
            "kind",
            AQUATIC,
            ("yes", "no"),
            train=(
                "Does the animal in the sentence live in water?",
                "Say whether the animal that was seen lives in water.",
                "Read the sentence: is the animal a water animal?",
                "Is the animal below at home in water?",
            ),
            test=(
                "Is the animal in this sentence a water animal?",
                "Decide if the animal lives in water.",
                "Tell me whether the animal lives in the water.",
                "Check if the animal is at home in water.",
                "Does the animal described below live in water?",
                "State if the animal lives in water.",
            ),
            reworded=(
                "Would the animal in the sentence make its home in water?",
                "Work out whether the animal lives in water.",
                "Does the sentence describe an animal that lives in water?",
                "Report if the animal is a water dweller.",
                "Judge the animal: does it live in water?",
                "Is the described animal aquatic?",
            ),
        ),
        Task(
            "fur",
            "kind",
            FURRY,
            ("yes", "no"),
            train=(
                "Does the animal in the sentence have fur?",
                "Say whether the animal that was seen has fur.",
                "Read the sentence: is the animal furry?",
                "Is the animal below covered in fur?",
            ),
            test=(
                "Is the animal in this sentence furry?",
                "Decide if the animal has fur.",
                "Tell me whether the animal has fur.",
                "Check if the animal is covered in fur.",
                "Does the animal described below have fur?",
                "State if the animal has fur.",
            ),
            reworded=(
                "Would the animal in the sentence have a furry coat?",
                "Work out whether the animal has fur.",
                "Does the sentence describe an animal with fur?",
                "Report if the animal has fur.",
                "Judge the animal: does it have fur?",
                "Is the described animal furry?",
            ),
        ),
    )
}


def prompt(instruction: str, instance: Instance) -> str:
    """The user turn: the instruction, then the input (FLAN's layout)."""
    return f"{instruction}\n{instance.text}"


def _rng(*parts: object) -> random.Random:
    """A generator seeded by ``parts``, the same on every machine and Python run."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def draw_instances(
    world: World, task: Task, n: int, seed: object, exclude: Collection[str] = ()
) -> list[Instance]:
    """``n`` distinct instances of ``task`` whose keys are not in ``exclude``.

    Raises:
        ValueError: the task has fewer than ``n`` such instances.
    """
    rng, seen = _rng(task.name, seed), set(exclude)
    out: list[Instance] = []
    for _ in range(50 * n + 1000):
        if len(out) == n:
            break
        instance = encounter(rng, world, task)
        if instance.key not in seen:
            seen.add(instance.key)
            out.append(instance)
    if len(out) < n:
        raise ValueError(
            f"task {task.name} has fewer than {n} distinct instances left (found {len(out)})"
        )
    return out


def eval_instruction(task: Task, index: int, level: str) -> str:
    """Test wording ``index`` of ``task`` at a perturbation ``level`` (fixed for every run)."""
    if level == "clean":
        return task.test[index]
    if level == "semantic":
        return task.reworded[index]
    return PERTURBATIONS[level](task.test[index], _rng("test", task.name, index, level))


def paraphrase(task: Task, index: int, rng: random.Random) -> tuple[str, str]:
    """A paraphrase of training wording ``index`` for CoIN's pairs, and its level.

    The level is drawn uniformly from character, word, sentence and semantic; the semantic
    level is another training wording of the same task.
    """
    level = rng.choice(PERTURBED)
    if level == "semantic":
        others = [w for i, w in enumerate(task.train) if i != index]
        return rng.choice(others), level
    return PERTURBATIONS[level](task.train[index], rng), level


_ANSWER = re.compile(r"[a-z]+")


def predicted_label(response: str) -> str:
    """The first word of a response, lower-cased (``"Yes."`` -> ``"yes"``; empty if none)."""
    match = _ANSWER.search(response.lower())
    return match[0] if match else ""


def is_correct(response: str, label: str) -> bool:
    """Exact match of the response's first word with the gold label, ignoring case."""
    return predicted_label(response) == label.lower()
