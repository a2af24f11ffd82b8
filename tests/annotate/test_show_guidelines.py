from django.urls import reverse

from annotate import models

URL = reverse("annotate:guidelines")


def test_it_shows_the_newest_guideline_as_safe_markdown(client, annotator):
    models.Guideline.objects.all().delete()
    models.Guideline.objects.create(title="Old", body="old text")
    models.Guideline.objects.create(
        title="Current", body="# Be specific\n\nSay **why**. <script>alert(1)</script>"
    )
    client.force_login(annotator)
    page = client.get(URL)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<h1>Be specific</h1>" in html
    assert "<strong>why</strong>" in html
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert "old text" not in html


def test_without_guidelines_it_says_so(client, annotator):
    models.Guideline.objects.all().delete()
    client.force_login(annotator)
    assert "No guidelines have been written yet." in client.get(URL).content.decode()


def test_it_is_one_click_from_the_task(client, annotator, response):
    client.force_login(annotator)
    assert f'href="{URL}"' in client.get(reverse("annotate:home")).content.decode()


def test_it_is_for_annotators(client, outsider):
    client.force_login(outsider)
    assert client.get(URL).status_code == 403
