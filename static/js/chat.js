// The chat page: Enter to send, clearing the composer once the server has the message,
// keeping the URL and the socket on the conversation, and catching up after a reconnect.
(function () {
  "use strict";

  var marker = function () { return document.getElementById("conversation-url"); };
  var composer = document.getElementById("composer");
  if (!composer) { return; }  // a conversation a moderator removed
  var textarea = composer.querySelector("textarea[name=message]");
  var clientId = composer.querySelector("input[name=client_id]");
  // The server replaces #messages (Regenerate, Edit, a version flip): always look it up, and
  // listen on #chat, which stays.
  function thread() { return document.getElementById("messages"); }
  var chat = document.getElementById("chat");

  // Every send carries a fresh id, so a replayed send (a double click, htmx's queue after a
  // reconnect) is taken once.
  function uuid() {
    return window.crypto.randomUUID ? window.crypto.randomUUID()
      : String(Date.now()) + Math.random().toString(16).slice(2);
  }
  function newClientId() { clientId.value = uuid(); }
  newClientId();

  // A socket opened on a new chat must reconnect to the conversation its first message made.
  var createWebSocket = htmx.createWebSocket;
  htmx.createWebSocket = function (url) {
    var ws = marker().dataset.ws;
    if (ws) { url = url.replace(/\/ws\/conversations\/[^/]+\/$/, ws); }
    return createWebSocket(url);
  };

  // Enter sends, Shift+Enter makes a new line: in the composer and in an edited message.
  document.body.addEventListener("keydown", function (event) {
    var form = event.target.closest && event.target.closest("#composer, .edit-form");
    if (form && event.target.tagName === "TEXTAREA" && event.key === "Enter" &&
        !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  // The message box grows as it is written (CSS field-sizing does it where it is known).
  if (!window.CSS || !CSS.supports("field-sizing", "content")) {
    var grow = function () {
      textarea.style.height = "auto";
      textarea.style.height = textarea.scrollHeight + 2 + "px";
    };
    textarea.addEventListener("input", grow);
    composer.addEventListener("kimichat:sent", grow);
  }

  composer.addEventListener("htmx:wsConfigSend", function (event) {
    if (!textarea.value.trim()) { event.preventDefault(); }
    document.getElementById("composer-error").textContent = "";
  });

  // A setting the browser will not send (a temperature of 1.5): it cannot point at it in the
  // closed panel, so the panel opens on it and says what is wrong beside it.
  composer.addEventListener("invalid", function (event) {
    var field = event.target;
    var panel = field.closest("details.settings-panel");
    if (!panel) { return; }
    event.preventDefault();
    panel.open = true;
    var validity = field.validity;
    var outOfRange = validity.rangeOverflow || validity.rangeUnderflow || validity.badInput;
    var error = document.getElementById(field.id + "-error");
    if (error) {
      error.textContent = outOfRange && field.dataset.invalid ? field.dataset.invalid : field.validationMessage;
    }
    if (!document.activeElement || !document.activeElement.matches(".settings :invalid")) { field.focus(); }
  }, true);
  composer.addEventListener("input", function (event) {
    var error = event.target.id && document.getElementById(event.target.id + "-error");
    if (error && event.target.validity.valid) { error.textContent = ""; }
  });

  // A new chat's first message made the conversation: its settings and switches are saved
  // as they change from now on, as on a chat opened from the list.
  function saveSettingsHere() {
    var url = marker().dataset.settings;
    if (!url) { return; }
    ["settings", "switches"].forEach(function (id) {
      var element = document.getElementById(id);
      if (element && !element.hasAttribute("hx-post")) {
        element.setAttribute("hx-post", url);
        htmx.process(element);
      }
    });
  }

  var nearBottom = true;
  var before = null;  // the thread and its scroll position before the frame
  document.body.addEventListener("htmx:wsBeforeMessage", function () {
    var messages = thread();
    nearBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
    before = { element: messages, top: messages.scrollTop };
  });

  document.body.addEventListener("htmx:wsAfterMessage", function () {
    // The server shows our message once it has saved it: only then is the composer cleared.
    if (document.querySelector('article[data-client-id="' + CSS.escape(clientId.value) + '"]')) {
      textarea.value = "";
      newClientId();
      composer.dispatchEvent(new CustomEvent("kimichat:sent"));
    }
    var url = marker().dataset.url;
    if (url && url !== location.pathname) { history.pushState(null, "", url); }
    saveSettingsHere();
    if (marker().dataset.title) { document.title = marker().dataset.title + " · KimiChat"; }
    var messages = thread();
    if (nearBottom) {
      messages.scrollTop = messages.scrollHeight;
    } else if (before && before.element !== messages) {
      messages.scrollTop = before.top;  // a new thread element stays where the reader was
    }
  });

  // On every (re)connect, tell the server the newest message on the page (it sends the
  // thread anew if more came meanwhile) and how much of each streaming answer is on it (it
  // sends the rest and then the live tokens).
  document.body.addEventListener("htmx:wsOpen", function (event) {
    var streaming = {};
    document.querySelectorAll('#messages article[data-state="streaming"]').forEach(function (article) {
      // Each part of the answer that streams (its thinking, its body…) is marked data-part.
      var id = article.id.slice(4);
      article.querySelectorAll("[data-part]").forEach(function (part) {
        streaming[id + ":" + part.dataset.part] = Array.from(part.textContent).length;
      });
    });
    var shown = document.querySelectorAll('#messages article[id^="msg-"]');
    var last = shown.length ? shown[shown.length - 1].id.slice(4) : null;
    if (last || Object.keys(streaming).length) {
      event.detail.socketWrapper.send(JSON.stringify({ action: "sync", streaming: streaming, last: last }));
    }
  });

  // A message is on the page once: a frame that brings one again (its own frame, late,
  // after the thread was sent anew on a reconnect) is dropped. The copy already there is
  // the one tokens go to (the first with its id), and it is at least as far along.
  document.body.addEventListener("htmx:wsAfterMessage", function (event) {
    if (String(event.detail.message).indexOf("beforeend:#messages") < 0) { return; }
    var seen = {};
    thread().querySelectorAll("article[id]").forEach(function (article) {
      if (seen[article.id]) { article.remove(); } else { seen[article.id] = true; }
    });
  });

  function closeEdit(article) {
    var form = article.querySelector(".edit-form");
    form.hidden = true;
    form.querySelector("textarea").value = form.querySelector("textarea").defaultValue;
    article.classList.remove("editing");
  }

  chat.addEventListener("click", function (event) {
    if (!event.target.closest("#messages")) { return; }
    var edit = event.target.closest("button.edit");
    if (edit) {
      var article = edit.closest("article");
      var form = article.querySelector(".edit-form");
      form.querySelector("input[name=client_id]").value = uuid();
      form.hidden = false;
      article.classList.add("editing");
      form.querySelector("textarea").focus();
      return;
    }
    var cancel = event.target.closest("button.cancel-edit");
    if (cancel) { closeEdit(cancel.closest("article")); return; }
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    // An answer's text; a failed answer has none, and its reason is what is worth copying.
    var article = button.closest("article");
    var body = article.querySelector(".body");
    var error = article.querySelector(".notice.error");
    var text = body && body.innerText.trim() ? body.innerText : (error ? error.innerText : "");
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = button.dataset.done || "✓";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // A rename is saved in place: close its form.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var details = event.target.closest && event.target.closest("details.rename");
    if (details && event.detail.successful) {
      details.open = false;
      document.title = marker().dataset.title + " · KimiChat";
    }
  });

  // The connection: while it is lost (the server restarts, the network drops) the page says
  // it is reconnecting, and once it is back, that it is. A page waits at most 10 s between
  // two tries (not htmx's 64 s), still spread at random, so a restart is over for everyone
  // soon after the server is.
  htmx.config.wsReconnectDelay = function (retries) {
    return Math.min(1000 * Math.pow(2, retries), 10000) * Math.random();
  };
  var connection = document.getElementById("connection");
  var lost = false;
  var settled = null;
  document.body.addEventListener("htmx:wsClose", function (event) {
    var code = event.detail.event && event.detail.event.code;
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0) { return; }  // not to be tried again
    lost = true;
    clearTimeout(settled);
    connection.classList.remove("back");
    connection.textContent = connection.dataset.lost;
  });
  document.body.addEventListener("htmx:wsOpen", function () {
    if (!lost) { return; }
    lost = false;
    connection.classList.add("back");
    connection.textContent = connection.dataset.back;
    settled = setTimeout(function () { connection.textContent = ""; }, 5000);
  });

  // A chat opens at its end, and stays there while the page finishes laying it out (math
  // typeset, code bars added, fonts loaded: taller answers), until the reader scrolls away.
  var stick = true;
  var ours = null;  // where the thread was last: the reader scrolls up from there
  function toEnd() {
    var messages = thread();
    messages.scrollTop = messages.scrollHeight;
    ours = messages.scrollTop;
  }
  document.addEventListener("scroll", function (event) {
    var messages = thread();
    if (event.target !== messages) { return; }
    if (messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80) {
      stick = true;
    } else if (ours !== null && messages.scrollTop < ours - 1) {
      stick = false;  // up: the reader scrolled (the page only ever scrolls it down)
    }
    ours = messages.scrollTop;
  }, true);
  var resized = new ResizeObserver(function () { if (stick) { toEnd(); } });
  function watchSizes() {
    thread().querySelectorAll(":scope > *").forEach(function (child) { resized.observe(child); });
  }
  watchSizes();
  document.body.addEventListener("htmx:wsAfterMessage", watchSizes);
  document.body.addEventListener("htmx:afterSwap", watchSizes);
  toEnd();
})();

// Files: attach (picker, drop, paste) with a progress bar per file, and `@` suggestions. The
// requests are htmx's (templates/uploads/_upload_chip.html, the listbox's hx-get); this gives
// them what htmx cannot take by itself: a dropped or pasted file, the `@word` before the caret.
(function () {
  "use strict";

  var composer = document.getElementById("composer");
  if (!composer) { return; }
  var textarea = composer.querySelector("textarea[name=message]");
  var attachments = document.getElementById("attachments");
  var status = document.getElementById("composer-status");
  var picker = document.getElementById("attach");
  var chipTemplate = document.getElementById("upload-chip");
  var suggestions = document.getElementById("file-suggestions");
  var uploading = 0;
  var sendWhenUploaded = false;

  // A file read while the socket was not connected (the page was loading, the network
  // dropped) had its news sent to no one: ask for the status of every file still shown as
  // being read, on each (re)connect and whenever a chip arrives.
  var socket = null;
  function askStatuses() {
    var ids = [];
    document.querySelectorAll(".file-status.processing").forEach(function (element) {
      var match = element.className.match(/file-status-(\d+)/);
      if (match && ids.indexOf(match[1]) < 0) { ids.push(match[1]); }
    });
    if (socket && ids.length) { socket.send(JSON.stringify({ action: "statuses", files: ids })); }
  }
  document.body.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    askStatuses();
  });
  document.body.addEventListener("htmx:wsClose", function () { socket = null; });
  var early = {};  // file id -> a status that came before its chip

  document.body.addEventListener("htmx:oobErrorNoTarget", function (event) {
    var content = event.detail.content;
    var match = content && /file-status-(\d+)/.exec(content.className || "");
    if (match) {
      content.removeAttribute("hx-swap-oob");
      early[match[1]] = content;
    }
  });

  function showError(text) {
    var error = document.getElementById("composer-error");
    error.textContent = error.textContent ? error.textContent + " " + text : text;
  }

  // Refused here (too large) or never answered (the connection was lost): the chip says so
  // as a refused chip from the server does.
  function fail(chip, text) {
    chip.removeAttribute("hx-post");  // never (again) posted
    chip.classList.remove("uploading");
    chip.classList.add("failed");
    chip.querySelector("progress").remove();
    chip.querySelector(".remove-file").hidden = false;
    chip.title = text;
    showError(text);
  }

  function uploaded() {
    uploading -= 1;
    if (!uploading && sendWhenUploaded) {
      sendWhenUploaded = false;
      status.textContent = "";
      composer.requestSubmit();
    }
  }

  function upload(file) {
    var chip = chipTemplate.content.firstElementChild.cloneNode(true);
    var bar = chip.querySelector("progress");
    var remove = chip.querySelector(".remove-file");
    chip.querySelector(".file-name").textContent = file.name;
    bar.setAttribute("aria-label", file.name);
    remove.setAttribute("aria-label", remove.getAttribute("aria-label").replace("{name}", file.name));
    attachments.append(chip);
    if (file.size > Number(composer.dataset.maxBytes)) {
      fail(chip, composer.dataset.tooLarge.replace("{name}", file.name));
      return;
    }
    uploading += 1;
    chip.addEventListener("htmx:configRequest", function (event) {
      event.detail.parameters.file = file;
    });
    chip.addEventListener("htmx:xhr:progress", function (event) {
      // Upload, then download: the bar only moves forward.
      if (event.detail.lengthComputable) {
        bar.value = Math.max(bar.value, Math.round(100 * event.detail.loaded / event.detail.total));
      }
    });
    chip.addEventListener("htmx:beforeSwap", function (event) {
      // A refusal (400) is an answer: its chip and its reason are shown.
      if (event.detail.xhr.status === 400) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
    });
    chip.addEventListener("htmx:afterRequest", function () {
      // Answered, the chip was swapped for the answer; still here, there was none.
      if (chip.isConnected) { fail(chip, composer.dataset.lost.replace("{name}", file.name)); }
      uploaded();
    });
    htmx.process(chip);  // hx-trigger="load": it posts now
  }

  // A file's chip arrived: once only (the same bytes attached twice are one file), with any
  // status that came before it.
  attachments.addEventListener("htmx:load", function (event) {
    var saved = event.target;
    var id = saved.dataset && saved.dataset.fileId;
    if (!id) { return; }
    if (attachments.querySelectorAll('[data-file-id="' + id + '"]').length > 1) {
      saved.remove();
      return;
    }
    if (early[id]) {
      saved.querySelector(".file-status").replaceWith(early[id]);
      htmx.process(early[id]);
      delete early[id];
    }
    askStatuses();
  });

  function uploadAll(files) {
    document.getElementById("composer-error").textContent = "";
    Array.from(files).forEach(upload);
  }

  picker.addEventListener("change", function () {
    uploadAll(picker.files);
    picker.value = "";
  });

  var main = composer.closest("main");
  main.addEventListener("dragover", function (event) {
    if (event.dataTransfer && Array.from(event.dataTransfer.types).indexOf("Files") >= 0) {
      event.preventDefault();
      main.classList.add("dropping");
    }
  });
  main.addEventListener("dragleave", function (event) {
    if (!main.contains(event.relatedTarget)) { main.classList.remove("dropping"); }
  });
  main.addEventListener("drop", function (event) {
    main.classList.remove("dropping");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      event.preventDefault();
      uploadAll(event.dataTransfer.files);
    }
  });
  textarea.addEventListener("paste", function (event) {
    var files = event.clipboardData && event.clipboardData.files;
    if (files && files.length) {
      event.preventDefault();
      uploadAll(files);
    }
  });

  attachments.addEventListener("click", function (event) {
    var remove = event.target.closest(".remove-file");
    if (remove) { remove.closest(".file-chip").remove(); }
  });

  // A message sent while its files upload goes once they are all in.
  composer.addEventListener("htmx:wsConfigSend", function (event) {
    if (uploading) {
      event.preventDefault();
      sendWhenUploaded = true;
      status.textContent = composer.dataset.waiting;
    }
  });
  // The server has the message once it shows it: the attachments went with it.
  composer.addEventListener("kimichat:sent", function () { attachments.replaceChildren(); });

  // `@` suggestions: the listbox asks (hx-get) for the teams and files whose names contain
  // what follows the `@` before the caret; the server answers with the options.
  var active = -1;

  function mention() {
    var before = textarea.value.slice(0, textarea.selectionStart);
    var match = /(^|\s)@([^\s@]*)$/.exec(before);
    return match ? { start: before.length - match[2].length - 1, query: match[2] } : null;
  }

  function options() { return suggestions.children; }

  function close() {
    htmx.trigger(suggestions, "htmx:abort");  // an answer on its way is not shown
    suggestions.hidden = true;
    suggestions.replaceChildren();
    active = -1;
    textarea.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    active = index;
    Array.from(options()).forEach(function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    if (index >= 0) { textarea.setAttribute("aria-activedescendant", options()[index].id); }
  }

  function pick(index) {
    var at = mention();
    var option = options()[index];
    if (!at || !option) { close(); return; }
    var reference = option.dataset.reference + " ";
    var value = textarea.value;
    textarea.value = value.slice(0, at.start) + reference + value.slice(textarea.selectionStart);
    var caret = at.start + reference.length;
    textarea.setSelectionRange(caret, caret);
    close();
    textarea.focus();
  }

  textarea.addEventListener("input", function () {
    var at = mention();
    if (!at) { close(); return; }
    htmx.trigger(suggestions, "kimichat:mention", { query: at.query });
  });
  suggestions.addEventListener("htmx:configRequest", function (event) {
    event.detail.parameters.q = event.detail.triggeringEvent.detail.query;
  });
  suggestions.addEventListener("htmx:afterSwap", function () {
    if (!mention()) { close(); return; }  // the `@word` is gone meanwhile
    suggestions.hidden = !options().length;
    highlight(options().length ? 0 : -1);
  });

  suggestions.addEventListener("mousedown", function (event) {
    var option = event.target.closest("[role=option]");
    if (!option) { return; }
    event.preventDefault();
    pick(Array.prototype.indexOf.call(options(), option));
  });

  textarea.addEventListener("keydown", function (event) {
    if (suggestions.hidden) { return; }
    var count = options().length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      var step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + count) % count);
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      event.preventDefault();
      event.stopPropagation(); // not a send
      pick(active);
    } else if (event.key === "Escape") {
      event.preventDefault();  // closes the suggestions only, does not stop an answer
      close();
    }
  });
  textarea.addEventListener("blur", close);
})();

