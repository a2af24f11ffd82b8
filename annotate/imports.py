"""Files of Alpaca-style records -> Prompt, Response and Judgment rows.

A record is {"instruction", "input"?, "output", "judgment"?, "id"?, "generator"?}; other
keys are kept in Prompt.metadata. The work happens in two phases so a bad record loses
nothing: every record is read and checked first (RecordError says where and what), then
everything is written in one transaction: batched INSERTs (COPY on PostgreSQL) and
lookups of a thousand keys at a time, so a few queries per thousand records, not per record.

Idempotent: a prompt is found again by (source, id), or by a hash of its instruction and
input when the record has no id; a response by its prompt and text; an imported judgment
by its response and the importer account. Re-importing a file therefore changes nothing,
and a file with new outputs for known prompts adds responses to them.
"""

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from tqdm import tqdm

from annotate import models, planner_stats
from annotate import validators as v

FORMATS = ("jsonl", "json", "csv")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv"}
# Keys per IN (...) lookup and rows per executemany() batch. SQLite allows 32,766
# parameters per statement, so 1,000 stays well inside on every backend.
BATCH_SIZE = 1000
KNOWN_KEYS = {"id", "instruction", "input", "output", "judgment", "generator"}


class RecordError(Exception):
    """A record that cannot be imported; str() names where it is and what is wrong."""


@dataclass
class ImportSummary:
    prompts_created: int = 0
    responses_created: int = 0
    judgments_created: int = 0
    unchanged: int = 0  # records that added nothing (already imported, or repeated in the file)
    records: int = 0

    def __str__(self) -> str:
        return (
            f"{self.records} records: {self.prompts_created} prompts, "
            f"{self.responses_created} responses and {self.judgments_created} judgments "
            f"created; {self.unchanged} unchanged."
        )


@dataclass(slots=True)
class _Row:
    where: str
    external_id: str
    instruction: str
    input: str
    output: str
    generator: str
    metadata: dict
    has_judgment: bool
    verdict: str
    critique: str
    # Filled in by the write phase.
    prompt_id: int | None = None
    response_id: int | None = None
    new_prompt: bool = False
    new_response: bool = False
    new_judgment: bool = False


def detect_format(path: str | Path, format: str | None = None) -> str:
    if format:
        if format not in FORMATS:
            raise RecordError(
                f"{path}: unknown format {format!r}; use one of {', '.join(FORMATS)}."
            )
        return format
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise RecordError(
            f"{path}: cannot tell the format from the extension {suffix or '(none)'!r}; "
            f"name it .jsonl, .json or .csv, or pass --format."
        )
    return EXTENSIONS[suffix]


def read_records(path: str | Path, format: str | None = None) -> Iterator[tuple[str, dict]]:
    """Yield (where, record) for each record of the file; where is "FILE, line N" (JSON lines,
    CSV, and a JSON array's syntax errors) or "FILE, record N" (items of a JSON array).

    A .json file that does not start with "[" is read as JSON lines, since many files named
    .json are.
    """
    format = detect_format(path, format)
    try:
        with open(path, "rb") as f:
            if format == "csv":
                yield from _read_csv(path, f)
                return
            head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
            f.seek(0)
            if format == "json" and head.startswith(b"["):
                yield from _read_json_array(path, f)
            else:
                yield from _read_json_lines(path, f)
    except OSError as e:
        raise RecordError(f"{path}: cannot read the file ({e.strerror}).") from e


