"""``codit compare`` as a function: two datasets in, their metrics side by side out.

Read top to bottom: read both records files (``messages`` or ``prompt``/``completion``
records), keep the ids they share, find the IFEval instructions of each prompt (from
``--prompts``, else from the input file named in A's or B's manifest, when its rows carry
``instruction_id_list`` and ``kwargs``), compute every metric of ``compare.metrics`` for both
sides, then write ``metrics.json``, ``report.md`` and the plots into the output folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.compare import metrics as m
from codit.errors import DataError
from codit.export.shards import iter_jsonl
from codit.io.lock import locked
from codit.io.manifest import read_manifest
from codit.settings import check, setting

Instructions = tuple[list[str], list[dict[str, Any]]]  # IFEval instruction ids and their kwargs


@dataclass(frozen=True)
class CompareConfig:
    """Settings of ``codit compare``. Fields become ``--flags`` (the two files are positional)."""

    output: str | None = setting(None, "folder for report.md, metrics.json and the plots")
    labels: str | None = setting(
        None, "names of the two sides, comma-separated (default: the file names)"
    )
    prompts: str | None = setting(
        None,
        "IFEval-style prompts (instruction_id_list, kwargs) to check the answers against "
        "(default: the input in A's manifest, when it carries them)",
    )
    examples: int = setting(5, "examples shown where the answers differ most", ge=0)

    def __post_init__(self) -> None:
        problems = []
        if not self.output:
            problems.append("--output is required (a folder for the report)")
        if self.labels is not None and len(self.labels.split(",")) != 2:
            problems.append(f"--labels takes two names separated by a comma, got {self.labels!r}")
        check(self, problems)


@dataclass(frozen=True)
class Answer:
    """One record reduced to what the comparison reads."""

    prompt: str
    response: str
    meta: dict[str, Any]


def _text(value: Any, role: str) -> str | None:
    """The text of ``value``: a string, or the last ``role`` turn of a messages list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        turns = [t for t in value if isinstance(t, dict) and t.get("role") == role]
        if turns and isinstance(turns[-1].get("content"), str):
            return str(turns[-1]["content"])
    return None


def read_answers(path: Path) -> dict[str, Answer]:
    """id -> Answer for every record of a codit output."""
    if not path.is_file():
        raise DataError(f"records file {path} does not exist")
    out: dict[str, Answer] = {}
    for n, row in iter_jsonl(path):
        if "messages" in row:
            prompt, response = _text(row["messages"], "user"), _text(row["messages"], "assistant")
        else:
            prompt, response = (
                _text(row.get("prompt"), "user"),
                _text(row.get("completion"), "assistant"),
            )
        if row.get("id") is None or prompt is None or response is None:
            raise DataError(
                f"{path}, line {n}: expected an id and messages ending with an assistant turn "
                f"(or prompt/completion); found fields: {', '.join(sorted(row))}"
            )
        meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
        out[str(row["id"])] = Answer(prompt, response, meta or {})
    return out


def _prompt_source(config: CompareConfig, a: Path, b: Path) -> tuple[Path | None, str | None]:
    """The prompts file to read instructions from, and its id field."""
    if config.prompts:
        return Path(config.prompts), None
    for path in (a, b):
        manifest = read_manifest(path) or {}
        given = (manifest.get("config") or {}).get("input")
        if given and Path(given).suffix == ".jsonl" and Path(given).is_file():
            return Path(given), (manifest.get("config") or {}).get("id_field")
    return None, None


def read_instructions(
    path: Path, id_field: str | None
) -> tuple[dict[str, Instructions], dict[str, Instructions]]:
    """(by id, by prompt text) -> (instruction ids, kwargs) for the rows that carry them."""
    by_id: dict[str, Instructions] = {}
    by_text: dict[str, Instructions] = {}
    for n, row in iter_jsonl(path):
        ids = row.get("instruction_id_list")
        if not ids:
            continue
        kwargs = row.get("kwargs") or [{} for _ in ids]
        if not isinstance(ids, list) or not isinstance(kwargs, list) or len(kwargs) != len(ids):
            raise DataError(
                f"{path}, line {n}: instruction_id_list and kwargs must be lists of one length"
            )
        entry = (ids, kwargs)
        key = row.get(id_field) if id_field else row.get("id", row.get("key"))
        if key is not None:
            by_id[str(key)] = entry
        if isinstance(row.get("prompt"), str):
            by_text[row["prompt"]] = entry
    return by_id, by_text


