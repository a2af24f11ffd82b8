import pytest

from annotate import models
from tests.api.conftest import CAST

URL = "/api/judgments/"


def judge(user, response, verdict="positive", state="pending") -> models.Judgment:
    return models.Judgment.objects.create(
        response=response,
        annotator=user,
        verdict=verdict,
        critique="Wrong." if verdict == "negative" else "",
        review_state=state,
    )


@pytest.fixture
def judgments(annotator, other_annotator, make_responses, round1):
    round2 = models.Round.objects.create(number=2)
    a, b = make_responses(2, overlap=2, round=round1)
    (c,) = make_responses(1, overlap=2, round=round2)
    return {
        "alice_a": judge(annotator, a, "negative"),
        "alice_c": judge(annotator, c, "positive", "accepted"),
        "bob_a": judge(other_annotator, a, "positive", "rejected"),
        "bob_b": judge(other_annotator, b, "negative", "accepted"),
    }


def ids(r) -> set[int]:
    assert r.status_code == 200, r.content
    return {item["id"] for item in r.json()["results"]}


def test_an_annotator_sees_only_their_own(api, annotator, judgments):
    r = api(annotator).get(URL)
    assert ids(r) == {judgments["alice_a"].pk, judgments["alice_c"].pk}
    assert all(item["annotator"] == "alice" for item in r.json()["results"])


@pytest.mark.parametrize("who", ["reviewer", "staff"])
def test_reviewers_and_staff_see_everyones(as_cast, judgments, who):
    _, client = as_cast(who)
    assert ids(client.get(URL)) == {j.pk for j in judgments.values()}


def test_it_lists_newest_first_with_the_judgment_fields(api, annotator, judgments):
    results = api(annotator).get(URL).json()["results"]
    assert [item["id"] for item in results] == [
        judgments["alice_c"].pk,
        judgments["alice_a"].pk,
    ]
    assert set(results[0]) == {
        "id",
        "response",
        "round",
        "annotator",
        "verdict",
        "critique",
        "spans",
        "seconds_spent",
        "review_state",
        "reviewer",
        "review_note",
        "reviewed_at",
        "created",
        "updated",
    }
    assert results[0]["round"] == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("verdict=negative", {"alice_a", "bob_b"}),
        ("review_state=accepted", {"alice_c", "bob_b"}),
        ("review_state=rejected", {"bob_a"}),
        ("round=1", {"alice_a", "bob_a", "bob_b"}),
        ("round=2", {"alice_c"}),
        ("annotator=bob", {"bob_a", "bob_b"}),
        ("annotator=bob&verdict=positive", {"bob_a"}),
        ("annotator=nobody", set()),
    ],
)
def test_reviewers_can_filter(api, reviewer, judgments, query, expected):
    r = api(reviewer).get(f"{URL}?{query}")
    assert ids(r) == {judgments[name].pk for name in expected}


def test_filters_never_widen_what_an_annotator_sees(api, annotator, judgments):
    assert ids(api(annotator).get(f"{URL}?annotator=bob")) == set()
    assert ids(api(annotator).get(f"{URL}?verdict=negative")) == {judgments["alice_a"].pk}


@pytest.mark.parametrize(
    "query",
    [
        "verdict=meh",
        "review_state=done",
        "round=abc",
        "round=1.5",
        "round=-1",
        f"round={10**30}",
        f"response={10**30}",
        "response=0",
    ],
)
def test_a_bad_filter_is_a_400(api, reviewer, judgments, query):
    r = api(reviewer).get(f"{URL}?{query}")
    assert r.status_code == 400
    assert query.split("=")[0] in r.json()


def test_it_pages_with_a_cursor(api, annotator, make_responses):
    for response in make_responses(5):
        judge(annotator, response)
    client = api(annotator)
    seen, url, pages = [], f"{URL}?page_size=2", 0
    while url:
        body = client.get(url).json()
        assert len(body["results"]) <= 2
        seen += [item["id"] for item in body["results"]]
        assert body["next"] is None or "cursor=" in body["next"]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert seen == sorted(models.Judgment.objects.values_list("pk", flat=True), reverse=True)


def test_a_cursor_stays_valid_when_new_judgments_arrive(api, annotator, make_responses):
    responses = make_responses(4)
    for response in responses[:3]:
        judge(annotator, response)
    client = api(annotator)
    first = client.get(f"{URL}?page_size=2").json()
    judge(annotator, responses[3])
    second = client.get(first["next"]).json()
    ids_seen = [item["id"] for item in first["results"] + second["results"]]
    assert len(ids_seen) == len(set(ids_seen)) == 3


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 200, 200, 200, 200], strict=True),
)
def test_it_checks_the_role(as_cast, judgments, who, expected):
    _, client = as_cast(who)
    assert client.get(URL).status_code == expected
