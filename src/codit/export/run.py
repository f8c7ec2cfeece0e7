"""``codit export`` as a function: a records file in, a carded, ``datasets``-loadable folder out.

Read top to bottom: check the settings, write the shards (``export.shards``), write the card
from the run manifest and the counts (``export.card``), copy the manifest next to it, and
optionally upload the folder (``export.hub``). The folder loads with
``datasets.load_dataset(folder)`` and, once pushed, with ``load_dataset("ORG/NAME")``.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codit.errors import ConfigError, DataError
from codit.export.card import card_body, command_line, metadata, render
from codit.export.hub import hub_token, push_folder
from codit.export.shards import FORMATS, SPLIT, write_shards
from codit.io.atomic import write_text
from codit.io.lock import locked
from codit.io.manifest import read_manifest
from codit.settings import check, setting

MANIFEST_COPY = "codit_manifest.json"


@dataclass(frozen=True)
class ExportConfig:
    """Settings of ``codit export``. Fields become ``--flags`` (the records file is positional)."""

    format: str = setting("parquet", "shard format", choices=FORMATS)
    shard_size: int = setting(100_000, "records per shard", ge=1)
    to: str | None = setting(
        None, "dataset folder to write (default: OUT-dataset/ next to OUT.jsonl)"
    )
    license: str = setting(
        "other", "the card's license field (the models' licenses bind generated data)"
    )
    name: str | None = setting(
        None,
        "the dataset's name in the card (default: the --push-to-hub repo or the folder name)",
    )
    push_to_hub: str | None = setting(
        None, "upload the folder to this hub dataset repo (ORG/NAME); token from HF_TOKEN"
    )
    private: bool = setting(False, "create the hub repo private")

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    folder: Path
    records: int
    shards: list[Path]
    card: Path
    url: str | None


def default_folder(records: Path) -> Path:
    """``out/codit.jsonl`` -> ``out/codit-dataset``."""
    return records.with_name(records.stem + "-dataset")


def _generate_command(manifest: dict[str, Any] | None) -> str | None:
    if not manifest or manifest.get("command") != "generate" or "config" not in manifest:
        return None
    from codit.config import to_dict
    from codit.generation.config import GenerateConfig

    config = manifest["config"]
    defaults = to_dict(GenerateConfig(input=config.get("input"), output=config.get("output")))
    defaults.pop("input", None)
    defaults.pop("output", None)
    return command_line("generate", config, defaults)


def _export_command(records: Path, config: ExportConfig, folder: Path) -> str:
    parts = ["codit", "export", str(records), "--format", config.format]
    parts += ["--shard-size", str(config.shard_size), "--to", str(folder)]
    if config.license != "other":
        parts += ["--license", config.license]
    if config.push_to_hub:
        parts += ["--push-to-hub", config.push_to_hub]
    return " ".join(shlex.quote(p) for p in parts)


def export(
    records: str | Path, config: ExportConfig | None = None, api: Any = None
) -> ExportSummary:
    """Export a records file as a dataset folder, and push it when ``config.push_to_hub``.

    Args:
        records: a codit JSONL output (``codit generate``, ``codeclm``, ``ecd``...).
        config: the export settings.
        api: an ``HfApi``-like object for the upload (tests pass a fake).

    Raises:
        OutputLocked: another export is writing the same folder.
    """
    config = config or ExportConfig()
    records = Path(records)
    if not records.is_file():
        raise DataError(f"records file {records} does not exist")
    if config.push_to_hub:
        hub_token(config.push_to_hub)  # fail before writing anything
    folder = Path(config.to) if config.to else default_folder(records)
    if folder.resolve() == records.parent.resolve():
        raise ConfigError(f"--to {folder} is the records' own folder; choose a new folder")
    with locked(folder, "export"):  # two exports into one folder would mix their shards
        return _export(records, config, folder, api)


def _export(records: Path, config: ExportConfig, folder: Path, api: Any) -> ExportSummary:
    from datasets import Features

    folder.mkdir(parents=True, exist_ok=True)

    summary = write_shards(records, folder, config.format, config.shard_size)
    manifest = read_manifest(records)
    name = config.name or config.push_to_hub or folder.name
    features = Features.from_arrow_schema(summary.schema)._to_yaml_list()
    meta = metadata(
        summary.records,
        config.license,
        f"data/{SPLIT}-*",
        features=features,
        num_bytes=summary.num_bytes,
        pretty_name=name,
    )
    body = card_body(
        name,
        manifest,
        summary.records,
        summary.finish_reasons,
        summary.completion_tokens,
        len(summary.shards),
        config.format,
        _generate_command(manifest),
        _export_command(records, config, folder),
        list(summary.schema.names),
    )
    card = folder / "README.md"
    write_text(card, render(meta, body))
    if manifest is not None:
        write_text(folder / MANIFEST_COPY, json.dumps(manifest, indent=2, default=str) + "\n")

    url = None
    if config.push_to_hub:
        url = push_folder(folder, config.push_to_hub, config.private, api=api)
    return ExportSummary(folder, summary.records, summary.shards, card, url)
