"""One micro-batch of CUT: the views' forward and backward passes and the loss's statistics.

The Align views (Align-P for positives, Align-N for negatives) are scored and
back-propagated, then, for negative records only, the Misalign views; the loss is
training.loss, the log-probs come from training.logprobs.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training import data as data_module
from training import loss as loss_module
from training.logprobs import view_logprobs


@dataclass
class MicroStats:
    loss: float
    l_mle: float
    l_ul: float | None  # None when the micro-batch had no negative record
    flagged_tokens: int
    misalign_tokens: int
    tokens: int  # real tokens processed (all views)


def cut_micro_step(
    scorer: nn.Module,
    batch: data_module.MicroBatch,
    *,
    threshold: float,
    weight_unlike: float,
    scale: float = 1.0,
    split_views: bool = True,
    device: torch.device | str = "cpu",
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    sync: Callable[[bool], contextlib.AbstractContextManager] | None = None,
    backward: Callable[[Tensor], None] = Tensor.backward,
    last: bool = True,
    max_padding: float = 1.0,
) -> MicroStats:
    """Forward and backward of one micro-batch of CUT, gradients scaled by `scale`.

    split_views=True back-propagates the Align views first, then the Misalign views, so
    only one set of activations is alive at a time (peak memory of an SFT step). Each kind
    is further cut into sub-batches of similar length (data.length_groups, at most
    `max_padding` of a pass's tokens are padding; 1 = one pass per kind). The gradient is
    that of loss.cut_loss: the loss is a weighted sum of token means (loss.part_weights)
    and the detection uses only detached Align-N log-probs.
    split_views=False runs all views in one padded batch through loss.cut_loss.
    `sync(True)` wraps the pass that must all-reduce gradients (the last of an optimizer
    step, `last`); other passes run under `sync(False)` (DDP no_sync).
    """
    sync = sync or (lambda _: contextlib.nullcontext())
    has_negative = bool(batch.misalign_rows)
    options = {"threshold": threshold, "weight_unlike": weight_unlike}
    # Token counts come from the rows (host side): reading device tensors would make the
    # host wait for the GPU between passes. Values are read once, at the end.
    counts = {
        "like": sum(len(r) for _, r in batch.like_rows),
        "misalign": sum(len(r) for _, r in batch.misalign_rows),
    }
    if not split_views and has_negative:
        view = data_module.view_batch(
            batch.like_rows + batch.misalign_rows, batch.pad_id, batch.pad_to_multiple_of
        ).to(device)
        n_like = len(batch.like_rows)
        with sync(last):
            with autocast():
                logps = view_logprobs(scorer, view)  # (B1 + B2, R)
            like, misalign = logps[:n_like], logps[n_like:]
            judged = like.detach()[batch.judged_rows]
            out = loss_module.cut_loss(
                like, view.mask[:n_like], misalign, judged, view.mask[n_like:], **options
            )
            backward(out.loss * scale)
        loss, l_mle, l_ul, fraction = torch.stack([t.detach() for t in out]).tolist()
        flagged = round(fraction * counts["misalign"])
        return MicroStats(loss, l_mle, l_ul, flagged, counts["misalign"], view.tokens)

    # Align views first: the Misalign passes need their detached log-probs (the detection).
    w_mle, w_ul = loss_module.part_weights(has_negative)
    passes = [("like", g) for g in data_module.length_groups(batch.like_rows, max_padding)]
    passes += [
        ("misalign", g) for g in data_module.length_groups(batch.misalign_rows, max_padding)
    ]
    misalign_of = {like_row: k for k, like_row in enumerate(batch.judged_rows)}
    judged: list[Tensor | None] = [None] * len(batch.misalign_rows)
    totals = {"like": [], "misalign": [], "flagged": []}  # detached scalars
    tokens = 0
    for n, (kind, group) in enumerate(passes):
        rows = batch.like_rows if kind == "like" else batch.misalign_rows
        view = data_module.view_batch(
            [rows[i] for i in group], batch.pad_id, batch.pad_to_multiple_of
        ).to(device)
        tokens += view.tokens
        # A token mean over the micro-batch = each pass's token mean weighted by its share.
        pass_tokens = sum(len(rows[i][1]) for i in group)
        share = pass_tokens / counts[kind]
        with sync(last and n == len(passes) - 1):
            with autocast():
                logps = view_logprobs(scorer, view)  # (b, R)
            if kind == "like":
                part = loss_module.likelihood_term(logps, view.mask) * share
                weight = w_mle
                for row, i in enumerate(group):
                    if i in misalign_of:
                        judged[misalign_of[i]] = logps[row].detach()
            else:
                # The same response tokens scored in the matching Align-N rows.
                judged_logps = torch.zeros_like(logps)  # (b, R)
                for row, i in enumerate(group):
                    length = len(rows[i][1])
                    judged_logps[row, :length] = judged[i][:length]
                l_ul, fraction = loss_module.unlikelihood_term(
                    logps, judged_logps, view.mask, **options
                )
                part = l_ul * share
                weight = w_ul
                totals["flagged"].append(fraction * pass_tokens)
            backward(part * (weight * scale))
        totals[kind].append(part.detach())
    sums = [torch.stack(v).sum() if v else torch.zeros(()) for v in totals.values()]
    l_mle, l_ul, flagged = (float(v) for v in torch.stack([t.cpu() for t in sums]).tolist())
    return MicroStats(
        w_mle * l_mle + w_ul * l_ul,
        l_mle,
        l_ul if has_negative else None,
        round(flagged),
        counts["misalign"],
        tokens,
    )
