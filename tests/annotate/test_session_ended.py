"""A session that ends while someone works: no login page inside the task, no 405 after
logging in again, and this app's page (not Django's) for a stale CSRF token."""

from urllib.parse import quote

from django.test import Client
from django.urls import reverse

from annotate import models
from tests.conftest import PASSWORD

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/"}


def test_an_htmx_submit_without_a_session_gets_401_and_where_to_log_in(client, response):
    page = client.post(
        reverse("annotate:judgment-submit", args=[response.pk]),
        {"verdict": "negative", "critique": "Too short."},
        headers=HTMX,
    )
    assert page.status_code == 401
    assert page["X-Session-Ended"] == f"{reverse('login')}?next=/"
    assert b"<html" not in page.content
    assert not models.Judgment.objects.exists()


def test_an_htmx_review_without_a_session_returns_to_the_review_page(client, db):
    page = client.post(
        reverse("annotate:judgment-review", args=[7]),
        {"action": "accept"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/review/?round=1"},
    )
    assert page.status_code == 401
    assert page["X-Session-Ended"] == f"{reverse('login')}?next={quote('/review/?round=1')}"


def test_a_plain_post_after_logout_lands_on_the_task_after_login_not_on_a_405(
    client, annotator, response
):
    page = client.post(
        reverse("annotate:judgment-submit", args=[response.pk]),
        {"verdict": "positive"},
        headers={"Referer": "http://testserver/"},
    )
    assert page.status_code == 302
    assert page.url == f"{reverse('login')}?next=/"
    page = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "next": "/"}, follow=True
    )
    assert page.status_code == 200
    assert page.redirect_chain[-1][0] == "/"
    assert response.prompt.instruction in page.content.decode()


def test_a_plain_post_from_another_site_goes_to_the_landing_after_login(client, response):
    page = client.post(
        reverse("annotate:judgment-submit", args=[response.pk]),
        {"verdict": "positive"},
        headers={"Referer": "https://evil.example/"},
    )
    assert page.url == f"{reverse('login')}?next={quote(reverse('annotate:landing'))}"


def test_a_csrf_failure_without_cookies_shows_the_apps_page_with_a_login_link(db):
    client = Client(enforce_csrf_checks=True)
    page = client.post(
        reverse("annotate:judgment-submit", args=[1]),
        {"verdict": "positive"},
        headers={"Referer": "http://testserver/"},
    )
    html = page.content.decode()
    assert page.status_code == 403
    assert "Your session ended" in html
    assert f'href="{reverse("login")}?next=/"' in html
    assert 'class="topbar"' in html  # the app's layout, not Django's bare CSRF page


def test_a_csrf_failure_of_a_logged_in_user_links_back_to_the_page(annotator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    page = client.post(
        reverse("annotate:judgment-submit", args=[1]),
        {"verdict": "positive"},
        headers={"Referer": "http://testserver/judgments/?state=pending"},
    )
    assert page.status_code == 403
    assert 'href="/judgments/?state=pending"' in page.content.decode()


def test_an_htmx_csrf_failure_is_a_short_403_with_the_header(annotator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    page = client.post(reverse("annotate:judgment-submit", args=[1]), {}, headers=HTMX)
    assert page.status_code == 403
    assert page["X-Session-Ended"] == "/"
    assert b"<html" not in page.content


def test_a_stale_login_form_sends_back_to_the_same_login_page(db):
    client = Client(enforce_csrf_checks=True)
    page = client.post(
        reverse("login"),
        {"username": "alice", "password": "x"},
        headers={"Referer": "http://testserver/accounts/login/?next=/review/"},
    )
    assert page.status_code == 403
    assert 'href="/accounts/login/?next=/review/"' in page.content.decode()
