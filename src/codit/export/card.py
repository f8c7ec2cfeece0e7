"""The dataset card of an exported dataset: ``README.md`` with the hub's YAML metadata on top.

The metadata block (license, task categories, size category, tags, ``configs`` naming the data
files of the train split, ``dataset_info`` with the features and the record count) is what the
hub and ``datasets.load_dataset`` read; the body is written from the run manifest so that a
reader who never heard of codit sees how the data was made: the models and their revisions, the
decoding settings, the counts and finish-reason shares, the codit version and the command.
Pure functions from dicts to text; nothing here touches files.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import yaml

SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
)
TASK_CATEGORIES = ["text-generation"]
DECODING_KEYS = ("mode", "rule", "alpha", "beta", "temperature", "top_p", "top_k", "max_new_tokens")


def size_category(n: int) -> str:
    """The hub's size bucket for ``n`` records (``"1K<n<10K"``)."""
    return next((name for bound, name in SIZE_CATEGORIES if n < bound), "n>1B")


def metadata(
    records: int,
    license: str,
    data_glob: str,
    features: list[dict[str, Any]] | None = None,
    num_bytes: int | None = None,
    pretty_name: str | None = None,
) -> dict[str, Any]:
    """The card's YAML metadata as a dict."""
    split: dict[str, Any] = {"name": "train", "num_examples": records}
    if num_bytes is not None:
        split["num_bytes"] = num_bytes
    info: dict[str, Any] = {"splits": [split]}
    if features is not None:
        info = {"features": features, **info}
    meta: dict[str, Any] = {
        "license": license,
        "task_categories": TASK_CATEGORIES,
        "language": ["en"],
        "size_categories": [size_category(records)],
        "tags": ["synthetic", "sft", "codit"],
        "configs": [
            {"config_name": "default", "data_files": [{"split": "train", "path": data_glob}]}
        ],
        "dataset_info": info,
    }
    if pretty_name:
        meta = {"pretty_name": pretty_name, **meta}
    return meta


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("chat_template_kwargs",):
            out.update(_flat(v, prefix))
        else:
            out[prefix + k] = v
    return out


def command_line(command: str, config: dict[str, Any], defaults: dict[str, Any]) -> str:
    """``codit <command>`` with the flags whose values differ from ``defaults``.

    Args:
        command: the subcommand, e.g. ``generate``.
        config: the resolved config as the manifest records it (nested dicts are flattened,
            as the CLI flattens nested configs into one flag set).
        defaults: the same for a config with every default.
    """
    flat, base = _flat(config), _flat(defaults)
    parts = ["codit", command]
    for key, value in flat.items():
        if value == base.get(key) or value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, dict):
            parts += [flag, *(f"{k}={json.dumps(v)}" for k, v in value.items())]
        elif isinstance(value, list):
            for item in value:
                parts += [flag, str(item)]
        else:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _model_rows(models: dict[str, Any] | None, settings: dict[str, Any]) -> list[str]:
    rows = []
    for role in ("instruct", "base"):
        info = (models or {}).get(role)
        name = (info or {}).get("name") or settings.get(role)
        if not name:
            continue
        revision = (info or {}).get("revision") or "(not recorded)"
        fingerprint = (info or {}).get("fingerprint") or ""
        rows.append(f"| {role} | `{name}` | {revision} | {fingerprint} |")
    return rows


def record_format(columns: list[str] | None) -> str:
    """One sentence on the records' format and the TRL trainer that reads it."""
    cols = set(columns or ())
    if "messages" in cols:
        return (
            "One record per prompt in TRL's conversational format (`messages`), so "
            "`trl.SFTTrainer` reads it as it is."
        )
    if {"prompt", "chosen", "rejected"} <= cols:
        return (
            "Preference pairs in TRL's format (`prompt`, `chosen`, `rejected`), so "
            "`trl.DPOTrainer` reads it as it is."
        )
    if {"prompt", "completion"} <= cols:
        return "Records in TRL's prompt-completion format (`prompt`, `completion`)."
    return f"Columns: {', '.join(f'`{c}`' for c in sorted(cols))}."


def card_body(
    name: str,
    manifest: dict[str, Any] | None,
    records: int,
    finish_reasons: dict[str, int],
    completion_tokens: int,
    shards: int,
    fmt: str,
    generate_command: str | None,
    export_command: str,
    columns: list[str] | None = None,
) -> str:
    """The Markdown body of the card, from the manifest and the counts of the exported records."""
    manifest = manifest or {}
    settings = manifest.get("settings", {})
    decoding = settings.get("decoding", {})
    env = manifest.get("environment", {})
    mode = decoding.get("mode")
    how = (
        "contrastive decoding (CoDIT) of the instruct model against its base model"
        if mode and mode != "direct"
        else "direct sampling from the instruct model"
        if mode
        else "its pipeline"
    )
    lines = [
        f"# {name}",
        "",
        f"Made with codit{' ' + env['codit'] if 'codit' in env else ''}"
        f"{' (`codit ' + manifest['command'] + '`)' if manifest.get('command') else ''} by {how}. "
        + record_format(columns),
        "",
        "## Models",
        "",
        "| role | model | revision | fingerprint |",
        "| --- | --- | --- | --- |",
        *(_model_rows(manifest.get("models"), settings) or ["| - | (no manifest) | | |"]),
        "",
        "## Decoding",
        "",
        "| setting | value |",
        "| --- | --- |",
        *(f"| {k} | {decoding[k]} |" for k in DECODING_KEYS if k in decoding),
        *(
            f"| {k} | {json.dumps(settings[k])} |"
            for k in ("system_prompt", "chat_template_kwargs")
            if settings.get(k)
        ),
        "",
        "## Counts",
        "",
        f"- records: {records} (split `train`, {shards} {fmt} shard{'s' if shards != 1 else ''})",
        f"- completion tokens: {completion_tokens}",
    ]
    counts = manifest.get("counts", {})
    if "errors" in counts:
        lines.append(f"- prompts that failed (not in the dataset): {counts['errors']}")
    lines += ["", "| finish reason | records | share |", "| --- | --- | --- |"]
    for reason, n in sorted(finish_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"| {reason} | {n} | {n / records:.1%} |")
    source = manifest.get("source")
    if source:
        lines += ["", "## Prompts", "", "```json", json.dumps(source, indent=2), "```"]
    lines += ["", "## How it was made", "", "```bash"]
    if generate_command:
        lines.append(generate_command)
    lines += [export_command, "```", ""]
    if env:
        versions = ", ".join(f"{k} {v}" for k, v in env.items() if k != "platform")
        lines += [f"Software: {versions}.", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        f'data = load_dataset("{name}", split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)


def render(meta: dict[str, Any], body: str) -> str:
    """``---`` YAML ``---`` then the body: the file the hub reads as a dataset card."""
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{head}---\n\n{body}"


def parse(text: str) -> tuple[dict[str, Any], str]:
    """The YAML metadata and the body of a card (the inverse of ``render``)."""
    if not text.startswith("---\n"):
        return {}, text
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head) or {}, body.lstrip("\n")
