"""The frame every page shares (templates/base.html)."""

import re

from django.contrib.staticfiles import finders
from django.urls import reverse


def test_every_page_links_a_favicon_and_the_stylesheets_from_static(client, db):
    html = client.get(reverse("login")).content.decode()
    icon = re.search(r'<link rel="icon" href="/static/([^"]+)"', html).group(1)
    assert finders.find(icon)
    for sheet in ("css/app.css", "css/pygments.css"):
        assert f'href="/static/{sheet}"' in html
        assert finders.find(sheet)


def test_every_page_has_a_polite_live_region_outside_the_swapped_content(client, annotator):
    client.force_login(annotator)
    html = client.get(reverse("annotate:judgment-list")).content.decode()
    region = '<div id="announcer" class="visually-hidden" role="status" aria-live="polite"'
    assert region in html
    assert html.index(region) < html.index('<main id="main"')


def test_browsers_asking_for_favicon_ico_get_the_icon(client, db):
    page = client.get("/favicon.ico")
    assert page.status_code == 302
    assert page.url == "/static/favicon.svg"
