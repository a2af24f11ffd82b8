"""manage.py add_users: many accounts at once, each with a one-time set-password link."""

import csv
import io
import sys
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import make_user


def run(path, *args) -> list[dict]:
    out = StringIO()
    call_command("add_users", str(path), *args, stdout=out, stderr=StringIO())
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def roles_of(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def test_it_creates_each_person_with_a_role_and_prints_their_links(tmp_path, db):
    people = tmp_path / "people.csv"
    people.write_text("ada,ada@example.org\nrita,,reviewer\n# a comment\n\ngrace\n")
    rows = run(people, "--base-url", "https://critique.example.org/")
    assert [(r["username"], r["email"], r["role"]) for r in rows] == [
        ("ada", "ada@example.org", "annotator"),
        ("rita", "", "reviewer"),
        ("grace", "", "annotator"),
    ]
    assert all(
        r["set_password_link"].startswith("https://critique.example.org/accounts/set-password/")
        for r in rows
    )
    assert roles_of("ada") == {"annotators"}
    assert roles_of("rita") == {"reviewers"}
    assert not User.objects.get(username="ada").has_usable_password()


def test_the_role_option_is_the_default_for_lines_without_one(tmp_path, db):
    people = tmp_path / "people.txt"
    people.write_text("username,email,role\nada\nbob,,annotator\n")
    rows = run(people, "--role", "reviewer")
    assert [(r["username"], r["role"]) for r in rows] == [
        ("ada", "reviewer"),
        ("bob", "annotator"),
    ]
    assert roles_of("ada") == {"reviewers"}


def test_it_reads_standard_input(monkeypatch, db):
    monkeypatch.setattr(sys, "stdin", StringIO("ada\nbob,bob@example.org\n"))
    assert [r["username"] for r in run("-")] == ["ada", "bob"]


def test_every_problem_is_named_with_its_line_and_nothing_is_created(tmp_path, db):
    make_user("alice")
    people = tmp_path / "people.csv"
    people.write_text(
        "ada\n"  # 1: fine
        "Alice,alice2@example.org\n"  # 2: exists (as alice)
        "bad name!\n"  # 3: invalid username
        "bob,not-an-email\n"  # 4: invalid email
        "carol,,admin\n"  # 5: unknown role
        "ada,ada@example.org\n"  # 6: duplicate of line 1
        "x,y,z,w\n"  # 7: too many columns
    )
    with pytest.raises(CommandError) as error:
        run(people)
    message = str(error.value)
    assert message.startswith("Nothing was created:")
    for expected in (
        "Line 2: the username 'Alice' exists already (as 'alice').",
        "Line 3: 'bad name!' is not a valid username",
        "Line 4: 'not-an-email' is not a valid email address.",
        "Line 5: unknown role 'admin': use annotator or reviewer.",
        "Line 6: 'ada' is also on line 1.",
        "Line 7: expected username[,email[,role]], got 4 columns.",
    ):
        assert expected in message
    lines = [line.strip()[:7] for line in message.splitlines()[1:]]
    assert lines == sorted(lines)  # in the file's order
    assert list(User.objects.values_list("username", flat=True)) == ["alice"]


def test_an_empty_file_is_refused(tmp_path, db):
    people = tmp_path / "people.csv"
    people.write_text("\n# nobody yet\n")
    with pytest.raises(CommandError, match="No one to add"):
        run(people)


def test_a_missing_file_is_named(tmp_path, db):
    with pytest.raises(CommandError, match="Cannot read .*nope.csv"):
        run(tmp_path / "nope.csv")


def test_an_output_file_that_cannot_be_written_creates_no_one(tmp_path, db):
    people = tmp_path / "people.csv"
    people.write_text("ada\n")
    with pytest.raises(CommandError, match="Cannot write"):
        run(people, "--output", str(tmp_path / "missing-dir" / "links.csv"))
    assert not User.objects.exists()


def test_the_links_can_go_to_a_file(tmp_path, db):
    people = tmp_path / "people.csv"
    people.write_text("ada\n")
    assert run(people, "--output", str(tmp_path / "links.csv")) == []
    rows = list(csv.DictReader((tmp_path / "links.csv").open()))
    assert rows[0]["username"] == "ada"
