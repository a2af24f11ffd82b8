"""Who gets which response next: overlap, reservations and skips.

A response is open to an annotator when it is not retired, has fewer judgments than its
overlap, has not been judged or skipped by this annotator, and the live reservations of
other annotators do not already fill its remaining slots.

Concurrency. On PostgreSQL `next_for` locks the candidate response row with
`SELECT ... FOR UPDATE SKIP LOCKED`, so two annotators asking at the same moment get
different rows instead of waiting on each other, and `submit` locks the response row
before it re-checks the slots. On SQLite the settings open every transaction with
BEGIN IMMEDIATE, which takes the database's write lock, so these transactions run one at a
time; everything that reads before writing therefore happens inside `transaction.atomic()`.

The same invariant and argument hold for the pairwise-vote queue of annotate/compare.py: the
statements below take a `Tables` spec, and claim(), held(), slot_state() and count_done()
run them over either queue's tables.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from annotate import models
from annotate import validators as v

# How many locked candidates next_for re-checks before it gives up (see _claim).
MAX_CLAIM_ATTEMPTS = 10


class QueueError(Exception):
    """A queue operation was refused; the message is a sentence shown to the user."""


class ResponseFull(QueueError):
    def __init__(self, message: str = "This response already has all the judgments it needs."):
        super().__init__(message)


class AlreadyJudged(QueueError):
    def __init__(self, message: str = "You have already judged this response."):
        super().__init__(message)


def open_for(annotator, *, now: datetime | None = None) -> QuerySet:
    """Responses this annotator could be handed now (unordered).

    Includes the response this annotator holds a reservation for: only other annotators'
    live reservations take slots away.
    """
    now = now or timezone.now()
    reserved_by_others = models.count_subquery(
        models.Reservation.objects.filter(response=OuterRef("pk"), expires__gt=now).exclude(
            annotator=annotator
        ),
        "response",
    )
    return (
        models.Response.objects.filter(retired=False, judgment_count__lt=F("overlap"))
        .exclude(
            Exists(models.Judgment.objects.filter(response=OuterRef("pk"), annotator=annotator))
        )
        .exclude(Exists(models.Skip.objects.filter(response=OuterRef("pk"), annotator=annotator)))
        .alias(reserved=reserved_by_others)
        .filter(reserved__lt=F("overlap") - F("judgment_count"))
    )


@dataclass(frozen=True)
class Tables:
    """The rows a queue is made of, so the statements below serve the judging queue and the
    pairwise-vote queue of annotate/compare.py alike: items handed out (`item`, with a
    `count` of finished work against its `overlap`), the finished work (`done`, one per
    person and item), skips and reservations, all pointing at the item through `fk` and at
    the person through `person`. `open` is the SQL test for an item that takes more work
    (alias r)."""

    item: type
    done: type
    skip: type
    reservation: type
    fk: str
    person: str
    count: str
    open: str


JUDGING = Tables(
    item=models.Response,
    done=models.Judgment,
    skip=models.Skip,
    reservation=models.Reservation,
    fk="response_id",
    person="annotator_id",
    count="judgment_count",
    open="NOT r.retired AND r.judgment_count < r.overlap",
)


# The hot path of the task page and of every submit is written as SQL: built through the
# ORM, the claim query alone cost about 6 ms of Python per page to compile, more than the
# database spent running it. open_for() above stays the readable definition of "open";
# tests/annotate/test_queue_agrees.py checks, over random queue states, that these
# statements hand out exactly what it says, in queue order.
_OPEN = JUDGING.open

# Live reservations of other annotators on response r: the slots they hold. Parameters:
# now, the annotator.
_RESERVED_BY_OTHERS = """(SELECT COUNT(*) FROM {reservation} v
   WHERE v.{fk} = r.id AND v.expires > %s AND v.{person} <> %s)"""

_CLAIM_SQL = """
SELECT r.id FROM {item} r
WHERE {open}
  AND NOT EXISTS (SELECT 1 FROM {done} j WHERE j.{fk} = r.id AND j.{person} = %s)
  AND NOT EXISTS (SELECT 1 FROM {skip} s WHERE s.{fk} = r.id AND s.{person} = %s)
  AND {reserved_by_others} < r.overlap - r.{count}{scope}{not_tried}
ORDER BY {order}
LIMIT 1{lock}
"""

# A claimed response as its task page and the API show it, with the live reservations of
# other annotators on it (the re-check in _claim).
_TASK_SQL = """
SELECT r.*, p.instruction AS prompt_instruction, p.input AS prompt_input,
  {reserved_by_others} AS reserved_by_others
