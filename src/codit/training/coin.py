"""The CoIN loss, as pure functions on tensors.

Paper: Yan et al., "Contrastive Instruction Tuning", Findings of ACL 2024, arXiv 2402.11138.
The representation of a sequence (prompt + gold answer) is the final hidden state at its last
real token; the original and its paraphrased-instruction twin are positives, the other rows of
the batch negatives. The contrastive term is rescaled every step to the size of the generation
term: ``loss = L_gen + min(max_ratio, L_gen / L_ctr).detach() * L_ctr``.

No model, tokenizer or trainer here; see ``coin_trainer`` for how a batch reaches these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden state at each row's last real token, wherever the padding is.

    Args:
        hidden: (B, L, D) final hidden states (after the last norm, the input to lm_head).
        attention_mask: (B, L) 1 on real tokens, 0 on padding; every row has a real token.

    Returns:
        (B, D)
    """
    length = attention_mask.shape[1]
    positions = torch.arange(length, device=attention_mask.device).expand_as(attention_mask)
    last = torch.where(attention_mask.bool(), positions, -1).amax(dim=1)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled (answer) tokens, as causal LMs compute it.

    Args:
        logits: (B, L, V) the model's logits.
        labels: (B, L) target ids, -100 where no loss is taken (prompt, padding).

    Returns:
        () the mean over every labelled token of the batch.
    """
    return F.cross_entropy(
        logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100
    )


def symmetric_info_nce(
    h_orig: torch.Tensor, h_para: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """InfoNCE over the B x B cosine similarities, both directions averaged.

    Row i of ``h_orig`` and row i of ``h_para`` are a positive pair; every other row is a
    negative.

    Args:
        h_orig: (B, D) representations of the original sequences.
        h_para: (B, D) representations of their paraphrased twins.
        temperature: tau; similarities are divided by it.

    Returns:
        () the loss; 0 for B = 1 (no negatives).
    """
    sim = F.normalize(h_orig, dim=-1) @ F.normalize(h_para, dim=-1).T / temperature  # (B, B)
    targets = torch.arange(sim.shape[0], device=sim.device)
    return 0.5 * (F.cross_entropy(sim, targets) + F.cross_entropy(sim.T, targets))


def coin_loss(
    h_orig: torch.Tensor,
    h_para: torch.Tensor,
    gen_loss: torch.Tensor,
    temperature: float = 0.05,
    max_ratio: float = 1000.0,
) -> torch.Tensor:
    """CoIN's training loss: generation loss plus the rescaled contrastive loss.

    Args:
        h_orig: (B, D) pooled hidden states of the original sequences.
        h_para: (B, D) pooled hidden states of the paraphrased sequences, row-aligned.
        gen_loss: () the generation loss (original + paraphrase cross-entropy).
        temperature: InfoNCE temperature (the authors use 0.05).
        max_ratio: cap on the weight of the contrastive term (the authors use 1000).

    Returns:
        () ``gen_loss + min(max_ratio, gen_loss / ctr).detach() * ctr``; the weight carries no
        gradient, so the contrastive term only steers the direction of the update.
    """
    ctr = symmetric_info_nce(h_orig, h_para, temperature)
    # ctr = 0 (B = 1, or perfectly separated) gives inf here, which the cap turns into max_ratio.
    weight = torch.clamp(gen_loss / ctr, max=max_ratio).detach()
    return gen_loss + weight * ctr
