import pytest

from annotate import models
from tests.api.conftest import CAST

URL = "/api/training-runs/"


@pytest.fixture
def runs(staff):
    done = models.TrainingRun.objects.create(
        base_model="tiny",
        config={"threshold": 1.1, "weight_unlike": 1.0},
        snapshot_path="runs/1/data.jsonl",
        snapshot_sha256="ab" * 32,
        positive_count=3,
        negative_count=2,
        output_dir="runs/1/adapter",
        created_by=staff,
    )
    done.mark_running()
    done.mark_succeeded({"final_loss": 1.25, "loss_curve": [2.0, 1.5, 1.25]})
    failed = models.TrainingRun.objects.create(base_model="tiny")
    failed.mark_failed("ValueError: no negative records.")
    return done, failed


def test_the_list_leaves_out_the_heavy_fields(api, staff, runs):
    r = api(staff).get(URL)
    assert r.status_code == 200
    done, failed = runs
    assert [item["id"] for item in r.json()] == [failed.pk, done.pk]
    item = r.json()[1]
    assert item["status"] == "succeeded"
    assert item["created_by"] == "sam"
    assert (item["positive_count"], item["negative_count"]) == (3, 2)
    assert "metrics" not in item and "config" not in item


def test_the_detail_has_config_snapshot_and_metrics(api, staff, runs):
    done, failed = runs
    r = api(staff).get(f"{URL}{done.pk}/")
    assert r.status_code == 200
    assert r.json()["metrics"] == {"final_loss": 1.25, "loss_curve": [2.0, 1.5, 1.25]}
    assert r.json()["config"] == {"threshold": 1.1, "weight_unlike": 1.0}
    assert r.json()["snapshot_sha256"] == "ab" * 32
    assert r.json()["finished_at"] is not None
    assert api(staff).get(f"{URL}{failed.pk}/").json()["error"] == (
        "ValueError: no negative records."
    )


def test_it_filters_on_status(api, staff, runs):
    r = api(staff).get(URL, {"status": "failed"})
    assert [item["id"] for item in r.json()] == [runs[1].pk]
    assert api(staff).get(URL, {"status": "exploded"}).status_code == 400


def test_an_unknown_run_is_a_404(api, staff, runs):
    assert api(staff).get(f"{URL}999999/").status_code == 404


@pytest.mark.parametrize(
    ("who", "expected"),
    zip(CAST, [401, 403, 403, 403, 403, 200], strict=True),
)
def test_it_is_for_staff_only(as_cast, runs, who, expected):
    _, client = as_cast(who)
    assert client.get(URL).status_code == expected
    assert client.get(f"{URL}{runs[0].pk}/").status_code == expected


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_it_is_read_only(api, staff, runs, method):
    assert getattr(api(staff), method)(f"{URL}{runs[0].pk}/").status_code == 405
    assert models.TrainingRun.objects.count() == 2
