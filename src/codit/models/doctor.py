"""``codit check``: what a run with this pair will do, found from configs and tokenizers alone.

Before a 250k-prompt run, ``diagnose`` says what will be contrasted (architectures, parameter
counts, dtypes, embedding rows against the tokenizer), which EOS ids stop a response, how a
prompt renders with and without a system prompt, the context limit, and whether the pair and
its KV cache fit the device. No weights load: parameter counts come from a model built on the
``meta`` device, stored dtypes from the safetensors headers. Each problem (different
tokenizers, a base not shaped like the instruct model, a template that does not render, a pair
that does not fit) is one sentence in ``PairReport.problems``. ``codit generate`` runs it first.
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from codit.errors import CoditError
from codit.models.loading import DTYPES, TINY_NAMES, device_problems
from codit.settings import check, setting

log = logging.getLogger(__name__)

SAMPLE_PROMPT = "Write a haiku about the sea."
SAMPLE_SYSTEM = "You are a helpful assistant."
# the shape fields a base model shares with the instruct model post-trained from it
SHAPE_FIELDS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "head_dim",
)
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 2**30


@dataclass(frozen=True)
class CheckConfig:
    """What ``codit check`` looks at. Fields become ``--flags``."""

    instruct: str = setting("tiny-instruct", "instruct model: hub id, directory or tiny-instruct")
    base: str | None = setting(None, "its base model; defaults to tiny-base with tiny-instruct")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    base_device: str | None = setting(None, "the base model's device, if not --device")
    device_map: str | None = setting(
        None, "auto: spread each model over all visible GPUs", choices=("auto",), optional=True
    )
    dtype: str = setting(
        "auto", "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16 or float16", choices=DTYPES
    )
    batch_size: int = setting(8, "rows decoded at once", ge=1)
    max_new_tokens: int = setting(512, "most tokens per response", ge=1)
    system_prompt: str | None = setting(
        None, "the system prompt of the run (default: a sample one)"
    )
    chat_template_kwargs: dict[str, Any] = setting(
        help="extra chat-template variables, e.g. enable_thinking=false", default_factory=dict
    )
    trust_remote_code: bool = setting(False, "run code shipped with the models")

    def __post_init__(self) -> None:
        if self.base is None and self.instruct == TINY_NAMES[0]:
            object.__setattr__(self, "base", TINY_NAMES[1])
        check(self, device_problems(self.device, self.base_device))


@dataclass
class ModelFacts:
    """One model, as its config, tokenizer and checkpoint headers describe it."""

    name: str
    architecture: str
    parameters: int
    stored_dtypes: list[str]
    rows: int | None
    tokenizer_len: int
    context: int | None
    layers: int
    kv_bytes_per_token: int  # K and V over all layers, in the run's dtype
    stop_ids: list[int]
    stop_tokens: list[str]
    has_template: bool


@dataclass
class PairReport:
    """Everything ``codit check`` prints; ``problems`` empty means the run can go."""

    instruct: ModelFacts
    base: ModelFacts | None
    contrasted: int | None
    dtype: str
    sample: dict[str, Any]
    system_turn: dict[str, Any] | None
    memory: list[dict[str, Any]]
    problems: list[str]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _text_config(config: Any) -> Any:
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def stored_dtypes(path: str) -> list[str]:
    """The dtypes of a local checkpoint's tensors, from the safetensors headers (no weights read)."""
    names = set()
    for file in sorted(Path(path).glob("*.safetensors")):
        with file.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        names |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    mapping = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}
    return sorted(mapping.get(n, n.lower()) for n in names)


