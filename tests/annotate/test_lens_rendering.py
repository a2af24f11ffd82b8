"""The marked response renders as text: offsets land on the right characters whatever the
script, and markup in the response or critique stays inert."""

import math

import pytest
from django.urls import reverse

from annotate import lens, models
from tests.annotate.lens_helpers import result_for
from tests.annotate.test_judgment_lens import marks


def flag(text: str, *pieces: str, ratio: float = 2.0) -> list[dict]:
    """Tokens flagging each piece (character offsets by str.index), the rest unflagged."""
    tokens, pos = [], 0
    for piece in pieces:
        start = text.index(piece, pos)
        if start > pos:
            tokens.append({"start": pos, "end": start, "log_ratio": 0.0, "flagged": False})
        end = start + len(piece)
        tokens.append({"start": start, "end": end, "log_ratio": math.log(ratio), "flagged": True})
        pos = end
    if pos < len(text):
        tokens.append({"start": pos, "end": len(text), "log_ratio": 0.0, "flagged": False})
    return tokens


@pytest.fixture
def show(client, reviewer, annotator, prompt):
    """show(text, tokens, critique=..., spans=...) -> the review page's HTML."""
    client.force_login(reviewer)

    def render(text, tokens, critique="Wrong.", spans=()):
        response = models.Response.objects.create(prompt=prompt, text=text)
        judgment = models.Judgment.objects.create(
            response=response,
            annotator=annotator,
            verdict="negative",
            critique=critique,
            spans=list(spans),
        )
        lens.store(judgment, critique, result_for(text, tokens))
        url = reverse("annotate:judgment-review", args=[judgment.pk])
        page = client.get(url)
        assert page.status_code == 200
        return page.content.decode()

    return render


@pytest.mark.parametrize(
    "text, pieces",
    [
        ("Emoji 👍🏽 and 👨‍👩‍👧 family; the year 1969.", ("👨‍👩‍👧", "1969")),
        ("東京は日本の首都です。大阪ではない。", ("大阪", "ない")),
        ("Line one\r\nline two with the error\r\nthird", ("error", "third")),
        ("Cafe\u0301 au lait costs 3 €", ("Cafe\u0301", "€")),
    ],
    ids=["emoji", "cjk", "crlf", "combining"],
)
def test_marks_land_on_the_right_characters(show, text, pieces):
    html = show(text, flag(text, *pieces))
    assert [m["text"] for m in marks(html)] == list(pieces)


def test_tokens_out_of_range_or_overlapping_are_clipped_not_trusted(show):
    text = "abc def"
    tokens = [
        {"start": 0, "end": 3, "log_ratio": 1.0, "flagged": True},
        {"start": 2, "end": 5, "log_ratio": 1.0, "flagged": True},  # overlaps: starts at 3
        {"start": 5, "end": 99, "log_ratio": 1.0, "flagged": True},  # past the end: dropped
        {"start": "x", "end": 2, "log_ratio": 1.0, "flagged": True},  # malformed: dropped
    ]
    assert [m["text"] for m in marks(show(text, tokens))] == ["abc", " d"]


PAYLOADS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    '" onmouseover="alert(2)" x="',
    "' autofocus onfocus='alert(3)",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markup_in_a_flagged_token_renders_as_text(show, payload):
    text = f"Before {payload} after"
    html = show(text, flag(text, payload))  # Marks() fails on any live <script> or <img>
    [mark] = marks(html)
    assert mark["text"] == payload
    assert mark["aria-label"] == f"Flagged “{payload}”: 2.0× as likely with the critique"
    assert set(mark) == {"class", "tabindex", "title", "aria-label", "text"}  # no onerror, ...


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markup_in_the_critique_and_around_the_marks_stays_inert(show, payload):
    text = f"{payload} the answer {payload}"
    html = show(text, flag(text, "answer"), critique=f"Bad: {payload}", spans=[[0, 5]])
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert [m["text"] for m in marks(html)] == ["answer"]


def test_a_crlf_split_between_two_tokens_shows_one_line_break(show):
    text = "one\r\ntwo"
    tokens = [
        {"start": 0, "end": 3, "log_ratio": 0.0, "flagged": False},
        {"start": 3, "end": 4, "log_ratio": 1.0, "flagged": True},  # the CR
        {"start": 4, "end": 5, "log_ratio": 1.0, "flagged": True},  # the LF
        {"start": 5, "end": 8, "log_ratio": 1.0, "flagged": True},
    ]
    html = show(text, tokens)
    pre = html[html.index('class="lens-text"') : html.index("</pre>", html.index("lens-text"))]
    assert "\r" not in pre
    found = marks(html)
    assert [m["text"] for m in found] == ["", "\n", "two"]
    assert found[0]["aria-label"].startswith("Flagged a line break:")
