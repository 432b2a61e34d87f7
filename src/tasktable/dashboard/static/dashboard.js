/* tasktable dashboard: progressive enhancement only. Every page reads and works
   without it; with it: select-all, confirmations, and live refresh of pending and
   running tasks (status, progress, times) from live.json. No inline script, no
   innerHTML: text from tasks is only ever set with textContent. */
(function () {
  "use strict";

  var FINAL = { success: true, error: true, cancelled: true };

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  /* -- selection ------------------------------------------------------------ */
  function setupSelection() {
    var master = document.querySelector("[data-select-all]");
    var label = document.querySelector("[data-selected-count]");
    function boxes() { return all('input[type=checkbox][name="ids"]'); }
    function update() {
      var checked = boxes().filter(function (b) { return b.checked; }).length;
      if (label) { label.textContent = checked ? checked + " selected:" : "With selected:"; }
      if (master) {
        var n = boxes().length;
        master.checked = n > 0 && checked === n;
        master.indeterminate = checked > 0 && checked < n;
      }
    }
    if (master) {
      master.addEventListener("change", function () {
        boxes().forEach(function (b) { b.checked = master.checked; });
        update();
      });
    }
    boxes().forEach(function (b) { b.addEventListener("change", update); });
    update();
  }

  /* -- confirmations -------------------------------------------------------- */
  function setupConfirm() {
    all("form").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var button = event.submitter;
        var message = button && button.getAttribute("data-confirm");
        if (message && !window.confirm(message)) { event.preventDefault(); }
      });
    });
  }

  /* -- live refresh --------------------------------------------------------- */
  function setText(el, text) { if (el) { el.textContent = text === null || text === undefined ? "—" : text; } }

  function setTime(cell, value) {
    if (!cell) { return; }
    if (cell.tagName !== "TD") { setText(cell, value); return; }  /* the task page */
    while (cell.firstChild) { cell.removeChild(cell.firstChild); }
    if (!value) {
      var none = document.createElement("span");
      none.className = "muted";
      none.textContent = "—";
      cell.appendChild(none);
      return;
    }
    var parts = String(value).split(" ");
    ["day", "clock"].forEach(function (name, i) {
      var span = document.createElement("span");
      span.className = name;
      span.textContent = parts[i] || "";
      cell.appendChild(span);
    });
  }

  function setBadge(el, status) {
    all('[data-field="status"]', el).forEach(function (badge) {
      if (!badge.classList.contains("badge")) { return; }
      badge.className = "badge badge-" + status;
      badge.textContent = status;
    });
  }

  function setProgress(el, info) {
    all('[data-field="progress"]', el).forEach(function (box) {
      var bar = box.querySelector("progress");
      var text = box.querySelector(".progress-text");
      if (info.done === null) { return; }
      box.classList.remove("is-empty");
      if (bar) {
        bar.className = "bar-" + info.status;
        if (info.total) { bar.max = info.total; bar.value = info.done; }
      }
      setText(text, info.total ? info.done + "/" + info.total : String(info.done));
    });
  }

  function apply(el, info) {
    var before = el.getAttribute("data-status") || "";
    var scope = el.hasAttribute("data-reload-on-change") ? document : el;  /* the task page */
    setBadge(scope, info.status);
    setProgress(scope, info);
    all('[data-field="executed_at"]', scope).forEach(function (c) { setTime(c, info.executed_at); });
    all('[data-field="finished_at"]', scope).forEach(function (c) { setTime(c, info.finished_at); });
    all('td[data-field="message"]', scope).forEach(function (c) { if (info.message !== null) { setText(c, info.message); } });
    if (el.tagName === "TR") { el.className = "row-" + info.status; }
    el.setAttribute("data-status", info.status);
    if (FINAL[info.status]) { el.removeAttribute("data-live"); }
    return before && before !== info.status;
  }

  function setupLive() {
    var body = document.body;
    var root = body.getAttribute("data-root") || "";
    var every = parseInt(body.getAttribute("data-refresh-ms") || "0", 10);
    if (!every || !window.fetch) { return; }
    all("[data-live][data-id]").forEach(function (el) {
      var badge = el.querySelector('.badge[data-field="status"]');
      if (badge) { el.setAttribute("data-status", badge.textContent.trim()); }
    });

    function tick() {
      var live = all("[data-live][data-id]");
      if (!live.length) { return; }
      if (document.hidden) { window.setTimeout(tick, every); return; }
      var ids = live.map(function (el) { return el.getAttribute("data-id"); }).slice(0, 200);
      window.fetch(root + "/live.json?ids=" + ids.join(","), {
        credentials: "same-origin", headers: { "Accept": "application/json" }
      }).then(function (response) {
        if (!response.ok) { throw new Error("live refresh: " + response.status); }
        return response.json();
      }).then(function (data) {
        var reload = false;
        live.forEach(function (el) {
          var info = data.tasks[el.getAttribute("data-id")];
          if (!info) { return; }
          var changed = apply(el, info);
          if (changed && el.hasAttribute("data-reload-on-change")) { reload = true; }
        });
        if (reload) { window.location.reload(); return; }
        window.setTimeout(tick, every);
      }).catch(function () {
        window.setTimeout(tick, every * 3);
      });
    }
    window.setTimeout(tick, every);
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSelection();
    setupConfirm();
    setupLive();
  });
})();