FROM {response} r JOIN {prompt} p ON p.id = r.prompt_id
WHERE r.id = %s
"""

_SUBMIT_LOCK_SQL = (
    "SELECT retired, overlap, judgment_count, {text} FROM {response} WHERE id = %s{lock}"
)

_SUBMIT_STATE_SQL = """
SELECT
  EXISTS (SELECT 1 FROM {done} j WHERE j.{fk} = r.id AND j.{person} = %s),
  {reserved_by_others}
FROM {item} r WHERE r.id = %s
"""


_COUNT_DONE_SQL = "UPDATE {item} SET {count} = {count} + 1 WHERE id = %s"

_RELEASE_SQL = "DELETE FROM {reservation} WHERE {fk} = %s AND {person} = %s"


def _sql(template: str, tables: Tables = JUDGING, **parts: str) -> str:
    names = {
        "item": tables.item._meta.db_table,
        "done": tables.done._meta.db_table,
        "skip": tables.skip._meta.db_table,
        "reservation": tables.reservation._meta.db_table,
        "fk": tables.fk,
        "person": tables.person,
        "count": tables.count,
    }
    return template.format(
        # The judging queue's own statements (task, submit lock, progress) name its tables.
        response=models.Response._meta.db_table,
        judgment=models.Judgment._meta.db_table,
        prompt=models.Prompt._meta.db_table,
        user=get_user_model()._meta.db_table,
        open=tables.open,
        reserved_by_others=_RESERVED_BY_OTHERS.format(**names),
        **names,
        **parts,
    )


def fetchone(sql: str, params: list) -> tuple | None:
    """One row of raw SQL (also annotate.compare's, whose queries share this module's)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def db_datetime(moment: datetime):
    """A datetime as this database stores it, for a raw SQL parameter."""
    return connection.ops.adapt_datetimefield_value(moment)


def _task(response_id: int, annotator, now: datetime) -> models.Response:
    """The response with its prompt's instruction and input, in one statement."""
    sql, params = _sql(_TASK_SQL), [db_datetime(now), annotator.pk, response_id]
    (response,) = models.Response.objects.raw(sql, params)
    # The prompt's other fields are deferred: loaded if something asks for them.
    response.prompt = models.Prompt.from_db(
        connection.alias,
        ["id", "instruction", "input"],
        [response.prompt_id, response.prompt_instruction, response.prompt_input],
    )
    return response


def claim(
    tables: Tables,
    person,
    now: datetime,
    walks: list[tuple[str, list, str]],
    load: Callable[[int], tuple[object, bool]],
):
    """Lock the first open item in queue order and return load(item id)'s object, or None.

    `walks` are (extra SQL condition on r, its parameters, ORDER BY), tried in turn.
    load(id) returns the object and whether the item still has a free slot for `person`,
    counted by a new statement (see below).
    """
    skip_locked = connection.features.has_select_for_update_skip_locked
    tried: list[int] = []
    for scope, scope_params, order in walks:
        for _ in range(MAX_CLAIM_ATTEMPTS):
            sql = _sql(
                _CLAIM_SQL,
                tables,
                scope=scope,
                order=order,
                not_tried=f"\n  AND r.id NOT IN ({', '.join(['%s'] * len(tried))})"
                if tried
                else "",
                lock="\nFOR UPDATE OF r SKIP LOCKED" if skip_locked else "",
            )
            row = fetchone(
                sql, [person.pk, person.pk, db_datetime(now), person.pk, *scope_params, *tried]
            )
            if row is None:
                break
            found, free = load(row[0])
            # On PostgreSQL the candidate query read reservations from a snapshot taken
            # before its row lock was granted, so one committed meanwhile by another
            # next_for is invisible to it; a new statement, load's, sees it. On SQLite
            # nothing could have committed meanwhile: this transaction holds the database's
            # write lock.
            if not skip_locked or free:
                return found
            tried.append(row[0])
    return None


def _claim(annotator, now: datetime) -> models.Response | None:
    """Lock the first open response in queue order and return it, or None."""

    def load(response_id: int) -> tuple[models.Response, bool]:
        response = _task(response_id, annotator, now)
        free = response.overlap - response.judgment_count
        return response, response.reserved_by_others < free

    # Newest round first, responses without a round last, then oldest: two walks rather
    # than one ORDER BY round DESC NULLS LAST, so each is a plain walk of
    # response_queue_idx (round DESC, id) instead of a sort of every open response.
    walks = [
        (" AND r.round_id IS NOT NULL", [], "r.round_id DESC, r.id"),
        (" AND r.round_id IS NULL", [], "r.id"),
    ]
    return claim(JUDGING, annotator, now, walks, load)


