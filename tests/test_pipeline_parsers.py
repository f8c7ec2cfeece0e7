"""The parsers of every prompted-pipeline prompt on good, partial and garbage replies; the prompt
templates; the verifiable constraints; the pure steps of CodecLM (pool augmentation, budgets)."""

from __future__ import annotations

import random
import re

import pytest

from codit.evaluation.checks import CHECKS, instruction_arguments
from codit.pipelines.codeclm import CodecLMConfig
from codit.pipelines.codeclm_parse import (
    Metadata,
    Rubric,
    parse_improved,
    parse_instructions,
    parse_metadata,
    parse_rubrics,
    parse_scores,
)
from codit.pipelines.codeclm_steps import augment, budgets
from codit.pipelines.constraints import KINDS, Constraint, compatible, draw_constraint, states
from codit.pipelines.ecd_parse import parse_evolution, parse_verdict, response_problem
from codit.pipelines.replies import ParseError, json_value, labelled, list_items, number
from codit.pipelines.templates import load_template, render

GARBAGE = ["", "   ", "%%%% ####", "I'm not sure what you mean.", '{"oops": ', "<html>502</html>"]


# --- generic extraction -------------------------------------------------------------------------


def test_json_value_finds_json_whole_fenced_or_embedded() -> None:
    assert json_value('{"a": 1}') == {"a": 1}
    assert json_value('Sure:\n```json\n{"a": [1, 2]}\n```\nDone.') == {"a": [1, 2]}
    assert json_value('The scores follow. {"s": 3} and then {"t": 4}') == {"s": 3}
    assert json_value('a list [1, 2] first, then an object {"k": true}') == {"k": True}
    assert json_value("only a list [1, 2]") == [1, 2]
    assert json_value("no json {here") is None


def test_labelled_reads_markdown_and_values_below_the_label() -> None:
    assert labelled("**Use case:** poems\nSkills: rhyme", "use case") == "poems"
    assert labelled("## Task: travel planning", "use case", "task") == "travel planning"
    assert labelled("Skills:\n- rhyme\n- meter\n\nNote: x", "skills") == "- rhyme\n- meter"
    assert labelled("Rubric 2: depth", "rubric") == "depth"
    assert labelled("nothing labelled here", "use case") is None


def test_list_items_and_numbers() -> None:
    text = "Intro:\n1. Write a poem\n   about cats.\n2) Plan a trip\n- third one\n\nnot an item"
    assert list_items(text) == ["Write a poem about cats.", "Plan a trip", "third one"]
    assert (number("8 out of 10"), number("7/10"), number(6), number(True), number("none")) == (
        8.0,
        7.0,
        6.0,
        None,
        None,
    )


# --- CodecLM ------------------------------------------------------------------------------------


def test_parse_metadata_good_partial_garbage() -> None:
    good = '{"use_case": "poem writing", "skills": ["Rhyme!", "meter"]}'
    assert parse_metadata(good) == Metadata("poem writing", ("rhyme", "meter"))
    assert parse_metadata(
        "Task: travel planning\nSkills: budgeting, geography knowledge"
    ) == Metadata("travel planning", ("budgeting", "geography knowledge"))
    bullets = "**Use case**: code review\n**Skills**:\n- python knowledge\n- attention to detail"
    assert parse_metadata(bullets).skills == ("python knowledge", "attention to detail")
    # Partial: too many (and repeated) skills are cut to max_skills; a string of skills is split.
    many = '{"use_case": "x y", "skills": ["a b", "A B", "c d", "e f", "g h"]}'
    assert parse_metadata(many, max_skills=3).skills == ("a b", "c d", "e f")
    assert parse_metadata('{"use_case": "x", "skills": "one; two"}').skills == ("one", "two")
    with pytest.raises(ParseError, match="no skills"):
        parse_metadata('{"use_case": "only a use case"}')
    for text in GARBAGE:
        with pytest.raises(ParseError):
            parse_metadata(text)


