import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from annotate import imports, models, planner_stats
from annotate import validators as v

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run(path, *args) -> str:
    out = StringIO()
    call_command("import_responses", str(path), *args, stdout=out)
    return out.getvalue()


def snapshot() -> tuple:
    return (
        models.Prompt.objects.count(),
        models.Response.objects.count(),
        models.Judgment.objects.count(),
        models.Round.objects.count(),
        User.objects.count(),
    )


RECORDS = [
    {"id": 1, "instruction": "Say hi.", "input": "", "output": "Hi!"},
    {"id": "two", "instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Name a colour.", "output": "Blue."},
]


@pytest.mark.django_db
def test_it_imports_json_lines(tmp_path):
    out = run(write_jsonl(tmp_path / "batch-a.jsonl", RECORDS))

    assert "3 prompts, 3 responses and 0 judgments created" in out
    prompt = models.Prompt.objects.get(external_id="two")
    assert prompt.source == "batch-a"  # the file's stem
    assert prompt.input == "2 and 3"
    response = prompt.responses.get()
    assert response.text == "5"
    assert response.round is None
    assert response.overlap == 1
    assert response.judgment_count == 0
    assert models.Prompt.objects.filter(external_id="1").exists()
    colour = models.Prompt.objects.get(instruction="Name a colour.")
    assert colour.external_id.startswith("sha256:")
    assert colour.input == ""
    assert models.Judgment.objects.count() == 0


@pytest.mark.django_db
def test_it_imports_a_judged_json_array_as_importer_judgments():
    run(DATA / "judged.json")

    assert models.Prompt.objects.filter(source="judged").count() == 6
    importer = User.objects.get(username="importer-judged")
    assert not importer.has_usable_password()
    assert not importer.groups.exists()
    assert not importer.is_staff
    judgments = models.Judgment.objects.filter(annotator=importer)
    assert judgments.count() == 6
    assert judgments.filter(verdict="positive", critique="").count() == 3
    negative = judgments.get(response__prompt__external_id="1")
    assert negative.verdict == "negative"
    assert negative.critique.startswith("The conversion is wrong")
    assert set(judgments.values_list("review_state", flat=True)) == {"pending"}
    assert set(models.Response.objects.values_list("judgment_count", flat=True)) == {1}


@pytest.mark.django_db
def test_it_marks_judgments_accepted_when_asked():
    run(DATA / "judged.json", "--accept-judgments")

    judgment = models.Judgment.objects.first()
    assert judgment.review_state == "accepted"
    assert judgment.reviewed_at is not None
    assert "judged" in judgment.review_note


@pytest.mark.django_db
def test_it_imports_csv_with_the_same_columns(tmp_path):
    path = tmp_path / "sheet.csv"
    path.write_text(
        "id,instruction,input,output,judgment\n"
        '7,Write two lines.,,"Line one,\nline two.",\n'
        "8,Spell cat.,,K-A-T,It is spelled C-A-T.\n"
        ",No id here.,ctx,Fine.,\n"
        "9,Odd\u2028separator.,,Kept\x0cwhole.,\n",
        encoding="utf-8",
    )
    out = run(path)

    assert "4 prompts, 4 responses and 4 judgments created" in out
    assert models.Response.objects.get(prompt__external_id="9").text == "Kept\x0cwhole."
    two_lines = models.Response.objects.get(prompt__external_id="7")
    assert two_lines.text == "Line one,\nline two."
    assert two_lines.judgments.get().verdict == "positive"  # empty cell: no problems
    cat = models.Judgment.objects.get(response__prompt__external_id="8")
    assert (cat.verdict, cat.critique) == ("negative", "It is spelled C-A-T.")
    no_id = models.Prompt.objects.get(instruction="No id here.")
    assert no_id.external_id.startswith("sha256:")
    assert no_id.input == "ctx"


@pytest.mark.django_db
def test_format_option_overrides_the_extension(tmp_path):
    path = write_jsonl(tmp_path / "records.txt", RECORDS)
    with pytest.raises(CommandError, match="extension"):
        run(path)
    run(path, "--format", "jsonl")
    assert models.Prompt.objects.count() == 3


