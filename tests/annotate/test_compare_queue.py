"""The pair queue keeps the judging queue's guarantees: reservations, overlap, one vote per
person per pair, skips; and 50 evaluators at once lose nothing and over-assign nothing."""

from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db.models import Count, F
from django.utils import timezone

from annotate import compare, models
from tests.annotate.compare_helpers import make_comparison, vote
from tests.threads import run_at_once


def test_a_pair_is_reserved_and_handed_out_again_to_the_same_evaluator(annotator):
    comparison = make_comparison(3)
    first = compare.next_for(annotator, comparison)
    again = compare.next_for(annotator, comparison)
    assert again.pk == first.pk and again.a_on_left == first.a_on_left


def test_a_reservation_keeps_the_pair_from_others_until_it_expires(annotator, other_annotator):
    comparison = make_comparison(1)
    held = compare.next_for(annotator, comparison)
    assert compare.next_for(other_annotator, comparison) is None
    later = timezone.now() + timedelta(minutes=60)
    taken = compare.next_for(other_annotator, comparison, now=later)
    assert taken.pair_id == held.pair_id


def test_each_vote_is_tallied_on_its_pair_as_recount_counts_it(annotator, other_annotator):
    comparison = make_comparison(3, overlap=3)
    for evaluator in (annotator, other_annotator):
        for choice in ("left", "right", "tie"):
            reservation = compare.next_for(evaluator, comparison)
            compare.submit(evaluator, reservation.pair, choice=choice)
    tallies = list(models.ComparisonPair.objects.order_by("pk").values())
    assert sum(t["a_votes"] + t["b_votes"] + t["tie_votes"] for t in tallies) == 6
    assert sum(t["left_votes"] for t in tallies) == 2
    compare.recount(models.ComparisonPair.objects.all())
    assert list(models.ComparisonPair.objects.order_by("pk").values()) == tallies


def test_the_vote_records_the_side_order_the_evaluator_saw(annotator):
    comparison = make_comparison(1)
    reservation = compare.next_for(annotator, comparison)
    saved = compare.submit(annotator, reservation.pair, choice="left")
    assert saved.a_on_left == reservation.a_on_left
    assert saved.winner == ("a" if reservation.a_on_left else "b")
    assert not models.PairReservation.objects.exists()
    reservation.pair.refresh_from_db()
    assert reservation.pair.vote_count == 1


def test_the_side_order_is_drawn_at_random(make_responses, django_user_model):
    comparison = make_comparison(1, overlap=40)
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"e{i}") for i in range(40)
    )
    orders = Counter(compare.next_for(user, comparison).a_on_left for user in users)
    assert orders[True] > 0 and orders[False] > 0


def test_one_vote_per_person_per_pair(annotator):
    comparison = make_comparison(2, overlap=2)
    reservation = compare.next_for(annotator, comparison)
    compare.submit(annotator, reservation.pair, choice="tie")
    with pytest.raises(compare.AlreadyVoted):
        compare.submit(annotator, reservation.pair, choice="left")
    assert models.Vote.objects.count() == 1
    assert compare.next_for(annotator, comparison).pair_id != reservation.pair_id


def test_overlap_is_never_exceeded(annotator, other_annotator, reviewer):
    comparison = make_comparison(1, overlap=2)
    vote(annotator, comparison, "a")
    vote(other_annotator, comparison, "b")
    assert compare.next_for(reviewer, comparison) is None
    pair = comparison.pairs.get()
    models.PairReservation.objects.create(
        pair=pair, evaluator=reviewer, a_on_left=True, expires=timezone.now()
    )
    with pytest.raises(compare.PairFull):
        compare.submit(reviewer, pair, choice="left")
    assert pair.votes.count() == 2


def test_a_vote_needs_the_evaluators_reservation(annotator):
    comparison = make_comparison(1)
    pair = comparison.pairs.get()
    with pytest.raises(compare.queue.QueueError, match="not reserved for you"):
        compare.submit(annotator, pair, choice="left")
    assert not models.Vote.objects.exists()


def test_an_expired_reservation_still_takes_the_vote_while_a_slot_is_free(annotator):
    comparison = make_comparison(1)
    reservation = compare.next_for(annotator, comparison)
    models.PairReservation.objects.update(expires=timezone.now() - timedelta(minutes=1))
    compare.submit(annotator, reservation.pair, choice="right")
    assert models.Vote.objects.count() == 1