def test_parse_instructions_good_partial_garbage() -> None:
    assert parse_instructions(
        '{"instructions": ["Write a haiku about rain.", "Plan a short trip to Rome."]}'
    ) == ["Write a haiku about rain.", "Plan a short trip to Rome."]
    numbered = "Here are two:\n1. Write a haiku about rain.\n2. **Plan a short trip to Rome.**"
    assert parse_instructions(numbered) == [
        "Write a haiku about rain.",
        "Plan a short trip to Rome.",
    ]
    assert parse_instructions("Write a story about a dog who learns to fly.") == [
        "Write a story about a dog who learns to fly."
    ]
    # Partial: junk items and repeats are dropped, the rest kept.
    partial = (
        '{"instructions": ["ok", "Write a haiku about rain.", "Write a haiku about rain.", 7]}'
    )
    assert parse_instructions(partial) == ["Write a haiku about rain."]
    for text in GARBAGE:
        with pytest.raises(ParseError):
            parse_instructions(text)


def test_parse_rubrics_good_partial_garbage() -> None:
    good = '{"rubrics": [{"rubric": "depth", "action": "add a SWOT analysis"}, {"rubric": "scope", "action": "cover 3 markets"}]}'
    assert parse_rubrics(good) == [
        Rubric("depth", "add a SWOT analysis"),
        Rubric("scope", "cover 3 markets"),
    ]
    text = "Rubric 1: depth\nAction 1: add a SWOT analysis\nRubric 2: breadth\nAction 2: cover three markets"
    assert [r.action for r in parse_rubrics(text)] == ["add a SWOT analysis", "cover three markets"]
    # Partial: an entry without its action is skipped, the complete one kept.
    partial = '{"rubrics": [{"rubric": "depth"}, {"rubric": "scope", "action": "cover 3 markets"}]}'
    assert parse_rubrics(partial) == [Rubric("scope", "cover 3 markets")]
    with pytest.raises(ParseError, match="rubric with its action"):
        parse_rubrics("Rubric 1: depth\nRubric 2: scope")
    for text in GARBAGE:
        with pytest.raises(ParseError):
            parse_rubrics(text)


def test_parse_improved_good_partial_garbage() -> None:
    original = "Write a haiku about rain."
    assert parse_improved('{"instruction": "Write a haiku about rain in Paris."}', original) == (
        "Write a haiku about rain in Paris."
    )
    assert parse_improved("Improved instruction: Write two haikus about rain.", original) == (
        "Write two haikus about rain."
    )
    assert (
        parse_improved('"Write a haiku about rain at night."', original)
        == "Write a haiku about rain at night."
    )
    with pytest.raises(ParseError, match="same as the original"):
        parse_improved('{"instruction": "write a HAIKU about rain"}', original)
    with pytest.raises(ParseError):
        parse_improved('{"instructions": []}', original)  # JSON without the field
    for text in GARBAGE[:3]:
        with pytest.raises(ParseError):
            parse_improved(text, original)


def test_parse_scores_good_partial_garbage() -> None:
    assert parse_scores(
        'The first is better.\n{"explanation": "x", "score_1": 8, "score_2": 3}'
    ) == (8.0, 3.0)
    assert parse_scores("Score 1: 8/10\nScore 2: 6/10") == (8.0, 6.0)
    assert parse_scores("**Response 1**: 7\n**Response 2**: 9") == (7.0, 9.0)
    assert parse_scores("Both are fine.\n8/10, 5/10") == (8.0, 5.0)
    assert parse_scores("7 4") == (7.0, 4.0)  # the paper's format: one line, two scores
    assert parse_scores("  8.5 3\n") == (8.5, 3.0)
    with pytest.raises(ParseError, match="outside"):
        parse_scores('{"score_1": 11, "score_2": 3}')
    with pytest.raises(ParseError, match="no pair of scores"):
        parse_scores("Score 1: 8")  # partial: one score is not a judgment
    for text in GARBAGE:
        with pytest.raises(ParseError):
            parse_scores(text)


