"""The files of ``codit compare``: ``metrics.json`` (every number) and ``report.md`` (for people).

``report_markdown`` is a pure function of the metrics dict; ``write_report`` writes both files
atomically into the output folder (``codit.io.atomic``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codit.io.atomic import write_text

EXCERPT = 600  # characters of an answer shown in the examples


def _excerpt(text: str) -> str:
    text = text if len(text) <= EXCERPT else text[:EXCERPT] + " [...]"
    return "\n".join("> " + line for line in (text.splitlines() or [""]))


def _row(name: str, values: list[Any]) -> str:
    return f"| {name} | " + " | ".join(str(v) for v in values) + " |"


def report_markdown(r: dict[str, Any]) -> str:
    """The Markdown report of one comparison."""
    a, b = r["labels"]
    sa, sb = r["sides"][a], r["sides"][b]
    unit = r["length_unit"]
    lines = [
        f"# {a} vs {b}",
        "",
        f"- {a}: `{r['files'][a]}` ({r['records'][a]} records, {r['only'][a]} not in {b})",
        f"- {b}: `{r['files'][b]}` ({r['records'][b]} records, {r['only'][b]} not in {a})",
        f"- compared on the {r['shared']} ids they share",
        "",
        "## Summary",
        "",
        f"| | {a} | {b} |",
        "| --- | --- | --- |",
    ]
    for key in ("mean", "median", "p10", "p90", "max"):
        lines.append(
            _row(f"length {key} ({unit})", [f"{sa['length'][key]:.1f}", f"{sb['length'][key]:.1f}"])
        )
    lines += [
        _row("distinct-1", [f"{sa['distinct_1']:.3f}", f"{sb['distinct_1']:.3f}"]),
        _row("distinct-2", [f"{sa['distinct_2']:.3f}", f"{sb['distinct_2']:.3f}"]),
    ]
    checks = r.get("checks")
    if checks:
        lines += [
            _row(
                f"IFEval prompt-level strict (n={checks[a]['prompts']})",
                [f"{checks[a]['prompt_level']:.3f}", f"{checks[b]['prompt_level']:.3f}"],
            ),
            _row(
                "IFEval instruction-level strict",
                [f"{checks[a]['instruction_level']:.3f}", f"{checks[b]['instruction_level']:.3f}"],
            ),
        ]
    lines += [
        "",
        f"Identical answers: {r['identical']:.1%} of the shared ids. Mean difference "
        f"({r['difference_measure']}): {r['mean_difference']:.3f}.",
        "",
        "Length is in "
        + (
            "completion tokens (from each record's meta)."
            if unit == "tokens"
            else "words (runs of letters and digits)."
        )
        + " Distinct-n: distinct n-grams over all n-grams of one side's answers (lower-cased words).",
        "",
        "![lengths](lengths.png)",
        "",
        "## Finish reasons",
        "",
        f"| finish reason | {a} | {b} |",
        "| --- | --- | --- |",
    ]
    reasons = sorted(set(sa["finish_reasons"]) | set(sb["finish_reasons"]))
    for reason in reasons:
        lines.append(
            _row(
                reason,
                [
                    f"{sa['finish_reasons'].get(reason, 0)} ({sa['finish_reason_shares'].get(reason, 0.0):.1%})",
                    f"{sb['finish_reasons'].get(reason, 0)} ({sb['finish_reason_shares'].get(reason, 0.0):.1%})",
                ],
            )
        )
    if checks:
        lines += [
            "",
            "## Instructions followed (IFEval strict)",
            "",
            f"Instructions from `{checks['prompts_file']}`, on the {checks[a]['prompts']} shared prompts that carry them.",
            "",
            f"| instruction | n | {a} | {b} |",
            "| --- | --- | --- | --- |",
        ]
        for iid, n in checks[a]["per_instruction_count"].items():
            lines.append(
                _row(
                    f"`{iid}`",
                    [
                        n,
                        f"{checks[a]['per_instruction'][iid]:.2f}",
                        f"{checks[b]['per_instruction'][iid]:.2f}",
                    ],
                )
            )
        lines += ["", "![checks](checks.png)"]
    if r["examples"]:
        lines += ["", "## Where the answers differ most", ""]
        lines.append(f"Ranked by difference ({r['difference_measure']}).")
        for ex in r["examples"]:
            lines += [
                "",
                f"### `{ex['id']}` (difference {ex['difference']:.2f})",
                "",
                "Prompt:",
                "",
                _excerpt(ex["prompt"]),
                "",
                f"{a}:",
                "",
                _excerpt(ex[a]),
                "",
                f"{b}:",
                "",
                _excerpt(ex[b]),
            ]
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], folder: Path) -> Path:
    """Write ``metrics.json`` and ``report.md`` into ``folder``; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text(folder / "metrics.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    report = folder / "report.md"
    write_text(report, report_markdown(result))
    return report
