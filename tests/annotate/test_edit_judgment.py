from django.urls import reverse

from annotate import models


def url(judgment) -> str:
    return reverse("annotate:judgment-edit", args=[judgment.pk])


def make(response, annotator) -> models.Judgment:
    return models.Judgment.objects.create(
        response=response, annotator=annotator, verdict="negative", critique="Old critique."
    )


def test_it_shows_my_judgment_for_editing(client, annotator, response):
    judgment = make(response, annotator)
    client.force_login(annotator)
    page = client.get(url(judgment))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Old critique.</textarea>" in html
    assert "The capital of France is Paris." in html


def test_it_saves_the_changes(client, annotator, response):
    judgment = make(response, annotator)
    client.force_login(annotator)
    page = client.post(
        url(judgment),
        {"verdict": "negative", "critique": " Better critique. ", "spans": "[[0,3]]"},
    )
    assert page.status_code == 302
    assert page.url == reverse("annotate:judgment-list")
    judgment.refresh_from_db()
    assert judgment.critique == "Better critique."
    assert judgment.spans == [[0, 3]]
    assert judgment.review_state == "pending"


def test_a_validation_error_keeps_the_text(client, annotator, response):
    judgment = make(response, annotator)
    client.force_login(annotator)
    page = client.post(url(judgment), {"verdict": "negative", "critique": ""})
    assert page.status_code == 200
    assert "a critique is required" in page.content.decode()
    judgment.refresh_from_db()
    assert judgment.critique == "Old critique."


def test_someone_elses_judgment_is_a_404(client, annotator, other_annotator, response):
    judgment = make(response, other_annotator)
    client.force_login(annotator)
    assert client.get(url(judgment)).status_code == 404
    page = client.post(url(judgment), {"verdict": "positive"})
    assert page.status_code == 404
    judgment.refresh_from_db()
    assert judgment.verdict == "negative"


def test_reviewers_cannot_edit_others_judgments_here_either(client, reviewer, annotator, response):
    judgment = make(response, annotator)
    client.force_login(reviewer)
    assert client.get(url(judgment)).status_code == 404


def test_a_reviewed_judgment_can_no_longer_be_edited(client, annotator, reviewer, response):
    judgment = make(response, annotator)
    judgment.accept(reviewer, "Good catch.")
    client.force_login(annotator)
    page = client.get(url(judgment))
    html = page.content.decode()
    assert page.status_code == 200
    assert "accepted by rita and can no longer be edited" in html
    assert "<textarea" not in html
    page = client.post(url(judgment), {"verdict": "positive"})
    assert page.status_code == 403
    assert "can no longer be edited" in page.content.decode()
    judgment.refresh_from_db()
    assert judgment.verdict == "negative"


def test_it_refuses_other_methods_and_outsiders(client, annotator, outsider, response):
    judgment = make(response, annotator)
    client.force_login(annotator)
    assert client.put(url(judgment)).status_code == 405
    client.force_login(outsider)
    assert client.get(url(judgment)).status_code == 403