def count_parameters(config: Any, trust_remote_code: bool = False) -> int:
    """Parameters of the model a config describes, built on the ``meta`` device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    return sum(p.numel() for p in model.parameters())


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    text = _text_config(config)
    heads = getattr(text, "num_attention_heads", 1)
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return 2 * text.num_hidden_layers * kv_heads * head_dim * dtype_bytes


def context_limit(config: Any, tokenizer: Any) -> int | None:
    limits = [getattr(_text_config(config), "max_position_embeddings", None)]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and tok_max < 10**9:
        limits.append(tok_max)
    known = [int(v) for v in limits if v]
    return min(known) if known else None


def _facts(
    name: str, tokenizer: Any, config: Any, dtype_bytes: int, trust_remote_code: bool
) -> ModelFacts:
    from codit.models.loading import eos_ids, resolve_model_path

    path = resolve_model_path(name)
    stops = eos_ids(name, tokenizer)
    return ModelFacts(
        name=name,
        architecture=(getattr(config, "architectures", None) or [config.model_type])[0],
        parameters=count_parameters(config, trust_remote_code),
        stored_dtypes=stored_dtypes(path) if Path(path).is_dir() else [],
        rows=getattr(_text_config(config), "vocab_size", None),
        tokenizer_len=len(tokenizer),
        context=context_limit(config, tokenizer),
        layers=_text_config(config).num_hidden_layers,
        kv_bytes_per_token=kv_bytes_per_token(config, dtype_bytes),
        stop_ids=stops,
        stop_tokens=[str(t) for t in tokenizer.convert_ids_to_tokens(stops)],
        has_template=bool(getattr(tokenizer, "chat_template", None)),
    )


def shape_mismatch(instruct_config: Any, base_config: Any) -> list[str]:
    """The shape fields in which the base differs from the instruct model."""
    a, b = _text_config(instruct_config), _text_config(base_config)
    out = []
    for name in SHAPE_FIELDS:
        va, vb = getattr(a, name, None), getattr(b, name, None)
        if va is not None and vb is not None and va != vb:
            out.append(f"{name} {vb} vs {va}")
    return out


def sample_prompts(
    tokenizer: Any, system_prompt: str | None, template_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The sample prompt rendered without and with a system prompt, and its token counts."""
    from codit.models.chat import prompt_ids, with_system

    user = [{"role": "user", "content": SAMPLE_PROMPT}]
    out: dict[str, Any] = {}
    for key, messages in (
        ("plain", user),
        ("system", with_system(user, system_prompt or SAMPLE_SYSTEM)),
    ):
        ids = prompt_ids(tokenizer, messages, template_kwargs)
        out[key] = {"text": tokenizer.decode(ids), "tokens": len(ids)}
    return out


def device_budgets(devices: list[str], device_map: str | None) -> dict[str, int | None]:
    """Bytes available on each device the run uses (all GPUs together with ``--device-map auto``)."""
    import torch

    out: dict[str, int | None] = {}
    for dev in devices:
        if dev.startswith("cuda") and torch.cuda.is_available():
            if device_map == "auto":
                out[dev] = sum(
                    torch.cuda.get_device_properties(i).total_memory
                    for i in range(torch.cuda.device_count())
                )
            else:
                out[dev] = torch.cuda.get_device_properties(torch.device(dev)).total_memory
        else:
            out[dev] = host_memory_available()
    return out


def host_memory_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_plan(
    models: list[tuple[ModelFacts, str]],
    dtype_bytes: int,
    tokens: int,
    batch_size: int,
    vocab: int,
    device_map: str | None,
) -> list[dict[str, Any]]:
    """Estimated bytes per device: weights, KV cache for ``batch_size`` rows of ``tokens``, logits."""
    need: dict[str, dict[str, float]] = {}
    for facts, dev in models:
        row = need.setdefault(dev, {"weights": 0, "kv_cache": 0, "logits": 0})
        row["weights"] += facts.parameters * dtype_bytes
        row["kv_cache"] += facts.kv_bytes_per_token * tokens * batch_size
        row["logits"] += batch_size * vocab * 4 * 3  # fp32 scores, probabilities, a scratch copy
    budgets = device_budgets(list(need), device_map)
    return [
        {
            "device": dev,
            **{k: int(v) for k, v in parts.items()},
            "total": int(sum(parts.values()) * 1.1),  # 10% for activations and the allocator
            "available": budgets[dev],
        }
        for dev, parts in need.items()
    ]


