"""Answers that follow a prompt's verifiable instructions, built from the world's facts.

``respond`` takes a question and the instruction ids chosen for it and writes the one answer a
perfect assistant would give: it picks how many facts to tell (one for "less than 20 words",
exactly N for "N bullet points"), hides a forbidden name behind "this creature", lays the facts
out as bullets, paragraphs or sections, adds keywords, a postscript, an end phrase or a title,
wraps the whole in quotes or JSON and changes its case, in that order. Counts that depend on the
finished text ("at least N words") are measured on it. The caller checks the result with
``codit.evaluation.checks`` and draws again in the rare case an answer misses.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from codit.evaluation.text import count_sentences, count_words
from codit.tiny.instructions import FAMILIES, STRUCTURES
from codit.tiny.questions import Question, answer_sentences
from codit.tiny.world import Creature, Place, World, cap

KEYWORD_SENTENCES = (
    "I should also mention {kws}.",
    "This answer also talks about {kws}.",
    "Words to remember: {kws}.",
)
PS_SENTENCES = (
    "I hope you visit {place} one day.",
    "Travellers should bring warm clothes.",
    "Ask me anything else about the world.",
    "Say hello to the {name} for me.",
)
_STOP = frozenset(
    [
        "the",
        "and",
        "with",
        "from",
        "that",
        "this",
        "what",
        "many",
        "most",
        "there",
        "their",
        "about",
        "into",
    ]
)


def _has_word(text: str, word: str) -> bool:
    return re.search(r"\b" + re.escape(word) + r"\b", text, flags=re.IGNORECASE) is not None


def _content_words(sentences: list[str]) -> list[str]:
    words = {w for s in sentences[1:] for w in re.findall(r"[A-Za-z]+", s)}
    return sorted(w for w in words if len(w) > 3 and w.lower() not in _STOP)


def _lexicon(world: World) -> list[str]:
    words = {p.name for p in world.places} | {c.name for c in world.creatures}
    words |= {t.name for t in world.things} | {c.color for c in world.creatures}
    words |= {t.material for t in world.things}
    return sorted(words)


def draw_arguments(
    rng: random.Random, world: World, question: Question, ids: list[str]
) -> dict[str, dict[str, Any]]:
    """The arguments of each instruction that do not depend on the finished answer."""
    kwargs = {i: FAMILIES[i].draw(rng) for i in ids}
    if any(i in STRUCTURES for i in ids):  # a laid-out answer is never a short one
        for i in ("length_constraints:number_words", "length_constraints:number_sentences"):
            if i in kwargs:
                kwargs[i]["relation"] = "at least"
    if "keywords:forbidden_words" in ids:
        entity = question.entity
        own = [entity.name] if question.kind != "story" else []
        plain = _content_words(answer_sentences(random.Random(0), world, question))
        options = own + rng.sample(plain, min(2, len(plain))) + rng.sample(_lexicon(world), 2)
        kwargs["keywords:forbidden_words"] = {
            "forbidden_words": sorted(set(rng.sample(options, rng.randint(1, 2))))
        }
    if "keywords:existence" in ids:
        banned = kwargs.get("keywords:forbidden_words", {}).get("forbidden_words", [])
        pool = [w for w in _lexicon(world) if w not in banned and w != question.entity.name]
        kwargs["keywords:existence"] = {"keywords": rng.sample(pool, rng.randint(1, 2))}
    return kwargs


def _layout(
    rng: random.Random, sentences: list[str], structure: str | None, args: dict[str, Any]
) -> str:
    if structure == "detectable_format:number_bullet_lists":
        return "\n".join("* " + s for s in sentences[: args["num_bullets"]])
    if structure in ("length_constraints:number_paragraphs", "detectable_format:multiple_sections"):
        n = args.get("num_paragraphs") or args["num_sections"]
        groups = [sentences[i::n] for i in range(n)]  # round robin keeps each group non-empty
        texts = [" ".join(g) for g in groups]
        if structure == "length_constraints:number_paragraphs":
            return "\n\n***\n\n".join(texts)
        splitter = args["section_spliter"]
        return "\n\n".join(f"{splitter} {i + 1}\n{t}" for i, t in enumerate(texts))
    if structure == "detectable_format:number_highlighted_sections":
        k = args["num_highlights"]
        return " ".join(f"*{s}*" if i < k else s for i, s in enumerate(sentences))
    if structure == "combination:two_responses":
        first, second = sentences[:2], [sentences[0], *sentences[2:4]]
        return " ".join(first) + "\n******\n" + " ".join(second)
    return " ".join(sentences)


def _how_many(
    question: Question,
    ids: list[str],
    kwargs: dict[str, dict[str, Any]],
    available: int,
    short: int,
) -> int:
    """How many of the answer's sentences to use."""
    relations = [
        kwargs[i]["relation"]
        for i in ids
        if i.startswith("length_constraints:number_") and "relation" in kwargs[i]
    ]
    wanted = short
    for i in ids:
        args = kwargs[i]
        wanted = max(
            wanted,
            args.get("num_bullets", 0),
            args.get("num_highlights", 0),
            args.get("num_paragraphs", 0) + 1,
            args.get("num_sections", 0) + 1,
            4 if i == "combination:two_responses" else 0,
        )
    if "less than" in relations:
        wanted = 2 if question.kind == "yesno" else 1
    elif "at least" in relations:
        wanted = max(wanted, 4)
    return min(wanted, available)