@pytest.mark.django_db
def test_a_json_file_holding_json_lines_is_read_as_json_lines(tmp_path):
    run(write_jsonl(tmp_path / "lines.json", RECORDS))
    assert models.Prompt.objects.count() == 3


@pytest.mark.django_db
def test_reimporting_the_same_file_changes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", RECORDS)
    run(path, "--round", "1")
    run(DATA / "judged.json")
    before = snapshot()
    counts = list(models.Response.objects.order_by("pk").values_list("pk", "judgment_count"))

    out_a = run(path, "--round", "1")
    out_b = run(DATA / "judged.json")

    assert "0 prompts, 0 responses and 0 judgments created; 3 unchanged" in out_a
    assert "0 prompts, 0 responses and 0 judgments created; 6 unchanged" in out_b
    assert snapshot() == before
    assert list(models.Response.objects.order_by("pk").values_list("pk", "judgment_count")) == (
        counts
    )


@pytest.mark.django_db
def test_a_new_output_for_a_known_prompt_adds_a_response(tmp_path):
    run(write_jsonl(tmp_path / "src.jsonl", RECORDS), "--round", "1")
    run(
        write_jsonl(tmp_path / "src2.jsonl", [dict(RECORDS[0], output="Hello there!")]),
        "--source",
        "src",
        "--round",
        "2",
    )

    prompt = models.Prompt.objects.get(source="src", external_id="1")
    assert sorted(prompt.responses.values_list("text", "round_id")) == [
        ("Hello there!", 2),
        ("Hi!", 1),
    ]


@pytest.mark.django_db
def test_it_refuses_a_known_id_with_a_different_prompt(tmp_path):
    run(write_jsonl(tmp_path / "src.jsonl", RECORDS))
    before = snapshot()
    changed = [RECORDS[2], dict(RECORDS[0], instruction="Say bye.")]
    with pytest.raises(CommandError, match=r"line 2: id '1' is already in source 'src'"):
        run(write_jsonl(tmp_path / "src.jsonl", changed))
    assert snapshot() == before


@pytest.mark.django_db
def test_it_refuses_a_changed_judgment_and_writes_nothing(tmp_path):
    judged = [dict(RECORDS[0], judgment=None)]
    run(write_jsonl(tmp_path / "src.jsonl", judged))
    before = snapshot()
    # The new record comes first, so its rows are already inserted when the conflict shows.
    again = [
        {"id": 9, "instruction": "New.", "output": "Yes."},
        dict(RECORDS[0], judgment="Rude."),
    ]
    with pytest.raises(CommandError, match="line 2: .*different judgment"):
        run(write_jsonl(tmp_path / "src.jsonl", again))
    assert snapshot() == before


@pytest.mark.django_db
def test_a_judgment_added_later_counts_toward_the_response(tmp_path):
    run(write_jsonl(tmp_path / "src.jsonl", RECORDS))
    run(write_jsonl(tmp_path / "src.jsonl", [dict(RECORDS[1], judgment="Wrong sum.")]))

    response = models.Response.objects.get(prompt__external_id="two")
    assert response.judgment_count == 1
    assert response.judgments.get().annotator.username == "importer-src"
    assert models.Response.objects.filter(judgment_count=0).count() == 2


@pytest.mark.django_db
def test_it_creates_the_round_and_sets_the_overlap(tmp_path):
    run(write_jsonl(tmp_path / "r.jsonl", RECORDS), "--round", "4", "--overlap", "3")

    assert models.Round.objects.filter(number=4).exists()
    assert set(models.Response.objects.values_list("round_id", "overlap")) == {(4, 3)}


@pytest.mark.django_db
def test_it_refuses_an_overlap_below_one(tmp_path):
    with pytest.raises(CommandError, match="overlap"):
        run(write_jsonl(tmp_path / "r.jsonl", RECORDS), "--overlap", "0")
    assert models.Prompt.objects.count() == 0


@pytest.mark.django_db
def test_source_option_names_the_source_and_the_importer(tmp_path):
    records = [dict(RECORDS[0], judgment=None)]
    run(write_jsonl(tmp_path / "r.jsonl", records), "--source", "paper-iter1")

    assert models.Prompt.objects.get().source == "paper-iter1"
    assert models.Judgment.objects.get().annotator.username == "importer-paper-iter1"


