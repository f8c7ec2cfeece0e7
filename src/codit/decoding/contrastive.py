"""Contrastive next-token scores between an instruct (post-trained) model and its base.

Pure functions on logits tensors; no models, no state. The rules:

- ``codit`` (Ichinose et al., "Synthesizing Instruction-Tuning Datasets with Contrastive
  Decoding", arXiv 2604.13538, COLM 2026; the authors' code): on the plausible set
  ``p_post >= alpha * max(p_post)``, ``score = log p_post - beta * log p_base``; ``-inf``
  elsewhere. Sampling ``softmax(score / T)`` gives ``p(y) ~ p_post(y) / p_base(y)^beta``.
- ``obrien`` (O'Brien & Lewis 2023, "Contrastive Decoding Improves Reasoning in Large Language
  Models"): on the same plausible set, ``score = (1 + beta) * s_post - beta * s_base`` on raw
  logits.

Scores matter only up to a constant per row (they are sampled through a softmax, or their
argmax is taken), so both rules are computed on logits: ``log p = s - logsumexp(s)``, and the
plausibility test ``p_post >= alpha * max(p_post)`` is ``s_post >= max(s_post) + log(alpha)``;
no log-softmax pass over the vocabulary is made. With
``alpha = 0`` and no base term (``beta = 0``, or direct generation) the ``codit`` rule returns the
instruct logits themselves, whose softmax is the instruct model's distribution; direct mode and
``alpha = beta = 0`` take this same path, so their equivalence is bit-exact, and the hot loop of
direct generation does no extra pass over the vocabulary. The base term is skipped entirely
(never multiplied by zero, which would turn a ``-inf`` into ``nan``). This module does not
sample; see ``sampling``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """Score in at least float32 (bf16/fp16 logits are too coarse for log-ratio scores)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def plausibility_mask(logp_post: torch.Tensor, alpha: float) -> torch.Tensor:
    """Tokens the instruct model finds plausible: ``p_post >= alpha * max(p_post)``.

    Args:
        logp_post: (B, V) log-probabilities of the instruct model, or its logits (the test
            is relative to the row's best, so a per-row constant does not change it).
        alpha: in [0, 1]; 0 keeps every token, 1 keeps only the argmax (and exact ties).

    Returns:
        (B, V) bool mask; the argmax of every row is always kept.
    """
    if alpha <= 0.0:
        return torch.ones_like(logp_post, dtype=torch.bool)
    top = logp_post.amax(dim=-1, keepdim=True)  # amax: no indices, ~15x faster on CPU
    return logp_post >= top + math.log(alpha)


def codit_scores(
    logits_post: torch.Tensor,
    logits_base: torch.Tensor | None,
    alpha: float = 0.01,
    beta: float = 1.0,
) -> torch.Tensor:
    """CoDIT scores: ``log p_post - beta * log p_base`` on the plausible set, ``-inf`` off it.

    Args:
        logits_post: (B, V) instruct-model logits over the real vocabulary.
        logits_base: (B, V) base-model logits, or None for direct generation.
        alpha: plausibility threshold on the instruct model's probabilities, in [0, 1].
        beta: strength of the contrast, >= 0.

    Returns:
        (B, V) scores (at least float32), equal up to a per-row constant to the formula above;
        sampling ``softmax(scores / T)`` is the CoDIT distribution. They are computed on the
        logits, ``s_post - beta * s_base``: ``log p = s - logsumexp(s)`` differs from ``s`` by
        a per-row constant only, and so does the plausibility test, so the two log-softmax
        passes over the vocabulary are skipped (the softmax, argmax and top-k/top-p of the
        scores are those of the formula).
    """
    s_post = _upcast(logits_post)
    if alpha <= 0.0 and (logits_base is None or beta == 0.0):
        return s_post  # same softmax as log p_post: the instruct distribution
    drop = None
    if alpha > 0.0:
        drop = s_post < s_post.amax(dim=-1, keepdim=True) + math.log(alpha)
    if logits_base is None or beta == 0.0:
        assert drop is not None
        return s_post.masked_fill(drop, -math.inf)  # out of place: s_post may be the input
    s_base = _upcast(logits_base)
    # beta = 1 (the default): no multiply pass (1 * s is s exactly, so the per-row rule agrees)
    scores = s_post - s_base if beta == 1.0 else s_post - beta * s_base
    if drop is not None:
        scores.masked_fill_(drop, -math.inf)  # a tensor made here: in place
    return scores


def obrien_scores(
    logits_post: torch.Tensor,
    logits_base: torch.Tensor | None,
    alpha: float = 0.1,
    beta: float = 0.5,
) -> torch.Tensor:
    """O'Brien & Lewis scores: ``(1 + beta) * s_post - beta * s_base`` on the plausible set.

    Args:
        logits_post: (B, V) instruct-model logits.
        logits_base: (B, V) base-model logits, or None (then the raw instruct logits).
        alpha: plausibility threshold on the instruct model's probabilities, in [0, 1].
        beta: contrast strength, >= 0.

    Returns:
        (B, V) scores (at least float32), ``-inf`` off the plausible set.
    """
    s_post = _upcast(logits_post)
    if logits_base is None or beta == 0.0:
        scores = s_post
    else:
        scores = (1.0 + beta) * s_post - beta * _upcast(logits_base)
    if alpha > 0.0:
        scores = scores.masked_fill(~plausibility_mask(s_post, alpha), -math.inf)
    return scores


def row_scores(
    rule: str,
    logits_post: torch.Tensor,
    logits_base: torch.Tensor | None,
    alpha: torch.Tensor,
    beta: torch.Tensor,
) -> torch.Tensor:
    """A rule with per-row settings, for batches that mix them.

    Args:
        rule: ``codit`` or ``obrien``.
        logits_post: (B, V) instruct-model logits.
        logits_base: (B, V) base-model logits, or None.
        alpha: (B,) plausibility thresholds in [0, 1] (0 keeps every token).
        beta: (B,) contrast strengths >= 0 (0: no base term, as in the scalar rules).

    Returns:
        (B, V) scores (at least float32); row ``i`` equals the scalar rule with
        ``alpha[i], beta[i]`` up to a per-row constant.
    """
    s_post = _upcast(logits_post)
    a = alpha.to(s_post.dtype).unsqueeze(1)
    b = beta.to(s_post.dtype).unsqueeze(1)
    scores = s_post  # codit on logits: log p differs from s by a per-row constant only
    if logits_base is not None:
        s_base = _upcast(logits_base)
        contrast = s_post - b * s_base if rule == "codit" else (1.0 + b) * s_post - b * s_base
        scores = torch.where(b > 0, contrast, s_post)
    drop = s_post < s_post.amax(dim=-1, keepdim=True) + torch.log(a)  # log(0) = -inf: none
    return scores.masked_fill(drop, -math.inf)


ScoreFn = Callable[[torch.Tensor, "torch.Tensor | None", float, float], torch.Tensor]

SCORE_RULES: dict[str, ScoreFn] = {"codit": codit_scores, "obrien": obrien_scores}
