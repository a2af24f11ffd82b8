"""Building comparisons for the tests: two rounds answering the same prompts."""

from annotate import compare, models

BASE_GENERATOR = "SmolBase-xq7"
ADAPTER_GENERATOR = "adapter-run-zz9"


def make_rounds(n: int, *, second: bool = True) -> list[models.Prompt]:
    """Round 1 (the base model) answers n prompts; round 2 (an adapter) answers them too."""
    round1 = models.Round.objects.create(number=1, base_model=BASE_GENERATOR)
    prompts = models.Prompt.objects.bulk_create(
        models.Prompt(source="cmp", external_id=f"c{i}", instruction=f"Explain topic {i}.")
        for i in range(n)
    )
    models.Response.objects.bulk_create(
        models.Response(prompt=p, text=f"Base answer {i}.", generator=BASE_GENERATOR, round=round1)
        for i, p in enumerate(prompts)
    )
    if second:
        round2 = models.Round.objects.create(
            number=2, base_model=BASE_GENERATOR, adapter=f"/runs/{ADAPTER_GENERATOR}"
        )
        models.Response.objects.bulk_create(
            models.Response(
                prompt=p, text=f"Tuned answer {i}.", generator=ADAPTER_GENERATOR, round=round2
            )
            for i, p in enumerate(prompts)
        )
    return prompts


def make_comparison(n: int = 5, overlap: int = 1, **kw) -> models.Comparison:
    make_rounds(n)
    options = {"system_a": "round:1", "system_b": "round:2", "sample_size": n, "seed": 1}
    return compare.create(overlap=overlap, **{**options, **kw})


def vote(evaluator, comparison, winner: str) -> models.Vote:
    """Take the next pair and vote for system "a" or "b" (or "tie", "both_bad")."""
    reservation = compare.next_for(evaluator, comparison)
    if winner in ("a", "b"):
        choice = "left" if (winner == "a") == reservation.a_on_left else "right"
    else:
        choice = winner
    return compare.submit(evaluator, reservation.pair, choice=choice)