@pytest.mark.django_db
def test_a_record_repeated_in_the_file_counts_once(tmp_path):
    out = run(write_jsonl(tmp_path / "r.jsonl", [RECORDS[0], RECORDS[1], RECORDS[0]]))

    assert "3 records: 2 prompts, 2 responses" in out
    assert "1 unchanged" in out
    assert models.Response.objects.count() == 2


@pytest.mark.django_db
def test_two_outputs_for_one_prompt_become_two_responses_with_their_judgments(tmp_path):
    records = [
        dict(RECORDS[0], output="Hello!", judgment=None),
        dict(RECORDS[0], output="Go away.", judgment="Rude."),
    ]
    run(write_jsonl(tmp_path / "r.jsonl", records))

    prompt = models.Prompt.objects.get()
    judged = {r.text: r.judgments.get().critique for r in prompt.responses.all()}
    assert judged == {"Hello!": "", "Go away.": "Rude."}
    assert set(prompt.responses.values_list("judgment_count", flat=True)) == {1}


@pytest.mark.django_db
def test_a_concurrent_import_of_the_same_records_is_reported(tmp_path, monkeypatch):
    insert = imports._insert

    def insert_after_another_import(model, columns, rows, bar):
        if model is models.Prompt:  # the other import commits between our check and insert
            models.Prompt.objects.create(source="r", external_id="1", instruction="Say hi.")
        insert(model, columns, rows, bar)

    monkeypatch.setattr(imports, "_insert", insert_after_another_import)
    with pytest.raises(CommandError, match="Another import wrote some of these records"):
        run(write_jsonl(tmp_path / "r.jsonl", RECORDS))
    assert models.Response.objects.count() == 0


@pytest.mark.django_db
def test_a_large_import_refreshes_the_planner_statistics(tmp_path):
    # The planner knows the tables are empty (PostgreSQL keeps reltuples from an earlier
    # test's ANALYZE even when its rows were rolled back); three rows are more than a tenth.
    planner_stats.analyze()
    run(write_jsonl(tmp_path / "r.jsonl", RECORDS))

    assert models.Prompt.objects.count() == 3
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'annotate_prompt'")
            assert cursor.fetchone()[0] == 3


@pytest.mark.django_db
def test_other_keys_are_kept_as_metadata(tmp_path):
    run(write_jsonl(tmp_path / "r.jsonl", [dict(RECORDS[0], category="greeting")]))
    assert models.Prompt.objects.get().metadata == {"category": "greeting"}


@pytest.mark.django_db
def test_a_generator_key_names_the_generator(tmp_path):
    run(write_jsonl(tmp_path / "r.jsonl", [dict(RECORDS[0], generator="smollm2-135m")]))
    assert models.Response.objects.get().generator == "smollm2-135m"


@pytest.mark.django_db
def test_a_broken_line_3_exits_non_zero_names_the_line_and_writes_nothing(tmp_path):
    run(DATA / "judged.json")
    before = snapshot()
    path = tmp_path / "broken.jsonl"
    lines = [json.dumps(RECORDS[0]), json.dumps(RECORDS[1]), '{"instruction": "oops", "out']
    path.write_text("\n".join(lines) + "\n")

    with pytest.raises(CommandError) as error:
        run(path)
    assert str(path) in str(error.value)
    assert "line 3" in str(error.value)
    assert "not valid JSON" in str(error.value)
    assert snapshot() == before

    # And as a process: a non-zero exit status and the message on stderr.
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    done = subprocess.run(
        [sys.executable, "manage.py", "import_responses", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "line 3" in done.stderr


BIG = "x" * (v.MAX_RESPONSE_CHARS + 1)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"instruction": "a", "output": "b",}', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, not an array"),
        ('{"output": "b"}', "missing 'instruction'"),
        ('{"instruction": "a"}', "missing 'output'"),
        ('{"instruction": "a", "output": 3}', "'output' must be a string, not a number"),
        ('{"instruction": null, "output": "b"}', "'instruction' must be a string, not null"),
        ('{"instruction": "a", "input": ["x"], "output": "b"}', "'input' must be a string"),
        ('{"instruction": "   ", "output": "b"}', "'instruction' is empty"),
        ('{"instruction": "a", "output": ""}', "'output' is empty"),
        (json.dumps({"instruction": "a", "output": BIG}), "the limit is 100,000"),
        ('{"instruction": "a", "output": "b", "id": 1.5}', "'id' must be a string or an integer"),
        ('{"instruction": "a", "output": "b", "id": true}', "'id' must be a string or an integer"),
        ('{"instruction": "a", "output": "b", "id": " "}', "'id' is empty"),
        ('{"instruction": "a", "output": "b", "judgment": ""}', "'judgment' is empty"),
        ('{"instruction": "a", "output": "b", "judgment": 7}', "'judgment' must be a string"),
        ('{"instruction": "a", "output": "b\\u0000"}', "NUL character"),
        ('{"instruction": "a", "output": "b\\ud800"}', "invalid character"),
        ('{"instruction": "a", "output": "b", "id": 5}', "id '5' is already used by"),
    ],
)
@pytest.mark.django_db
def test_each_kind_of_bad_record_stops_the_import(tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "Say hi.", "output": "Hi!", "id": 5}\n' + line + "\n")

    with pytest.raises(CommandError) as error:
        run(path)
    assert f"{path}, line 2: " in str(error.value)
    assert problem in str(error.value)
    assert "Nothing was imported" in str(error.value)
    assert snapshot() == (0, 0, 0, 0, 0)