# --- ECD ----------------------------------------------------------------------------------------


def test_parse_evolution_good_partial_garbage() -> None:
    previous = "Explain why the sky is blue."
    evolved = parse_evolution(
        '{"instruction": "Explain why the sky is blue, in 3 steps.", "added_requirement": "three steps"}',
        previous,
    )
    assert (evolved.instruction, evolved.added) == (
        "Explain why the sky is blue, in 3 steps.",
        "three steps",
    )
    assert parse_evolution(
        "Rewritten: no\nInstruction: Explain the blue sky to a child.", previous
    ).instruction == ("Explain the blue sky to a child.")
    assert (
        parse_evolution("Explain why sunsets are red.", previous).added == ""
    )  # partial: no requirement named
    with pytest.raises(ParseError, match="no information gain"):
        parse_evolution('{"instruction": "explain why the SKY is blue"}', previous)
    with pytest.raises(ParseError, match="copies the evolving prompt"):
        parse_evolution(
            '{"instruction": "Here is the rewritten instruction: explain the sky."}', previous
        )
    for text in GARBAGE[:3]:
        with pytest.raises(ParseError):
            parse_evolution(text, previous)


def test_parse_verdict_good_partial_garbage() -> None:
    assert parse_verdict('{"reason": "ok", "verdict": "PASS"}') is True
    assert parse_verdict('{"reason": "no", "verdict": "fail"}') is False
    assert parse_verdict("It misses the word count.\nVerdict: FAIL") is False
    assert parse_verdict("The response passes every check.\nPASSED") is True
    with pytest.raises(ParseError, match="both"):
        parse_verdict("PASS or FAIL, hard to say")
    for text in GARBAGE:
        with pytest.raises(ParseError):
            parse_verdict(text)


def test_response_problem_applies_evol_instruct_eliminations() -> None:
    assert response_problem("") == "the response is empty"
    assert response_problem("Sorry, I cannot help with that.") == "the response is a short apology"
    assert (
        response_problem("... and the, of it!")
        == "the response holds only punctuation and stop words"
    )
    assert response_problem("Rain forms when water vapour condenses around dust.") is None


# --- templates ----------------------------------------------------------------------------------

