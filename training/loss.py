"""The CUT loss: the math of Contrastive Unlikelihood Training, once, with no model.

Xu, Cai, Zhang, Lam, Shi, "Reasons to Reject? Aligning Language Models with Judgments",
arXiv:2312.14591 (ACL Findings 2024). See ../shared/CUT.md §3-4 for the restatement this
follows; the trainer and the tests both go through the functions below.
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor

# The official code adds 1e-5 to 1 - p where it is exactly 0, so log(1 - p) stays finite.
UNLIKELIHOOD_FLOOR = 1e-5
# p = exp(log p) rounds to exactly 1.0 in float64 when 1 - p <= 2**-54 (half the spacing
# of float64 numbers just below 1). That is where a direct float64 evaluation of the
# official formula gets 1 - p == 0, so that is where we apply the floor.
_FLOAT64_ONE_MINUS_P_ZERO = 2.0**-54


class CUTLoss(NamedTuple):
    loss: Tensor  # scalar, the thing to minimise
    l_mle: Tensor  # scalar, likelihood part (Align-P and Align-N views)
    l_ul: Tensor  # scalar, Misalign part (0 when the micro-batch has no negative record)
    flagged_fraction: Tensor  # scalar, detached: share of Misalign tokens found inappropriate


def part_weights(has_negative: bool) -> tuple[float, float]:
    """Weights of (L_mle, L_ul) in L: the mean of both when there is a negative record."""
    return (0.5, 0.5) if has_negative else (1.0, 0.0)


def likelihood_term(like_logps: Tensor, like_mask: Tensor) -> Tensor:
    """L_mle: mean of -log p over the masked tokens (a token mean, not a sequence mean)."""
    mask = like_mask.bool()
    # where(), not multiply: padded positions may hold -inf or NaN.
    total = torch.where(mask, like_logps, torch.zeros_like(like_logps)).sum()
    return -total / mask.sum().clamp_min(1).to(like_logps.dtype)


def flag_inappropriate(
    misalign_logps: Tensor, judged_logps: Tensor, misalign_mask: Tensor, threshold: float
) -> Tensor:
    """Tokens where p_N / p_M > threshold, i.e. log p_N - log p_M > log threshold (detached).

    Comparing in log space avoids dividing underflowed probabilities; the decision is the
    same as the official ratio wherever that ratio is defined.
    """
    log_threshold = math.log(threshold) if threshold > 0 else -math.inf
    ratio = (judged_logps - misalign_logps).detach()  # (B2, T2) log(p_N / p_M)
    return (ratio > log_threshold) & misalign_mask.bool()


def log_one_minus_p(logps: Tensor) -> Tensor:
    """log(1 - p) from log p, without cancellation, floored like the official code.

    Computing 1 - exp(log p) directly loses every digit when p is close to 1 (in float32,
    p = 1 - 1e-9 gives 1 - p = 0). We evaluate log(-expm1(log p)) in float64, which is exact
    to rounding for any log p < 0. Where 1 - p would be exactly 0 even in float64 (p within
    2**-54 of 1, or log p >= 0) we use log(1e-5) as the official code does; that branch is a
    constant, so it passes no gradient (nor NaN) back.
    """
    wide = logps.double()
    one_minus_p = -torch.expm1(wide)
    zero = one_minus_p <= _FLOAT64_ONE_MINUS_P_ZERO
    # Feed a harmless value to the unused branch so its gradient is finite (where() would
    # otherwise multiply an infinite gradient by 0 and give NaN).
    safe = torch.where(zero, torch.full_like(wide, -1.0), wide)
    # log1p(-exp(x)) is accurate for x < -log 2, log(-expm1(x)) for x >= -log 2.
    stable = torch.where(
        safe < -math.log(2.0), torch.log1p(-torch.exp(safe)), torch.log(-torch.expm1(safe))
    )
    floor = torch.full_like(wide, math.log(UNLIKELIHOOD_FLOOR))
    return torch.where(zero, floor, stable).to(logps.dtype)


def unlikelihood_term(
    misalign_logps: Tensor,
    judged_logps: Tensor,
    misalign_mask: Tensor,
    *,
    threshold: float = 1.1,
    weight_unlike: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """L_ul and the flagged fraction over the Misalign tokens (see cut_loss)."""
    mask = misalign_mask.bool()
    if mask.numel() == 0:  # no negative record (decided by shape: no wait for the GPU)
        zero = misalign_logps.new_zeros(())
        return zero, zero
    flagged = flag_inappropriate(misalign_logps, judged_logps, mask, threshold)  # (B2, T2)
    per_token = torch.where(
        flagged,
        weight_unlike * log_one_minus_p(misalign_logps),  # push p_M(t) down
        misalign_logps,  # keep learning the rest of the response
    )
    per_token = torch.where(mask, per_token, torch.zeros_like(per_token))
    denominator = mask.sum().clamp_min(1).to(misalign_logps.dtype)
    l_ul = -per_token.sum() / denominator
    flagged_fraction = (flagged.sum().to(misalign_logps.dtype) / denominator).detach()
    return l_ul, flagged_fraction


def cut_loss(
    like_logps: Tensor,
    like_mask: Tensor,
    misalign_logps: Tensor,
    judged_logps: Tensor,
    misalign_mask: Tensor,
    *,
    threshold: float = 1.1,
    weight_unlike: float = 1.0,
) -> CUTLoss:
    """The CUT loss of one micro-batch (arXiv:2312.14591, CUT.md §3-4).

    Shapes (masks are 1 on response tokens, 0 on padding; B2 may be 0):
        like_logps, like_mask:          (B1, T1) log p of response tokens in the Align-P and
                                        Align-N views (positive and negative records)
        misalign_logps, misalign_mask:  (B2, T2) log p of the same negative records' response
                                        tokens in the Misalign view (prompt without judgment)
        judged_logps:                   (B2, T2) those tokens in the matching Align-N view

    A Misalign token t is inappropriate when p_N(t) / p_M(t) > threshold, with
    p_N = exp(judged_logps) and p_M = exp(misalign_logps); the test is detached.

        L_mle = mean over like tokens of -log p
        L_ul  = mean over Misalign tokens of  -weight_unlike * log(1 - p_M)  if inappropriate
                                              -log p_M                       otherwise
        L     = (L_mle + L_ul) / 2  if the micro-batch has a negative record, else L_mle

    log(1 - p_M) is computed stably and floored at log(1e-5) only where 1 - p_M is exactly
    0 in float64, which is where the official code adds 1e-5 (see log_one_minus_p).
    """
    l_mle = likelihood_term(like_logps, like_mask)
    l_ul, flagged_fraction = unlikelihood_term(
        misalign_logps,
        judged_logps,
        misalign_mask,
        threshold=threshold,
        weight_unlike=weight_unlike,
    )
    # As in the official code: a negative record in the micro-batch (B2 > 0), not a count.
    has_negative = misalign_mask.numel() > 0
    w_mle, w_ul = part_weights(has_negative)
    loss = w_mle * l_mle + w_ul * l_ul if has_negative else l_mle
    return CUTLoss(loss, l_mle, l_ul.to(l_mle.dtype), flagged_fraction.to(l_mle.dtype))
