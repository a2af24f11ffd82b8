"""Limits and validators shared by the models, the forms, the API and the importer.

The limits are documented in the README; change them here and only here.
"""

from django.core.exceptions import ValidationError

MAX_INSTRUCTION_CHARS = 20_000
MAX_INPUT_CHARS = 50_000
MAX_RESPONSE_CHARS = 100_000
MAX_CRITIQUE_CHARS = 20_000
MAX_REASON_CHARS = 2_000
MAX_NOTE_CHARS = 5_000
MAX_SOURCE_CHARS = 100
MAX_EXTERNAL_ID_CHARS = 255
MAX_GENERATOR_CHARS = 200
MAX_SPANS = 100
# Numbers the database columns can hold: Round.number is a 32-bit integer column,
# Response.overlap a small integer one.
MAX_ROUND = 2**31 - 1
MAX_OVERLAP = 2**15 - 1
# Time spent on one judgment: more than a day is a client's clock going wrong.
MAX_SECONDS = 24 * 60 * 60


def validate_not_blank(value: str) -> None:
    if not value or not value.strip():
        raise ValidationError("This field may not be blank.", code="blank")


def validate_spans(value) -> None:
    """Spans are highlighted passages of the response: a list of [start, end) pairs.

    Positions are character offsets into Response.text; that they lie inside the text
    is checked by Judgment.clean(), which knows the response.
    """
    if not isinstance(value, list):
        raise ValidationError("Spans must be a list of [start, end] pairs.", code="invalid")
    if len(value) > MAX_SPANS:
        raise ValidationError(f"At most {MAX_SPANS} spans.", code="too_many")
    for i, span in enumerate(value):
        if (
            not isinstance(span, list | tuple)
            or len(span) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in span)
        ):
            raise ValidationError(
                f"Span {i} must be a pair of integers [start, end].", code="invalid"
            )
        start, end = span
        if start < 0 or end <= start:
            raise ValidationError(
                f"Span {i} must have 0 <= start < end, got [{start}, {end}].", code="invalid"
            )