// Report: a dialog asks why; once the report is taken, the button says so.
(function () {
  "use strict";

  var dialog = document.getElementById("report-dialog");
  if (!dialog) { return; }

  document.getElementById("chat").addEventListener("click", function (event) {
    var button = event.target.closest("#messages button.report");
    if (!button) { return; }
    var form = dialog.querySelector("form");
    form.querySelector("input[name=message]").value = button.dataset.messageId;
    form.querySelector("textarea[name=reason]").value = "";
    var errors = form.querySelector(".errors");
    if (errors) { errors.remove(); }
    dialog.showModal();
    form.querySelector("textarea[name=reason]").focus();
  });
  dialog.addEventListener("click", function (event) {
    if (event.target.closest("button.cancel-report")) { dialog.close(); }
  });
  document.body.addEventListener("kimichat:reported", function (event) {
    dialog.close();
    var article = document.getElementById("msg-" + event.detail.message);
    var button = article && article.querySelector("button.report");
    if (button) {
      button.textContent = dialog.dataset.reported;
      button.disabled = true;
    }
    document.getElementById("composer-status").textContent = event.detail.text;
  });
})();

// Kimi's thinking and switches: the Thinking section folds when the answer begins (the server
// says so with "Thought for N s"), and the composer's switches follow the model picked.
(function () {
  "use strict";

  document.body.addEventListener("htmx:oobAfterSwap", function (event) {
    var target = event.target;
    if (target.id && /-thinking-time$/.test(target.id)) {
      var section = target.closest("details.thinking");
      if (section) { section.open = false; }
    }
  });

  var switches = document.getElementById("switches");
  var model = document.getElementById("id_model");
  if (!switches || !model) { return; }
  var modes = JSON.parse(switches.dataset.thinking || "{}");
  var thinking = switches.querySelector("input[name=thinking]");
  var label = switches.querySelector("[data-switch=thinking]");
  var effort = switches.querySelector("[data-switch=effort]");

  // A model that always thinks shows it on, fixed (still sent, so the choice for other
  // models is kept); one that never thinks hides the switch. Effort shows for a model that
  // takes one; temperature and top p are read-only, with the reason, for one that fixes them.
  function about() { return modes[model.value] || {}; }
  function mode() { return about().thinking || "never"; }
  function follow() {
    if (thinking.dataset.chosen === undefined) { thinking.dataset.chosen = thinking.checked ? "on" : ""; }
    label.hidden = mode() === "never";
    thinking.setAttribute("aria-disabled", mode() === "always" ? "true" : "false");
    thinking.checked = mode() === "always" || thinking.dataset.chosen === "on";
    if (effort) { effort.hidden = !about().effort; }
    var search = switches.querySelector("[data-switch=search]");
    var searchNote = switches.querySelector("[data-note=search]");
    if (search) { search.hidden = about().search === false; }
    if (searchNote) { searchNote.hidden = about().search !== false; }
    var fixed = !!about().fixed;
    var note = document.querySelector("#settings .fixed-note");
    if (note) { note.hidden = !fixed; }
    ["id_temperature", "id_top_p"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) { input.readOnly = fixed; input.setAttribute("aria-disabled", fixed ? "true" : "false"); }
    });
  }
  thinking.addEventListener("click", function (event) {
    if (mode() === "always") { event.preventDefault(); }
  });
  thinking.addEventListener("change", function () { thinking.dataset.chosen = thinking.checked ? "on" : ""; });
  model.addEventListener("change", follow);
  document.body.addEventListener("htmx:afterSwap", follow);  // the settings panel, saved anew
  follow();
})();

