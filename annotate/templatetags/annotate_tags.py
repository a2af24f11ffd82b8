"""Template filters for the annotator's and reviewer's pages ({% load annotate_tags %})."""

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from annotate import markdown as md
from annotate import roles

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    return md.render(text)


@register.filter
def highlight_spans(text: str, spans) -> SafeString:
    """The text, escaped, with each [start, end) span wrapped in <mark>.

    Offsets count characters of the stored text, as the task page records them.
    Overlapping or out-of-range spans are clipped rather than trusted.
    """
    parts: list[str] = []
    pos = 0
    for start, end in sorted(_valid_spans(spans, len(text))):
        start = max(start, pos)
        if start >= end:
            continue
        parts.append(escape(text[pos:start]))
        parts.append(f"<mark>{escape(text[start:end])}</mark>")
        pos = end
    parts.append(escape(text[pos:]))
    return mark_safe("".join(parts))


def _valid_spans(spans, length: int) -> list[tuple[int, int]]:
    valid = []
    for span in spans or []:
        if isinstance(span, list | tuple) and len(span) == 2:
            start, end = span
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end:
                valid.append((start, min(end, length)))
    return valid


@register.filter
def span_texts(text: str, spans) -> list[str]:
    """The highlighted passages themselves, in order."""
    return [text[start:end] for start, end in sorted(_valid_spans(spans, len(text)))]


@register.filter(name="is_reviewer")
def is_reviewer_filter(user) -> bool:
    return roles.is_reviewer(user)