def _read_json_lines(path, f) -> Iterator[tuple[str, dict]]:
    for number, raw in enumerate(f, start=1):
        where = f"{path}, line {number}"
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise RecordError(f"{where}: not UTF-8 text (byte {e.start + 1}).") from None
        if not text.strip():
            continue
        try:
            # Without its line ending: an error found at the newline would otherwise be
            # reported as column 1 of the line after.
            record = json.loads(text.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            raise RecordError(f"{where}: not valid JSON ({e.msg}, column {e.colno}).") from None
        yield where, record


def _read_json_array(path, f) -> Iterator[tuple[str, dict]]:
    try:
        data = json.loads(f.read().decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (byte {e.start + 1}).") from None
    except json.JSONDecodeError as e:
        raise RecordError(
            f"{path}, line {e.lineno}: not valid JSON ({e.msg}, column {e.colno})."
        ) from None
    if not isinstance(data, list):
        raise RecordError(f"{path}: a JSON file must hold an array of records.")
    for index, record in enumerate(data, start=1):
        yield f"{path}, record {index}", record


def _read_csv(path, f) -> Iterator[tuple[str, dict]]:
    try:
        text = f.read().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (byte {e.start + 1}).") from None
    # StringIO(newline=""), as csv wants: str.splitlines() would also break at U+2028 and
    # other separators that may sit inside a cell.
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, [])
    except csv.Error as e:
        raise RecordError(f"{path}, line 1: {e}.") from None
    missing = [name for name in ("instruction", "output") if name not in header]
    if missing:
        raise RecordError(f"{path}, line 1: the CSV header has no {' or '.join(missing)} column.")
    if len(set(header)) != len(header):
        raise RecordError(f"{path}, line 1: the CSV header names a column twice.")
    while True:
        # A quoted cell may span lines: name the line where the record starts.
        where = f"{path}, line {reader.line_num + 1}"
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise RecordError(f"{where}: {e}.") from None
        if not cells:
            continue
        if len(cells) != len(header):
            raise RecordError(
                f"{where}: {len(cells)} cells, but the header has {len(header)} columns."
            )
        record = dict(zip(header, cells, strict=True))
        # CSV has no null: an empty id means "no id", an empty judgment means "good" (a
        # negative verdict needs a critique, so an empty one cannot mean anything else).
        if record.get("id") == "":
            del record["id"]
        if record.get("judgment") == "":
            record["judgment"] = None
        yield where, record


def import_records(
    records: Iterable[tuple[str, dict]],
    *,
    source: str,
    round_number: int | None = None,
    overlap: int = 1,
    accept_judgments: bool = False,
    progress: bool = False,
) -> ImportSummary:
    """Check every record, then write them all in one transaction (or nothing)."""
    _check_options(source, round_number, overlap)
    rows = _clean_all(records)
    summary = ImportSummary(records=len(rows))
    rows = _drop_repeats(rows, summary)
    # disable=None: a bar only when stderr is a terminal.
    bar = tqdm(total=len(rows) * 3, unit=" rows", disable=None if progress else True, leave=False)
    try:
        with transaction.atomic(), bar:
            round = None
            if round_number is not None:
                round, _ = models.Round.objects.get_or_create(number=round_number)
            _write_prompts(rows, source, summary, bar)
            _write_responses(rows, round, overlap, summary, bar)
            _write_judgments(rows, source, accept_judgments, summary, bar)
    except IntegrityError as e:
        # Only a concurrent import of the same records gets here: everything else was
        # checked above. Nothing was written, and a second try skips what it wrote.
        raise RecordError(
            f"Another import wrote some of these records at the same time ({e}). "
            f"Run it again: records already there are skipped."
        ) from e
    summary.unchanged += sum(1 for row in rows if not (row.new_response or row.new_judgment))
    # Whichever door the records came through, the planner learns the tables' new size.
    planner_stats.refresh_if_grown(summary.prompts_created, summary.responses_created)
    judged = [row.response_id for row in rows if row.new_judgment and row.critique]
    if judged:
        # settings.LENS_AFTER_IMPORT: queue the lens of the new critiques (or nothing).
        from annotate import lens

        lens.after_import(judged, source)
    return summary


def _check_options(source: str, round_number: int | None, overlap: int) -> None:
    if not source or not source.strip():
        raise RecordError("The source name may not be blank.")
    if len(source) > v.MAX_SOURCE_CHARS:
        raise RecordError(f"The source name is over {v.MAX_SOURCE_CHARS} characters.")
    if round_number is not None and round_number < 0:
        raise RecordError(f"The round must be 0 or more, got {round_number}.")
    if not 1 <= overlap <= 32767:
        raise RecordError(f"The overlap must be between 1 and 32767, got {overlap}.")


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _text(where: str, record: dict, name: str, limit: int, required: bool) -> str:
    if name not in record:
        if required:
            raise RecordError(f"{where}: missing {name!r}.")
        return ""
    value = record[name]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"{where}: {name!r} must be a string, not {_json_type(value)}.")
    if required:
        try:
            v.validate_not_blank(value)
        except ValidationError:
            raise RecordError(f"{where}: {name!r} is empty.") from None
    if len(value) > limit:
        raise RecordError(
            f"{where}: {name!r} has {len(value):,} characters; the limit is {limit:,}."
        )
    _check_characters(where, name, value)
    return value


