// Answers as they will look, while they stream: the text the server streams (escaped, into
// .body.streaming, which stays the page's record of it) is rendered here with markdown-it and
// the rules of conversations/markdown.py, sanitised by DOMPurify with the same allow-list, and
// shown beside it. The server's render replaces all of it when the answer ends. Every answer
// (streamed, final, reloaded) gets KaTeX for its math and a "Copy code" bar on its code.
(function () {
  "use strict";

  // The chat page, or a page that shows answers only (a shared conversation).
  var chat = document.querySelector("[data-copy-code]");
  if (!chat || !window.markdownit || !window.DOMPurify) { return; }

  // --- The renderer: keep in step with conversations/markdown.py. ---
  var md = window.markdownit("commonmark", { html: false, linkify: false }).enable(["table", "strikethrough"]);
  var escapeHtml = md.utils.escapeHtml;
  var INLINE_DOLLAR = /\$(?=\S)((?:\\.|[^\\$\n])+?)(?<=\S)\$(?!\d)/y;

  md.inline.ruler.before("escape", "math_inline", function (state, silent) {
    var src = state.src, pos = state.pos, tex, after, display, end;
    if (src.startsWith("\\(", pos) || src.startsWith("\\[", pos)) {
      var closer = src[pos + 1] === "(" ? "\\)" : "\\]";
      end = src.indexOf(closer, pos + 2);
      if (end < 0) { return false; }
      tex = src.slice(pos + 2, end); after = end + 2; display = closer === "\\]";
    } else if (src.startsWith("$$", pos)) {
      end = src.indexOf("$$", pos + 2);
      if (end < 0 || end === pos + 2) { return false; }
      tex = src.slice(pos + 2, end); after = end + 2; display = true;
    } else if (src[pos] === "$") {
      INLINE_DOLLAR.lastIndex = pos;
      var match = INLINE_DOLLAR.exec(src);
      if (!match) { return false; }
      tex = match[1]; after = pos + match[0].length; display = false;
    } else {
      return false;
    }
    if (!silent) {
      var token = state.push("math_inline", "span", 0);
      token.content = tex.trim();
      token.meta = { display: display };
    }
    state.pos = after;
    return true;
  });

  var FENCES = { "$$": "$$", "\\[": "\\]" };
  md.block.ruler.before("fence", "math_block", function (state, start, end, silent) {
    var line = state.src.slice(state.bMarks[start] + state.tShift[start], state.eMarks[start]);
    var opener = line.startsWith("$$") ? "$$" : line.startsWith("\\[") ? "\\[" : null;
    if (!opener || state.sCount[start] - state.blkIndent >= 4) { return false; }
    var closer = FENCES[opener], rest = line.slice(opener.length), tex, last;
    if (rest.indexOf(closer) >= 0) {
      var trimmed = rest.trimEnd();
      if (!trimmed.endsWith(closer) || rest.trim() === closer.trim()) { return false; }
      tex = trimmed.slice(0, -closer.length); last = start;
    } else {
      var lines = [rest];
      for (last = start + 1; last < end; last++) {
        var text = state.src.slice(state.bMarks[last] + state.tShift[last], state.eMarks[last]);
        if (text.trimEnd().endsWith(closer)) { lines.push(text.trimEnd().slice(0, -closer.length)); break; }
        lines.push(text);
      }
      if (last >= end) { return false; }  // not closed yet: shown as text until it is
      tex = lines.join("\n");
    }
    if (silent) { return true; }
    var token = state.push("math_block", "div", 0);
    token.content = tex.trim();
    token.map = [start, last + 1];
    token.block = true;
    state.line = last + 1;
    return true;
  }, { alt: ["paragraph"] });

  md.core.ruler.push("task_lists", function (state) {
    var tokens = state.tokens;
    for (var i = 2; i < tokens.length; i++) {
      var inline = tokens[i];
      if (inline.type !== "inline" || tokens[i - 1].type !== "paragraph_open" ||
          tokens[i - 2].type !== "list_item_open") { continue; }
      var match = /^\[([ xX])\] /.exec(inline.content);
      var first = inline.children && inline.children[0];
      if (!match || !first || first.type !== "text" || !first.content.startsWith(match[0])) { continue; }
      first.content = first.content.slice(match[0].length);
      var box = new state.Token("task_box", "input", 0);
      box.meta = { checked: match[1] !== " " };
      inline.children.unshift(new state.Token("label_open", "label", 1), box);
      inline.children.push(new state.Token("label_close", "label", -1));
      tokens[i - 2].attrSet("class", "task");
    }
  });

  md.core.ruler.push("table_alignment", function (state) {
    state.tokens.forEach(function (token) {
      if (token.type !== "th_open" && token.type !== "td_open") { return; }
      var style = token.attrGet("style") || "";
      if (style.indexOf("text-align:") === 0) {
        token.attrs = token.attrs.filter(function (attr) { return attr[0] !== "style"; });
        token.attrSet("class", "align-" + style.split(":")[1]);
      }
    });
  });

  md.renderer.rules.math_inline = function (tokens, idx) {
    var kind = tokens[idx].meta.display ? "display" : "inline";
    return '<span class="math ' + kind + '">' + escapeHtml(tokens[idx].content) + "</span>";
  };
  md.renderer.rules.math_block = function (tokens, idx) {
    return '<div class="math display">' + escapeHtml(tokens[idx].content) + "</div>\n";
  };
  md.renderer.rules.task_box = function (tokens, idx) {
    return '<input type="checkbox" disabled' + (tokens[idx].meta.checked ? " checked" : "") + "> ";
  };
  // An image from a model is a link with its alt text: nothing is fetched from its URL.
  md.renderer.rules.image = function (tokens, idx, options, env, self) {
    var token = tokens[idx];
    var src = token.attrGet("src") || "";
    var alt = self.renderInlineAsText(token.children || [], options, env) || src;
    return '<a class="image-link" href="' + escapeHtml(src) + '">' + escapeHtml(alt) + "</a>";
  };

  var PURIFY = {
    ALLOWED_TAGS: ["a", "p", "br", "hr", "em", "strong", "del", "s", "code", "pre", "blockquote",
      "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr",
      "th", "td", "span", "div", "input", "label"],
    ALLOWED_ATTR: ["href", "title", "class", "start", "type", "disabled", "checked"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  };
  window.DOMPurify.addHook("afterSanitizeAttributes", function (node) {
    if (node.tagName === "A") { node.setAttribute("rel", "noopener noreferrer nofollow"); }
    if (node.tagName === "INPUT" && node.getAttribute("type") !== "checkbox") { node.remove(); }
  });

  function toHtml(text) { return window.DOMPurify.sanitize(md.render(text), PURIFY); }

  // --- Math and code, on any rendered answer. ---
  var copyLabel = chat.dataset.copyCode || "Copy code";
  var copiedLabel = chat.dataset.copied || "Copied";

  function enhance(root) {
    if (window.katex) {
      root.querySelectorAll(".markdown .math:not([data-typeset]), .body-preview .math:not([data-typeset])").forEach(function (element) {
        var tex = element.textContent;
        element.dataset.typeset = "";
        element.setAttribute("data-tex", tex);
        try {
          window.katex.render(tex, element, {
            displayMode: element.classList.contains("display"), throwOnError: false, output: "htmlAndMathml",
          });
        } catch (error) {
          element.textContent = tex;  // left as the TeX it was
        }
      });
    }
    root.querySelectorAll(".markdown pre, .body-preview pre").forEach(function (pre) {
      if (pre.parentElement.classList.contains("code-block")) { return; }
      var code = pre.querySelector("code");
      var language = code && /language-(\S+)/.exec(code.className);
      var block = document.createElement("div");
      block.className = "code-block";
      var bar = document.createElement("div");
      bar.className = "code-bar";
      var name = document.createElement("span");
      name.className = "code-language";
      name.textContent = language ? language[1] : "";
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-code";
      button.textContent = copyLabel;
      bar.append(name, button);
      block.kimiSource = pre.kimiSource;  // a streamed block stays while it is unchanged
      pre.replaceWith(block);
      block.append(bar, pre);
    });
  }

  chat.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy-code");
    if (!button) { return; }
    var code = button.closest(".code-block").querySelector("pre").innerText;
    navigator.clipboard.writeText(code).then(function () {
      button.textContent = copiedLabel;
      setTimeout(function () { button.textContent = copyLabel; }, 1500);
    });
  });

  // --- Streaming: re-render what changed, keeping the blocks that are already final. ---
  function preview(body) {
    var shown = body.nextElementSibling;
    if (!shown || !shown.classList.contains("body-preview")) {
      shown = document.createElement("div");
      shown.className = "body-preview";
      shown.setAttribute("aria-busy", "true");
      body.after(shown);
      body.classList.add("previewed");
    }
    var text = body.textContent;
    if (shown.dataset.length === String(text.length)) { return; }
    shown.dataset.length = String(text.length);
    var fresh = document.createElement("div");
    fresh.innerHTML = toHtml(text);
    var old = Array.from(shown.children);
    var next = Array.from(fresh.children);
    var same = 0;
    while (same < old.length && same < next.length && old[same].kimiSource === next[same].outerHTML) { same++; }
    old.slice(same).forEach(function (node) { node.remove(); });
    next.slice(same).forEach(function (node) {
      node.kimiSource = node.outerHTML;
      shown.append(node);
    });
    enhance(shown);
  }

  var scheduled = false;
  function renderStreaming() {
    scheduled = false;
    document.querySelectorAll("#messages .body.streaming").forEach(preview);
  }
  function schedule() {
    if (!scheduled) { scheduled = true; window.requestAnimationFrame(renderStreaming); }
  }

  function thread() { return document.getElementById("messages") || document; }
  document.body.addEventListener("htmx:wsAfterMessage", function () {
    schedule();
    enhance(thread());
  });
  document.body.addEventListener("htmx:afterSwap", function () { enhance(thread()); });
  enhance(document);
  renderStreaming();

  window.kimiMarkdown = { toHtml: toHtml, enhance: enhance };
})();