_LOCK_USER_SQL = "SELECT 1 FROM {user} WHERE id = %s FOR UPDATE"

# The annotator's reservations in the order they were handed out, each with whether it is
# still worth keeping: live, and a response that is open and not judged by them (staff may
# have retired it, or an import filled it, since it was handed out).
_HELD_SQL = """
SELECT v.id, v.expires > %s AND {open}
  AND NOT EXISTS (SELECT 1 FROM {done} j WHERE j.{fk} = r.id AND j.{person} = %s)
FROM {reservation} v JOIN {item} r ON r.id = v.{fk}
WHERE v.{person} = %s{scope}
ORDER BY v.created, v.id
"""


def held(tables: Tables, person, now: datetime, scope: str = "", params: list = ()) -> int | None:
    """The id of the person's reservation worth keeping (within `scope`, a condition on
    r), after deleting the stale ones; None when there is none. Locks the person's row
    first: one next_for at a time per person (two browser tabs), so nobody collects two
    reservations. SQLite already runs these transactions one at a time. The reservations
    are read by a new statement once the lock is granted, so they include one that another
    tab committed meanwhile. Call inside transaction.atomic()."""
    with connection.cursor() as cursor:
        if connection.features.has_select_for_update:
            cursor.execute(_sql(_LOCK_USER_SQL, tables), [person.pk])
        cursor.execute(
            _sql(_HELD_SQL, tables, scope=scope), [db_datetime(now), person.pk, person.pk, *params]
        )
        rows = cursor.fetchall()
    # Expired or no longer wanted reservations are deleted here, lazily, by their owner.
    stale, keep = [], None
    for reservation_id, wanted in rows:
        if wanted:
            keep = reservation_id
            break
        stale.append(reservation_id)
    if stale:
        tables.reservation.objects.filter(pk__in=stale).delete()
    return keep


def slot_state(tables: Tables, person, item_id: int, now: datetime) -> tuple[bool, int]:
    """(whether the person already did this item, live reservations of others on it): read
    by a new statement after the item's row lock is granted, so it sees what the previous
    holder of the lock committed."""
    return fetchone(
        _sql(_SUBMIT_STATE_SQL, tables), [person.pk, db_datetime(now), person.pk, item_id]
    )


def count_done(tables: Tables, person, item_id: int) -> None:
    """One more finished piece of work on the item; the person's reservation is released."""
    with connection.cursor() as cursor:
        cursor.execute(_sql(_COUNT_DONE_SQL, tables), [item_id])
        cursor.execute(_sql(_RELEASE_SQL, tables), [item_id, person.pk])


def next_for(annotator, *, now: datetime | None = None) -> models.Reservation | None:
    """The annotator's live reservation, reused or new; None when nothing is left."""
    now = now or timezone.now()
    with transaction.atomic():
        kept = held(JUDGING, annotator, now)
        if kept is not None:
            return models.Reservation.objects.select_related("response__prompt").get(pk=kept)
        response = _claim(annotator, now)
        if response is None:
            return None
        return models.Reservation.objects.create(
            response=response,
            annotator=annotator,
            created=now,
            expires=now + timedelta(minutes=settings.RESERVATION_MINUTES),
        )


