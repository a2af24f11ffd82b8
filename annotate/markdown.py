"""Safe Markdown for instructions, responses and guidelines.

markdown-it-py with the CommonMark preset and raw HTML turned off: any tag in the text is
shown as text, code blocks are kept, and its link validator refuses javascript: and
similar URLs. Responses come from models and imports, so they are untrusted input.
"""

from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def render(text: str) -> SafeString:
    # Safe because html=False escapes every tag and attribute value markdown-it emits.
    return mark_safe(_md.render(text or ""))
