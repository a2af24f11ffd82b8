from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db.models import Count, F

from annotate import demo_data, models, roles

ACCOUNTS = {"admin": None, "alice": "annotators", "bob": "annotators", "rita": "reviewers"}


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def state() -> tuple:
    return (
        User.objects.count(),
        models.Prompt.objects.count(),
        models.Response.objects.count(),
        models.Judgment.objects.count(),
        models.Round.objects.count(),
        list(models.Response.objects.order_by("pk").values_list("pk", "judgment_count")),
    )


@pytest.mark.django_db
def test_it_prints_the_accounts_and_their_passwords():
    out = seed()
    for username in ACCOUNTS:
        assert f"demo-{username}-pass" in out
    assert "already existed" not in out


@pytest.mark.django_db
def test_the_demo_accounts_can_log_in_with_the_printed_passwords(client):
    seed()
    for username, group in ACCOUNTS.items():
        assert client.login(username=username, password=f"demo-{username}-pass"), username
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == ([group] if group else [])
        client.logout()
    admin = User.objects.get(username="admin")
    assert admin.is_staff
    assert roles.is_reviewer(admin)
    assert roles.is_annotator(User.objects.get(username="alice"))
    assert not roles.is_reviewer(User.objects.get(username="alice"))
    assert roles.is_reviewer(User.objects.get(username="rita"))
    client.force_login(admin)
    assert client.get("/admin/annotate/judgment/").status_code == 200


@pytest.mark.django_db
def test_it_loads_a_round_of_prompts_of_every_kind():
    seed()

    prompts = models.Prompt.objects.filter(source="demo")
    assert prompts.count() == len(demo_data.PROMPTS) >= 30
    kinds = set(prompts.values_list("metadata__kind", flat=True))
    assert kinds == {"factual", "coding", "writing", "reasoning"}
    responses = models.Response.objects.filter(round_id=1, prompt__source="demo")
    assert responses.count() == len(demo_data.PROMPTS)
    assert responses.filter(overlap=2).count() == len(demo_data.OVERLAP_2) > 0
    assert models.Round.objects.get(number=1).base_model


@pytest.mark.django_db
def test_it_adds_demo_judgments_with_correct_counts():
    seed()

    assert models.Judgment.objects.count() == sum(len(j) for j in demo_data.JUDGMENTS.values())
    counted = models.Response.objects.annotate(n=Count("judgments"))
    assert not counted.exclude(judgment_count=F("n")).exists()
    assert not models.Response.objects.filter(judgment_count__gt=F("overlap")).exists()
    disagreement = models.Judgment.objects.filter(response__prompt__external_id="code-04")
    assert set(disagreement.values_list("verdict", flat=True)) == {"positive", "negative"}


@pytest.mark.django_db
def test_running_it_twice_changes_nothing_and_keeps_passwords(client):
    seed()
    alice = User.objects.get(username="alice")
    alice.set_password("alice-changed-her-password")
    alice.save()
    before = state()

    out = seed()

    assert state() == before
    assert "already existed" in out
    assert "0 prompts and 0 responses added" in out
    assert client.login(username="alice", password="alice-changed-her-password")


def test_the_demo_data_is_consistent():
    ids = [p["id"] for p in demo_data.PROMPTS]
    assert len(ids) == len(set(ids))
    assert set(ids) >= demo_data.OVERLAP_2
    # Two demo judgments on a response need room for two.
    assert set(demo_data.JUDGMENTS) <= demo_data.OVERLAP_2
    flawed = [p for p in demo_data.PROMPTS if p["flaw"]]
    assert 0 < len(flawed) < len(ids)
    for external_id, verdicts in demo_data.JUDGMENTS.items():
        flaw = next(p["flaw"] for p in demo_data.PROMPTS if p["id"] == external_id)
        if flaw is None:
            assert set(verdicts.values()) == {None}, external_id
