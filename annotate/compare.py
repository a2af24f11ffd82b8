"""Blind pairwise comparisons: creating one, and who gets which pair next.

A comparison samples `sample_size` prompts of a prompt set once, at creation (the ids are
stored on it), and pairs each sampled prompt's response from system A with system B's.
Systems ("base", "round:N", "run:ID") and the generation of missing responses are in
annotate/compare_systems.py. Responses that exist are reused; a pair appears once both of
its responses exist (refresh() adds them, when a page of a waiting comparison is opened).

The pair queue has the judging queue's invariant and concurrency argument (see
annotate/queue.py, whose statements it runs through queue.Tables): a pair is open to an
evaluator when its comparison is not closed, it has fewer votes than its overlap, the
evaluator has neither voted on it nor skipped it, and the live reservations of other
evaluators do not already fill its remaining slots. Which response is shown on the left is
drawn at random when the pair is handed out and stored on the reservation, then on the
vote; a vote therefore needs the evaluator's reservation (live, or expired and not yet
replaced), so the order it was cast in is known.
"""

import random
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from annotate import compare_systems, models, queue
from annotate import validators as v

PAIRS = queue.Tables(
    item=models.ComparisonPair,
    done=models.Vote,
    skip=models.PairSkip,
    reservation=models.PairReservation,
    fk="pair_id",
    person="evaluator_id",
    count="vote_count",
    open="r.vote_count < r.overlap",
)
_SCOPE = " AND r.comparison_id = %s"


class PairFull(queue.QueueError):
    def __init__(self, message: str = "This pair already has all the votes it needs."):
        super().__init__(message)


class AlreadyVoted(queue.QueueError):
    def __init__(self, message: str = "You have already voted on this pair."):
        super().__init__(message)


# Creating and filling a comparison --------------------------------------------------------


def create(
    *,
    system_a: str,
    system_b: str,
    prompt_set: str = "all",
    sample_size: int,
    overlap: int = 1,
    instructions: str = "",
    created_by=None,
    seed: int | None = None,
) -> models.Comparison:
    """Validate, sample the prompts and build the pairs whose responses exist.

    Raises ValidationError naming the field: the same system twice, an empty prompt set,
    a sample larger than the set."""
    comparison = models.Comparison(
        system_a=system_a,
        system_b=system_b,
        prompt_set=prompt_set,
        sample_size=sample_size,
        overlap=overlap,
        instructions=(instructions or "").strip(),
        created_by=created_by,
    )
    sample(comparison, seed)
    with transaction.atomic():
        comparison.save()
        refresh(comparison)
        compare_systems.generate_missing(comparison, created_by)
    return comparison


def sample(comparison: models.Comparison, seed: int | None = None) -> None:
    """Check a new comparison and draw its prompts (sets prompt_ids and seed); the form,
    the admin and the API all come through here. Raises ValidationError by field."""
    comparison.seed = secrets.randbits(31) if seed is None else seed
    comparison.full_clean(exclude=["created_by"], validate_constraints=False)
    if comparison.system_a == comparison.system_b:
        raise ValidationError({"system_b": "Choose two different systems: A and B are the same."})
    known = dict(compare_systems.system_choices())
    for field in ("system_a", "system_b"):
        if getattr(comparison, field) not in known:
            raise ValidationError({field: f"There is no system {getattr(comparison, field)!r}."})
    ids = sorted(
        compare_systems.prompts_in(comparison.prompt_set).values_list("pk", flat=True).distinct()
    )
    if not ids:
        raise ValidationError(
            {"prompt_set": f"The prompt set {comparison.prompt_set!r} has no prompts."}
        )
    if comparison.sample_size > len(ids):
        raise ValidationError(
            {
                "sample_size": f"The sample ({comparison.sample_size}) is larger than the set "
                f"({len(ids)} prompts)."
            }
        )
    comparison.prompt_ids = random.Random(comparison.seed).sample(ids, comparison.sample_size)
    same = set(compare_systems._first_per_prompt(comparison.system_a, ids).values()) & set(
        compare_systems._first_per_prompt(comparison.system_b, ids).values()
    )
    if same:
        raise ValidationError(
            {
                "system_b": f"{compare_systems.system_label(comparison.system_a)} and "
                f"{compare_systems.system_label(comparison.system_b)} are the same "
                "responses: choose another."
            }
        )


