"""training.loss against a direct, unoptimised float64 restatement of CUT.md §3-4."""

import math

import pytest
import torch

from training.loss import cut_loss, log_one_minus_p


def reference(like, like_mask, misalign, judged, misalign_mask, threshold, alpha):
    """CUT.md §4 token by token, with probabilities, as the official code computes it.

    Returns (loss, l_mle, l_ul, flagged_fraction) as float64 tensors (autograd-capable).
    """
    nll = [
        -like[b, t] for b in range(like.shape[0]) for t in range(like.shape[1]) if like_mask[b, t]
    ]
    l_mle = torch.stack(nll).mean()
    terms, flagged = [], 0
    for b in range(misalign.shape[0]):
        for t in range(misalign.shape[1]):
            if not misalign_mask[b, t]:
                continue
            p_m, p_n = torch.exp(misalign[b, t]), torch.exp(judged[b, t]).detach()
            if p_n / p_m.detach() > threshold:  # inappropriate token
                one_minus_p = 1 - p_m
                if one_minus_p == 0:
                    one_minus_p = one_minus_p + 1e-5  # the official clamp
                terms.append(-alpha * torch.log(one_minus_p))
                flagged += 1
            else:
                terms.append(-torch.log(p_m))
    if not terms:
        zero = torch.zeros((), dtype=torch.float64)
        return l_mle, l_mle, zero, zero
    l_ul = torch.stack(terms).mean()
    return (l_mle + l_ul) / 2, l_mle, l_ul, torch.tensor(flagged / len(terms), dtype=torch.float64)


def random_batch(seed: int, *, negatives: int | None = None):
    gen = torch.Generator().manual_seed(seed)
    b1 = int(torch.randint(1, 5, (), generator=gen))
    b2 = int(torch.randint(0, 4, (), generator=gen)) if negatives is None else negatives
    t1 = int(torch.randint(1, 12, (), generator=gen))
    t2 = int(torch.randint(1, 12, (), generator=gen))

    def logps(*shape):
        return torch.log(torch.rand(*shape, generator=gen, dtype=torch.float64) * 0.999 + 1e-6)

    def mask(b, t):
        lengths = torch.randint(1, t + 1, (b,), generator=gen)
        return torch.arange(t)[None, :] < lengths[:, None]

    like = logps(b1, t1)
    misalign = logps(b2, t2)
    # The judged view is the misalign view moved a little: some ratios cross the threshold.
    noise = torch.randn(b2, t2, generator=gen, dtype=torch.float64) * 0.3
    judged = (misalign + noise).clamp(max=-1e-6)
    return like, mask(b1, t1), misalign, judged, mask(b2, t2)


def close(a, b):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64), b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(60))
def test_it_matches_the_direct_restatement_in_float64(seed):
    like, like_mask, misalign, judged, misalign_mask = random_batch(seed)
    threshold = [1.0, 1.1, 1.2, 2.0][seed % 4]
    alpha = [1.0, 0.5, 3.0][seed % 3]
    like.requires_grad_(True)
    misalign.requires_grad_(True)

    ours = cut_loss(
        like, like_mask, misalign, judged, misalign_mask, threshold=threshold, weight_unlike=alpha
    )
    ours_grads = torch.autograd.grad(ours.loss, [like, misalign], allow_unused=True)
    expected = reference(like, like_mask, misalign, judged, misalign_mask, threshold, alpha)
    expected_grads = torch.autograd.grad(expected[0], [like, misalign], allow_unused=True)

    for got, want in zip(ours, expected, strict=True):
        assert close(got.detach(), want.detach())
    for got, want in zip(ours_grads, expected_grads, strict=True):
        if want is None:
            assert got is None or not got.any()
        else:
            assert torch.allclose(got, want, rtol=1e-9, atol=1e-12)


def test_a_batch_without_negative_records_is_plain_likelihood():
    like, like_mask, misalign, judged, misalign_mask = random_batch(3, negatives=0)

    out = cut_loss(like, like_mask, misalign, judged, misalign_mask)

    assert misalign.shape[0] == 0
    assert close(out.loss, -like[like_mask].mean())
    assert out.l_ul == 0 and out.flagged_fraction == 0


