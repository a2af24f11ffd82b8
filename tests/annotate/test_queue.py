from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from annotate import models, queue
from tests.conftest import make_user


def test_it_hands_out_a_response_and_reserves_it(annotator, response, settings):
    settings.RESERVATION_MINUTES = 15
    now = timezone.now()
    reservation = queue.next_for(annotator, now=now)
    assert reservation.response == response
    assert reservation.annotator == annotator
    assert reservation.expires == now + timedelta(minutes=15)
    assert models.Reservation.objects.count() == 1


def test_it_returns_none_when_nothing_is_left(annotator, db):
    assert queue.next_for(annotator) is None


def test_asking_again_returns_the_same_reservation(annotator, make_responses):
    make_responses(3)
    first = queue.next_for(annotator)
    again = queue.next_for(annotator)
    assert again.pk == first.pk
    assert again.response_id == first.response_id
    assert models.Reservation.objects.count() == 1


def test_the_reservation_comes_with_what_the_task_page_shows(
    annotator, response, django_assert_num_queries
):
    for reservation in (queue.next_for(annotator), queue.next_for(annotator)):  # new, reused
        with django_assert_num_queries(0):
            assert reservation.response.prompt.instruction
            assert reservation.response.text
            assert reservation.response.round_id == 1


def test_a_reserved_response_is_not_handed_to_another_annotator(
    annotator, other_annotator, response
):
    assert queue.next_for(annotator).response == response
    assert queue.next_for(other_annotator) is None


def test_overlap_lets_that_many_annotators_take_it(annotator, other_annotator, make_responses):
    (response,) = make_responses(1, overlap=2)
    third = make_user("carol", "annotators")
    assert queue.next_for(annotator).response == response
    assert queue.next_for(other_annotator).response == response
    assert queue.next_for(third) is None


def test_a_response_with_all_its_judgments_leaves_the_queue(
    annotator, other_annotator, make_responses
):
    (response,) = make_responses(1, overlap=1)
    queue.submit(annotator, response, verdict="positive")
    assert queue.next_for(other_annotator) is None


def test_an_annotator_never_gets_a_response_they_judged(
    annotator, other_annotator, make_responses
):
    (response,) = make_responses(1, overlap=2)
    queue.next_for(annotator)
    queue.submit(annotator, response, verdict="positive")
    assert queue.next_for(annotator) is None
    assert queue.next_for(other_annotator).response == response


def test_an_expired_reservation_frees_the_slot(annotator, other_annotator, response, settings):
    settings.RESERVATION_MINUTES = 15
    now = timezone.now()
    queue.next_for(annotator, now=now)
    later = now + timedelta(minutes=16)
    assert queue.next_for(other_annotator, now=later).response == response


def test_an_annotator_gets_their_expired_response_back_if_it_is_still_open(
    annotator, response, settings
):
    now = timezone.now()
    first = queue.next_for(annotator, now=now)
    later = now + timedelta(minutes=settings.RESERVATION_MINUTES + 1)
    again = queue.next_for(annotator, now=later)
    assert again.response == response
    assert again.expires > later
    assert models.Reservation.objects.filter(pk=first.pk).exists() is False


def test_newest_round_first_then_oldest_response(annotator, make_responses):
    old_round = models.Round.objects.create(number=1)
    new_round = models.Round.objects.create(number=2)
    no_round = make_responses(2)
    old = make_responses(2, round=old_round)
    new = make_responses(2, round=new_round)
    order = []
    while reservation := queue.next_for(annotator):
        order.append(reservation.response_id)
        queue.submit(annotator, reservation.response, verdict="positive")
    assert order == [r.pk for r in new + old + no_round]


def test_skip_removes_the_response_from_this_annotator_only(
    annotator, other_annotator, make_responses
):
    first, second = make_responses(2, overlap=2)
    queue.next_for(annotator)
    skipped = queue.skip(annotator, first, "  I can't read French.  ")
    assert skipped.reason == "I can't read French."
    assert not models.Reservation.objects.filter(annotator=annotator).exists()
    assert queue.next_for(annotator).response == second
    assert queue.next_for(other_annotator).response == first


