"""The settings of ``codit eval ifeval``: what to evaluate and where the report goes.

Fields are declared with ``codit.settings.setting`` (default, help, range); ``__post_init__``
adds only the rules that tie fields together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from codit.io.options import OutputOptions
from codit.settings import check, setting


@dataclass(frozen=True)
class IFEvalConfig:
    """What to evaluate and where to write the report (``codit eval ifeval``)."""

    output: str | None = setting(
        None, "folder for metrics.json, verdicts.jsonl and the chart (required)"
    )
    responses: str | None = setting(
        None, "responses file to score (JSONL: prompt/response, or codit records)"
    )
    model: str | None = setting(
        None,
        "generate the responses first with this model: a local model, local:MODEL_OR_PATH or "
        "openai:MODEL@BASE_URL",
    )
    input_data: str | None = setting(
        None,
        "IFEval prompts, a local input_data.jsonl (default: the public google/IFEval dataset, "
        "downloaded once through datasets and cached)",
    )
    limit: int | None = setting(None, "evaluate only the first N prompts", ge=1, optional=True)
    max_new_tokens: int = setting(1280, "longest generated response in tokens, with --model", ge=1)
    retry_errors: bool = setting(False, "with --model: ask again for the prompts in errors.jsonl")
    output_options: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        problems = []
        if not self.output:
            problems.append("--output is required")
        if (self.responses is None) == (self.model is None):
            problems.append("give exactly one of --responses FILE and --model MODEL")
        check(self, problems)
