// The chat page: Enter to send, clearing the composer once the server has the message,
// keeping the URL and the socket on the conversation, and catching up after a reconnect.
(function () {
  "use strict";

  var marker = function () { return document.getElementById("conversation-url"); };
  var composer = document.getElementById("composer");
  var textarea = composer.querySelector("textarea[name=message]");
  var clientId = composer.querySelector("input[name=client_id]");
  var messages = document.getElementById("messages");

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

  composer.addEventListener("htmx:wsConfigSend", function (event) {
    if (!textarea.value.trim()) { event.preventDefault(); }
    document.getElementById("composer-error").textContent = "";
  });

  var nearBottom = true;
  document.body.addEventListener("htmx:wsBeforeMessage", function () {
    nearBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  });

  document.body.addEventListener("htmx:wsAfterMessage", function () {
    // The server shows our message once it has saved it: only then is the composer cleared.
    if (document.querySelector('article[data-client-id="' + CSS.escape(clientId.value) + '"]')) {
      textarea.value = "";
      newClientId();
    }
    var url = marker().dataset.url;
    if (url && url !== location.pathname) { history.pushState(null, "", url); }
    if (marker().dataset.title) { document.title = marker().dataset.title + " · KimiChat"; }
    if (nearBottom) { messages.scrollTop = messages.scrollHeight; }
  });

  // On every (re)connect, tell the server how much of each streaming answer is on the page;
  // it sends the rest and then the live tokens.
  document.body.addEventListener("htmx:wsOpen", function (event) {
    var streaming = {};
    document.querySelectorAll('#messages article[data-state="streaming"]').forEach(function (article) {
      var body = article.querySelector(".body");
      streaming[article.id.slice(4)] = Array.from(body.textContent).length;
    });
    if (Object.keys(streaming).length) {
      event.detail.socketWrapper.send(JSON.stringify({ action: "sync", streaming: streaming }));
    }
  });

  function closeEdit(article) {
    var form = article.querySelector(".edit-form");
    form.hidden = true;
    form.querySelector("textarea").value = form.querySelector("textarea").defaultValue;
    article.classList.remove("editing");
  }

  messages.addEventListener("click", function (event) {
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
    var body = button.closest("article").querySelector(".body");
    navigator.clipboard.writeText(body.innerText).then(function () {
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

  messages.scrollTop = messages.scrollHeight;
})();