def skip(annotator, response: models.Response, reason: str) -> models.Skip:
    """Take the response out of this annotator's queue (only theirs) and free its slot."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why you skip this response."})
    if len(reason) > v.MAX_REASON_CHARS:
        raise ValidationError(
            {"reason": f"Keep the reason under {v.MAX_REASON_CHARS} characters ({len(reason)})."}
        )
    with transaction.atomic():
        skipped, _ = models.Skip.objects.update_or_create(
            response=response, annotator=annotator, defaults={"reason": reason}
        )
        models.Reservation.objects.filter(response=response, annotator=annotator).delete()
    return skipped


def submit(
    annotator,
    response: models.Response,
    *,
    verdict: str,
    critique: str = "",
    spans: list | None = None,
    seconds_spent: int | None = None,
) -> models.Judgment:
    """Record the annotator's judgment if the response still has a slot for it.

    A reservation is not required: an expired one (or none, from the API) is fine as long
    as the judgments plus other annotators' live reservations leave a slot free.
    """
    now = timezone.now()
    with transaction.atomic():
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        # The text only when there are spans to check against it (Judgment.clean).
        text = "text" if spans else "NULL"
        row = fetchone(_sql(_SUBMIT_LOCK_SQL, lock=lock, text=text), [response.pk])
        if row is None:
            raise models.Response.DoesNotExist("No such response.")
        retired, overlap, judgment_count, text = row
        if spans:
            response.text = text
        if retired:
            raise QueueError("This response has been retired and takes no more judgments.")
        # A new statement after the lock is granted, so it sees what the previous holder
        # of the lock committed (another tab of this annotator, another annotator).
        judged, reserved = slot_state(JUDGING, annotator, response.pk, now)
        if judged:
            raise AlreadyJudged()
        if judgment_count + reserved >= overlap:
            raise ResponseFull()
        judgment = models.Judgment(
            response=response,
            annotator=annotator,
            verdict=verdict,
            critique=critique or "",
            spans=[] if spans is None else spans,
            seconds_spent=seconds_spent,
            created=now,
        )
        # The unique constraint was checked above, under the row lock, and both foreign
        # keys point at rows we hold: skip the three queries full_clean() would spend.
        judgment.full_clean(exclude=["response", "annotator"], validate_constraints=False)
        judgment.save()
        count_done(JUDGING, annotator, response.pk)
    response.judgment_count = judgment_count + 1
    return judgment


# One statement for progress(): it runs on every task page, and as ORM queries it cost
# five round trips plus their compilation. "left" must equal open_for(annotator).count()
# (tests/annotate/test_queue.py checks it): all open responses (an index-only scan of
# response_queue_idx), minus the open ones this annotator judged or skipped (found from
# their own rows), minus those whose free slots other annotators' live reservations fill (a
# handful), instead of an anti-join and a reservation subquery per open response.
# Counting every open response grows with the queue (about 5 ms per 10,000 here, on every
# page), and nobody plans their day by the exact size of a queue of thousands: the scan
# stops once "left" is known to reach LEFT_COUNT_LIMIT, and the page says "1,000+".
# CROSS JOIN keeps SQLite's planner on the live reservations (a handful) as the outer loop
# instead of every response; PostgreSQL plans it as the inner join it is.
_PROGRESS_SQL = """
WITH mine AS (
  SELECT
    (SELECT COUNT(*) FROM {judgment} WHERE annotator_id = %s) AS total,
    (SELECT COUNT(*) FROM {judgment} WHERE annotator_id = %s AND created >= %s) AS today,
    (SELECT COUNT(*) FROM {judgment} j JOIN {response} r ON r.id = j.response_id
      WHERE j.annotator_id = %s AND {open})
    + (SELECT COUNT(*) FROM {skip} s JOIN {response} r ON r.id = s.response_id
      WHERE s.annotator_id = %s AND {open}
        AND NOT EXISTS (SELECT 1 FROM {judgment} j
                        WHERE j.response_id = r.id AND j.annotator_id = %s))
    + (SELECT COUNT(*) FROM (
      SELECT r.id FROM {reservation} v CROSS JOIN {response} r
      WHERE r.id = v.response_id AND v.expires > %s AND v.annotator_id <> %s AND {open}
        AND NOT EXISTS (SELECT 1 FROM {reservation} m
                        WHERE m.response_id = r.id AND m.annotator_id = %s AND m.expires > %s)
        AND NOT EXISTS (SELECT 1 FROM {judgment} j
                        WHERE j.response_id = r.id AND j.annotator_id = %s)
        AND NOT EXISTS (SELECT 1 FROM {skip} s
                        WHERE s.response_id = r.id AND s.annotator_id = %s)
      GROUP BY r.id, r.overlap, r.judgment_count
      HAVING COUNT(*) >= r.overlap - r.judgment_count) AS filled) AS not_mine
)
SELECT total, today, not_mine,
  (SELECT COUNT(*) FROM (SELECT 1 FROM {response} r WHERE {open}
                         LIMIT (SELECT not_mine FROM mine) + %s) AS counted)
FROM mine
"""

# "left" is counted exactly up to here; beyond it progress() says "at least this many".
LEFT_COUNT_LIMIT = 1000


def progress(annotator, *, now: datetime | None = None) -> dict:
    """{"today": judged today, "total": judged ever, "left": responses open to them,
    "more": whether "left" is only a lower bound (it reached LEFT_COUNT_LIMIT)}."""
    now = now or timezone.now()
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    me = annotator.pk
    day, at = db_datetime(start_of_day), db_datetime(now)
    params = [me, me, day, me, me, me, at, me, me, at, me, me]
    total, today, not_mine, counted = fetchone(_sql(_PROGRESS_SQL), [*params, LEFT_COUNT_LIMIT])
    left = counted - not_mine
    return {"today": today, "total": total, "left": left, "more": left >= LEFT_COUNT_LIMIT}
