"""What an answer's Markdown becomes on the server (the truth the streaming render follows)."""

from conversations.markdown import render


def test_math_is_kept_as_tex_for_the_browser_to_typeset():
    html = render("Euler: $e^{i\\pi}+1=0$, \\(a_1 * b_2\\), and it costs $5 or $10.")
    assert '<span class="math inline">e^{i\\pi}+1=0</span>' in html
    assert '<span class="math inline">a_1 * b_2</span>' in html  # no emphasis made of it
    assert "costs $5 or $10." in html
    assert render("$$\nx^2 < y\n$$") == '<div class="math display">x^2 &lt; y</div>\n'
    assert render("\\[\n\\frac{1}{2}\n\\]") == '<div class="math display">\\frac{1}{2}</div>\n'
    assert "<code>$x$</code>" in render("`$x$`")


def test_task_lists_tables_and_code_keep_to_the_allow_list():
    tasks = render("- [ ] write\n- [x] test")
    assert '<label><input type="checkbox" disabled=""> write</label>' in tasks
    assert '<input type="checkbox" disabled="" checked=""> test' in tasks
    table = render("| a | b |\n|:-|-:|\n| 1 | 2 |")
    assert '<th class="align-left">a</th>' in table and '<td class="align-right">2</td>' in table
    assert "style" not in table  # the CSP allows no style attribute
    assert '<code class="language-python">' in render("```python\nprint(1)\n```")


def test_an_image_is_a_link_with_its_alt_text_and_nothing_is_fetched():
    html = render("![a cat](https://example.com/cat.png)")
    assert "<img" not in html
    assert 'href="https://example.com/cat.png"' in html and ">a cat</a>" in html
    assert "<img" not in render('<img src="https://example.com/x.png">')
    assert 'href="javascript' not in render("![x](javascript:alert(1))")
