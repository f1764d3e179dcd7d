/* The campaign form: show only the schedule builder's fields for the chosen preset, preview the
   schedule in words and its next three fires as you type (through the API, so the browser and
   the server never disagree), and fill the ticker list from an uploaded CSV/XLSX through the
   run form's upload preview endpoint. No inline script: the page loads this file. */
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function request(method, url, body) {
    var opts = { method: method, credentials: "same-origin",
                 headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() } };
    if (body instanceof FormData) {
      opts.body = body;
    } else {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (json) {
        if (!resp.ok) { throw new Error((json && json.error) || ("request failed (" + resp.status + ")")); }
        return json;
      });
    });
  }

  function schedule() {
    var preset = $("c-preset").value, zone = $("c-zone").value.trim() || "UTC";
    if (preset === "weekdays" || preset === "daily") {
      var m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec($("c-time").value.trim());
      if (!m) { return { error: "Time must be HH:MM (24 hours), e.g. 07:00" }; }
      return { cron: Number(m[2]) + " " + Number(m[1]) + " * * " + (preset === "weekdays" ? "1-5" : "*"),
               timezone: zone };
    }
    if (preset === "hours") { return { interval_seconds: Number($("c-hours").value) * 3600 }; }
    if (preset === "interval") { return { interval_seconds: Number($("c-minutes").value) * 60 }; }
    return { cron: $("c-cron").value, timezone: zone };
  }

  function showPreset() {
    var preset = $("c-preset").value;
    document.querySelectorAll("#schedule-builder [data-preset]").forEach(function (el) {
      el.hidden = el.getAttribute("data-preset").split(" ").indexOf(preset) < 0;
    });
  }

  var pending = null, asked = 0;
  function preview() {
    var text = $("schedule-text"), list = $("schedule-next");
    var wanted = schedule(), mine = ++asked;
    if (wanted.error) { text.textContent = wanted.error; list.textContent = ""; return; }
    request("POST", "/api/campaigns/schedule-preview", { schedule: wanted }).then(function (answer) {
      if (mine !== asked) { return; }
      text.textContent = answer.schedule_text + ". Next fires:";
      list.textContent = "";
      answer.next_fires.forEach(function (iso, i) {
        var li = document.createElement("li"), time = document.createElement("time");
        time.setAttribute("datetime", iso);
        time.textContent = answer.next_fires_local[i];     // as the campaign pages show it
        li.appendChild(time);
        list.appendChild(li);
      });
    }).catch(function (err) {
      if (mine !== asked) { return; }
      text.textContent = err.message;
      list.textContent = "";
    });
  }

  function later() {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(preview, 250);
  }

  function upload() {
    var input = $("c-file"), status = $("c-file-status");
    if (!input.files || !input.files.length) { return; }
    var data = new FormData();
    data.append("file", input.files[0]);
    status.textContent = "Reading " + input.files[0].name + "…";
    request("POST", "/api/uploads/tickers", data).then(function (found) {
      var area = $("c-tickers");
      var have = area.value.trim();
      area.value = (have ? have + "\n" : "") + found.tickers.join("\n");
      status.textContent = found.tickers.length + " tickers added from column " + found.column +
        (found.invalid && found.invalid.length ? "; skipped: " + found.invalid.join(", ") : "") + ".";
    }).catch(function (err) { status.textContent = err.message; });
  }

  function boot() {
    if (!$("campaign-form")) { return; }
    showPreset();
    ["c-preset", "c-time", "c-hours", "c-minutes", "c-cron", "c-zone"].forEach(function (id) {
      $(id).addEventListener("input", later);
      $(id).addEventListener("change", function () { showPreset(); later(); });
    });
    if ($("c-file")) { $("c-file").addEventListener("change", upload); }
    preview();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", boot); }
  else { boot(); }
})();
