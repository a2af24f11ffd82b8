from django.urls import reverse

from annotate import models

URL = reverse("annotate:agreement")


def test_it_shows_agreement_per_round_and_per_annotator(
    client, reviewer, annotator, other_annotator, make_responses
):
    round1 = models.Round.objects.create(number=1)
    a, b = make_responses(2, overlap=2, round=round1)
    for response, verdicts in ((a, ("positive", "positive")), (b, ("positive", "negative"))):
        for user, verdict in zip((annotator, other_annotator), verdicts, strict=True):
            models.Judgment.objects.create(
                response=response, annotator=user, verdict=verdict, critique="x", seconds_spent=12
            )
    client.force_login(reviewer)
    page = client.get(URL)
    html = page.content.decode()
    assert page.status_code == 200
    assert [row.round for row in page.context["rounds"]] == [1]
    assert "50%" in html  # agreeing pairs
    assert "alice" in html and "bob" in html
    assert "12 s" in html


def test_with_no_judgments_it_says_so(client, reviewer):
    client.force_login(reviewer)
    assert "No judgments yet." in client.get(URL).content.decode()


def test_it_is_for_reviewers(client, annotator):
    assert client.get(URL).status_code == 302
    client.force_login(annotator)
    assert client.get(URL).status_code == 403
