"""Many annotators asking and submitting at once, each thread on its own connection.

Runs on whichever database DATABASE_URL names; CI runs the suite on SQLite and on
PostgreSQL, so both are covered.
"""

import threading
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db.models import Count, F

from annotate import models, queue
from tests.threads import run_at_once

THREADS = 50


def _users() -> list[User]:
    # No passwords: hashing 50 of them would take most of the test's time.
    return User.objects.bulk_create(User(username=f"ann{i}") for i in range(THREADS))


def _assert_nothing_over_assigned_or_lost(submitted: list[int]) -> None:
    assert len(submitted) == len(set(submitted))
    stored = set(models.Judgment.objects.values_list("pk", flat=True))
    assert set(submitted) <= stored, "a submitted judgment is missing from the database"
    over = models.Response.objects.annotate(n=Count("judgments")).filter(n__gt=F("overlap"))
    assert not over.exists()
    drift = models.Response.objects.annotate(n=Count("judgments")).exclude(n=F("judgment_count"))
    assert not drift.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_many_annotators_at_once_never_over_assign_or_lose_work(make_responses):
    make_responses(40, overlap=1)
    make_responses(30, overlap=3)  # 40 + 90 = 130 slots for 50 annotators
    annotators = _users()

    def work(annotator, mine):
        while reservation := queue.next_for(annotator):
            judgment = queue.submit(annotator, reservation.response, verdict="positive")
            mine.append(judgment.pk)

    submitted, errors = run_at_once(annotators, work)

    assert errors == []
    _assert_nothing_over_assigned_or_lost(submitted)
    # Everyone asked until the queue was empty, so every slot got filled, once.
    assert len(submitted) == 130
    assert not models.Response.objects.filter(judgment_count__lt=F("overlap")).exists()
    assert not models.Reservation.objects.exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_submitting_without_reservations_at_once_never_over_assigns(make_responses):
    # The API may submit for any response: all threads race for the same few slots.
    responses = make_responses(5, overlap=2)
    annotators = _users()
    refused = Counter()
    lock = threading.Lock()

    def work(annotator, mine):
        for response in responses:
            try:
                mine.append(queue.submit(annotator, response, verdict="positive").pk)
            except queue.ResponseFull:
                with lock:
                    refused[response.pk] += 1

    submitted, errors = run_at_once(annotators, work)

    assert errors == []
    _assert_nothing_over_assigned_or_lost(submitted)
    assert len(submitted) == 10
    assert sum(refused.values()) == THREADS * 5 - 10
