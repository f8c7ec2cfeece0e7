"""What the contrast changes: the probability CoDIT moves onto and away from each token.

At every position of a CoDIT response, the instruct model alone would sample from
``p = softmax(logits_post / T)`` (direct decoding) and CoDIT samples from
``q = softmax(codit_scores / T)``. ``shift`` sums ``q - p`` over positions; divided by the number
of positions it is the mean probability per step that CoDIT adds to (positive) or takes from
(negative) each token, relative to direct decoding in the same contexts. ``token_shift`` runs
that over a teacher dataset (responses re-tokenized, both models teacher-forced) and ranks the
tokens (the end-of-turn token included where a response stopped); the observed frequencies of each token in the direct and the CoDIT data come with it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch

from codit.decoding.contrastive import codit_scores


def shift(
    logits_post: torch.Tensor,
    logits_base: torch.Tensor,
    alpha: float,
    beta: float,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Sum over rows of ``q - p``: CoDIT's next-token distribution minus the instruct model's.

    Args:
        logits_post: (N, V) instruct-model logits at N positions.
        logits_base: (N, V) base-model logits at the same positions.
        alpha, beta: the CoDIT cell.
        temperature: > 0; both distributions are tempered alike.

    Returns:
        (V,) float32; sums to 0 up to rounding.
    """
    p = torch.softmax(logits_post.float() / temperature, dim=-1)
    q = torch.softmax(codit_scores(logits_post, logits_base, alpha, beta) / temperature, dim=-1)
    return (q - p).sum(dim=0)


def token_shift(
    instruct: str,
    base: str,
    codit_paths: list[Path],
    direct_paths: list[Path],
    alpha: float,
    beta: float,
    temperature: float,
    device: str = "cpu",
    top: int = 10,
) -> dict[str, Any]:
    """The ``top`` tokens CoDIT boosts most and suppresses most over the responses in
    ``codit_paths`` (codit generate records), with their frequencies in both datasets.

    Returns:
        ``{"positions", "responses", "boosted": [...], "suppressed": [...]}``; each row has the
        token, ``mean_shift`` (probability per position, q - p), ``mean_p``, ``mean_q`` and
        ``per_1000_direct`` / ``per_1000_codit`` (observed in the datasets, re-tokenized).
    """
    from codit.io.jsonl import iter_records
    from codit.models.chat import prompt_ids
    from codit.models.pair import load_pair

    pair = load_pair(instruct, base, device=device)
    assert pair.base is not None
    tokenizer, vocab = pair.tokenizer, pair.vocab_size
    total_shift = torch.zeros(vocab, dtype=torch.float64)
    total_p = torch.zeros(vocab, dtype=torch.float64)
    positions = responses = 0
    counts: dict[str, Counter[int]] = {"codit": Counter(), "direct": Counter()}
    for arm, paths in (("direct", direct_paths), ("codit", codit_paths)):
        for path in paths:
            for record in iter_records(path):
                answer = tokenizer(record["messages"][-1]["content"], add_special_tokens=False)
                ids = list(answer["input_ids"])
                if record["meta"].get("finish_reason") == "stop" and pair.stop_ids:
                    ids.append(pair.stop_ids[0])  # choosing to stop is a decision too
                counts[arm].update(ids)
                if arm == "direct" or not ids:
                    continue
                prompt = prompt_ids(tokenizer, record["messages"][:-1])
                full = torch.tensor([prompt + ids], device=pair.instruct.device)
                with torch.no_grad():
                    post = pair.instruct.model(full).logits[0, len(prompt) - 1 : -1, :vocab]
                    low = pair.base.model(full.to(pair.base.device)).logits
                    low = low[0, len(prompt) - 1 : -1, :vocab].to(post.device)
                total_shift += shift(post, low, alpha, beta, temperature).double().cpu()
                total_p += torch.softmax(post.float() / temperature, -1).sum(0).double().cpu()
                positions += len(ids)
                responses += 1
    n = max(positions, 1)
    sizes = {arm: max(1, sum(c.values())) for arm, c in counts.items()}

    def row(token: int) -> dict[str, Any]:
        return {
            "token": tokenizer.decode([token]),
            "id": token,
            "mean_shift": total_shift[token].item() / n,
            "mean_p": total_p[token].item() / n,
            "mean_q": (total_p[token] + total_shift[token]).item() / n,
            "per_1000_direct": 1000 * counts["direct"][token] / sizes["direct"],
            "per_1000_codit": 1000 * counts["codit"][token] / sizes["codit"],
        }

    order = torch.argsort(total_shift, descending=True).tolist()
    return {
        "alpha": alpha,
        "beta": beta,
        "temperature": temperature,
        "positions": positions,
        "responses": responses,
        "boosted": [row(t) for t in order[:top]],
        "suppressed": [row(t) for t in reversed(order[-top:])],
    }
