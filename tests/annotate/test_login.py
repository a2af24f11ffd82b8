from django.urls import reverse

from tests.conftest import PASSWORD


def test_the_login_page_has_a_labelled_form(client, db):
    page = client.get(reverse("login"))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert "csrfmiddlewaretoken" in html


def test_logging_in_leads_to_the_landing(client, annotator):
    page = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})
    assert page.status_code == 302
    assert page.url == reverse("annotate:landing")


def test_a_wrong_password_says_so_and_keeps_the_username(client, annotator):
    page = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Please enter a correct username and password" in html
    assert 'value="alice"' in html


def test_login_returns_to_the_page_asked_for(client, annotator):
    target = reverse("annotate:judgment-list")
    page = client.get(target)
    assert page.url == f"{reverse('login')}?next={target}"
    page = client.post(
        reverse("login"), {"username": "alice", "password": PASSWORD, "next": target}
    )
    assert page.url == target


def test_logout_is_a_post_from_every_page(client, annotator):
    client.force_login(annotator)
    html = client.get(reverse("annotate:guidelines")).content.decode()
    assert f'method="post" action="{reverse("logout")}"' in html
    page = client.post(reverse("logout"))
    assert page.status_code == 302
    assert client.get(reverse("annotate:home")).status_code == 302
