"""Each IFEval check on hand-written responses that pass and fail, plus the offline text tools."""

from __future__ import annotations

import pytest

from codit.errors import DataError
from codit.evaluation.checks import CHECKS, follows, loose_variants
from codit.evaluation.text import count_sentences, count_words, sentence_spans, word_tokens

# (instruction id, kwargs, passing response, failing response): every id of the registry.
CASES = [
    (
        "keywords:existence",
        {"keywords": ["banana", "Tree"]},
        "A BANANA fell from the tree.",
        "A banana fell.",
    ),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 3, "relation": "at least"},
        "cat, Cat, CAT!",
        "cat and cat",
    ),
    (
        "keywords:frequency",
        {"keyword": "cat", "frequency": 2, "relation": "less than"},
        "one cat",
        "cat cat",
    ),
    (
        "keywords:forbidden_words",
        {"forbidden_words": ["red", "blue"]},
        "A credible, bluish sky.",
        "The sky is Blue.",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "z", "let_frequency": 3, "let_relation": "at least"},
        "Zigzag pizza",
        "zigzag",
    ),
    (
        "keywords:letter_frequency",
        {"letter": "a", "let_frequency": 2, "let_relation": "less than"},
        "one A only",
        "banana",
    ),
    (
        "language:response_language",
        {"language": "de"},
        "Das ist ein kurzer Satz auf Deutsch, und er ist ganz einfach zu lesen.",
        "This is a short sentence in English, and it is quite easy to read.",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "less than"},
        "One. Two.",
        "One. Two! Three?",
    ),
    (
        "length_constraints:number_sentences",
        {"num_sentences": 3, "relation": "at least"},
        "Dr. Smith came. He sat down. Then he left.",
        "Dr. Smith came. He left.",
    ),
    (
        "length_constraints:number_paragraphs",
        {"num_paragraphs": 3},
        "one\n***\ntwo\n***\nthree",
        "one\n***\n***\ntwo\n***\nthree",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 5, "relation": "at least"},
        "well-known words here now",
        "just three words",
    ),
    (
        "length_constraints:number_words",
        {"num_words": 4, "relation": "less than"},
        "just three words",
        "four words are here",
    ),
    (
        "length_constraints:nth_paragraph_first_word",
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Then"},
        'First part.\n\n"Then, second part.',
        "First part.\n\nAfter that, second part.",
    ),
    (
        "detectable_content:number_placeholders",
        {"num_placeholders": 2},
        "Dear [name], see you at [address].",
        "Dear [name], see you.",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.S."},
        "Body text.\n\np. s. remember the milk",
        "Body text. PS remember",
    ),
    (
        "detectable_content:postscript",
        {"postscript_marker": "P.P.S"},
        "Body.\nP.P.S. one more thing",
        "Body.\nP.S. one thing",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "Items:\n* one\n- two",
        "Items:\n* one\n* two\n* three",
    ),
    ("detectable_format:constrained_response", {}, "My answer is maybe. It depends.", "Maybe."),
    (
        "detectable_format:number_highlighted_sections",
        {"num_highlights": 2},
        "*one* and **two**",
        "*one* and ** ** and *\nbroken*",
    ),
    (
        "detectable_format:multiple_sections",
        {"section_spliter": "Section", "num_sections": 2},
        "Section 1\nintro\nSection 2\nbody",
        "Section 1\nintro\nPart 2\nbody",
    ),
    (
        "detectable_format:json_format",
        {},
        '```json\n{"a": {"b": [1, 2, {"c": null}]}}\n```',
        'Here it is: {"a": 1}',
    ),
    ("detectable_format:title", {}, "<<Ode to Joy>>\nLa la.", "<< >>\nno title"),
    (
        "combination:two_responses",
        {},
        "First answer.\n******\nSecond answer.",
        "Same.\n******\nSame.",
    ),
    (
        "combination:repeat_prompt",
        {"prompt_to_repeat": "Write a poem."},
        "write a POEM. Roses are red.",
        "Sure! Write a poem.",
    ),
    (
        "startend:end_checker",
        {"end_phrase": "Any other questions?"},
        'Done. any other questions?"  ',
        "Any other questions? Bye.",
    ),
    ("startend:quotation", {}, '  "All of it quoted."\n', '"Quoted" then not.'),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 3, "capital_relation": "at least"},
        "I DON'T know",
        "Only ONE capital word here",
    ),
    (
        "change_case:capital_word_frequency",
        {"capital_frequency": 2, "capital_relation": "less than"},
        "Only ONE here",
        "TWO CAPS",
    ),
    (
        "change_case:english_capital",
        {},
        "THIS IS AN ENGLISH SENTENCE. EVERY LETTER IS CAPITALIZED!",
        "Every Word Is Capitalized.",
    ),
    (
        "change_case:english_lowercase",
        {},
        "every letter of this english sentence is lowercase.",
        "Almost every letter is lowercase.",
    ),
    ("punctuation:no_comma", {}, "No commas here; none at all.", "One, two."),
]


