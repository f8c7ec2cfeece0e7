"""The CoIN loss, as pure functions on tensors.

Paper: Yan et al., "Contrastive Instruction Tuning", Findings of ACL 2024, arXiv 2402.11138.
The representation of a sequence (prompt + gold answer) is the final hidden state at its last
real token; the original and its paraphrased-instruction twin are positives, the other rows of
the batch negatives (``in-batch``) or only the other row of its block of two (``pair``, the
authors' micro-batch of two hard-negative neighbours). The contrastive term is rescaled every step to the size of the generation
term: ``loss = L_gen + min(max_ratio, L_gen / L_ctr).detach() * L_ctr``.

No model, tokenizer or trainer here; see ``coin_trainer`` for how a batch reaches these.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEGATIVES = ("in-batch", "pair")


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


def answer_loss_sums(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed next-token cross-entropy over labelled tokens, and their count.

    Args:
        logits: (B, L, V) the model's logits.
        labels: (B, L) target ids, -100 where no loss is taken.

    Returns:
        ((B,) loss sums, (B,) token counts); ``sums.sum() / counts.sum()`` is ``answer_loss``.
    """
    targets = labels[:, 1:]
    token = F.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(), targets, ignore_index=-100, reduction="none"
    )  # (B, L-1), 0 where ignored
    return token.sum(dim=1), (targets != -100).sum(dim=1)


def pair_blocks(values: torch.Tensor) -> torch.Tensor:
    """Sum rows (2k, 2k+1) of ``values`` (B, ...) into block k; an odd last row is its own block.

    Returns:
        (ceil(B / 2), ...)
    """
    rows = values.shape[0]
    index = torch.arange(rows, device=values.device) // 2
    out = values.new_zeros(((rows + 1) // 2, *values.shape[1:]))
    return out.index_add(0, index, values)


def pair_info_nce(
    h_orig: torch.Tensor, h_para: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """Symmetric InfoNCE within each block of two rows: (2k, 2k+1) is its own 2 x 2 problem.

    This is the CoIN authors' arrangement (a micro-batch of two records laid out as hard-negative
    neighbours): the only negative of a row is the other row of its block. An odd last row has
    no negative and a loss of 0.

    Args:
        h_orig: (B, D) representations of the original sequences.
        h_para: (B, D) representations of their paraphrased twins.
        temperature: tau.

    Returns:
        (ceil(B / 2),) one loss per block.
    """
    rows = h_orig.shape[0]
    whole = rows - rows % 2
    a = F.normalize(h_orig[:whole], dim=-1).view(whole // 2, 2, -1)
    b = F.normalize(h_para[:whole], dim=-1).view(whole // 2, 2, -1)
    sim = a @ b.transpose(1, 2) / temperature  # (P, 2, 2): originals x paraphrases per block
    targets = torch.arange(2, device=sim.device).repeat(whole // 2)
    rows_loss = F.cross_entropy(sim.flatten(0, 1), targets, reduction="none").view(-1, 2)
    cols_loss = F.cross_entropy(sim.transpose(1, 2).flatten(0, 1), targets, reduction="none").view(
        -1, 2
    )
    losses = 0.5 * (rows_loss.mean(dim=1) + cols_loss.mean(dim=1))
    if rows % 2:
        losses = torch.cat([losses, losses.new_zeros(1)])
    return losses


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
    negatives: str = "in-batch",
) -> torch.Tensor:
    """CoIN's training loss: generation loss plus the rescaled contrastive loss.

    Args:
        h_orig: (B, D) pooled hidden states of the original sequences.
        h_para: (B, D) pooled hidden states of the paraphrased sequences, row-aligned.
        gen_loss: the generation loss (original + paraphrase cross-entropy): () for
            ``in-batch``; (ceil(B / 2),) one per block of two rows for ``pair``.
        temperature: InfoNCE temperature (the authors use 0.05).
        max_ratio: cap on the weight of the contrastive term (the authors use 1000).
        negatives: ``in-batch``: one InfoNCE over the B x B matrix, every other row a
            negative; ``pair``: each block of two rows on its own (``pair_info_nce``), its loss
            and weight computed per block and averaged, as the authors' micro-batches of two
            are under gradient accumulation.

    Returns:
        () ``gen_loss + min(max_ratio, gen_loss / ctr).detach() * ctr`` (averaged over blocks
        for ``pair``); the weight carries no gradient, so the contrastive term only steers the
        direction of the update.
    """
    if negatives == "pair":
        ctr = pair_info_nce(h_orig, h_para, temperature)
    elif negatives == "in-batch":
        ctr = symmetric_info_nce(h_orig, h_para, temperature)
    else:
        raise ValueError(f"negatives must be in-batch or pair, not {negatives!r}")
    # ctr = 0 (no negative, or perfectly separated): no contrastive term, and no 0/0.
    ratio = gen_loss / torch.where(ctr > 0, ctr, torch.ones_like(ctr))
    weight = torch.where(ctr > 0, torch.clamp(ratio, max=max_ratio), 0.0).detach()
    return (gen_loss + weight * ctr).mean()
