"""The cast, as in healthchecks' hc/test.py: plain ORM calls, one fixture a person."""

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from annotate import models
from tests.workers import start_worker  # noqa: F401 (a fixture: a real db_worker)

PASSWORD = "password-for-tests"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every test creates users with passwords; the default hasher costs ~0.25 s a user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache_after_transactional_tests(request):
    # The cache is a database table (settings.CACHES) that Django's flush does not empty:
    # throttle counts from one live-server test would otherwise reach the next.
    if not {"transactional_db", "live_server"} & set(request.fixturenames):
        yield
        return
    # Asked for here, so the database is still open when this fixture ends.
    request.getfixturevalue("transactional_db")
    yield
    from django.core.cache import cache

    cache.clear()


def make_user(username: str, *groups: str, **extra) -> User:
    user = User.objects.create_user(username, f"{username}@example.org", PASSWORD, **extra)
    for name in groups:
        # get_or_create: transactional tests flush the groups the migration made.
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def annotator(db) -> User:
    return make_user("alice", "annotators")


@pytest.fixture
def other_annotator(db) -> User:
    return make_user("bob", "annotators")


@pytest.fixture
def reviewer(db) -> User:
    return make_user("rita", "reviewers")


@pytest.fixture
def staff(db) -> User:
    return make_user("sam", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db) -> User:
    """Logged in, but in no group."""
    return make_user("charlie")


@pytest.fixture
def round1(db) -> models.Round:
    return models.Round.objects.create(number=1, base_model="tiny")


@pytest.fixture
def prompt(db) -> models.Prompt:
    return models.Prompt.objects.create(
        source="test", external_id="p1", instruction="Name the capital of France."
    )


@pytest.fixture
def response(prompt, round1) -> models.Response:
    return models.Response.objects.create(
        prompt=prompt, text="The capital of France is Paris.", generator="tiny", round=round1
    )


@pytest.fixture
def make_responses(db):
    """make_responses(n, overlap=1, round=None) -> list of Response, one prompt each."""

    def make(n: int, overlap: int = 1, round: models.Round | None = None):
        prompts = models.Prompt.objects.bulk_create(
            models.Prompt(
                source="fixture",
                external_id=f"f{i}-{overlap}-{round and round.pk}",
                instruction=f"Instruction {i}",
            )
            for i in range(n)
        )
        return models.Response.objects.bulk_create(
            models.Response(prompt=p, text=f"Answer {i}", overlap=overlap, round=round)
            for i, p in enumerate(prompts)
        )

    return make


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A tiny randomly initialised Llama and its tokenizer, saved as a model directory."""
    # Imported here: torch and transformers load only for the tests that ask for a model.
    from tests.training.conftest import make_model, make_tokenizer

    tokenizer = make_tokenizer()
    path = tmp_path / "tiny-base"
    make_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def training_dir(settings, tmp_path) -> Path:
    settings.TRAINING_DIR = tmp_path / "runs"
    return settings.TRAINING_DIR


@pytest.fixture
def judged(annotator, round1, make_responses) -> list[models.Judgment]:
    """Six accepted judgments in round 1 (two negative), and one still pending.

    For the training tests; some test modules define a `judged` of their own."""
    judgments = []
    for i, response in enumerate(make_responses(7, round=round1)):
        negative = i % 3 == 0
        judgments.append(
            models.Judgment.objects.create(
                response=response,
                annotator=annotator,
                verdict="negative" if negative else "positive",
                critique=f"Answer {i} does not answer the question." if negative else "",
                review_state="pending" if i == 6 else "accepted",
            )
        )
    return judgments
