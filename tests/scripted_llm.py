"""Scripted LLMs behind ``fakeserver.FakeServer`` for the prompted pipelines' tests.

``codeclm_script`` plays both CodecLM roles: the model named "strong" writes metadata,
instructions, rubrics and improvements, answers "STRONG: ..." and judges; the one named "target"
answers "TARGET: ...". Each decoded instruction carries a kind that fixes its fate under the
judge, so a test knows what the filter must do with it:

    easy      the strong answer wins by 6 at once               -> kept (strong), round 1
    hard      the gap grows by 2 with each improvement          -> kept (strong), round 3
    never     the gap is always 0                               -> dropped after the last round
    reverse   the target wins by 6                              -> kept (target), round 1

The judge answers in the format its prompt asks for (one line of two scores, or JSON with an
explanation) and adds one point to whichever response it reads first (a position bias that the swapped
second judgment must cancel). ``ecd_script`` plays ECD's evolver, responder and judge in the same
spirit. ``faulty`` wraps a script with HTTP failures and unparsable replies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fakeserver import Reply, last_user

Script = Callable[[dict[str, Any], int], Reply]

KINDS = ("easy", "hard", "never", "reverse")
MARKERS = {
    "encode": "You analyse user instructions",
    "decode": "You write instructions that users might give",
    "rubrics": "You design ways to make instructions",
    "improve": "You are an instruction improver",
    "judge": "You are an impartial judge of AI assistants. Rate how well",
    "evolve_depth": "You make instructions harder to follow",
    "evolve_breadth": "You write a new instruction in the same domain",
    "evolve_verifiable": "You add a checkable requirement to an instruction",
    "check_follows": "You check whether a response follows an instruction",
    "check_requirement": "You check one requirement of a response",
}


def prompt_kind(body: dict[str, Any]) -> str:
    """Which template a request was made from ("answer" when none)."""
    text = last_user(body)
    return next((kind for kind, marker in MARKERS.items() if text.startswith(marker)), "answer")


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def field_line(text: str, label: str) -> str:
    return re.search(rf"^{label}: (.*)$", text, re.MULTILINE).group(1).strip()


# --- CodecLM ------------------------------------------------------------------------------------


def codeclm_reply(body: dict[str, Any]) -> str:
    """The clean reply of the CodecLM roles to one request."""
    text = last_user(body)
    kind = prompt_kind(body)
    if kind == "encode":
        instruction = text.rsplit("Instruction: ", 1)[1].strip()
        topic = instruction.split()[1].lower()
        return json.dumps(
            {"use_case": f"{topic} writing", "skills": [f"{topic} knowledge", "clear prose"]}
        )
    if kind == "decode":
        count = int(re.search(r"Write (\d+) different", text).group(1))
        use_case, skills = field_line(text, "Use case"), field_line(text, "Skills")
        # a top-up pass (--num-pairs) samples with seed + 1000 * pass: new instructions
        batch = f" (batch {body['seed'] // 1000})" if body.get("seed", 0) >= 1000 else ""
        return json.dumps(
            {
                "instructions": [
                    f"Task {i} {KINDS[i % 4]}: write about {use_case} with {skills}{batch}."
                    for i in range(count)
                ]
            }
        )
    if kind == "rubrics":
        count = int(re.search(r"Write (\d+) rubrics", text).group(1))
        return json.dumps(
            {
                "rubrics": [
                    {"rubric": f"depth {i}", "action": f"add constraint {i}"} for i in range(count)
                ]
            }
        )
    if kind == "improve":
        instruction = between(text, "Instruction:\n", "\n\nThe rewritten")
        action = field_line(text, "Action")
        return json.dumps({"instruction": f"{instruction} Also {action}."})
    if kind == "judge":
        instruction = between(text, "[Instruction]", "[End of instruction]")
        first = between(text, "[Response 1]", "[End of Response 1]")
        second = between(text, "[Response 2]", "[End of Response 2]")
        if "a single line that holds only the two scores" in text:  # the paper's format
            return f"{score(instruction, first) + 1} {score(instruction, second)}"
        return json.dumps(
            {
                "explanation": "scripted",
                "score_1": score(instruction, first) + 1,
                "score_2": score(instruction, second),
            }
        )
    who = "TARGET" if body["model"] == "target" else "STRONG"
    return f"{who}: an answer to {text}"


def score(instruction: str, response: str) -> int:
    strong = response.startswith("STRONG")
    kind = next((k for k in KINDS if f" {k}:" in instruction), "easy")
    if kind == "easy":
        return 9 if strong else 3
    if kind == "reverse":
        return 2 if strong else 8
    if kind == "hard":
        return 3 + 2 * instruction.count(" Also ") if strong else 3
    return 5


def codeclm_script(body: dict[str, Any], n: int) -> Reply:
    return Reply(text=codeclm_reply(body))


# --- faults -------------------------------------------------------------------------------------


def faulty(
    script: Script,
    http_faults: dict[int, Reply] | None = None,
    garbage: tuple[str, ...] = (),
    empty: tuple[str, ...] = (),
) -> Script:
    """``script`` with scripted failures.

    Args:
        http_faults: request number -> the failure to send instead (429, 500, a malformed body).
        garbage: prompt kinds whose first ask (seed 0) gets an unparsable reply.
        empty: prompt kinds whose first ask gets an empty reply ("" or a null content).
        The re-asks, with another seed, get the clean replies.
    """
    http_faults = http_faults or {}
    cycle = ["", "I'm not sure what you mean.", '{"oops": ', "%%%% ####"]

    def wrapped(body: dict[str, Any], n: int) -> Reply:
        if n in http_faults:
            return http_faults[n]
        first_ask = body.get("seed", 0) == 0
        if first_ask and prompt_kind(body) in garbage:
            return Reply(text=cycle[n % len(cycle)])
        if first_ask and prompt_kind(body) in empty:
            return Reply(text="" if n % 2 else None)
        return script(body, n)

    return wrapped


# --- ECD ----------------------------------------------------------------------------------------


def ecd_reply(body: dict[str, Any]) -> str:
    """The clean replies of ECD's roles: an evolver, a responder that obeys, a fair judge."""
    text = last_user(body)
    kind = prompt_kind(body)
    if kind == "evolve_verifiable":
        instruction = between(text, "Instruction:\n", "\n\nRequirement:")
        requirement = between(text, "Requirement:\n", "\n\n")
        return json.dumps({"instruction": f"{instruction} {requirement}"})
    if kind == "evolve_depth":
        instruction = between(text, "Instruction:\n", "\n\nHow to make it harder:")
        return json.dumps(
            {
                "instruction": f"{instruction} Mention a fruit.",
                "added_requirement": "mention a fruit",
            }
        )
    if kind == "evolve_breadth":
        instruction = between(text, "Instruction:\n", "\n\nThe new instruction")
        if "village" in instruction:
            return json.dumps({"instruction": "Describe a busy harbour town at dawn."})
        return json.dumps({"instruction": "Describe a quiet mountain village in a few sentences."})
    if kind == "check_follows":
        response = between(text, "[Response]", "[End of response]")
        return json.dumps(
            {"reason": "scripted", "verdict": "FAIL" if "BAD" in response else "PASS"}
        )
    if kind == "check_requirement":
        response = between(text, "[Response]", "[End of response]")
        return json.dumps(
            {"reason": "scripted", "verdict": "PASS" if "apple" in response else "FAIL"}
        )
    return obey(text)


def obey(instruction: str) -> str:
    """A response that follows the verifiable requirements a scripted instruction carries."""
    sentences = [
        "Here is a plain answer about the topic",
        "It has several short sentences, with commas",
        "Each one adds a little detail",
        "The end is near",
        "That is all",
    ]
    sentences += ["An apple is a fruit"] * instruction.count("fruit")  # asked twice, said twice
    body = ". ".join(sentences) + "."
    if "lowercase" in instruction:
        body = body.lower()
    if "commas" in instruction:
        body = body.replace(",", "")
    if "P.P.S" in instruction:
        body += "\nP.P.S thanks for reading"
    elif "P.S." in instruction:
        body += "\nP.S. thanks for reading"
    return body


def ecd_script(body: dict[str, Any], n: int) -> Reply:
    return Reply(text=ecd_reply(body))
