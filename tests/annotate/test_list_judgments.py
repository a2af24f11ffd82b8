from django.urls import reverse

from annotate import models

HX = {"HX-Request": "true"}
URL = reverse("annotate:judgment-list")


def judge(response, annotator, **kw) -> models.Judgment:
    kw.setdefault("verdict", "positive")
    return models.Judgment.objects.create(response=response, annotator=annotator, **kw)


def test_it_lists_only_my_judgments_with_their_review_state(
    client, annotator, other_annotator, reviewer, make_responses
):
    mine, theirs, rejected = make_responses(3, overlap=2)
    judge(mine, annotator, verdict="negative", critique="Wrong year.")
    judge(theirs, other_annotator, verdict="negative", critique="Bob's secret critique")
    judge(rejected, annotator).reject(reviewer, "Missed the factual error.")
    client.force_login(annotator)
    page = client.get(URL)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Wrong year." in html
    assert "Bob&#x27;s secret critique" not in html and "Bob's secret critique" not in html
    assert "Pending" in html and "Rejected" in html
    assert "rita: Missed the factual error." in html
    assert page.context["page"].paginator.count == 2


def test_only_unreviewed_judgments_have_an_edit_link(client, annotator, reviewer, make_responses):
    pending, accepted = make_responses(2)
    p = judge(pending, annotator)
    a = judge(accepted, annotator)
    a.accept(reviewer)
    client.force_login(annotator)
    html = client.get(URL).content.decode()
    assert reverse("annotate:judgment-edit", args=[p.pk]) in html
    assert reverse("annotate:judgment-edit", args=[a.pk]) not in html


def test_it_pages_newest_first(client, annotator, make_responses):
    responses = make_responses(45)
    for response in responses:
        judge(response, annotator)
    client.force_login(annotator)
    first = client.get(URL).context["page"]
    assert len(first.object_list) == 20
    assert first.object_list[0].response == responses[-1]
    last = client.get(URL, {"page": 3}).context["page"]
    assert [j.response for j in last.object_list] == responses[4::-1]
    assert "Page 3 of 3" in client.get(URL, {"page": 3}).content.decode()


def test_it_filters_by_state(client, annotator, reviewer, make_responses):
    a, b = make_responses(2)
    judge(a, annotator).accept(reviewer)
    judge(b, annotator)
    client.force_login(annotator)
    page = client.get(URL, {"state": "accepted"}).context["page"]
    assert [j.response for j in page.object_list] == [a]


def test_htmx_gets_the_list_fragment(client, annotator, response):
    judge(response, annotator)
    client.force_login(annotator)
    page = client.get(URL, {"page": 1}, headers=HX)
    html = page.content.decode()
    assert "<html" not in html
    assert 'id="judgment-list"' in html


def test_with_no_judgments_it_says_so(client, annotator):
    client.force_login(annotator)
    assert "No judgments yet." in client.get(URL).content.decode()


def test_it_is_for_annotators(client, outsider):
    assert client.get(URL).status_code == 302
    client.force_login(outsider)
    assert client.get(URL).status_code == 403
