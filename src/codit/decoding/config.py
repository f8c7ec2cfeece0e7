"""The decoding settings shared by every way of running the engine."""

from __future__ import annotations

from dataclasses import dataclass

from codit.settings import check, setting

MODES = ("codit", "direct")
# The keys of ``contrastive.SCORE_RULES``, which imports torch; written here so that the flags
# are built without it (tests/test_contrastive.py checks that the two agree).
RULES = ("codit", "obrien")


@dataclass(frozen=True)
class DecodingConfig:
    """How each next token is chosen.

    The defaults are the CoDIT authors' settings (alpha 0.01, beta 1, temperature 1, top-p 1,
    sampling) except ``max_new_tokens``: 512 here, 4096 in the authors' scripts
    (``--config codit-paper`` sets it; docs/methods/codit.md).
    """

    mode: str = setting(
        "codit",
        "codit: contrast instruct and base; direct: instruct model alone",
        choices=MODES,
    )
    rule: str = setting(
        "codit",
        "contrastive rule: codit (log p_post - beta log p_base) or obrien "
        "((1+beta) s_post - beta s_base on logits)",
        choices=RULES,
    )
    alpha: float = setting(
        0.01, "plausibility threshold on the instruct model's probabilities", ge=0.0, le=1.0
    )
    beta: float = setting(1.0, "contrast strength", ge=0.0)
    temperature: float = setting(1.0, "sampling temperature; 0 is greedy", ge=0.0)
    top_p: float = setting(1.0, "nucleus sampling mass", gt=0.0, le=1.0)
    top_k: int = setting(0, "keep the k best tokens when sampling, 0 = all", ge=0)
    max_new_tokens: int = setting(512, "most tokens generated per response", ge=1)
    stop: tuple[str, ...] = setting((), "stop when the response contains this string")
    seed: int = setting(
        0, "sampling seed; each record's stream depends only on it and the record id"
    )

    def __post_init__(self) -> None:
        check(self, ["--stop strings must not be empty"] if any(not s for s in self.stop) else [])

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