def _title(question: Question, hide_name: bool) -> str:
    entity = question.entity
    if hide_name:
        return "A Short Answer" if not isinstance(entity, Creature) else "A Creature of the World"
    name = entity.name if isinstance(entity, Place) else cap(entity.name)
    return {"story": f"The Tale of the {name}", "describe": f"All About {name}"}.get(
        question.kind, name
    )


def respond(
    rng: random.Random,
    world: World,
    question: Question,
    prompt: str,
    ids: list[str],
    kwargs: dict[str, dict[str, Any]],
    short: int,
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Write the answer to ``question`` that follows every instruction in ``ids``.

    Args:
        rng: chooses wordings and extras.
        world: the facts.
        question: what was asked.
        prompt: the request before any repeat-the-prompt sentence (what gets repeated).
        ids: the IFEval instruction ids of the prompt, in prompt order.
        kwargs: their arguments from ``draw_arguments``.
        short: how many sentences a plain answer has.

    Returns:
        (answer, final arguments), where counts measured on the answer are filled in.
    """
    kwargs = {i: dict(a) for i, a in kwargs.items()}
    has = set(ids).__contains__
    banned = kwargs.get("keywords:forbidden_words", {}).get("forbidden_words", [])
    hide_name = question.entity.name.lower() in {w.lower() for w in banned}
    sentences = answer_sentences(rng, world, question, hide_name)
    if has("detectable_format:constrained_response"):
        sentences[0] = (
            "My answer is yes. " if question.truth else "My answer is no. "
        ) + sentences[0].removeprefix("Yes.").removeprefix("No. ")
        sentences[0] = sentences[0].strip()
    sentences = [s for s in sentences if not any(_has_word(s, w) for w in banned)]
    structure = next((i for i in ids if i in STRUCTURES), None)
    n = _how_many(question, ids, kwargs, len(sentences), short)
    for key in ("num_bullets", "num_highlights", "num_paragraphs", "num_sections"):
        if structure and key in kwargs[structure]:  # a short fact sheet cannot fill five bullets
            kwargs[structure][key] = min(n, kwargs[structure][key])
    if structure == "detectable_format:number_bullet_lists":
        n = kwargs[structure]["num_bullets"]
    text = (
        _layout(rng, sentences[:n], structure, kwargs.get(structure, {}) if structure else {})
        if sentences
        else ""
    )

    if has("keywords:existence"):
        missing = [k for k in kwargs["keywords:existence"]["keywords"] if not _has_word(text, k)]
        if missing:
            text += " " + rng.choice(KEYWORD_SENTENCES).format(kws=" and ".join(missing))
    if has("punctuation:no_comma"):
        text = text.replace(",", "")
    if has("detectable_content:postscript"):
        extra = rng.choice(PS_SENTENCES).format(
            place=rng.choice(world.places).name, name=rng.choice(world.creatures).name
        )
        text += f"\n\n{kwargs['detectable_content:postscript']['postscript_marker']} {extra}"
    if has("startend:end_checker"):
        text += ("\n\n" if structure else " ") + kwargs["startend:end_checker"]["end_phrase"]
    if has("detectable_format:title"):
        text = f"<<{_title(question, hide_name)}>>\n\n{text}"
    if has("combination:repeat_prompt"):
        kwargs["combination:repeat_prompt"] = {"prompt_to_repeat": prompt}
        text = f"{prompt}\n\n{text}"
    if has("startend:quotation"):
        text = f'"{text}"'
    if has("detectable_format:json_format"):
        body = json.dumps({rng.choice(("answer", "response")): text})
        text = f"```json\n{body}\n```" if rng.random() < 0.5 else body
    if has("change_case:english_lowercase"):
        text = text.lower()
    if has("change_case:english_capital"):
        text = text.upper()

    for i, count in (
        ("length_constraints:number_words", count_words),
        ("length_constraints:number_sentences", count_sentences),
    ):
        if has(i):
            key = "num_words" if i.endswith("words") else "num_sentences"
            measured = count(text)
            slack = rng.randint(1, 8) if key == "num_words" else rng.randint(1, 2)
            less = kwargs[i]["relation"] == "less than"
            kwargs[i][key] = measured + slack if less else max(1, measured - slack + 1)
    return text, kwargs