@pytest.mark.django_db
def test_it_names_the_record_of_a_bad_json_array(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text(json.dumps([RECORDS[0], {"instruction": "a"}]))
    with pytest.raises(CommandError, match=r"arr.json, record 2: missing 'output'"):
        run(path)
    assert models.Prompt.objects.count() == 0


@pytest.mark.django_db
def test_a_json_lines_error_names_the_column_of_the_line_itself(tmp_path):
    path = tmp_path / "cut.jsonl"
    line = '{"instruction": "Name the capital.", "output": "Paris."'  # no closing brace
    path.write_text(json.dumps(RECORDS[0]) + "\n" + line + "\r\n")
    with pytest.raises(CommandError) as error:
        run(path)
    assert f"line 2: not valid JSON (Expecting ',' delimiter, column {len(line) + 1})" in str(
        error.value
    )


@pytest.mark.django_db
def test_it_names_the_line_of_a_json_array_syntax_error(tmp_path):
    path = tmp_path / "arr.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": \n]\n')
    with pytest.raises(CommandError, match=r"arr.json, line \d: not valid JSON"):
        run(path)


@pytest.mark.django_db
def test_a_truncated_array_is_refused_and_a_lone_object_reads_as_json_lines(tmp_path):
    path = tmp_path / "obj.json"
    path.write_text('[{"instruction": "a", "output": "b"}')
    with pytest.raises(CommandError, match="not valid JSON"):
        run(path)
    path.write_text("  " + json.dumps(RECORDS[0]))
    run(path)  # an object on its own line is JSON lines
    assert models.Prompt.objects.count() == 1


@pytest.mark.django_db
def test_it_refuses_a_csv_row_with_the_wrong_number_of_cells(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("instruction,output\nSay hi.,Hi!\nToo,many,cells\n")
    with pytest.raises(CommandError, match="bad.csv, line 3: 3 cells, but the header has 2"):
        run(path)
    assert models.Prompt.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_a_csv_without_an_output_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("instruction,answer\nSay hi.,Hi!\n")
    with pytest.raises(CommandError, match="line 1: the CSV header has no output column"):
        run(path)


@pytest.mark.django_db
def test_it_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(
        b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n'
    )
    with pytest.raises(CommandError, match="line 2: not UTF-8"):
        run(path)


@pytest.mark.django_db
def test_it_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read the file"):
        run(tmp_path / "nowhere.jsonl")


@pytest.mark.parametrize(
    "flag", ["--round=99999999999", "--round=-1", "--overlap=0", "--overlap=x"]
)
def test_it_refuses_numbers_the_database_cannot_hold(tmp_path, db, flag):
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "Say hi.", "output": "Hi."}\n')
    with pytest.raises(CommandError):
        call_command("import_responses", str(path), flag)
    assert not models.Prompt.objects.exists()
