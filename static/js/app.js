// nexai dashboard: a few progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // ---- copy buttons: <button data-copy-target="id"> copies that element's text ----------
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP deployments have no Clipboard API; the old way still works there.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-target"));
    if (!source) return;
    var label = button.textContent;
    copyText(source.textContent.trim()).then(function () {
      button.classList.add("copied");
      button.textContent = button.getAttribute("data-copied-label") || "Copied";
      setTimeout(function () {
        button.classList.remove("copied");
        button.textContent = label;
      }, 1600);
    });
  });

  // ---- language picker submits itself ------------------------------------------------------
  document.querySelectorAll("[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // ---- top-up: typing an amount picks "Other" (in that amount's own form) -------------------
  document.querySelectorAll("[data-custom-amount]").forEach(function (custom) {
    custom.addEventListener("focus", function () {
      var other = custom.form && custom.form.querySelector("input[name=preset][value=custom]");
      if (other) other.checked = true;
    });
  });

  // ---- confirmation dialogs: <button data-confirm="dialog-id"> ------------------------------
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-confirm]");
    if (!opener) return;
    var dialog = document.getElementById(opener.getAttribute("data-confirm"));
    if (!dialog || typeof dialog.showModal !== "function") return; // falls back to the link
    event.preventDefault();
    dialog.showModal();
  });
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog").close();
  });

  // ---- times in the browser's own time zone: <time datetime="..." data-style="..."> ------
  var timeStyles = {
    short: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" },
    long: { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" },
    day: { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
  };
  function localTimes(root) {
    if (!window.Intl) return;
    var lang = document.documentElement.lang || undefined;
    root.querySelectorAll("time[datetime][data-style]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      var style = timeStyles[el.getAttribute("data-style")] || timeStyles.long;
      el.textContent = new Intl.DateTimeFormat(lang, style).format(when);
      el.title = when.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    });
  }
  localTimes(document);

  // ---- live overview over a websocket --------------------------------------------------------
  var live = document.querySelector("[data-live-socket]");
  if (!live || !("WebSocket" in window)) return;
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    live.getAttribute("data-live-socket");
  var refreshUrl = live.getAttribute("data-live-refresh");
  var connected = false;
  var delay = 1000;
  var lastBalance = null;
  var refreshing = null;

  function markDot() {
    document.querySelectorAll("[data-live-dot]").forEach(function (dot) {
      dot.classList.toggle("off", !connected);
    });
  }

  // The socket says the balance changed; the other cards (30 days, keys, chart, recent
  // requests) are re-rendered by the server and swapped in, so no figure is computed here.
  function refreshCards() {
    if (!refreshUrl) return;
    if (refreshing) { refreshing.again = true; return; }
    refreshing = { again: false };
    fetch(refreshUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (parts) {
        if (!parts) return;
        Object.keys(parts).forEach(function (name) {
          var target = document.querySelector('[data-live-part="' + name + '"]');
          if (target) { target.innerHTML = parts[name]; localTimes(target); }
        });
        markDot();
        document.body.setAttribute("data-live-refreshed", String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        var again = refreshing && refreshing.again;
        refreshing = null;
        if (again) refreshCards();
      });
  }

  function show(name, text) {
    document.querySelectorAll('[data-live="' + name + '"]').forEach(function (el) {
      if (el.textContent === text) return;
      el.textContent = text;
      el.classList.remove("flash");
      void el.offsetWidth; // restart the animation
      el.classList.add("flash");
    });
  }

  function connect() {
    var socket = new WebSocket(url);
    socket.onopen = function () {
      delay = 1000;
      connected = true;
      markDot();
    };
    socket.onmessage = function (message) {
      var data = JSON.parse(message.data);
      // A payment moved on (paid, cancelled, expired): the page's parts say how.
      if (data.type === "payment.update") { refreshCards(); return; }
      if (data.type !== "wallet.update") return;
      show("balance", data.balance_display);
      show("balance_credits", data.balance_credits);
      show("total_spent", data.total_spent_display);
      document.body.setAttribute("data-balance", String(data.balance));
      // The first message only repeats what the page was rendered with, unless a charge
      // landed in between; every later one is news.
      if (lastBalance !== null || data.balance !== Number(live.getAttribute("data-balance"))) {
        refreshCards();
      }
      lastBalance = data.balance;
    };
    socket.onclose = function (event) {
      connected = false;
      markDot();
      if (event.code === 4401) return; // logged out: nothing to follow
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
