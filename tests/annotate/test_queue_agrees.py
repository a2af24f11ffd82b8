"""The queue's hand-written SQL (next_for's claim, progress's "left") against open_for(), the
ORM statement of what is open to an annotator, over random queue states."""

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotate import models, queue
from tests.conftest import make_user

# Per response: overlap, round (None or 1-3), retired, judged by me, by others (count),
# skipped by me, live reservations by others (count), an expired one of mine.
# Each obstacle is rare enough that most responses stay open and the order is exercised.
SOMETIMES = st.sampled_from([False, False, False, False, True])
RESPONSE = st.tuples(
    st.integers(1, 3),
    st.sampled_from([None, 1, 2, 3]),
    SOMETIMES,
    SOMETIMES,
    st.sampled_from([0, 0, 0, 1, 2]),
    SOMETIMES,
    st.sampled_from([0, 0, 0, 1, 2]),
    SOMETIMES,
)


class Rollback(Exception):
    pass


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(states=st.lists(RESPONSE, min_size=1, max_size=10))
def test_next_for_and_left_agree_with_open_for(db, states):
    try:
        with transaction.atomic():
            check(states)
            raise Rollback
    except Rollback:
        pass


def check(states):
    now = timezone.now()
    me = make_user("me", "annotators")
    others = [make_user(f"other{i}", "annotators") for i in range(4)]
    for number in (1, 2, 3):
        models.Round.objects.create(number=number)
    for i, (overlap, round_, retired, mine, theirs, skipped, held, expired) in enumerate(states):
        prompt = models.Prompt.objects.create(source="prop", external_id=str(i), instruction="Q")
        response = models.Response.objects.create(
            prompt=prompt, text="A", overlap=overlap, round_id=round_, retired=retired
        )
        judges = ([me] if mine else []) + others[:theirs]
        for judge in judges:
            models.Judgment.objects.create(response=response, annotator=judge, verdict="positive")
        models.Response.objects.filter(pk=response.pk).update(judgment_count=len(judges))
        if skipped:
            models.Skip.objects.create(response=response, annotator=me, reason="No.")
        for other in others[2 : 2 + held]:
            models.Reservation.objects.create(
                response=response, annotator=other, expires=now + timedelta(minutes=5)
            )
        if expired:
            models.Reservation.objects.create(
                response=response, annotator=me, created=now - timedelta(hours=1), expires=now
            )

    expected = list(
        queue.open_for(me, now=now)
        .order_by(F("round").desc(nulls_last=True), "id")
        .values_list("id", flat=True)
    )
    assert queue.progress(me, now=now)["left"] == len(expected)
    handed = []
    while reservation := queue.next_for(me, now=now):
        handed.append(reservation.response_id)
        queue.skip(me, reservation.response, "Counting.")
    assert handed == expected