def _check_characters(where: str, name: str, value: str) -> None:
    # PostgreSQL refuses NUL in text and UTF-8 refuses lone surrogates ("\ud800" is valid
    # JSON); catching them here keeps the error on the record instead of mid-transaction.
    if "\x00" in value:
        raise RecordError(f"{where}: {name!r} contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise RecordError(f"{where}: {name!r} contains an invalid character.") from None


def _external_id(where: str, record: dict, instruction: str, input: str) -> str:
    value = record.get("id")
    if value is None:
        # No id: the prompt is known by its content, so the same file finds it again.
        digest = hashlib.sha256(json.dumps([instruction, input]).encode()).hexdigest()
        return f"sha256:{digest}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(
            f"{where}: 'id' must be a string or an integer, not {_json_type(value)}."
        )
    value = str(value)
    if not value.strip():
        raise RecordError(f"{where}: 'id' is empty.")
    if len(value) > v.MAX_EXTERNAL_ID_CHARS:
        raise RecordError(f"{where}: 'id' is over {v.MAX_EXTERNAL_ID_CHARS} characters.")
    _check_characters(where, "id", value)
    return value


def _clean(where: str, record) -> _Row:
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record must be a JSON object, not {_json_type(record)}.")
    instruction = _text(where, record, "instruction", v.MAX_INSTRUCTION_CHARS, required=True)
    input = _text(where, record, "input", v.MAX_INPUT_CHARS, required=False)
    output = _text(where, record, "output", v.MAX_RESPONSE_CHARS, required=True)
    generator = _text(where, record, "generator", v.MAX_GENERATOR_CHARS, required=False)
    has_judgment = "judgment" in record
    verdict = critique = ""
    if has_judgment:
        if record["judgment"] is None:
            verdict = models.Judgment.Verdict.POSITIVE
        else:
            verdict = models.Judgment.Verdict.NEGATIVE
            critique = _text(where, record, "judgment", v.MAX_CRITIQUE_CHARS, required=True)
    metadata = {key: value for key, value in record.items() if key not in KNOWN_KEYS}
    return _Row(
        where=where,
        external_id=_external_id(where, record, instruction, input),
        instruction=instruction,
        input=input,
        output=output,
        generator=generator,
        metadata=metadata,
        has_judgment=has_judgment,
        verdict=verdict,
        critique=critique,
    )


def _clean_all(records: Iterable[tuple[str, dict]]) -> list[_Row]:
    rows = [_clean(where, record) for where, record in records]
    seen: dict[str, _Row] = {}
    for row in rows:
        first = seen.setdefault(row.external_id, row)
        if (first.instruction, first.input) != (row.instruction, row.input):
            raise RecordError(
                f"{row.where}: id {row.external_id!r} is already used by {first.where} "
                f"for a different prompt."
            )
    return rows


