"""Model output → safe HTML: markdown-it-py renders, Pygments highlights, nh3 sanitises.

static/js/markdown.js renders an answer the same way while it streams (markdown-it, the same
rules, DOMPurify with the same allow-list); what this module renders replaces it at the end
and on every reload, so it is the truth. Keep the two in step."""

import re

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_formatter = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang) if lang else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it then escapes the code itself
    return highlight(code, lexer, _formatter)


# Math: $…$ and \(…\) inline, $$…$$ and \[…\] as a block. The TeX is kept as (escaped) text in
# an element of class "math"; the browser typesets it with KaTeX. A $ opens only before a
# non-space and closes only after one, not before a digit, so "$5 and $10" stays text.
_INLINE_DOLLAR = re.compile(r"\$(?=\S)((?:\\.|[^\\$\n])+?)(?<=\S)\$(?!\d)")


def _math_inline(state: StateInline, silent: bool) -> bool:
    src, pos = state.src, state.pos
    if src.startswith(("\\(", "\\["), pos):
        closer = "\\)" if src[pos + 1] == "(" else "\\]"
        end = src.find(closer, pos + 2)
        if end < 0:
            return False
        tex, after = src[pos + 2 : end], end + 2
        display = closer == "\\]"
    elif src.startswith("$$", pos):
        end = src.find("$$", pos + 2)
        if end < 0 or end == pos + 2:
            return False
        tex, after = src[pos + 2 : end], end + 2
        display = True
    elif src.startswith("$", pos):
        match = _INLINE_DOLLAR.match(src, pos)
        if match is None:
            return False
        tex, after = match.group(1), match.end()
        display = False
    else:
        return False
    if not silent:
        token = state.push("math_inline", "span", 0)
        token.content = tex.strip()
        token.meta = {"display": display}
    state.pos = after
    return True


_BLOCK_FENCES = {"$$": "$$", "\\[": "\\]"}


def _math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    begin = state.bMarks[start] + state.tShift[start]
    line = state.src[begin : state.eMarks[start]]
    opener = next((o for o in _BLOCK_FENCES if line.startswith(o)), None)
    if opener is None or state.sCount[start] - state.blkIndent >= 4:
        return False
    closer = _BLOCK_FENCES[opener]
    rest = line[len(opener) :]
    if closer in rest:  # all on one line: $$ x $$
        if rest.rstrip().endswith(closer) and rest.strip() != closer.strip():
            tex, last = rest.rstrip()[: -len(closer)], start
        else:
            return False
    else:
        lines, last = [rest], start + 1
        while last < end:
            text = state.src[state.bMarks[last] + state.tShift[last] : state.eMarks[last]]
            if text.rstrip().endswith(closer):
                lines.append(text.rstrip()[: -len(closer)])
                break
            lines.append(text)
            last += 1
        else:
            return False  # not closed (yet: while streaming, the browser shows it as text)
        tex = "\n".join(lines)
    if silent:
        return True
    token = state.push("math_block", "div", 0)
    token.content = tex.strip()
    token.map = [start, last + 1]
    token.block = True
    state.line = last + 1
    return True


def _task_lists(state: StateCore) -> None:
    """A list item that starts with "[ ] " or "[x] " shows a checkbox (read-only)."""
    tokens = state.tokens
    for i in range(2, len(tokens)):
        inline = tokens[i]
        if not (
            inline.type == "inline"
            and tokens[i - 1].type == "paragraph_open"
            and tokens[i - 2].type == "list_item_open"
        ):
            continue
        match = re.match(r"\[([ xX])\] ", inline.content)
        if match is None or not inline.children:
            continue
        first = inline.children[0]
        if first.type != "text" or not first.content.startswith(match.group(0)):
            continue
        first.content = first.content[len(match.group(0)) :]
        box = Token("task_box", "input", 0)
        box.meta = {"checked": match.group(1) != " "}
        # The item's text labels its checkbox.
        inline.children[:0] = [Token("label_open", "label", 1), box]
        inline.children.append(Token("label_close", "label", -1))
        tokens[i - 2].attrSet("class", "task")


def _table_alignment(state: StateCore) -> None:
    """Column alignment as a class, not a style attribute (which the CSP forbids)."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open"):
            style = str(token.attrGet("style") or "")
            if style.startswith("text-align:"):
                token.attrs.pop("style")
                token.attrSet("class", "align-" + style.split(":", 1)[1])


def _render_math_inline(self, tokens, idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    kind = "display" if token.meta.get("display") else "inline"
    return f'<span class="math {kind}">{escapeHtml(token.content)}</span>'


def _render_math_block(self, tokens, idx: int, options: OptionsDict, env: EnvType) -> str:
    return f'<div class="math display">{escapeHtml(tokens[idx].content)}</div>\n'


def _render_task_box(self, tokens, idx: int, options: OptionsDict, env: EnvType) -> str:
    checked = " checked" if tokens[idx].meta["checked"] else ""
    return f'<input type="checkbox" disabled{checked}> '


def _render_image(self, tokens, idx: int, options: OptionsDict, env: EnvType) -> str:
    """An image from a model is a link with its alt text: the page fetches nothing from a URL
    a model wrote."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env) or src
    return f'<a class="image-link" href="{escapeHtml(src)}">{escapeHtml(alt)}</a>'


# html=False: raw HTML in model output is shown as text, never parsed.
_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight}).enable(
    ["table", "strikethrough"]
)
_md.inline.ruler.before("escape", "math_inline", _math_inline)
_md.block.ruler.before("fence", "math_block", _math_block, {"alt": ["paragraph"]})
_md.core.ruler.push("task_lists", _task_lists)
_md.core.ruler.push("table_alignment", _table_alignment)
_md.add_render_rule("math_inline", _render_math_inline)
_md.add_render_rule("math_block", _render_math_block)
_md.add_render_rule("task_box", _render_task_box)
_md.add_render_rule("image", _render_image)
assert isinstance(_md.renderer, RendererHTML)

_TAGS = {
    "a",
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "span",
    "div",
    "input",
    "label",
}
_ATTRIBUTES = {
    "a": {"href", "title", "class"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "th": {"class"},
    "td": {"class"},
    "ol": {"start"},
    "li": {"class"},
    "input": {"type", "disabled", "checked"},
}


def render(text: str) -> str:
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