// Phones: the conversation list is a drawer ("Conversations"), the settings a sheet ("Done").
(function () {
  "use strict";

  var chat = document.getElementById("chat");
  var toggle = document.querySelector(".drawer-toggle");
  if (!chat || !toggle) { return; }

  function drawer(open) {
    chat.classList.toggle("drawer-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var first = document.querySelector("#sidebar a, #sidebar input");
      if (first) { first.focus(); }
    }
  }
  toggle.addEventListener("click", function () { drawer(!chat.classList.contains("drawer-open")); });
  chat.addEventListener("click", function (event) {
    if (event.target.closest("[data-close-drawer]")) { drawer(false); }
    var done = event.target.closest(".sheet-close");
    if (done) { done.closest("details").open = false; }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && chat.classList.contains("drawer-open")) {
      event.preventDefault();
      drawer(false);
      toggle.focus();
    }
  });
})();

// Times in the reader's time zone (the server writes UTC), the full date on hover; and the
// keyboard: Esc stops an answer, Ctrl/⌘+K searches, Ctrl/⌘+Shift+O starts a new chat.
(function () {
  "use strict";

  var today = new Date().toDateString();
  function localTimes() {
    document.querySelectorAll("time[datetime]:not([data-local])").forEach(function (element) {
      var when = new Date(element.getAttribute("datetime"));
      if (isNaN(when)) { return; }
      element.dataset.local = "";
      var lang = document.documentElement.lang || undefined;
      element.textContent = when.toDateString() === today
        ? when.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" })
        : when.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
      element.title = when.toLocaleString(lang, { dateStyle: "full", timeStyle: "long" });
    });
  }
  localTimes();
  document.body.addEventListener("htmx:wsAfterMessage", localTimes);
  document.body.addEventListener("htmx:afterSwap", localTimes);

  var chat = document.getElementById("chat");
  if (!chat) { return; }
  document.addEventListener("keydown", function (event) {
    var mod = event.ctrlKey || event.metaKey;
    if (mod && !event.shiftKey && event.key.toLowerCase() === "k") {
      var search = document.querySelector("#sidebar input[type=search]");
      if (!search) { return; }
      event.preventDefault();
      var toggle = document.querySelector(".drawer-toggle");
      if (toggle && getComputedStyle(toggle).display !== "none" && !chat.classList.contains("drawer-open")) {
        toggle.click();  // on a phone the list is a drawer: open it first
      }
      search.focus();
      search.select();
    } else if (mod && event.shiftKey && event.key.toLowerCase() === "o") {
      event.preventDefault();
      window.location.assign(document.querySelector("#sidebar .new-chat").href);
    } else if (event.key === "Escape" && !event.defaultPrevented && !event.isComposing) {
      // Not while Esc closes something else (a dialog, the drawer, the suggestions).
      if (document.querySelector("dialog[open]") || chat.classList.contains("drawer-open")) { return; }
      var stop = document.getElementById("stop-form");
      if (stop && document.querySelector('#messages article[data-state="streaming"]')) {
        event.preventDefault();
        stop.requestSubmit();
      }
    }
  });
})();