def test_skip_frees_the_slot_at_once(annotator, other_annotator, response):
    queue.next_for(annotator)
    queue.skip(annotator, response, "Not my field.")
    assert queue.next_for(other_annotator).response == response


def test_skip_needs_a_reason(annotator, response):
    with pytest.raises(ValidationError) as excinfo:
        queue.skip(annotator, response, "   ")
    assert "reason" in excinfo.value.message_dict
    assert not models.Skip.objects.exists()


def test_skip_refuses_a_reason_that_is_too_long(annotator, response):
    with pytest.raises(ValidationError):
        queue.skip(annotator, response, "x" * 5000)


def test_retired_responses_are_not_handed_out(annotator, make_responses):
    first, second = make_responses(2)
    models.Response.objects.filter(pk=first.pk).update(retired=True)
    assert queue.next_for(annotator).response == second


def test_a_held_response_that_gets_retired_is_replaced(annotator, make_responses):
    first, second = make_responses(2)
    assert queue.next_for(annotator).response == first
    models.Response.objects.filter(pk=first.pk).update(retired=True)
    assert queue.next_for(annotator).response == second
    assert models.Reservation.objects.get().response == second


def test_submit_records_the_judgment_and_frees_the_reservation(annotator, response):
    queue.next_for(annotator)
    judgment = queue.submit(
        annotator,
        response,
        verdict="negative",
        critique="  Paris is right but the answer is terse. ",
        spans=[[0, 3]],
        seconds_spent=42,
    )
    judgment.refresh_from_db()
    assert judgment.critique == "Paris is right but the answer is terse."
    assert judgment.spans == [[0, 3]]
    assert judgment.seconds_spent == 42
    assert judgment.review_state == "pending"
    response.refresh_from_db()
    assert response.judgment_count == 1
    assert not models.Reservation.objects.exists()


def test_submit_validates_and_keeps_nothing_on_error(annotator, response):
    queue.next_for(annotator)
    with pytest.raises(ValidationError) as excinfo:
        queue.submit(annotator, response, verdict="negative", critique=" ")
    assert "critique" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        queue.submit(annotator, response, verdict="maybe")
    assert "verdict" in excinfo.value.message_dict
    with pytest.raises(ValidationError) as excinfo:
        queue.submit(annotator, response, verdict="positive", spans=[[0, 9999]])
    assert "spans" in excinfo.value.message_dict
    response.refresh_from_db()
    assert response.judgment_count == 0
    assert not models.Judgment.objects.exists()
    assert models.Reservation.objects.filter(annotator=annotator).exists()


def test_submit_twice_is_refused(annotator, make_responses):
    (response,) = make_responses(1, overlap=2)
    queue.submit(annotator, response, verdict="positive")
    with pytest.raises(queue.AlreadyJudged, match="already judged"):
        queue.submit(annotator, response, verdict="positive")
    response.refresh_from_db()
    assert response.judgment_count == 1


def test_submit_to_a_full_response_is_refused(annotator, other_annotator, response):
    queue.submit(other_annotator, response, verdict="positive")
    with pytest.raises(queue.ResponseFull, match="all the judgments it needs"):
        queue.submit(annotator, response, verdict="positive")


def test_submit_to_a_retired_response_is_refused(annotator, response):
    queue.next_for(annotator)
    models.Response.objects.filter(pk=response.pk).update(retired=True)
    with pytest.raises(queue.QueueError, match="retired"):
        queue.submit(annotator, response, verdict="positive")


def test_an_expired_reservation_is_accepted_while_a_slot_is_free(annotator, response, settings):
    past = timezone.now() - timedelta(minutes=settings.RESERVATION_MINUTES + 5)
    queue.next_for(annotator, now=past)
    judgment = queue.submit(annotator, response, verdict="positive")
    assert judgment.pk
    assert not models.Reservation.objects.exists()


def test_an_expired_reservation_is_refused_when_another_annotator_holds_the_slot(
    annotator, other_annotator, response, settings
):
    past = timezone.now() - timedelta(minutes=settings.RESERVATION_MINUTES + 5)
    queue.next_for(annotator, now=past)
    assert queue.next_for(other_annotator).response == response
    with pytest.raises(queue.ResponseFull):
        queue.submit(annotator, response, verdict="positive")
    assert queue.submit(other_annotator, response, verdict="positive").pk


