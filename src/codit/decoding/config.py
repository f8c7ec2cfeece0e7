"""The decoding settings shared by every way of running the engine."""

from __future__ import annotations

from dataclasses import dataclass, field

from codit.errors import ConfigError

MODES = ("codit", "direct")


@dataclass(frozen=True)
class DecodingConfig:
    """How each next token is chosen.

    The defaults are the CoDIT authors' settings (alpha 0.01, beta 1, temperature 1, top-p 1,
    sampling) except ``max_new_tokens``: 512 here, 4096 in the authors' scripts
    (``--config codit-paper`` sets it; docs/methods/codit.md).
    """

    mode: str = field(
        default="codit",
        metadata={
            "help": "codit: contrast instruct and base; direct: instruct model alone",
            "choices": MODES,
        },
    )
    rule: str = field(
        default="codit",
        metadata={
            "help": "contrastive rule: codit (log p_post - beta log p_base) or obrien "
            "((1+beta) s_post - beta s_base on logits)",
            "choices": ("codit", "obrien"),
        },
    )
    alpha: float = field(
        default=0.01,
        metadata={
            "help": "plausibility threshold on the instruct model's probabilities, in [0, 1]"
        },
    )
    beta: float = field(default=1.0, metadata={"help": "contrast strength, >= 0"})
    temperature: float = field(
        default=1.0, metadata={"help": "sampling temperature, >= 0; 0 is greedy"}
    )
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass, in (0, 1]"})
    top_k: int = field(
        default=0, metadata={"help": "keep the k best tokens when sampling, 0 = all"}
    )
    max_new_tokens: int = field(
        default=512, metadata={"help": "most tokens generated per response"}
    )
    stop: tuple[str, ...] = field(
        default=(), metadata={"help": "stop when the response contains this string"}
    )
    seed: int = field(
        default=0,
        metadata={
            "help": "sampling seed; each record's stream depends only on it and the record id"
        },
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[str]:
        """Every out-of-range setting, as sentences naming the flag."""
        out = []
        if self.mode not in MODES:
            out.append(f"--mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.rule not in ("codit", "obrien"):
            out.append(f"--rule must be codit or obrien, not {self.rule!r}")
        if not 0.0 <= self.alpha <= 1.0:
            out.append(f"--alpha must be in [0, 1], got {self.alpha}")
        if self.beta < 0.0:
            out.append(f"--beta must be >= 0, got {self.beta}")
        if self.temperature < 0.0:
            out.append(f"--temperature must be >= 0 (0 is greedy), got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            out.append(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            out.append(f"--top-k must be >= 0 (0 keeps all tokens), got {self.top_k}")
        if self.max_new_tokens < 1:
            out.append(f"--max-new-tokens must be >= 1, got {self.max_new_tokens}")
        if any(not s for s in self.stop):
            out.append("--stop strings must not be empty")
        return out

    @property
    def contrastive(self) -> bool:
        """Whether the base model takes part."""
        return self.mode == "codit"


@dataclass(frozen=True)
class RowSettings:
    """Per-request overrides of the engine's ``DecodingConfig``; None keeps the engine's value.

    A batch may mix settings: every row is scored and sampled with its own values. A direct
    row in a codit engine is ``alpha=0, beta=0`` (exactly the instruct model's distribution).
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    alpha: float | None = None
    beta: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None

    def resolve(self, base: DecodingConfig) -> DecodingConfig:
        """The engine's settings with these overrides applied (validated like the flags)."""
        from dataclasses import replace

        changes = {k: v for k, v in vars(self).items() if v is not None}
        if "stop" in changes:
            changes["stop"] = tuple(changes["stop"])
        return replace(base, **changes) if changes else base