def refresh(comparison: models.Comparison) -> int:
    """Add a pair for every sampled prompt both systems now answer; open the comparison
    when none is missing. Idempotent. Returns the number of pairs added."""
    ids = comparison.prompt_ids
    have_a = compare_systems._first_per_prompt(comparison.system_a, ids)
    have_b = compare_systems._first_per_prompt(comparison.system_b, ids)
    paired = set(comparison.pairs.values_list("prompt_id", flat=True))
    new = [
        models.ComparisonPair(
            comparison=comparison,
            prompt_id=pk,
            response_a_id=have_a[pk],
            response_b_id=have_b[pk],
            overlap=comparison.overlap,
        )
        for pk in ids  # in the order drawn, so the queue's id order is the random one
        if pk in have_a and pk in have_b and pk not in paired
    ]
    models.ComparisonPair.objects.bulk_create(new, ignore_conflicts=True)
    complete = len(paired) + len(new) >= len(ids)
    if complete and comparison.state == models.Comparison.State.WAITING:
        comparison.state = models.Comparison.State.OPEN
        comparison.save(update_fields=["state"])
    return len(new)


def refresh_after_generation(run: models.GenerationRun) -> int:
    """The comparisons waiting for this generation job get their pairs as soon as it
    succeeds (the worker calls this), not when someone next opens one of them."""
    waiting = run.comparisons.filter(state=models.Comparison.State.WAITING)
    return sum(refresh(comparison) for comparison in waiting)


# The pair queue ----------------------------------------------------------------------------


def open_for(evaluator, comparison: models.Comparison, *, now: datetime | None = None):
    """Pairs of the comparison this evaluator could be handed now (unordered); the readable
    definition that the statements of queue.claim implement."""
    now = now or timezone.now()
    reserved_by_others = models.count_subquery(
        models.PairReservation.objects.filter(pair=OuterRef("pk"), expires__gt=now).exclude(
            evaluator=evaluator
        ),
        "pair",
    )
    if comparison.state == models.Comparison.State.CLOSED:
        return models.ComparisonPair.objects.none()
    return (
        models.ComparisonPair.objects.filter(comparison=comparison, vote_count__lt=F("overlap"))
        .exclude(Exists(models.Vote.objects.filter(pair=OuterRef("pk"), evaluator=evaluator)))
        .exclude(Exists(models.PairSkip.objects.filter(pair=OuterRef("pk"), evaluator=evaluator)))
        .alias(reserved=reserved_by_others)
        .filter(reserved__lt=F("overlap") - F("vote_count"))
    )


def _reservation(pk: int) -> models.PairReservation:
    return models.PairReservation.objects.select_related(
        "pair__prompt", "pair__response_a", "pair__response_b"
    ).get(pk=pk)


def next_for(
    evaluator, comparison: models.Comparison, *, now: datetime | None = None
) -> models.PairReservation | None:
    """The evaluator's live reservation in this comparison, reused or new; None when
    nothing is left for them."""
    now = now or timezone.now()
    if comparison.state == models.Comparison.State.CLOSED:
        return None
    with transaction.atomic():
        kept = queue.held(PAIRS, evaluator, now, _SCOPE, [comparison.pk])
        if kept is not None:
            return _reservation(kept)

        def load(pair_id: int) -> tuple[int, bool]:
            _, reserved = queue.slot_state(PAIRS, evaluator, pair_id, now)
            pair = models.ComparisonPair.objects.only("overlap", "vote_count").get(pk=pair_id)
            return pair_id, reserved < pair.overlap - pair.vote_count

        pair_id = queue.claim(PAIRS, evaluator, now, [(_SCOPE, [comparison.pk], "r.id")], load)
        if pair_id is None:
            return None
        reservation = models.PairReservation.objects.create(
            pair_id=pair_id,
            evaluator=evaluator,
            # Drawn for this hand-out, so nobody learns a side from where it sits.
            a_on_left=secrets.randbelow(2) == 1,
            created=now,
            expires=now + timedelta(minutes=settings.RESERVATION_MINUTES),
        )
        return _reservation(reservation.pk)


