"""Log-probabilities of response tokens: the kernel the trainer, the evaluation and the lens share.

Only the positions that predict response tokens are scored: the decoder's hidden states are
gathered there and the LM head is applied in chunks with a float32 log-sum-exp
(response_logprobs), so no full-vocabulary float32 tensor of a batch ever exists (CUT.md §6).
"""

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn

from training import data as data_module
from training.config import CUTConfig


class _ResponseLogProbs(torch.autograd.Function):
    """log p(target | hidden) = hidden . W[target] - logsumexp(hidden @ W.T), chunk by chunk.

    Each row's log-prob depends only on its own hidden state, so its gradient with respect
    to that hidden state, W.T (onehot - softmax), can be computed in the forward pass while
    the chunk's logits exist, and kept (N x H, the size of the input). Backward is then one
    multiply: no logits are stored or recomputed. The LM head weight must be frozen.
    """

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, chunk_size: int) -> Tensor:
        needs_grad = ctx.needs_input_grad[0]
        out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)  # (N,)
        grads = torch.empty_like(hidden) if needs_grad else None  # (N, H)
        for start in range(0, hidden.shape[0], chunk_size):
            end = start + chunk_size
            logits = (hidden[start:end] @ weight.T).float()  # (n, V)
            lse = torch.logsumexp(logits, dim=-1)  # (n,)
            target = targets[start:end, None]  # (n, 1)
            out[start:end] = logits.gather(1, target).squeeze(1) - lse
            if needs_grad:
                # d log p / d logits = onehot(target) - softmax(logits), in place of the logits
                probs = logits.sub_(lse[:, None]).exp_().neg_()
                probs.scatter_add_(1, target, torch.ones_like(target, dtype=probs.dtype))
                grads[start:end] = probs.to(weight.dtype) @ weight  # (n, H)
        ctx.save_for_backward(grads)
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (grads,) = ctx.saved_tensors
        return grad_out[:, None].to(grads.dtype) * grads, None, None, None


def response_logprobs(
    hidden: Tensor, lm_head: nn.Module, targets: Tensor, *, chunk_size: int, dtype: torch.dtype
) -> Tensor:
    """float32 log p of each target from its hidden state; hidden (N, H), targets (N,) -> (N,).

    A plain frozen linear head goes through _ResponseLogProbs. Any other head (one with a
    bias, or with a LoRA adapter on it) is applied chunk by chunk under activation
    checkpointing, which also bounds the logits to one chunk.
    """
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        weight = getattr(lm_head, "weight", None)
        plain = (
            type(lm_head) is nn.Linear
            and lm_head.bias is None
            and weight is not None
            and not weight.requires_grad
        )
        if plain:
            return _ResponseLogProbs.apply(hidden.to(dtype), weight.to(dtype), targets, chunk_size)
        pieces = []
        for start in range(0, hidden.shape[0], chunk_size):
            chunk = (hidden[start : start + chunk_size], targets[start : start + chunk_size])
            pieces.append(
                torch.utils.checkpoint.checkpoint(
                    _module_logprobs, lm_head, dtype, *chunk, use_reentrant=False
                )
            )
        return torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)


def _module_logprobs(lm_head: nn.Module, dtype: torch.dtype, hidden: Tensor, targets: Tensor):
    with torch.autocast(
        device_type=hidden.device.type, dtype=dtype, enabled=dtype != torch.float32
    ):
        logits = lm_head(hidden.to(dtype)).float()  # (n, V)
    return logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=-1)


def causal_lm(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (LoRA layers are injected in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class ResponseScorer(nn.Module):
    """forward(view) -> (N,) float32 log-probs of the view's response tokens.

    Runs the decoder stack (not the full causal LM, which would apply the LM head at every
    position), gathers the hidden states that predict response tokens, and scores them with
    response_logprobs. Wrapped by DDP on several GPUs, so gradients sync through forward.
    """

    def __init__(self, model: nn.Module, *, chunk_size: int, dtype: torch.dtype):
        super().__init__()
        self.model = model
        self.chunk_size = chunk_size
        self.dtype = dtype

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, positions: Tensor, targets: Tensor
    ):
        lm = causal_lm(self.model)
        hidden = lm.get_decoder()(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state  # (B, T, H)
        picked = hidden.reshape(-1, hidden.shape[-1]).index_select(0, positions)  # (N, H)
        return response_logprobs(
            picked,
            lm.get_output_embeddings(),
            targets,
            chunk_size=self.chunk_size,
            dtype=self.dtype,
        )


def view_logprobs(scorer: nn.Module, view: data_module.ViewBatch) -> Tensor:
    """(B, R) float32 log-probs of a view batch's response tokens; 0 where mask is False."""
    flat = scorer(view.input_ids, view.attention_mask, view.positions, view.targets)  # (N,)
    # positions were laid out row by row, which is the row-major order of mask's True cells
    return flat.new_zeros(view.mask.shape).masked_scatter(view.mask, flat)


def compute_dtype(config: CUTConfig, device: torch.device) -> torch.dtype:
    if config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def autocast_for(device: torch.device, dtype: torch.dtype) -> Callable:
    if dtype == torch.float32:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)