def test_every_registry_id_has_a_case() -> None:
    assert {case[0] for case in CASES} == set(CHECKS)
    assert len(CHECKS) == 25


@pytest.mark.parametrize(("instruction_id", "kwargs", "good", "bad"), CASES)
def test_check_passes_and_fails(instruction_id: str, kwargs: dict, good: str, bad: str) -> None:
    assert follows(instruction_id, good, kwargs) is True
    assert follows(instruction_id, bad, kwargs) is False


@pytest.mark.parametrize(("instruction_id", "kwargs", "good", "bad"), CASES)
def test_empty_response_never_follows(
    instruction_id: str, kwargs: dict, good: str, bad: str
) -> None:
    assert follows(instruction_id, "", kwargs) is False
    assert follows(instruction_id, " \n\t", kwargs, loose=True) is False


def test_none_kwargs_are_ignored() -> None:
    kwargs = {"num_words": 2, "relation": "at least", "keyword": None, "language": None}
    assert follows("length_constraints:number_words", "two words", kwargs)


def test_unknown_id_names_it() -> None:
    with pytest.raises(DataError, match="detectable_format:haiku"):
        follows("detectable_format:haiku", "text", {})


def test_wrong_kwargs_are_a_data_error() -> None:
    with pytest.raises(DataError, match="number_words"):
        follows("length_constraints:number_words", "text", {"num_words": 3})
    with pytest.raises(DataError, match="relation"):
        follows("length_constraints:number_words", "text", {"num_words": 3, "relation": "at most"})


def test_repeat_prompt_falls_back_to_the_prompt() -> None:
    assert follows("combination:repeat_prompt", "Say hi. Hi!", {}, prompt="Say hi.")


def test_loose_variants_are_ifeval_s_eight() -> None:
    variants = loose_variants("Sure:\n*body*\nBye")
    assert variants == [
        "Sure:\n*body*\nBye",
        "Sure:\nbody\nBye",
        "*body*\nBye",
        "Sure:\n*body*",
        "*body*",
        "body\nBye",
        "Sure:\nbody",
        "body",
    ]


def test_loose_mode_forgives_a_preamble_and_markdown() -> None:
    response = 'Sure, here it is:\n"the whole answer in quotes"'
    assert not follows("startend:quotation", response, {})
    assert follows("startend:quotation", response, {}, loose=True)
    assert not follows("punctuation:no_comma", response, {})
    assert follows("punctuation:no_comma", response, {}, loose=True)
    starred = "**Title** is <<here>>"
    assert follows("detectable_format:title", starred, {}, loose=True)