def test_an_expired_reservation_is_refused_when_the_response_filled_up(
    annotator, other_annotator, response, settings
):
    past = timezone.now() - timedelta(minutes=settings.RESERVATION_MINUTES + 5)
    queue.next_for(annotator, now=past)
    queue.submit(other_annotator, response, verdict="positive")
    with pytest.raises(queue.ResponseFull):
        queue.submit(annotator, response, verdict="negative", critique="Too short.")


def test_progress_counts_today_total_and_left(annotator, other_annotator, make_responses):
    responses = make_responses(5)
    queue.submit(annotator, responses[0], verdict="positive")
    queue.submit(annotator, responses[1], verdict="positive")
    yesterday = timezone.now() - timedelta(days=1, hours=1)
    models.Judgment.objects.filter(response=responses[1]).update(created=yesterday)
    queue.skip(annotator, responses[2], "Not my field.")
    assert queue.progress(annotator) == {"today": 1, "total": 2, "left": 2, "more": False}
    # Another annotator's live reservation takes responses[3] out of the count.
    assert queue.next_for(other_annotator).response == responses[2]
    assert queue.next_for(make_user("carol", "annotators")).response == responses[3]
    assert queue.progress(annotator) == {"today": 1, "total": 2, "left": 1, "more": False}
    # The response an annotator holds counts as left for them.
    assert queue.progress(other_annotator) == {"today": 0, "total": 0, "left": 2, "more": False}


def test_left_stops_counting_at_the_limit_and_says_so(
    annotator, other_annotator, make_responses, monkeypatch
):
    monkeypatch.setattr(queue, "LEFT_COUNT_LIMIT", 3)
    responses = make_responses(7)
    assert queue.progress(annotator)["left"] == 3
    assert queue.progress(annotator)["more"] is True
    # What this annotator judged or skipped and what others hold don't eat into the limit.
    queue.submit(annotator, responses[0], verdict="positive")
    queue.skip(annotator, responses[1], "No.")
    queue.next_for(other_annotator)  # responses[2]
    queue.next_for(make_user("carol", "annotators"))  # responses[3]
    assert queue.open_for(annotator).count() == 4
    assert queue.progress(annotator) == {"today": 1, "total": 1, "left": 3, "more": True}
    queue.skip(annotator, responses[4], "No.")  # exactly 3 left: "3+" is still true
    assert queue.progress(annotator) == {"today": 1, "total": 1, "left": 3, "more": True}
    queue.skip(annotator, responses[5], "No.")
    assert queue.progress(annotator) == {"today": 1, "total": 1, "left": 2, "more": False}
    assert queue.open_for(annotator).count() == 2


def test_left_counts_exactly_what_the_queue_would_hand_out(
    annotator, other_annotator, make_responses
):
    carol = make_user("carol", "annotators")
    single = make_responses(6, overlap=1)
    double = make_responses(4, overlap=2)
    queue.submit(annotator, single[0], verdict="positive")  # judged by me: full
    queue.submit(other_annotator, single[1], verdict="positive")  # full
    queue.skip(annotator, single[2], "No.")  # skipped by me
    queue.skip(annotator, double[0], "No.")
    queue.submit(annotator, double[0], verdict="positive")  # skipped and then judged
    queue.submit(other_annotator, double[1], verdict="positive")  # one slot left
    assert queue.next_for(carol).response == single[2]  # skipped by me only
    assert queue.next_for(other_annotator).response == single[3]
    assert queue.next_for(annotator).response == single[4]
    models.Response.objects.filter(pk=double[3].pk).update(retired=True)
    left = queue.progress(annotator)["left"]
    assert left == queue.open_for(annotator).count()
    # single[4] (held by me), single[5], double[1] (one slot left), double[2]
    assert left == 4
    handed = []
    while reservation := queue.next_for(annotator):
        handed.append(reservation.response_id)
        queue.skip(annotator, reservation.response, "Counting.")
    assert handed == [single[4].pk, single[5].pk, double[1].pk, double[2].pk]