def _drop_repeats(rows: list[_Row], summary: ImportSummary) -> list[_Row]:
    """The same response twice in one file counts once; judged differently, it is an error."""
    kept: dict[tuple[str, str], _Row] = {}
    for row in rows:
        first = kept.setdefault((row.external_id, row.output), row)
        if first is row:
            continue
        if (first.has_judgment, first.verdict, first.critique) != (
            row.has_judgment,
            row.verdict,
            row.critique,
        ):
            raise RecordError(
                f"{row.where}: the same response as {first.where} with a different judgment."
            )
        summary.unchanged += 1
    return list(kept.values())


def _chunks(items: list, size: int = BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(model, columns: list[str], rows: list[tuple], bar) -> None:
    """INSERT rows of database-ready values: COPY on PostgreSQL, executemany() elsewhere.

    bulk_create() builds a model instance and prepares every value through its field; at
    100,000 records that was most of the import's time. The values here are prepared once
    per import (timestamps, empty JSON) or are plain strings and ints already.
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(quote(model._meta.get_field(name).column) for name in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # cursor.cursor is psycopg's own cursor, which speaks COPY; wrap_database_errors
            # turns its errors into Django's, as Django's own cursor calls do.
            copy_sql = f"COPY {table} ({names}) FROM STDIN"
            with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
                for start, row in enumerate(rows):
                    copy.write_row(row)
                    if start % BATCH_SIZE == BATCH_SIZE - 1:
                        bar.update(BATCH_SIZE)
            bar.update(len(rows) % BATCH_SIZE)
            return
        marks = ", ".join(["%s"] * len(columns))
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        for chunk in _chunks(rows):
            cursor.executemany(sql, chunk)
            bar.update(len(chunk))


def _db_value(model, name: str, value):
    return model._meta.get_field(name).get_db_prep_save(value, connection)


def _write_prompts(rows: list[_Row], source: str, summary: ImportSummary, bar) -> None:
    by_id: dict[str, list[_Row]] = {}
    for row in rows:
        by_id.setdefault(row.external_id, []).append(row)

    def find(check: bool) -> None:
        missing = [key for key, same in by_id.items() if same[0].prompt_id is None]
        fields = ("pk", "external_id", "instruction", "input") if check else ("pk", "external_id")
        for ids in _chunks(missing):
            found = models.Prompt.objects.filter(source=source, external_id__in=ids)
            for pk, external_id, *content in found.values_list(*fields):
                first = by_id[external_id][0]
                if check and tuple(content) != (first.instruction, first.input):
                    raise RecordError(
                        f"{first.where}: id {external_id!r} is already in source {source!r} "
                        f"with a different prompt."
                    )
                for row in by_id[external_id]:
                    row.prompt_id = pk

    find(check=True)
    new = [same[0] for same in by_id.values() if same[0].prompt_id is None]
    created = _db_value(models.Prompt, "created", timezone.now())
    no_metadata = _db_value(models.Prompt, "metadata", {})
    values = [
        (
            source,
            row.external_id,
            row.instruction,
            row.input,
            _db_value(models.Prompt, "metadata", row.metadata) if row.metadata else no_metadata,
            created,
        )
        for row in new
    ]
    columns = ["source", "external_id", "instruction", "input", "metadata", "created"]
    _insert(models.Prompt, columns, values, bar)
    find(check=False)  # the new pks: executemany() and COPY cannot return them
    for row in new:
        for same in by_id[row.external_id]:
            same.new_prompt = True
    summary.prompts_created += len(new)
    bar.update(len(rows) - len(new))


def _find_responses(rows: list[_Row]) -> None:
    """Fill in response_id for rows whose prompt already has a response with their text."""
    missing = {(row.prompt_id, row.output): row for row in rows if row.response_id is None}
    prompt_ids = list({prompt_id for prompt_id, _ in missing})
    for ids in _chunks(prompt_ids):
        found = models.Response.objects.filter(prompt_id__in=ids)
        for pk, prompt_id, text in found.values_list("pk", "prompt_id", "text"):
            row = missing.get((prompt_id, text))
            if row is not None and row.response_id is None:
                row.response_id = pk


def _find_created_responses(new: list[_Row]) -> None:
    # A new prompt with one new response needs no text comparison: reading 100,000 texts
    # back cost as much as writing them.
    per_prompt = Counter(row.prompt_id for row in new)
    alone = {
        row.prompt_id: row for row in new if row.new_prompt and per_prompt[row.prompt_id] == 1
    }
    for ids in _chunks(list(alone)):
        found = models.Response.objects.filter(prompt_id__in=ids)
        for pk, prompt_id in found.values_list("pk", "prompt_id"):
            alone[prompt_id].response_id = pk
    _find_responses(new)


def _write_responses(rows: list[_Row], round, overlap: int, summary: ImportSummary, bar) -> None:
    _find_responses([row for row in rows if not row.new_prompt])
    new = [row for row in rows if row.response_id is None]
    created = _db_value(models.Response, "created", timezone.now())
    round_id = round.pk if round else None
    values = [
        (
            row.prompt_id,
            row.output,
            row.generator,
            round_id,
            overlap,
            # The importer's own judgment, written below, is the only one yet.
            1 if row.has_judgment else 0,
            False,
            created,
        )
        for row in new
    ]
    columns = [
        "prompt",
        "text",
        "generator",
        "round",
        "overlap",
        "judgment_count",
        "retired",
        "created",
    ]
    _insert(models.Response, columns, values, bar)
    _find_created_responses(new)
    for row in new:
        row.new_response = True
    summary.responses_created += len(new)
    bar.update(len(rows) - len(new))


def importer_account(source: str):
    """The account that imported judgments are filed under: one per source, no password,
    in no group, so it never gets work from the queue."""
    User = get_user_model()
    username = f"importer-{source}"[: User._meta.get_field("username").max_length]
    user, created = User.objects.get_or_create(
        username=username, defaults={"first_name": "Importer", "last_name": source[:150]}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _write_judgments(
    rows: list[_Row], source: str, accept: bool, summary: ImportSummary, bar
) -> None:
    judged = [row for row in rows if row.has_judgment]
    if not judged:
        bar.update(len(rows))
        return
    importer = importer_account(source)
    old = [row for row in judged if not row.new_response]
    already: dict[int, tuple[str, str]] = {}
    for chunk in _chunks(old):
        existing = models.Judgment.objects.filter(
            annotator=importer, response_id__in=[row.response_id for row in chunk]
        )
        for response_id, verdict, critique in existing.values_list(
            "response_id", "verdict", "critique"
        ):
            already[response_id] = (verdict, critique)
    for row in old:
        if already.get(row.response_id, (row.verdict, row.critique)) != (
            row.verdict,
            row.critique,
        ):
            raise RecordError(
                f"{row.where}: this response was imported before with a different judgment."
            )
    new = [row for row in judged if row.response_id not in already]
    now = timezone.now()
    created = _db_value(models.Judgment, "created", now)
    if accept:
        state, note = models.Judgment.ReviewState.ACCEPTED, f"Accepted on import from {source}."
        reviewed_at = created
    else:
        state, note, reviewed_at = models.Judgment.ReviewState.PENDING, "", None
    no_spans = _db_value(models.Judgment, "spans", [])
    values = [
        (
            row.response_id,
            importer.pk,
            row.verdict,
            row.critique,
            no_spans,
            state,
            note,
            reviewed_at,
            created,
            created,
        )
        for row in new
    ]
    columns = [
        "response",
        "annotator",
        "verdict",
        "critique",
        "spans",
        "review_state",
        "review_note",
        "reviewed_at",
        "created",
        "updated",
    ]
    _insert(models.Judgment, columns, values, bar)
    for row in new:
        row.new_judgment = True
    # New responses were created with their count; old ones gain the importer's judgment now.
    grown = [row.response_id for row in new if not row.new_response]
    for ids in _chunks(grown):
        models.Response.objects.filter(pk__in=ids).update(judgment_count=F("judgment_count") + 1)
    summary.judgments_created += len(new)
    bar.update(len(rows) - len(new))
