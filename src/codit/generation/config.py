"""The settings of a ``codit generate`` run: one frozen dataclass, the source of the CLI flags,
the YAML config file and the manifest."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, replace
from typing import Any

from codit.decoding.config import DecodingConfig
from codit.distributed.config import RayConfig
from codit.errors import ConfigError
from codit.io.filters import PromptFilters
from codit.io.options import OutputOptions
from codit.io.sources import InputSource
from codit.models.loading import DTYPES, TINY_NAMES, device_problems
from codit.settings import check, setting

TINY_PAIR = TINY_NAMES  # (instruct, base)

# The model settings that ``codit generate`` and ``codit serve`` share: name -> (default, help,
# rules). ``model_setting(name)`` makes the field; ``model_problems`` checks them together.
MODEL_SETTINGS: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "instruct": (
        "tiny-instruct",
        "instruct (post-trained) model: hub id, local directory or tiny-instruct",
        {},
    ),
    "base": (None, "its base model (codit mode); defaults to tiny-base with tiny-instruct", {}),
    "batch_size": (8, "rows decoded at once", {"ge": 1}),
    "kv_cache_memory": (
        None,
        "K/V cache budget of both models: a size (4GB, 512MiB) or a fraction of free device "
        "memory (0.5); default 85%% of free GPU memory, grown on demand on CPU",
        {},
    ),
    "chat_template_kwargs": (
        MISSING,
        "extra chat-template variables, e.g. enable_thinking=false",
        {"default_factory": dict},
    ),
    "device": ("auto", "auto, cpu, cuda or cuda:N", {}),
    "base_device": (None, "put the base model on another device (e.g. cuda:1)", {}),
    "dtype": (
        "auto",
        "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16 or float16",
        {"choices": DTYPES},
    ),
    "trust_remote_code": (
        False,
        "run code shipped with the models (only for models you trust)",
        {},
    ),
}


def model_setting(name: str) -> Any:
    """The field ``name`` of ``MODEL_SETTINGS``, for a config that loads a model pair."""
    default, help_text, rules = MODEL_SETTINGS[name]
    return setting(default, help_text, **rules)


def model_problems(config: Any) -> list[str]:
    """The rules across the model fields of ``config`` (a ``GenerateConfig`` or ``ServeConfig``).

    Fills in tiny-base as the base of tiny-instruct in codit mode first.
    """
    if config.base is None and config.instruct == TINY_PAIR[0] and config.decoding.contrastive:
        object.__setattr__(config, "base", TINY_PAIR[1])
    problems = []
    if config.decoding.contrastive and not config.base:
        problems.append(
            "--mode codit needs --base (the instruct model's own base model); or use --mode direct"
        )
    if config.kv_cache_memory is not None:
        from codit.decoding.kvcache import parse_memory

        try:
            parse_memory(config.kv_cache_memory)
        except ConfigError as err:
            problems.append(str(err))
    return problems + device_problems(config.device, config.base_device)


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that defines a generation run. Fields become ``--flags``."""

    input: str | None = setting(
        None,
        "prompts: .jsonl, .json, .csv, .parquet, a saved datasets directory, or hf:ORG/NAME "
        "(through datasets)",
    )
    source: InputSource = field(default_factory=InputSource)
    filters: PromptFilters = field(default_factory=PromptFilters)
    output: str | None = setting(None, "output .jsonl (records are appended; a rerun resumes)")
    baseline: str | None = setting(
        None,
        "then also write the direct baseline (instruct model alone, same prompts and sampling) "
        "to this .jsonl",
    )
    instruct: str = model_setting("instruct")
    base: str | None = model_setting("base")
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    batch_size: int = model_setting("batch_size")
    continuous_batching: bool = setting(True, "refill finished rows from the queue at once")
    kv_cache_memory: str | None = model_setting("kv_cache_memory")
    limit: int | None = setting(None, "use only the first N prompts", ge=1, optional=True)
    num_samples: int = setting(
        1, "samples per prompt, ids ID#s0..ID#s<N-1> (a Best-of-N baseline)", ge=1
    )
    prompt_field: str | None = setting(
        None,
        "input field with the prompt text or messages list (default: messages, prompt, "
        "instruction, ...)",
    )
    id_field: str | None = setting(
        None, "input field with the record id (default: id if present, else a hash of the prompt)"
    )
    system_prompt: str | None = setting(None, "system turn added before each prompt")
    chat_template_kwargs: dict[str, Any] = model_setting("chat_template_kwargs")
    device: str = model_setting("device")
    base_device: str | None = model_setting("base_device")
    device_map: str | None = setting(
        None,
        "auto: spread each model over all visible GPUs when one is too small",
        choices=("auto",),
        optional=True,
    )
    dtype: str = model_setting("dtype")
    trust_remote_code: bool = model_setting("trust_remote_code")
    retry_errors: bool = setting(False, "retry the records listed in the errors file")
    distributed: RayConfig = field(default_factory=RayConfig)
    output_options: OutputOptions = field(default_factory=OutputOptions)

    def __post_init__(self) -> None:
        problems = model_problems(self)
        if not self.input:
            problems.append("--input is required")
        if not self.output:
            problems.append("--output is required")
        elif not str(self.output).endswith(".jsonl"):
            problems.append(f"--output must be a .jsonl file, got {self.output}")
        if self.baseline is not None:
            if not str(self.baseline).endswith(".jsonl"):
                problems.append(f"--baseline must be a .jsonl file, got {self.baseline}")
            elif self.output and str(self.baseline) == str(self.output):
                problems.append("--baseline must be another file than --output")
            if not self.decoding.contrastive:
                problems.append("--baseline needs --mode codit (in direct mode the output is it)")
        if self.num_samples > 1 and (self.decoding.temperature == 0 or self.decoding.top_k == 1):
            problems.append(
                f"--num-samples {self.num_samples} needs sampling: with --temperature 0 (or"
                " --top-k 1) every sample is the same greedy response; set --temperature above 0"
            )
        if self.distributed.ray:
            problems += self._ray_device_problems()
        check(self, problems)

    def _ray_device_problems(self) -> list[str]:
        """A Ray worker sees only its own GPUs, numbered from 0."""
        gpus = self.distributed.gpus_per_worker
        problems = []
        if gpus > 0 and self.device == "cpu":
            problems.append("--gpus-per-worker needs --device auto or cuda, not cpu")
        for name, value in (("--device", self.device), ("--base-device", self.base_device)):
            if not value or not value.startswith("cuda"):
                continue
            if gpus == 0:
                problems.append(f"{name} {value} on Ray needs --gpus-per-worker >= 1")
            elif value[5:].isdigit() and int(value[5:]) >= gpus:
                problems.append(
                    f"{name} {value} needs --gpus-per-worker >= {int(value[5:]) + 1} "
                    "(each Ray worker numbers its own GPUs from 0)"
                )
        return problems

    def baseline_run(self) -> GenerateConfig:
        """The run ``--baseline`` adds: the same prompts, filters and sampling, the instruct model
        alone, into the baseline file (a run of its own: its manifest, its resume)."""
        assert self.baseline is not None
        decoding = replace(self.decoding, mode="direct")
        return replace(self, output=self.baseline, baseline=None, decoding=decoding)

    def record_settings(self) -> dict[str, Any]:
        """The settings that shape the records; a resumed run must keep them."""
        from codit.config import to_dict

        settings: dict[str, Any] = {
            "instruct": self.instruct,
            "base": self.base if self.decoding.contrastive else None,
            "decoding": to_dict(self.decoding),
            "system_prompt": self.system_prompt,
            "chat_template_kwargs": self.chat_template_kwargs,
            **({"num_samples": self.num_samples} if self.num_samples > 1 else {}),
        }
        # Which prompts a run answers; recorded only when set, so older manifests still match.
        if str(self.input).startswith("hf:"):
            # how rows are read (streaming) is free; a moved revision is checked on the
            # commit it resolves to (generation.inputs.check_same_revision)
            settings["source"] = {
                "input": self.input,
                "split": self.source.split,
                "subset": self.source.subset,
            }
        if self.filters.active:
            settings["filters"] = self.filters.to_manifest()
        return settings
