"""Rendering the critique lens ({% load lens_tags %}): the response with its flagged tokens
marked, shaded by how much likelier the critique makes them.

Offsets count characters (code points) of the stored response text, as Python slices it
and as training.lens reports them; everything between marks is escaped here, and every
attribute goes through format_html, so the response and critique render as text.
"""

import math

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from annotate import lens as lens_module

register = template.Library()

# Shades: the ratio p(y|x,j) / p(y|x) of a flagged token, from λ up to these bounds.
SHADES = (1.5, 3.0, 10.0)


def shade(log_ratio: float) -> int:
    """1 (just over λ) to 4 (more than SHADES[-1] times as likely)."""
    ratio = math.exp(min(log_ratio, 50.0))
    return 1 + sum(ratio > bound for bound in SHADES)


def ratio_text(log_ratio: float) -> str:
    ratio = math.exp(min(log_ratio, 50.0))
    if ratio >= 1000:
        return "over 1,000×"
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:.0f}×"


def _flagged_tokens(tokens, length: int) -> list[tuple[int, int, float]]:
    """Flagged tokens with sane offsets, in order; a token that overlaps the one before
    (two tokens sharing the bytes of one character) starts where that one ends."""
    found = []
    for token in tokens or []:
        try:
            start, end, log_ratio = int(token["start"]), int(token["end"]), token["log_ratio"]
            flagged = bool(token["flagged"])
        except (KeyError, TypeError, ValueError):
            continue
        if flagged and 0 <= start < end <= length and isinstance(log_ratio, int | float):
            found.append((start, end, float(log_ratio)))
    found.sort()
    clipped, pos = [], 0
    for start, end, log_ratio in found:
        start = max(start, pos)
        if start < end:
            clipped.append((start, end, log_ratio))
            pos = end
    return clipped


def _name(token: str) -> str:
    """How a screen reader should call the token: its text, or what whitespace it is."""
    if token.strip():
        return f"“{token.strip()}”"
    if "\n" in token or "\r" in token:
        return "a line break"
    return "a tab" if "\t" in token else "a space"


def _esc(text: str, start: int, end: int) -> str:
    """text[start:end], escaped, without the CR of each CRLF: HTML reads a CR as a line
    break of its own, so a CR and its LF in two elements would show two line breaks."""
    piece = text[start:end]
    if "\r" in piece:
        piece = "".join(
            c
            for i, c in enumerate(piece, start)
            if not (c == "\r" and text[i + 1 : i + 2] == "\n")
        )
    return escape(piece)


def _text(text: str, start: int, end: int, highlights: list[tuple[int, int]]) -> str:
    """text[start:end], escaped, with the annotator's highlights inside it wrapped."""
    out, pos = [], start
    for h_start, h_end in highlights:
        if h_end <= pos or h_start >= end:
            continue
        h_start, h_end = max(h_start, pos), min(h_end, end)
        out.append(_esc(text, pos, h_start))
        out.append(f'<span class="lens-hl">{_esc(text, h_start, h_end)}</span>')
        pos = h_end
    out.append(_esc(text, pos, end))
    return "".join(out)


def marking(text: str, tokens, spans=None) -> SafeString:
    """The response, escaped, each flagged token a focusable <mark> whose title and
    aria-label give its ratio; the annotator's highlighted spans underlined inside."""
    highlights = [(s, min(e, len(text))) for s, e in lens_module.merge(spans) if s >= 0]
    parts, pos = [], 0
    for start, end, log_ratio in _flagged_tokens(tokens, len(text)):
        parts.append(_text(text, pos, start, highlights))
        label = f"{ratio_text(log_ratio)} as likely with the critique"
        parts.append(
            format_html(
                '<mark class="lens lens-{}" tabindex="0" title="{}" aria-label="{}">{}</mark>',
                shade(log_ratio),
                f"{label} (log ratio {log_ratio:+.2f})",
                f"Flagged {_name(text[start:end])}: {label}",
                mark_safe(_text(text, start, end, highlights)),
            )
        )
        pos = end
    parts.append(_text(text, pos, len(text), highlights))
    return mark_safe("".join(parts))


@register.simple_tag
def lens_view(lens, text: str, spans=None) -> dict:
    """What the panel shows for a lens result (a LensResult or a job's dict)."""
    get = lens.get if isinstance(lens, dict) else lambda name: getattr(lens, name, None)
    tokens = get("tokens") or []
    flagged_spans = get("flagged_spans") or []
    share = float(get("flagged_share") or 0.0)
    highlighted = lens_module.span_length(spans)
    return {
        "html": marking(text, tokens, spans),
        "flagged": sum(1 for t in tokens if t.get("flagged")),
        "tokens": len(tokens),
        "share": share,
        "model": get("model"),
        "threshold": get("threshold"),
        "truncated": bool(get("truncated")),
        "too_little": share < lens_module.LOW_SHARE,
        "too_much": share > lens_module.HIGH_SHARE,
        "highlighted": highlighted,
        "highlight_flagged": lens_module.overlap(spans, flagged_spans) / highlighted
        if highlighted
        else None,
    }


@register.simple_tag
def stored_lens(judgment) -> dict:
    """The judgment's stored lens and whether it is fresh. One query."""
    from annotate import models

    found = models.LensResult.objects.filter(judgment_id=judgment.pk).first()
    return {"lens": found, "fresh": found is not None and found.critique == judgment.critique}


@register.inclusion_tag("annotate/lens_by_annotator.html")
def lens_by_annotator() -> dict:
    return {"rows": lens_module.annotator_stats()}
