from annotate import markdown
from annotate.templatetags import annotate_tags


def test_raw_html_is_shown_as_text():
    html = markdown.render('<script>alert(1)</script>\n\n<img src=x onerror="alert(1)">')
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_javascript_links_are_not_links():
    html = markdown.render("[click](javascript:alert(1)) and [ok](https://example.org)")
    assert 'href="javascript' not in html
    assert '<a href="https://example.org">ok</a>' in html


def test_code_blocks_and_tables_are_kept():
    html = markdown.render("```js\nif (a < b) {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert '<pre tabindex="0"><code class="language-js">' in html and "&lt;" in html
    assert '<table tabindex="0">' in html and "<td>1</td>" in html


def test_empty_text_renders_empty():
    assert markdown.render("") == ""


def test_highlight_spans_marks_characters_and_escapes_the_rest():
    text = "a <b> 🙂 end"
    html = annotate_tags.highlight_spans(text, [[2, 5], [6, 7]])
    assert html == "a <mark>&lt;b&gt;</mark> <mark>🙂</mark> end"


def test_highlight_spans_ignores_bad_and_overlapping_spans():
    assert annotate_tags.highlight_spans("abcdef", [[1, 3], [2, 4], "x", [5, 99]]) == (
        "a<mark>bc</mark><mark>d</mark>e<mark>f</mark>"
    )
    assert annotate_tags.highlight_spans("x<y", None) == "x&lt;y"


def test_span_texts_lists_the_passages():
    assert annotate_tags.span_texts("Paris is big", [[6, 8], [0, 5]]) == ["Paris", "is"]


def test_line_breaks_of_poems_and_unfenced_code_are_kept():
    haiku = "An old silent pond\nA frog jumps into the pond—\nSplash! Silence again."
    assert markdown.render(haiku) == (
        "<p>An old silent pond<br />\nA frog jumps into the pond—<br />\n"
        "Splash! Silence again.</p>\n"
    )
    assert "x = [1, 2, 3]<br />\ny = x" in markdown.render("x = [1, 2, 3]\ny = x")


def test_fenced_code_with_a_language_is_highlighted_and_still_escaped():
    html = markdown.render('```python\nif a < b:\n    print("<script>")\n```')
    assert html.startswith('<pre tabindex="0"><code class="language-python">')
    assert '<span class="k">if</span>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\n    " in html  # indentation kept


def test_fenced_code_in_an_unknown_or_no_language_is_plain_escaped_text():
    for fence in ("```", "```no-such-language"):
        html = markdown.render(f"{fence}\n<b>x</b> = 1\n```")
        assert "&lt;b&gt;x&lt;/b&gt; = 1" in html and "<span" not in html


def test_the_pygments_stylesheet_in_static_matches_the_style_used(settings):
    path = settings.BASE_DIR / "static" / "css" / "pygments.css"
    # Regenerate with: python -m annotate.markdown > static/css/pygments.css
    assert path.read_text() == markdown.pygments_css()


def test_code_blocks_and_tables_can_be_reached_by_keyboard_to_scroll_them():
    html = markdown.render("```\nx\n```\n\n    indented\n\n| a |\n|---|\n| 1 |\n")
    assert html.count('<pre tabindex="0">') == 2
    assert '<table tabindex="0">' in html