def skip(evaluator, pair: models.ComparisonPair, reason: str = "") -> models.PairSkip:
    """Take the pair out of this evaluator's queue (only theirs) and free its slot."""
    reason = (reason or "").strip()
    if len(reason) > v.MAX_REASON_CHARS:
        raise ValidationError(
            {"reason": f"Keep the reason under {v.MAX_REASON_CHARS} characters ({len(reason)})."}
        )
    with transaction.atomic():
        skipped, _ = models.PairSkip.objects.update_or_create(
            pair=pair, evaluator=evaluator, defaults={"reason": reason}
        )
        models.PairReservation.objects.filter(pair=pair, evaluator=evaluator).delete()
    return skipped


_LOCK_PAIR_SQL = """
SELECT p.overlap, p.vote_count, c.state FROM {pair} p JOIN {comparison} c ON c.id = p.comparison_id
WHERE p.id = %s{lock}
"""


def submit(
    evaluator,
    pair: models.ComparisonPair,
    *,
    choice: str,
    reason: str = "",
    seconds_spent: int | None = None,
) -> models.Vote:
    """Record the evaluator's vote if the pair still has a slot for it and they hold (or
    held) its reservation, which says which side they saw on the left."""
    now = timezone.now()
    with transaction.atomic():
        lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
        sql = _LOCK_PAIR_SQL.format(
            pair=models.ComparisonPair._meta.db_table,
            comparison=models.Comparison._meta.db_table,
            lock=lock,
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [pair.pk])
            row = cursor.fetchone()
        if row is None:
            raise models.ComparisonPair.DoesNotExist("No such pair.")
        overlap, vote_count, state = row
        if state == models.Comparison.State.CLOSED:
            raise queue.QueueError("This comparison is closed and takes no more votes.")
        voted, reserved = queue.slot_state(PAIRS, evaluator, pair.pk, now)
        if voted:
            raise AlreadyVoted()
        if vote_count + reserved >= overlap:
            raise PairFull()
        order = (
            models.PairReservation.objects.filter(pair_id=pair.pk, evaluator=evaluator)
            .values_list("a_on_left", flat=True)
            .first()
        )
        if order is None:
            raise queue.QueueError(
                "This pair is not reserved for you (it was released), so your vote was not "
                "saved; take the next pair."
            )
        vote = models.Vote(
            pair_id=pair.pk,
            evaluator=evaluator,
            choice=choice,
            a_on_left=order,
            reason=(reason or "").strip(),
            seconds_spent=seconds_spent,
            created=now,
        )
        # Uniqueness was checked above under the row lock; both keys point at rows we hold.
        vote.full_clean(exclude=["pair", "evaluator"], validate_constraints=False)
        vote.save()
        queue.count_done(PAIRS, evaluator, pair.pk)
        _tally(pair.pk, vote)
    return vote


_TALLY_SQL = (
    "UPDATE {pair} SET {column} = {column} + 1, left_votes = left_votes + %s WHERE id = %s"
)


def _tally(pair_id: int, vote: models.Vote) -> None:
    """Count the vote in its pair's tallies (ComparisonPair.a_votes ... left_votes)."""
    column = f"{vote.winner}_votes"
    decisive_left = vote.winner in ("a", "b") and vote.choice == models.Vote.Choice.LEFT
    sql = _TALLY_SQL.format(pair=models.ComparisonPair._meta.db_table, column=column)
    with connection.cursor() as cursor:
        cursor.execute(sql, [int(decisive_left), pair_id])


def recount(pairs: QuerySet) -> None:
    """Set vote_count and the tallies of the pairs from their votes (bulk loads, repairs);
    submit keeps them as it goes."""
    won_a = Q(choice="left", a_on_left=True) | Q(choice="right", a_on_left=False)
    won_b = Q(choice="right", a_on_left=True) | Q(choice="left", a_on_left=False)
    votes = models.Vote.objects.filter(pair=OuterRef("pk"))

    def n(condition: Q | None = None):
        return models.count_subquery(votes.filter(condition) if condition else votes, "pair")

    pairs.update(
        vote_count=n(),
        a_votes=n(won_a),
        b_votes=n(won_b),
        tie_votes=n(Q(choice="tie")),
        both_bad_votes=n(Q(choice="both_bad")),
        left_votes=n(Q(choice="left") & (won_a | won_b)),
    )