def _side(answers: list[Answer], lengths: list[int]) -> dict[str, Any]:
    reasons = m.finish_reasons(x.meta for x in answers)
    texts = [x.response for x in answers]
    return {
        "records": len(answers),
        "length": m.length_summary(lengths),
        "finish_reasons": reasons,
        "finish_reason_shares": m.shares(reasons),
        "distinct_1": m.distinct_n(texts, 1),
        "distinct_2": m.distinct_n(texts, 2),
    }


def compare(a: str | Path, b: str | Path, config: CompareConfig) -> dict[str, Any]:
    """Compare two datasets on the ids they share; write the report; return the metrics.

    Returns:
        The content of ``metrics.json`` (plus ``report``: the path of ``report.md``).

    Raises:
        OutputLocked: another run is writing the same output folder.
    """
    with locked(Path(str(config.output)), "compare"):  # two runs would mix their reports
        return _compare(a, b, config)


def _compare(a: str | Path, b: str | Path, config: CompareConfig) -> dict[str, Any]:
    from codit.compare.plots import plot_checks, plot_lengths
    from codit.compare.report import write_report

    a, b = Path(a), Path(b)
    labels = config.labels.split(",") if config.labels else [a.stem, b.stem]
    if labels[0] == labels[1]:
        labels = [f"{labels[0]} (A)", f"{labels[1]} (B)"]
    left, right = read_answers(a), read_answers(b)
    shared = [key for key in left if key in right]
    if not shared:
        raise DataError(f"{a} and {b} share no record id; compare two runs over the same prompts")
    unit = m.length_unit([left[k].meta for k in shared] + [right[k].meta for k in shared])
    lengths = {
        label: [m.response_length(side[k].response, side[k].meta, unit) for k in shared]
        for label, side in ((labels[0], left), (labels[1], right))
    }
    sides = {
        labels[0]: _side([left[k] for k in shared], lengths[labels[0]]),
        labels[1]: _side([right[k] for k in shared], lengths[labels[1]]),
    }
    pairs = {k: (left[k].response, right[k].response) for k in shared}
    examples = [
        {
            "id": key,
            "difference": round(d, 4),
            "prompt": left[key].prompt,
            labels[0]: left[key].response,
            labels[1]: right[key].response,
        }
        for key, d in m.most_different(pairs, config.examples)
    ]
    result: dict[str, Any] = {
        "files": {labels[0]: str(a), labels[1]: str(b)},
        "labels": labels,
        "records": {labels[0]: len(left), labels[1]: len(right)},
        "shared": len(shared),
        "only": {labels[0]: len(left) - len(shared), labels[1]: len(right) - len(shared)},
        "length_unit": unit,
        "sides": sides,
        "identical": m.identical_share(list(pairs.values())),
        "mean_difference": sum(m.difference(x, y) for x, y in pairs.values()) / len(pairs),
        "difference_measure": "1 - Jaccard similarity of the two answers' lower-cased word sets",
        "examples": examples,
    }

    source, id_field = _prompt_source(config, a, b)
    if source is not None:
        by_id, by_text = read_instructions(source, id_field)
        found: dict[str, Instructions] = {}
        for k in shared:
            entry = by_id.get(k) or by_text.get(left[k].prompt)
            if entry:
                found[k] = entry
        if found:
            result["checks"] = {"prompts_file": str(source)}
            for label, side in ((labels[0], left), (labels[1], right)):
                verdicts = [
                    (ids, m.check_verdicts(side[k].response, ids, kwargs, side[k].prompt))
                    for k, (ids, kwargs) in found.items()
                ]
                result["checks"][label] = m.check_rates(verdicts)

    out = Path(str(config.output))
    out.mkdir(parents=True, exist_ok=True)
    plots = [plot_lengths(lengths, unit, out / "lengths.png")]
    if "checks" in result:
        plots.append(plot_checks(result["checks"], labels, out / "checks.png"))
    result["plots"] = [p.name for p in plots]
    result["report"] = str(write_report(result, out))
    return result