def test_an_infinite_threshold_gives_plain_nll_on_misalign_tokens():
    like, like_mask, misalign, judged, misalign_mask = random_batch(5, negatives=3)

    out = cut_loss(like, like_mask, misalign, judged, misalign_mask, threshold=math.inf)

    assert out.flagged_fraction == 0
    assert close(out.l_ul, -misalign[misalign_mask].mean())
    assert close(out.loss, (-like[like_mask].mean() - misalign[misalign_mask].mean()) / 2)


def test_a_threshold_that_flags_every_token_matches_the_restatement():
    like, like_mask, misalign, _, misalign_mask = random_batch(7, negatives=2)
    judged = torch.zeros_like(misalign)  # p_N = 1 > 1.1 * p_M wherever p_M < 0.9
    misalign = misalign.clamp(max=math.log(0.5))

    out = cut_loss(like, like_mask, misalign, judged, misalign_mask, weight_unlike=0.5)
    expected = reference(like, like_mask, misalign, judged, misalign_mask, 1.1, 0.5)

    assert out.flagged_fraction == 1
    assert close(out.loss, expected[0])


def test_a_flagged_token_adds_minus_alpha_log_one_minus_p():
    like = torch.tensor([[math.log(0.25)]], dtype=torch.float64)
    one = torch.ones(1, 1, dtype=torch.bool)
    misalign = torch.tensor([[math.log(0.4)]], dtype=torch.float64)
    flagged_by = torch.tensor([[math.log(0.8)]], dtype=torch.float64)  # ratio 2 > 1.1
    kept_by = torch.tensor([[math.log(0.41)]], dtype=torch.float64)  # ratio 1.025 <= 1.1

    flagged = cut_loss(like, one, misalign, flagged_by, one, weight_unlike=2.0)
    kept = cut_loss(like, one, misalign, kept_by, one, weight_unlike=2.0)

    assert flagged.flagged_fraction == 1 and kept.flagged_fraction == 0
    assert math.isclose(float(flagged.l_ul), -2.0 * math.log(1 - 0.4), rel_tol=1e-12)
    assert math.isclose(float(kept.l_ul), -math.log(0.4), rel_tol=1e-12)
    assert math.isclose(float(flagged.loss), (-math.log(0.25) - 2.0 * math.log(0.6)) / 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probabilities_whose_one_minus_p_underflows_agree_and_stay_finite(dtype):
    # log p = 0 and -1e-20: 1 - p is exactly 0 even in float64 -> the official 1e-5.
    # log p = -1e-9: 1 - p underflows in float32 but not in float64 -> log(1e-9), exactly.
    values = [0.0, -1e-20, -1e-9, -1e-3]
    misalign = torch.tensor([values], dtype=dtype, requires_grad=True)
    judged = torch.full_like(misalign, 10.0)  # every token flagged
    like = torch.tensor([[-1.0]], dtype=dtype)
    mask = torch.ones(1, 4, dtype=torch.bool)

    out = cut_loss(like, mask[:, :1], misalign, judged, mask, weight_unlike=1.5)
    out.loss.backward()
    expected = reference(
        like.double(), mask[:, :1], misalign.detach().double(), judged.double(), mask, 1.1, 1.5
    )

    assert torch.allclose(out.loss.double(), expected[0], rtol=1e-6)
    assert math.isclose(
        float(log_one_minus_p(torch.tensor(-1e-9, dtype=dtype))), math.log(1e-9), rel_tol=1e-6
    )
    assert torch.isfinite(misalign.grad).all()


def test_padding_positions_are_ignored_even_when_they_hold_infinities():
    like, like_mask, misalign, judged, misalign_mask = random_batch(11, negatives=2)
    clean = cut_loss(like, like_mask, misalign, judged, misalign_mask)

    dirty = [t.clone() for t in (like, misalign, judged)]
    dirty[0][~like_mask] = -math.inf
    dirty[1][~misalign_mask] = math.nan
    out = cut_loss(dirty[0], like_mask, dirty[1], dirty[2], misalign_mask)

    assert close(out.loss, clean.loss)


def test_the_detection_passes_no_gradient_to_the_judged_view():
    like, like_mask, misalign, judged, misalign_mask = random_batch(13, negatives=2)
    misalign.requires_grad_(True)
    judged.requires_grad_(True)

    out = cut_loss(like, like_mask, misalign, judged, misalign_mask)
    grads = torch.autograd.grad(out.loss, [misalign, judged], allow_unused=True)

    assert grads[0] is not None and grads[0].abs().sum() > 0
    assert grads[1] is None
