// The chat page: Enter to send, clearing the composer once the server has the message,
// keeping the URL and the socket on the conversation, and catching up after a reconnect.
(function () {
  "use strict";

  var marker = function () { return document.getElementById("conversation-url"); };
  var composer = document.getElementById("composer");
  var textarea = composer.querySelector("textarea[name=message]");
  var clientId = composer.querySelector("input[name=client_id]");
  var messages = document.getElementById("messages");

  function newClientId() {
    clientId.value = window.crypto.randomUUID ? window.crypto.randomUUID()
      : String(Date.now()) + Math.random().toString(16).slice(2);
  }
  newClientId();

  // A socket opened on a new chat must reconnect to the conversation its first message made.
  var createWebSocket = htmx.createWebSocket;
  htmx.createWebSocket = function (url) {
    var ws = marker().dataset.ws;
    if (ws) { url = url.replace(/\/ws\/conversations\/[^/]+\/$/, ws); }
    return createWebSocket(url);
  };

  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
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
    if (url && url !== location.pathname) {
      history.pushState(null, "", url);
      document.title = marker().dataset.title + " · KimiChat";
    }
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

  messages.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (!button) { return; }
    var body = button.closest("article").querySelector(".body");
    navigator.clipboard.writeText(body.innerText).then(function () {
      var label = button.textContent;
      button.textContent = button.dataset.done || "✓";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  messages.scrollTop = messages.scrollHeight;
})();