def test_unicode_responses() -> None:
    assert count_words("naïve café — déjà vu 東京") == 5
    assert follows("punctuation:no_comma", "Ein Satz、with an ideographic comma", {})
    assert not follows("punctuation:no_comma", "Un, deux", {})
    assert follows(
        "language:response_language",
        "これは日本語で書かれた短い文章です。今日はいい天気ですね。",
        {"language": "ja"},
    )
    assert follows(
        "change_case:english_lowercase", "ünïcode is fine in lowercase english text here", {}
    )


def test_markdown_and_json_in_fences() -> None:
    nested = '```JSON\n{"outer": {"inner": ["a", {"deep": true}]}, "n": 1.5}\n```'
    assert follows("detectable_format:json_format", nested, {})
    assert follows("detectable_format:json_format", "  [1, 2, 3]  ", {})
    assert not follows("detectable_format:json_format", '```python\n{"a": 1}\n```', {})
    assert not follows("detectable_format:json_format", '```json\n{"a": 1,}\n```', {})
    # A bullet needs the star at the start of a line, and bold text is not a bullet.
    assert follows(
        "detectable_format:number_bullet_lists", "**Bold**\n* one\n  - two", {"num_bullets": 2}
    )


def test_language_undetectable_counts_as_followed() -> None:
    # IFEval counts a response whose language langdetect cannot tell (no letters) as followed.
    assert follows("language:response_language", "12345 67890", {"language": "fr"})


def test_language_detection_is_deterministic() -> None:
    text = "Ciao, come stai? Oggi è una bella giornata."
    assert (
        len({follows("language:response_language", text, {"language": "it"}) for _ in range(5)})
        == 1
    )


def test_nth_paragraph_counts_non_empty_paragraphs() -> None:
    kwargs = {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "hello"}
    assert follows("length_constraints:nth_paragraph_first_word", "Hello!\n\n\n\nWorld", kwargs)
    kwargs = {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "hello"}
    assert not follows("length_constraints:nth_paragraph_first_word", "Hello\n\nWorld", kwargs)


# Sentence counts as NLTK's Punkt gives them (the first four are IFEval's own test cases).
SENTENCES = [
    ("xx,x. xx,x! xx/x. x{x}x? x.", 5),
    ("xx,x! xxxx. x(x)x?", 3),
    ("xxxx. xx,x! xx|x. x&x x?", 4),
    ("xx-x]xx,x! x{x}xx,x.", 2),
    ("The U.S.A has many Ph.D. students. They often have a .com website.", 2),
    ("Mr. Smith met Dr. Jones. They talked.", 2),
    ("It costs 3.50 dollars. Cheap!", 2),
    ("Wait... What happened? Nothing.", 3),
    ("Wait... what happened?", 1),
    ('He said "Stop." Then he left.', 2),
    ("A list:\n1. First item\n2. Second item", 3),
    ("no final punctuation at all", 1),
    ("e.g. this is one sentence.", 1),
    ("", 0),
    ("   ", 0),
]


@pytest.mark.parametrize(("text", "expected"), SENTENCES)
def test_count_sentences(text: str, expected: int) -> None:
    assert count_sentences(text) == expected


def test_sentence_spans_keep_closing_quotes() -> None:
    text = 'He said "Stop." Then he left.'
    assert [text[a:b] for a, b in sentence_spans(text)] == ['He said "Stop."', "Then he left."]


def test_count_words_is_ifevals() -> None:
    assert count_words("word1, word2, word3, word4.") == 4
    assert count_words("Hyphenated-word has two word counts.") == 6
    assert count_words("") == 0


def test_word_tokens_split_contractions_and_punctuation() -> None:
    assert word_tokens("DON'T stop, I'M HERE. CANNOT (NOW)!") == [
        "DO",
        "N'T",
        "stop",
        ",",
        "I",
        "'M",
        "HERE.",
        "CAN",
        "NOT",
        "(",
        "NOW",
        ")",
        "!",
    ]
    assert word_tokens("WELL-KNOWN 1,000 U.S.A.") == ["WELL-KNOWN", "1,000", "U.S.A."]
