from django.urls import reverse

from annotate import models, queue

HX = {"HX-Request": "true"}


def test_it_shows_the_next_task_and_reserves_it(client, annotator, response):
    client.force_login(annotator)
    page = client.get(reverse("annotate:home"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<html" in html
    assert "Name the capital of France." in html
    assert "The capital of France is Paris." in html
    assert "Round 1" in html and "tiny" in html
    assert reverse("annotate:judgment-submit", args=[response.pk]) in html
    assert models.Reservation.objects.get().annotator == annotator


def test_reloading_shows_the_same_task(client, annotator, make_responses):
    first, _second = make_responses(2)
    client.force_login(annotator)
    client.get(reverse("annotate:home"))
    page = client.get(reverse("annotate:home"))
    assert page.context["response"] == first
    assert models.Reservation.objects.count() == 1


def test_htmx_gets_the_task_fragment(client, annotator, response):
    client.force_login(annotator)
    page = client.get(reverse("annotate:home"), headers=HX)
    html = page.content.decode()
    assert page.status_code == 200
    assert "<html" not in html
    assert 'id="task"' in html
    assert "The capital of France is Paris." in html


def test_it_shows_progress(client, annotator, make_responses):
    responses = make_responses(4)
    models.Judgment.objects.create(response=responses[0], annotator=annotator, verdict="positive")
    models.Response.objects.filter(pk=responses[0].pk).update(judgment_count=1)
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert "<strong>1</strong> done today" in html
    assert "<strong>1</strong> in total" in html
    assert "<strong>3</strong> left" in html


def test_a_long_queue_is_counted_up_to_a_limit(client, annotator, make_responses, monkeypatch):
    monkeypatch.setattr(queue, "LEFT_COUNT_LIMIT", 2)
    make_responses(4)
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert "<strong>2+</strong> left" in html


def test_an_empty_queue_says_so(client, annotator, db):
    client.force_login(annotator)
    page = client.get(reverse("annotate:home"))
    assert page.status_code == 200
    assert "Your queue is empty" in page.content.decode()
    assert not models.Reservation.objects.exists()


def test_markup_in_a_response_is_escaped(client, annotator, prompt):
    models.Response.objects.create(
        prompt=prompt,
        text='Hi <script>alert("x")</script> <img src=x onerror="alert(1)">'
        " [a](javascript:alert(1))",
    )
    models.Prompt.objects.filter(pk=prompt.pk).update(instruction="<script>bad()</script>")
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert "<script>alert" not in html
    assert "<script>bad()" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "&lt;script&gt;alert" in html
    assert "&lt;img src=x onerror=" in html


def test_markdown_code_blocks_are_kept_and_highlighted(client, annotator, prompt):
    models.Response.objects.create(prompt=prompt, text="Try:\n\n```python\nprint(1 < 2)\n```\n")
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert '<pre tabindex="0"><code class="language-python"><span class="nb">print</span>' in html
    assert '<span class="o">&lt;</span>' in html
    assert "pygments.css" in html


def test_the_line_breaks_of_instruction_input_and_response_are_kept(client, annotator):
    prompt = models.Prompt.objects.create(
        source="t",
        external_id="haiku",
        instruction="Write a haiku\nabout ponds.",
        input="x = [1, 2, 3]\ny = x",
    )
    models.Response.objects.create(prompt=prompt, text="An old pond\na frog jumps in\nsplash")
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert "Write a haiku<br />\nabout ponds." in html
    assert "x = [1, 2, 3]<br />\ny = x" in html
    assert "An old pond<br />\na frog jumps in<br />\nsplash" in html


def test_the_raw_text_is_given_to_the_page_script_safely(client, annotator, prompt):
    models.Response.objects.create(prompt=prompt, text="</script><script>alert(1)</script>")
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert "\\u003C/script\\u003E\\u003Cscript\\u003Ealert(1)" in html


def test_anonymous_users_are_sent_to_login(client, response):
    page = client.get(reverse("annotate:home"))
    assert page.status_code == 302
    assert page.url.startswith(reverse("login"))


def test_a_user_in_no_group_is_refused(client, outsider, response):
    client.force_login(outsider)
    page = client.get(reverse("annotate:home"))
    assert page.status_code == 403
    assert "You are not an annotator." in page.content.decode()
    assert not models.Reservation.objects.exists()


def test_reviewers_can_annotate_too(client, reviewer, response):
    client.force_login(reviewer)
    assert client.get(reverse("annotate:home")).context["response"] == response


def test_it_refuses_post(client, annotator, response):
    client.force_login(annotator)
    assert client.post(reverse("annotate:home")).status_code == 405


def test_the_page_loads_htmx_from_this_server(client, annotator, db):
    client.force_login(annotator)
    html = client.get(reverse("annotate:home")).content.decode()
    assert 'src="/static/django_htmx/htmx-2.min.js"' in html
    assert 'hx-headers=\'{"x-csrftoken": "' in html
    assert "https://" not in html


def test_the_task_page_and_a_submit_stay_within_their_query_budget(
    client, annotator, make_responses, django_assert_max_num_queries
):
    """Annotators load these pages all day; each query is a round trip on every one of them.

    Task page: session, user with roles, BEGIN, lock, held reservations, claim (twice
    here: these responses have no round), the response with its re-check, insert,
    COMMIT, progress. Submit: session, user with roles, BEGIN, lock, state, insert,
    count, release, COMMIT. (SQLite has no lock statements.)
    """
    responses = make_responses(2)
    client.force_login(annotator)
    with django_assert_max_num_queries(11):
        page = client.get(reverse("annotate:home"))
    assert f'data-response-id="{responses[0].pk}"' in page.content.decode()
    submit = reverse("annotate:judgment-submit", args=[responses[0].pk])
    with django_assert_max_num_queries(9):
        assert (
            client.post(submit, {"verdict": "positive", "seconds_spent": "9"}).status_code == 302
        )
