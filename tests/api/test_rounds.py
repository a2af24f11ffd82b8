import pytest

from annotate import models
from tests.api.conftest import CAST

URL = "/api/rounds/"


@pytest.fixture
def rounds(annotator, other_annotator, make_responses, round1):
    models.Round.objects.create(number=2, base_model="tiny", adapter="runs/1/adapter")
    a, b, _ = make_responses(3, overlap=2, round=round1)
    for user, response, verdict, state in [
        (annotator, a, "negative", "accepted"),
        (other_annotator, a, "positive", "pending"),
        (annotator, b, "negative", "rejected"),
    ]:
        models.Judgment.objects.create(
            response=response,
            annotator=user,
            verdict=verdict,
            critique="Wrong." if verdict == "negative" else "",
            review_state=state,
        )


def test_it_lists_rounds_newest_first_with_counts(api, annotator, rounds):
    r = api(annotator).get(URL)
    assert r.status_code == 200
    assert r.json() == [
        {
            "number": 2,
            "base_model": "tiny",
            "adapter": "runs/1/adapter",
            "training_run": None,
            "notes": "",
            "created": r.json()[0]["created"],
            "response_count": 0,
            "judgment_count": 0,
            "negative_count": 0,
        },
        {
            "number": 1,
            "base_model": "tiny",
            "adapter": "",
            "training_run": None,
            "notes": "",
            "created": r.json()[1]["created"],
            "response_count": 3,
            # Rejected judgments don't count.
            "judgment_count": 2,
            "negative_count": 1,
        },
    ]


def test_it_shows_one_round_by_number(api, annotator, rounds):
    r = api(annotator).get(f"{URL}1/")
    assert r.status_code == 200
    assert (r.json()["number"], r.json()["response_count"]) == (1, 3)


def test_an_unknown_round_is_a_404(api, annotator, rounds):
    assert api(annotator).get(f"{URL}7/").status_code == 404
    assert api(annotator).get(f"{URL}seven/").status_code == 404


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 200, 200, 200, 200], strict=True),
)
def test_it_checks_the_role(as_cast, rounds, who, expected):
    _, client = as_cast(who)
    assert client.get(URL).status_code == expected
    assert client.get(f"{URL}1/").status_code == expected


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_is_read_only(api, staff, rounds, method):
    assert getattr(api(staff), method)(f"{URL}1/", {"notes": "x"}).status_code == 405
    assert models.Round.objects.get(number=1).notes == ""