TEMPLATES = {
    "codeclm_encode": ("instruction", "max_skills"),
    "codeclm_decode": ("count", "use_case", "skills"),
    "codeclm_rubrics": ("count", "use_case", "skills"),
    "codeclm_improve": ("use_case", "skills", "rubric", "action", "instruction"),
    "codeclm_judge": ("instruction", "response_1", "response_2"),
    "codeclm_judge_explained": ("instruction", "response_1", "response_2"),
    "ecd_evolve_depth": ("instruction", "method"),
    "ecd_evolve_breadth": ("instruction",),
    "ecd_evolve_verifiable": ("instruction", "requirement"),
    "ecd_check_follows": ("instruction", "response"),
    "ecd_check_requirement": ("requirement", "response"),
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_fills_its_placeholders_and_leaves_other_braces(name: str) -> None:
    template = load_template(name)
    values = {p: f"<{p} with {{braces}}>" for p in TEMPLATES[name]}
    text = render(template, **values)
    assert all(v in text for v in values.values())
    assert not re.search(r"\{(" + "|".join(TEMPLATES[name]) + r")\}", text)
    if name == "codeclm_judge":  # the paper's judge: one line of two scores, no JSON
        assert "single line" in text and "JSON" not in text
    else:
        assert "JSON" in text and "{" in text  # the answer shape survives rendering


def test_render_refuses_an_unknown_placeholder() -> None:
    from codit.errors import DataError

    with pytest.raises(DataError, match="no placeholder"):
        render("Hello {name}", name="x", other="y")


# --- verifiable constraints ---------------------------------------------------------------------

PREVIOUS = "Here is a plain answer about tea. It has several short sentences, with commas. Each adds detail."


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_constraint_kind_draws_valid_ifeval_arguments(kind: str) -> None:
    for seed in range(5):
        constraint = KINDS[kind][1](random.Random(seed), _context())
        if constraint is None:
            continue
        assert constraint.id == kind and kind in CHECKS
        assert instruction_arguments(kind, constraint.kwargs) == constraint.kwargs
        assert states(constraint, constraint.text)  # the phrasing names its own values
        assert isinstance(constraint.holds(PREVIOUS), bool)
        assert Constraint.from_dict(constraint.to_dict()) == constraint


def _context():
    from codit.pipelines.constraints import Context

    return Context("Write a short history of green tea for beginners", PREVIOUS)


def test_drawn_constraints_break_the_previous_response_and_never_conflict() -> None:
    for seed in range(20):
        rng = random.Random(seed)
        existing: list[Constraint] = []
        for _ in range(4):
            c = draw_constraint(rng, "Write a short history of green tea", PREVIOUS, existing)
            if c is None:
                break
            assert not c.holds(PREVIOUS)
            assert compatible(c.id, existing)
            existing.append(c)
        ids = [c.id for c in existing]
        assert len(set(ids)) == len(ids)
        assert not {"change_case:english_lowercase", "detectable_content:postscript"} <= set(ids)


def test_states_needs_the_exact_values() -> None:
    c = Constraint(
        "length_constraints:number_words",
        {"relation": "less than", "num_words": 50},
        "Keep it under 50 words.",
        (("50",),),
    )
    assert states(c, "Describe tea in under 50 words.")
    assert not states(c, "Describe tea briefly.")


# --- CodecLM's pure steps -----------------------------------------------------------------------


def _config(**kw) -> CodecLMConfig:
    return CodecLMConfig(
        strong="openai:s", target="openai:t", seeds="s.jsonl", output="o.jsonl", **kw
    )


def test_augment_samples_without_replacement_up_to_the_pool_size() -> None:
    seeds = [
        Metadata("poems", ("rhyme", "meter")),
        Metadata("emails", ("tone",)),
        Metadata("poems", ("rhyme", "meter")),
    ]
    pool, stats = augment(seeds, _config(pool_size=10, seed=1))
    assert pool[:2] == seeds[:2]  # the seeds' own entries first, without repeats
    assert stats == {
        "size": 10,
        "from_seeds": 2,
        "sampled": 8,
        "refused_by_filter": 0,
        "use_cases": 2,
        "skills": 3,
    }
    assert len({m.key for m in pool}) == 10
    for entry in pool[2:]:
        assert entry.use_case in ("poems", "emails")
        assert 1 <= len(entry.skills) <= 3 and len(set(entry.skills)) == len(entry.skills)
    assert augment(seeds, _config(pool_size=10, seed=1))[0] == pool  # the seed fixes the draw


def test_augment_filter_hook_and_exhaustion() -> None:
    seeds = [Metadata("poems", ("rhyme",)), Metadata("emails", ("tone",))]
    pool, stats = augment(
        seeds,
        _config(pool_size=200),
        keep=lambda m: m.use_case != "emails" or "rhyme" not in m.skills,
    )
    # 2 use cases x 3 non-empty skill sets = 6 possible entries, 2 of them emails with rhyme.
    assert stats["size"] == 4 and stats["refused_by_filter"] == 2
    assert not any(m.use_case == "emails" and "rhyme" in m.skills for m in pool)


def test_budgets_share_the_total_evenly() -> None:
    assert budgets(10, 4) == [3, 3, 2, 2]
    assert budgets(3, 5) == [1, 1, 1, 0, 0]
    assert sum(budgets(8000, 200)) == 8000 and set(budgets(8000, 200)) == {40}