def diagnose(config: CheckConfig, contrastive: bool = True, memory: bool = True) -> PairReport:
    """Look at a pair from configs and tokenizers (no weights) and list every problem.

    Args:
        config: the pair and the run's shape (device, dtype, batch size, response length).
        contrastive: False for direct mode (the base is not looked at).
        memory: compare the memory estimate with this machine's devices (not for Ray runs,
            whose workers have other devices).
    """
    from codit.models.chat import system_handling
    from codit.models.loading import load_config, load_tokenizer, resolve_device, resolve_dtype
    from codit.models.pair import check_pair, real_vocab_size

    problems: list[str] = []
    notes: list[str] = []
    base_name = config.base if contrastive else None
    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    dtype_name = str(dtype).removeprefix("torch.")
    nbytes = BYTES[dtype_name]
    tokenizer = load_tokenizer(config.instruct, config.trust_remote_code)
    inst_config = load_config(config.instruct, config.trust_remote_code)
    instruct = _facts(config.instruct, tokenizer, inst_config, nbytes, config.trust_remote_code)
    base = None
    contrasted: int | None = None
    try:
        if base_name is None:
            contrasted = real_vocab_size(tokenizer, inst_config, config.instruct)
        else:
            base_tok = load_tokenizer(base_name, config.trust_remote_code)
            base_config = load_config(base_name, config.trust_remote_code)
            base = _facts(base_name, base_tok, base_config, nbytes, config.trust_remote_code)
            mismatch = shape_mismatch(inst_config, base_config)
            if mismatch:
                problems.append(
                    f"the base {base_name!r} is not shaped like {config.instruct!r} "
                    f"({', '.join(mismatch)}); CoDIT needs the instruct model's own base model"
                )
            contrasted = check_pair(
                config.instruct, base_name, tokenizer, base_tok, inst_config, base_config
            )
    except CoditError as err:
        problems.append(str(err))

    sample: dict[str, Any] = {}
    system = None
    if not instruct.has_template:
        problems.append(
            f"{config.instruct!r} has no chat template, so prompts cannot be built; "
            "use a post-trained (chat) model as --instruct"
        )
    else:
        try:
            sample = sample_prompts(tokenizer, config.system_prompt, config.chat_template_kwargs)
            system = system_handling(tokenizer, config.chat_template_kwargs)
        except Exception as err:  # jinja raises many types
            problems.append(
                f"the chat template of {config.instruct!r} fails to render a plain conversation "
                f"({type(err).__name__}: {err}); fix the template or --chat-template-kwargs"
            )

    prompt_tokens = max((s["tokens"] for s in sample.values()), default=0)
    tokens = prompt_tokens + config.max_new_tokens
    if instruct.context and tokens > instruct.context:
        notes.append(
            f"the sample prompt ({prompt_tokens} tokens) plus --max-new-tokens "
            f"{config.max_new_tokens} exceeds the context of {instruct.context} tokens, "
            "so long responses end at the context limit"
        )
        tokens = instruct.context
    main_dev = str(device)
    models = [(instruct, main_dev)]
    if base is not None:
        base_dev = str(resolve_device(config.base_device)) if config.base_device else main_dev
        models.append((base, base_dev))
    plan = memory_plan(
        models,
        nbytes,
        tokens,
        config.batch_size,
        contrasted or instruct.tokenizer_len,
        config.device_map,
    )
    for m in plan if memory else []:
        if m["available"] is not None and m["total"] > m["available"]:
            problems.append(
                f"the pair needs about {m['total'] / GIB:.1f} GiB on {m['device']} "
                f"(weights {m['weights'] / GIB:.1f}, KV cache {m['kv_cache'] / GIB:.1f}) but "
                f"{m['available'] / GIB:.1f} GiB are there; use --dtype bfloat16, --base-device, "
                "--device-map auto or a smaller --batch-size or --max-new-tokens"
            )
    return PairReport(instruct, base, contrasted, dtype_name, sample, system, plan, problems, notes)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n:,}"


def _gib(n: float | None) -> str:
    return "unknown" if n is None else f"{n / GIB:.2f} GiB"


def format_report(report: PairReport, full: bool = True) -> list[str]:
    """The report as lines of text; ``full=False`` leaves out the rendered sample prompts."""
    i, b = report.instruct, report.base
    models = [("instruct", i)] + ([("base", b)] if b else [])
    lines = []
    for role, m in models:
        stored = "/".join(m.stored_dtypes) or "unknown"
        lines.append(
            f"{role:8} {m.name}: {m.architecture}, {_count(m.parameters)} parameters, "
            f"stored {stored}, {m.rows} rows, tokenizer {m.tokenizer_len}"
        )
    if report.contrasted is None:
        lines.append("contrasted: nothing, the pair is incompatible (see the problems)")
    elif b is None:
        lines.append(f"direct mode: the instruct model alone over {report.contrasted} ids")
    else:
        padded = {m.rows for m in (i, b) if m.rows and m.rows > report.contrasted}
        lines.append(
            f"contrasted: ids 0-{report.contrasted - 1} in {report.dtype}"
            + (f" (padded rows past them ignored: {sorted(padded)})" if padded else "")
        )
    lines.append(
        "stops on: "
        + ", ".join(f"{t} ({n})" for t, n in zip(i.stop_tokens, i.stop_ids, strict=True))
    )
    if report.sample:
        lines.append(
            f"sample prompt: {report.sample['plain']['tokens']} tokens, "
            f"{report.sample['system']['tokens']} with a system prompt; context {i.context}"
        )
    if report.system_turn:
        default = (
            " (a default is inserted when none is given)"
            if report.system_turn["default_when_none"]
            else ""
        )
        lines.append(f"system prompt: {report.system_turn['placement']}{default}")
    for need in report.memory:
        lines.append(
            f"memory on {need['device']}: about {_gib(need['total'])} "
            f"(weights {_gib(need['weights'])}, KV cache {_gib(need['kv_cache'])}) "
            f"of {_gib(need['available'])}"
        )
    if full and report.sample:
        for key, title in (
            ("plain", "without a system prompt"),
            ("system", "with a system prompt"),
        ):
            lines.append(f"--- sample prompt {title} ({report.sample[key]['tokens']} tokens):")
            lines.append(report.sample[key]["text"])
    lines += [f"note: {n}" for n in report.notes]
    lines += [f"problem: {p}" for p in report.problems]
    return lines
