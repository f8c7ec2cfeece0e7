"""StopWatch: stop strings across tokens, found on the right step, with bounded work."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from codit.decoding.stops import StopWatch

FAMILIES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "model-families"


class ByteTokenizer:
    """Tokens are byte strings (as in byte-level BPE); records how many ids each decode saw."""

    def __init__(self, pieces: list[bytes]):
        self.pieces = pieces
        self.decoded: list[int] = []

    def encode(self, parts: list[bytes]) -> list[int]:
        return [self.pieces.index(p) for p in parts]

    def decode(self, ids, skip_special_tokens=True):  # noqa: ARG002
        self.decoded.append(len(ids))
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


PIECES = [b"Hel", b"lo", b" ", b"wor", b"ld", b"\n", b"\n\n", b"Us", b"er", b":", b"!", b"x"]
PIECES += ["é".encode()[:1], "é".encode()[1:], "日".encode()[:2], "日".encode()[2:]]


def first_hit(watch: StopWatch, ids: list[int]) -> int | None:
    """The number of tokens after which ``hit`` first says yes, feeding one token at a time."""
    for t in range(1, len(ids) + 1):
        if watch.hit(ids[:t]):
            return t
    return None


def test_a_stop_string_spanning_three_tokens_is_found_on_the_step_that_completes_it():
    tok = ByteTokenizer(PIECES)
    ids = tok.encode([b"Hel", b"lo", b"\n\n", b"Us", b"er", b":", b" ", b"wor"])
    watch = StopWatch(tok, ["\n\nUser:"])
    assert first_hit(watch, ids) == 6  # "\n\n" + "Us" + "er" + ":" is complete after token 6
    text = tok.decode(ids)
    assert watch.cut(text) == "Hello"
    assert watch.cut("no stop here") == "no stop here"


def test_the_first_of_several_stop_strings_cuts_the_text():
    watch = StopWatch(ByteTokenizer(PIECES), ["world", "lo\n"])
    assert watch.cut("Hello\nworld and lo\n") == "Hel"
    assert watch.cut("say world, Hello\n") == "say "


def test_a_split_multi_byte_character_is_matched_only_once_complete():
    tok = ByteTokenizer(PIECES)
    e1, e2 = tok.encode(["é".encode()[:1], "é".encode()[1:]])
    d1, d2 = tok.encode(["日".encode()[:2], "日".encode()[2:]])
    bang = tok.encode([b"!"])[0]
    watch = StopWatch(tok, ["é!", "日"])
    assert first_hit(watch, [bang, e1, e2, bang]) == 4
    assert first_hit(watch, [bang, d1, bang, d2]) is None  # the bytes of 日 never meet
    assert first_hit(watch, [bang, bang, d1, d2]) == 4
    assert not watch.hit([e1])  # a lone lead byte is U+FFFD, not a match


def test_hit_agrees_with_decoding_the_whole_text_on_random_streams():
    tok = ByteTokenizer(PIECES)
    stops = ["\n\nUser:", "é!", "ld\n", "日x"]
    watch = StopWatch(tok, stops)
    rng = random.Random(0)
    found = 0
    for _ in range(300):
        ids = [rng.randrange(len(PIECES)) for _ in range(60)]
        ref = next((t for t in range(1, 61) if any(s in tok.decode(ids[:t]) for s in stops)), None)
        assert first_hit(watch, ids) == ref, ids
        found += ref is not None
    assert found > 30  # the streams really contain stop strings


def test_work_per_step_is_bounded_by_the_window_on_a_long_text():
    tok = ByteTokenizer(PIECES)
    watch = StopWatch(tok, ["\n\nUser:"])
    ids = [random.Random(1).randrange(7, 12) for _ in range(5000)]  # never a newline
    tok.decoded.clear()
    assert first_hit(watch, ids) is None
    assert len(tok.decoded) == 5000
    assert max(tok.decoded) == watch.window == len(b"\n\nUser:") + 8
    assert sum(tok.decoded) <= 5000 * watch.window  # not the 12.5M ids of full re-decoding


def test_no_stops_never_decodes():
    tok = ByteTokenizer(PIECES)
    assert not StopWatch(tok, []).hit([0, 1, 2])
    assert tok.decoded == []
    with pytest.raises(ValueError):
        StopWatch(tok, [""])


@pytest.mark.parametrize("family", ["qwen3", "llama3.1"])
def test_real_tokenizer_finds_stops_on_the_same_step_as_full_decoding(family):
    path = FAMILIES / family / "tokenizer.json.gz"
    if not path.exists():
        pytest.skip(f"shared tokenizer data absent: {path}")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(gzip.decompress(path.read_bytes()).decode())

    class Wrapped:
        def decode(self, ids, skip_special_tokens=True):
            return tok.decode(ids, skip_special_tokens=skip_special_tokens)

    text = (
        "Sure! Here is the answer: 日本語のテキスト and ✓ done.\n\nUser: next question "
        "### Response: café au lait 🙂🙂 END"
    )
    ids = tok.encode(text, add_special_tokens=False).ids
    for stops in (["\n\nUser:"], ["🙂🙂"], ["語のテ"], ["café au", "✓ d"], ["never there"]):
        watch = StopWatch(Wrapped(), stops)
        ref = next(
            (t for t in range(1, len(ids) + 1) if any(s in tok.decode(ids[:t]) for s in stops)),
            None,
        )
        assert first_hit(watch, ids) == ref, stops
        assert (
            watch.cut(tok.decode(ids))
            == text[: min((text.find(s) for s in stops if s in text), default=len(text))]
        )
