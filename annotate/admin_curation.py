"""What curators see of a judgment in the admin: the response as the app renders it, the
annotator's highlights (edited as highlights, not as JSON), and the other judgments of
the same response.

The spans editor stores exactly what the task page stores, a JSON list of [start, end)
character offsets into Response.text. Its JavaScript (static/js/admin_spans.js) adds a
highlight for a passage selected in the rendered or the plain text and removes one when
it is clicked. Without JavaScript the same widget offers a checkbox per highlight to
remove it and a box to paste a passage to add (found in the response text as written).
"""

import json

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString
from django.utils.text import Truncator

from annotate import markdown, models
from annotate import validators as v


def preview(text: str, chars: int) -> str:
    return Truncator(" ".join(text.split())).chars(chars)


def parse_spans(value) -> list:
    if isinstance(value, list):
        return value
    try:
        spans = json.loads(value or "[]")
    except (TypeError, ValueError):
        return []
    return spans if isinstance(spans, list) else []


class SpansWidget(forms.Widget):
    template_name = "admin/annotate/judgment/spans_widget.html"

    def __init__(self, attrs=None) -> None:
        super().__init__(attrs)
        self.response_text: str | None = None

    def format_value(self, value) -> str:
        if isinstance(value, dict):  # the form came back with an error: what was sent
            return value.get("json", "")
        return json.dumps(parse_spans(value)) if value not in (None, "") else "[]"

    def get_context(self, name, value, attrs) -> dict:
        context = super().get_context(name, value, attrs)
        text = self.response_text
        spans = parse_spans(self.format_value(value))
        passages = []
        if text is not None:
            for i, span in enumerate(spans):
                if (
                    isinstance(span, list)
                    and len(span) == 2
                    and all(isinstance(x, int) for x in span)
                ):
                    passages.append({"index": i, "text": text[span[0] : span[1]], "span": span})
        context["widget"].update(
            response_text=text,
            text_script=json_script(text, f"{attrs.get('id', name)}-text"),
            passages=passages,
            added=value.get("add", "") if isinstance(value, dict) else "",
            # Ticks kept when the form comes back with an error elsewhere.
            removed={str(i) for i in value.get("remove", [])}
            if isinstance(value, dict)
            else set(),
            marked=_marked(text or "", spans),
        )
        return context

    def render(self, name, value, attrs=None, renderer=None) -> SafeString:
        # The project's templates/, which the forms renderer does not search.
        context = self.get_context(name, value, self.build_attrs(self.attrs, attrs))
        return SafeString(render_to_string(self.template_name, context))

    def value_from_datadict(self, data, files, name) -> dict:
        return {
            "json": data.get(name, ""),
            "remove": data.getlist(f"{name}-remove") if hasattr(data, "getlist") else [],
            "add": data.get(f"{name}-add", ""),
        }

    def value_omitted_from_data(self, data, files, name) -> bool:
        return name not in data and f"{name}-add" not in data


class SpansField(forms.Field):
    """The spans as the JavaScript left them, less those ticked to remove, plus a pasted
    passage; the widget needs .response_text set to add one."""

    widget = SpansWidget

    def to_python(self, value) -> list:
        if not isinstance(value, dict):
            value = {"json": value, "remove": [], "add": ""}
        raw = value.get("json") or "[]"
        if isinstance(raw, list):
            spans = raw
        else:
            try:
                spans = json.loads(raw)
            except ValueError:
                raise ValidationError(
                    "The highlights could not be read; reload the page."
                ) from None
        if not isinstance(spans, list):
            raise ValidationError("Spans must be a list of [start, end] pairs.")
        removed = {int(i) for i in value.get("remove", []) if str(i).isdigit()}
        spans = [span for i, span in enumerate(spans) if i not in removed]
        passage = value.get("add", "")
        if passage.strip():
            v.validate_spans(spans)
            spans = _add_passage(spans, passage, self.widget.response_text)
        v.validate_spans(spans)
        return sorted(spans)


def _add_passage(spans: list, passage: str, text: str | None) -> list:
    if text is None:
        raise ValidationError("Save the judgment first; then passages can be highlighted.")
    passage = passage.strip()
    start = -1
    while True:
        start = text.find(passage, start + 1)
        if start < 0:
            raise ValidationError(
                f"“{preview(passage, 60)}” is not in the response text as written "
                f"(copy it from the plain text)."
            )
        end = start + len(passage)
        if not any(s[0] < end and start < s[1] for s in spans if len(s) == 2):
            return [*spans, [start, end]]


def _marked(text: str, spans: list) -> SafeString:
    from annotate.templatetags.annotate_tags import highlight_spans

    return highlight_spans(text, spans)


def rendered_response(judgment: models.Judgment) -> SafeString:
    if not judgment.pk:
        return "—"
    response = judgment.response
    prompt = response.prompt
    return format_html(
        '<div class="curation-response">'
        '<h4>Instruction</h4><div class="md">{}</div>{}'
        '<h4>Response {} <span class="meta">{}</span></h4>'
        '<div class="md" data-rendered-response>{}</div>'
        "</div>",
        markdown.render(prompt.instruction),
        format_html('<h4>Input</h4><div class="md">{}</div>', markdown.render(prompt.input))
        if prompt.input
        else "",
        response.pk,
        f"round {response.round_id}" if response.round_id else "no round",
        markdown.render(response.text),
    )


def other_judgments(judgment: models.Judgment) -> SafeString:
    if not judgment.pk:
        return "—"
    others = (
        models.Judgment.objects.filter(response_id=judgment.response_id)
        .exclude(pk=judgment.pk)
        .select_related("annotator", "response")
        .order_by("created")
    )
    return SafeString(
        render_to_string("admin/annotate/judgment/other_judgments.html", {"others": others})
    )


def preview_cell(text: str, chars: int = 120) -> SafeString:
    """A list cell that reads as a line of text: truncated, the full text on hover."""
    return format_html(
        '<span class="preview" title="{}">{}</span>', preview(text, 1000), preview(text, chars)
    )
