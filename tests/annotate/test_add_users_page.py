"""The staff page that adds many people, and the one-time links it hands out."""

import csv
import io
from urllib.parse import unquote, urlparse

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from tests.conftest import make_user

URL = reverse("annotate:users-add")
NEW_PASSWORD = "a-long-new-password-4817"


def links_on(page) -> dict[str, str]:
    """username -> link, from the CSV the page offers for download."""
    html = page.content.decode()
    start = html.index('href="data:text/csv;charset=utf-8,') + len(
        'href="data:text/csv;charset=utf-8,'
    )
    table = unquote(html[start : html.index('"', start)])
    return {
        row["username"]: row["set_password_link"] for row in csv.DictReader(io.StringIO(table))
    }


def test_it_is_for_staff_only(client, annotator, reviewer):
    assert client.get(URL).url.startswith(reverse("login"))
    for user in (annotator, reviewer):
        client.force_login(user)
        assert client.get(URL).status_code == 403
        assert client.post(URL, {"people": "ada", "role": "annotator"}).status_code == 403
    assert not User.objects.filter(username="ada").exists()


def test_staff_see_a_form(client, staff):
    client.force_login(staff)
    page = client.get(URL)
    assert page.status_code == 200
    assert 'name="people"' in page.content.decode()
    assert "no-cache" in page["Cache-Control"]


def test_staff_add_people_and_see_each_link_once(client, staff):
    client.force_login(staff)
    page = client.post(
        URL, {"people": "ada,ada@example.org\nrita,,reviewer\n", "role": "annotator"}
    )
    html = page.content.decode()
    assert page.status_code == 200
    assert "2 accounts created" in html
    assert "no-store" in page["Cache-Control"]
    links = links_on(page)
    assert set(links) == {"ada", "rita"}
    assert links["ada"].startswith("http://testserver/accounts/set-password/")
    assert links["ada"] in html
    assert 'download="new-accounts.csv"' in html
    assert User.objects.get(username="rita").groups.get().name == "reviewers"


def test_a_file_can_be_uploaded_instead(client, staff):
    client.force_login(staff)
    upload = io.BytesIO(b"username,email\nada,ada@example.org\n")
    upload.name = "people.csv"
    page = client.post(URL, {"file": upload, "people": "", "role": "reviewer"})
    assert set(links_on(page)) == {"ada"}
    assert User.objects.get(username="ada").groups.get().name == "reviewers"


def test_problems_are_listed_by_line_the_text_is_kept_and_nothing_is_created(client, staff):
    make_user("alice")
    client.force_login(staff)
    text = "ada\nalice\nada\nbob,not-an-email\n"
    page = client.post(URL, {"people": text, "role": "annotator"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Nothing was created." in html
    assert "Line 2: the username &#x27;alice&#x27; exists already." in html
    assert "Line 3: &#x27;ada&#x27; is also on line 1." in html
    assert "Line 4: &#x27;not-an-email&#x27; is not a valid email address." in html
    assert ">\nada\nalice\nada\nbob,not-an-email\n</textarea>" in html
    assert not User.objects.filter(username__in=["ada", "bob"]).exists()


def test_an_empty_list_is_refused(client, staff):
    client.force_login(staff)
    page = client.post(URL, {"people": "  \n", "role": "annotator"})
    assert "Give one username a line, or choose a file." in page.content.decode()


def set_password(client, link: str, password: str = NEW_PASSWORD):
    """Open the link as a person would, then send the form it shows."""
    page = client.get(urlparse(link).path, follow=True)
    return page, client.post(
        page.redirect_chain[-1][0] if page.redirect_chain else urlparse(link).path,
        {"new_password1": password, "new_password2": password},
    )


@pytest.fixture
def ada_link(client, staff) -> str:
    client.force_login(staff)
    link = links_on(client.post(URL, {"people": "ada", "role": "annotator"}))["ada"]
    client.logout()
    return link


def test_the_link_sets_a_password_once_and_then_no_longer_works(client, ada_link):
    form, done = set_password(client, ada_link)
    assert "Set your password" in form.content.decode()
    assert "Account: <strong>ada</strong>" in form.content.decode()
    assert done.status_code == 302
    assert done.url == reverse("password_reset_complete")
    assert User.objects.get(username="ada").check_password(NEW_PASSWORD)
    login = client.post(reverse("login"), {"username": "ada", "password": NEW_PASSWORD})
    assert login.status_code == 302
    client.logout()

    again = client.get(urlparse(ada_link).path, follow=True)
    assert "This link no longer works" in again.content.decode()
    assert User.objects.get(username="ada").check_password(NEW_PASSWORD)


def test_a_tampered_link_does_not_work(client, ada_link):
    page = client.get(urlparse(ada_link).path[:-3] + "xyz/", follow=True)
    assert "This link no longer works" in page.content.decode()


def test_a_link_expires_after_the_days_configured(client, ada_link, settings, monkeypatch):
    from datetime import datetime, timedelta

    from django.contrib.auth.tokens import default_token_generator

    settings.PASSWORD_RESET_TIMEOUT = 7 * 24 * 3600
    later = datetime.now() + timedelta(days=8)
    monkeypatch.setattr(default_token_generator, "_now", lambda: later)
    page = client.get(urlparse(ada_link).path, follow=True)
    assert "This link no longer works" in page.content.decode()


def test_lines_from_a_browser_textarea_with_crlf_are_read_as_lines(client, staff):
    client.force_login(staff)
    page = client.post(URL, {"people": "ada, ada@example.org \r\nbob\r\n", "role": "annotator"})
    assert set(links_on(page)) == {"ada", "bob"}
    assert User.objects.get(username="ada").email == "ada@example.org"