# progress() in one statement, as the judging queue's: the evaluator's votes here; the
# open pairs (neither full nor voted or skipped by them) that other evaluators' live
# reservations fill, found from those reservations; and the open pairs counted up to that
# number plus the limit, so "left" = counted - filled stops at the limit.
_PROGRESS_SQL = """
WITH filled AS (
  SELECT COUNT(*) AS n FROM (
    SELECT r.id FROM {reservation} v CROSS JOIN {pair} r
    WHERE r.id = v.pair_id AND r.comparison_id = %s AND v.expires > %s
      AND v.evaluator_id <> %s AND r.vote_count < r.overlap
      AND NOT EXISTS (SELECT 1 FROM {vote} j WHERE j.pair_id = r.id AND j.evaluator_id = %s)
      AND NOT EXISTS (SELECT 1 FROM {skip} s WHERE s.pair_id = r.id AND s.evaluator_id = %s)
    GROUP BY r.id, r.overlap, r.vote_count
    HAVING COUNT(*) >= r.overlap - r.vote_count) AS f
)
SELECT
  (SELECT COUNT(*) FROM {vote} j JOIN {pair} r ON r.id = j.pair_id
   WHERE j.evaluator_id = %s AND r.comparison_id = %s),
  (SELECT n FROM filled),
  (SELECT COUNT(*) FROM (
     SELECT 1 FROM {pair} r WHERE r.comparison_id = %s AND r.vote_count < r.overlap
       AND NOT EXISTS (SELECT 1 FROM {vote} j WHERE j.pair_id = r.id AND j.evaluator_id = %s)
       AND NOT EXISTS (SELECT 1 FROM {skip} s WHERE s.pair_id = r.id AND s.evaluator_id = %s)
     LIMIT (SELECT n FROM filled) + %s) AS counted)
"""


def progress(evaluator, comparison: models.Comparison, *, now: datetime | None = None) -> dict:
    """{"done": this evaluator's votes here, "left": pairs still open to them, counted up
    to queue.LEFT_COUNT_LIMIT, "more": whether "left" reached it (the page says "1,000+")}.

    "left" equals open_for(...).count() below the limit (a test checks it over random
    queue states); one statement instead of a reservation subquery per pair."""
    now = now or timezone.now()
    me, pk = evaluator.pk, comparison.pk
    sql = _PROGRESS_SQL.format(
        pair=models.ComparisonPair._meta.db_table,
        vote=models.Vote._meta.db_table,
        skip=models.PairSkip._meta.db_table,
        reservation=models.PairReservation._meta.db_table,
    )
    params = [pk, queue.db_datetime(now), me, me, me, me, pk, pk, me, me, queue.LEFT_COUNT_LIMIT]
    done, filled, counted = queue.fetchone(sql, params)
    if comparison.state == models.Comparison.State.CLOSED:
        return {"done": done, "left": 0, "more": False}
    left = counted - filled
    return {"done": done, "left": left, "more": left >= queue.LEFT_COUNT_LIMIT}


def open_comparisons(evaluator) -> list[models.Comparison]:
    """Comparisons with pairs to vote on, each with .left for this evaluator."""
    result = []
    for comparison in models.Comparison.objects.exclude(state=models.Comparison.State.CLOSED):
        comparison.left = progress(evaluator, comparison)["left"]
        result.append(comparison)
    return result


def close(comparison: models.Comparison) -> None:
    comparison.state = models.Comparison.State.CLOSED
    comparison.save(update_fields=["state"])
    models.PairReservation.objects.filter(pair__comparison=comparison).delete()


def sides(reservation: models.PairReservation) -> tuple[models.Response, models.Response]:
    """(left, right) responses as this evaluator sees them."""
    pair = reservation.pair
    if reservation.a_on_left:
        return pair.response_a, pair.response_b
    return pair.response_b, pair.response_a