def test_a_skipped_pair_never_comes_back_to_that_evaluator_only(annotator, other_annotator):
    comparison = make_comparison(1)
    reservation = compare.next_for(annotator, comparison)
    compare.skip(annotator, reservation.pair, "")
    assert compare.next_for(annotator, comparison) is None
    assert compare.next_for(other_annotator, comparison).pair_id == reservation.pair_id


def test_a_closed_comparison_hands_out_nothing_and_takes_no_votes(annotator):
    comparison = make_comparison(2)
    reservation = compare.next_for(annotator, comparison)
    compare.close(comparison)
    assert compare.next_for(annotator, comparison) is None
    models.PairReservation.objects.create(
        pair=reservation.pair, evaluator=annotator, a_on_left=True, expires=timezone.now()
    )
    with pytest.raises(compare.queue.QueueError, match="closed"):
        compare.submit(annotator, reservation.pair, choice="left")


def test_progress_and_open_for_agree_with_what_next_for_hands_out(annotator, other_annotator):
    comparison = make_comparison(4, overlap=1)
    compare.next_for(other_annotator, comparison)
    vote(annotator, comparison, "a")
    progress = compare.progress(annotator, comparison)
    assert progress == {"done": 1, "left": 2, "more": False}
    handed = []
    while reservation := compare.next_for(annotator, comparison):
        handed.append(reservation.pair_id)
        compare.skip(annotator, reservation.pair)
    assert len(handed) == 2


def test_pairs_are_handed_out_within_their_comparison(annotator):
    first = make_comparison(2)
    second = compare.create(system_a="round:2", system_b="round:1", sample_size=2)
    reservation = compare.next_for(annotator, second)
    assert reservation.pair.comparison_id == second.pk
    assert compare.next_for(annotator, first).pair.comparison_id == first.pk


# Many evaluators at once --------------------------------------------------------------------

THREADS = 50


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fifty_evaluators_at_once_never_over_assign_or_lose_votes():
    comparison = make_comparison(40, overlap=3)  # 120 slots for 50 evaluators
    evaluators = User.objects.bulk_create(User(username=f"ev{i}") for i in range(THREADS))

    def work(evaluator, mine):
        while reservation := compare.next_for(evaluator, comparison):
            mine.append(compare.submit(evaluator, reservation.pair, choice="left").pk)

    submitted, errors = run_at_once(evaluators, work)

    assert errors == []
    assert len(submitted) == len(set(submitted)) == 120
    assert set(submitted) == set(models.Vote.objects.values_list("pk", flat=True))
    counted = models.ComparisonPair.objects.annotate(n=Count("votes"))
    assert not counted.filter(n__gt=F("overlap")).exists()
    assert not counted.exclude(n=F("vote_count")).exists()
    assert not models.PairReservation.objects.exists()
    tallies = list(models.ComparisonPair.objects.order_by("pk").values())
    compare.recount(models.ComparisonPair.objects.all())
    assert list(models.ComparisonPair.objects.order_by("pk").values()) == tallies
    per_person = models.Vote.objects.values("pair", "evaluator").annotate(n=Count("pk"))
    assert all(row["n"] == 1 for row in per_person)


def test_progress_counts_what_is_left_up_to_a_limit(annotator, monkeypatch):
    comparison = make_comparison(5)
    monkeypatch.setattr(compare.queue, "LEFT_COUNT_LIMIT", 3)
    assert compare.progress(annotator, comparison) == {"done": 0, "left": 3, "more": True}


def test_left_equals_what_open_for_counts_over_random_queue_states(django_user_model):
    import random

    rng = random.Random(5)
    comparison = make_comparison(12, overlap=2)
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"q{i}") for i in range(5)
    )
    for _ in range(30):
        user = rng.choice(users)
        reservation = compare.next_for(user, comparison)
        if reservation is None:
            continue
        action = rng.random()
        if action < 0.4:
            compare.submit(user, reservation.pair, choice=rng.choice(["left", "right", "tie"]))
        elif action < 0.55:
            compare.skip(user, reservation.pair)
        for someone in users:
            left = compare.progress(someone, comparison)["left"]
            assert left == compare.open_for(someone, comparison).count()
