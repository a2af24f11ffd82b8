"""POST /api/comparisons/, GET .../next/, POST .../votes/, GET .../results/, the export."""

import json

import pytest

from annotate import models
from tests.annotate.compare_helpers import (
    ADAPTER_GENERATOR,
    BASE_GENERATOR,
    make_comparison,
    make_rounds,
)
from tests.api.conftest import CAST

CREATE = {"system_a": "round:1", "system_b": "round:2", "sample_size": 3, "overlap": 2}


@pytest.mark.parametrize("name", CAST)
def test_only_staff_create_comparisons(as_cast, name):
    make_rounds(3)
    _, client = as_cast(name)
    answer = client.post("/api/comparisons/", CREATE, format="json")
    expected = {"anonymous": 401, "staff": 201}.get(name, 403)
    assert answer.status_code == expected
    assert models.Comparison.objects.exists() == (expected == 201)


def test_a_created_comparison_comes_back_with_its_pairs(api, staff):
    make_rounds(4)
    answer = api(staff).post("/api/comparisons/", CREATE, format="json")
    body = answer.json()
    assert body["pairs"] == 3 and body["state"] == "open" and body["created_by"] == "sam"
    assert set(body) == {
        "id",
        "system_a",
        "system_b",
        "prompt_set",
        "sample_size",
        "overlap",
        "instructions",
        "state",
        "pairs",
        "created_by",
        "created",
    }


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"system_b": "round:1"}, "system_b", "Choose two different systems"),
        ({"prompt_set": "source=nothing"}, "prompt_set", "has no prompts"),
        ({"sample_size": 99}, "sample_size", "larger than the set"),
        ({"system_a": "round:7"}, "system_a", "There is no system"),
        ({"colour": "red"}, "colour", ""),
    ],
)
def test_bad_comparisons_get_a_400_naming_the_field(api, staff, change, field, words):
    make_rounds(3)
    answer = api(staff).post("/api/comparisons/", {**CREATE, **change}, format="json")
    assert answer.status_code == 400
    assert words in " ".join(answer.json()[field])
    assert not models.Comparison.objects.exists()


@pytest.mark.parametrize("name", CAST)
def test_evaluators_take_pairs_and_vote(as_cast, name):
    comparison = make_comparison(2)
    user, client = as_cast(name)
    answer = client.get(f"/api/comparisons/{comparison.pk}/next/")
    if name in ("anonymous", "outsider"):
        assert answer.status_code == (401 if user is None else 403)
        return
    assert answer.status_code == 200
    pair = answer.json()
    assert set(pair) == {
        "pair",
        "comparison",
        "instructions",
        "instruction",
        "input",
        "left",
        "right",
        "reserved_until",
    }
    saved = client.post(
        f"/api/comparisons/{comparison.pk}/votes/",
        {"pair": pair["pair"], "choice": "left", "reason": "shorter"},
        format="json",
    )
    assert saved.status_code == 201
    vote = models.Vote.objects.get(evaluator=user)
    reservation_order = vote.a_on_left
    left_text = vote.pair.response_a.text if reservation_order else vote.pair.response_b.text
    assert left_text == pair["left"]


def test_the_pair_says_nothing_of_its_systems(api, annotator):
    comparison = make_comparison(1)
    body = json.dumps(api(annotator).get(f"/api/comparisons/{comparison.pk}/next/").json())
    for secret in (BASE_GENERATOR, ADAPTER_GENERATOR, "round", "system", "response"):
        assert secret not in body


def test_nothing_left_is_a_204(api, annotator):
    comparison = make_comparison(1)
    client = api(annotator)
    pair = client.get(f"/api/comparisons/{comparison.pk}/next/").json()
    client.post(
        f"/api/comparisons/{comparison.pk}/votes/", {"pair": pair["pair"], "choice": "tie"}
    )
    assert client.get(f"/api/comparisons/{comparison.pk}/next/").status_code == 204


def test_a_second_vote_or_an_unreserved_pair_is_a_409(api, annotator, other_annotator):
    comparison = make_comparison(2, overlap=2)
    client = api(annotator)
    pair = client.get(f"/api/comparisons/{comparison.pk}/next/").json()["pair"]
    url = f"/api/comparisons/{comparison.pk}/votes/"
    assert client.post(url, {"pair": pair, "choice": "left"}).status_code == 201
    again = client.post(url, {"pair": pair, "choice": "right"})
    assert again.status_code == 409 and "already voted" in again.json()["detail"]
    other = api(other_annotator).post(url, {"pair": pair, "choice": "left"})
    assert other.status_code == 409 and "not reserved for you" in other.json()["detail"]
    assert models.Vote.objects.count() == 1


def test_a_bad_choice_or_an_unknown_pair_is_refused(api, annotator):
    comparison = make_comparison(1)
    client = api(annotator)
    pair = client.get(f"/api/comparisons/{comparison.pk}/next/").json()["pair"]
    url = f"/api/comparisons/{comparison.pk}/votes/"
    assert client.post(url, {"pair": pair, "choice": "middle"}).status_code == 400
    assert client.post(url, {"pair": pair + 100, "choice": "left"}).status_code == 404


@pytest.mark.parametrize("name", CAST)
def test_results_are_for_reviewers_and_staff(as_cast, name):
    comparison = make_comparison(1)
    user, client = as_cast(name)
    answer = client.get(f"/api/comparisons/{comparison.pk}/results/")
    expected = {"anonymous": 401, "reviewer": 200, "staff": 200}.get(name, 403)
    assert answer.status_code == expected


def test_results_carry_the_statistics(api, annotator, reviewer):
    comparison = make_comparison(1)
    client = api(annotator)
    pair = client.get(f"/api/comparisons/{comparison.pk}/next/").json()
    vote = {"pair": pair["pair"], "choice": "left"}
    client.post(f"/api/comparisons/{comparison.pk}/votes/", vote)
    body = api(reviewer).get(f"/api/comparisons/{comparison.pk}/results/").json()
    result = body["result"]
    assert result["votes"] == 1 and result["a"] + result["b"] == 1
    assert result["win_rate"] in (0.0, 1.0) and len(result["interval"]) == 2
    assert result["p_value"] == 1.0 and result["left_share"] == 1.0
    assert {s["system"] for s in body["bradley_terry"]} == {"round:1", "round:2"}


def test_the_schema_lists_the_comparison_endpoints(api, annotator):
    paths = api(annotator).get("/api/schema/", {"format": "json"}).json()["paths"]
    assert "post" in paths["/api/comparisons/"]
    assert "get" in paths["/api/comparisons/{id}/next/"]
    assert "post" in paths["/api/comparisons/{id}/votes/"]
    assert "get" in paths["/api/comparisons/{id}/results/"]
    assert "get" in paths["/api/export/comparisons.jsonl"]