// The conversation list in runs of days: Today, Yesterday, Previous 7 days, Older, by when
// each was last written to, in the browser's time zone. Redone whenever the list changes
// (a search, a new chat, the next page loaded as it scrolls).
(function () {
  "use strict";

  function day(date) { return new Date(date.getFullYear(), date.getMonth(), date.getDate()); }
  function group(list, when) {
    var days = Math.round((day(new Date()) - day(when)) / 86400000);
    if (days <= 0) { return list.dataset.today; }
    if (days === 1) { return list.dataset.yesterday; }
    if (days <= 7) { return list.dataset.week; }
    return list.dataset.older;
  }
  function heads() {
    var list = document.getElementById("conversation-list");
    if (!list || !list.dataset.today) { return; }
    list.querySelectorAll(":scope > li.group").forEach(function (head) { head.remove(); });
    var last = null;
    list.querySelectorAll(":scope > li[data-updated]").forEach(function (item) {
      var when = new Date(item.dataset.updated);
      if (isNaN(when)) { return; }
      var name = item.hasAttribute("data-pinned") ? list.dataset.pinned : group(list, when);
      if (name === last) { return; }
      last = name;
      var head = document.createElement("li");
      head.className = "group";
      var heading = document.createElement("h2");
      heading.textContent = name;
      head.append(heading);
      item.before(head);
    });
  }
  heads();
  document.body.addEventListener("htmx:afterSettle", heads);
  // A new chat comes on top of the list: below the pinned ones.
  document.body.addEventListener("htmx:wsAfterMessage", function () {
    var list = document.getElementById("conversation-list");
    var added = list && list.querySelector(":scope > li[data-updated]:first-child");
    if (!added) { return; }
    var pinned = list.querySelectorAll(":scope > li[data-pinned]");
    if (pinned.length && !added.hasAttribute("data-pinned")) { pinned[pinned.length - 1].after(added); }
    heads();
  });
})();
