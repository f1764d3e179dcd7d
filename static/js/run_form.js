/* TickZen run form: items (typed, uploaded, or picked), site, options -> POST /api/runs.
 *
 * Tickers are checked here before anything is sent (the server checks again): a bad one is
 * named in the form error as text and nothing is submitted. CSV files are parsed in the
 * browser; XLSX goes to POST /api/uploads/tickers. The new run then appears in the live view
 * (run_view.js) and is followed over the socket.
 */
(function (root) {
  "use strict";

  var TICKER_RE = /^\^?[A-Z][A-Z0-9.\-]{0,9}$/;
  var TICKER_HEADERS = ["ticker", "tickers", "symbol", "symbols", "stock", "code"];
  var PREVIEW_ROWS = 5;

  /* Split the textarea: commas, semicolons, whitespace or new lines. */
  function splitItems(text) {
    return String(text || "").split(/[\s,;]+/).map(function (s) { return s.trim(); })
      .filter(function (s) { return s.length > 0; });
  }

  function isTicker(s) { return TICKER_RE.test(String(s).toUpperCase()); }

  /* -> {tickers: [...unique, upper], invalid: [...as typed]} */
  function checkTickers(list) {
    var seen = {}, tickers = [], invalid = [];
    list.forEach(function (raw) {
      var t = String(raw).trim().toUpperCase();
      if (!t) return;
      if (!isTicker(t)) { invalid.push(String(raw)); return; }
      if (!seen[t]) { seen[t] = true; tickers.push(t); }
    });
    return { tickers: tickers, invalid: invalid };
  }

  /* A small RFC 4180 CSV reader (quotes, doubled quotes, CRLF). */
  function parseCsv(text) {
    var rows = [], row = [], field = "", i = 0, q = false;
    text = String(text).replace(/^\uFEFF/, "");
    while (i < text.length) {
      var ch = text[i];
      if (q) {
        if (ch === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          q = false; i++; continue;
        }
        field += ch; i++; continue;
      }
      if (ch === '"') { q = true; i++; continue; }
      if (ch === ",") { row.push(field.trim()); field = ""; i++; continue; }
      if (ch === "\r") { i++; continue; }
      if (ch === "\n") { row.push(field.trim()); rows.push(row); row = []; field = ""; i++; continue; }
      field += ch; i++;
    }
    if (field.length || row.length) { row.push(field.trim()); rows.push(row); }
    return rows;
  }

  /* Same rule as portal/run_pages.detect_ticker_column. */
  function detectTickerColumn(rows) {
    rows = rows.filter(function (r) { return r.some(function (c) { return c; }); });
    if (!rows.length) throw new Error("the file has no rows");
    var header = rows[0].map(function (c) { return String(c).toLowerCase(); });
    var col = -1, hasHeader = false, i;
    for (i = 0; i < TICKER_HEADERS.length; i++) {
      var at = header.indexOf(TICKER_HEADERS[i]);
      if (at >= 0) { col = at; hasHeader = true; break; }
    }
    if (col < 0) {
      var width = Math.max.apply(null, rows.map(function (r) { return r.length; }));
      var best = -1, bestScore = 0;
      for (i = 0; i < width; i++) {
        var values = rows.map(function (r) { return r[i]; }).filter(function (v) { return v; });
        if (!values.length) continue;
        var score = values.filter(isTicker).length / values.length;
        if (score > bestScore) { best = i; bestScore = score; }
      }
      if (best < 0 || bestScore < 0.5) {
        throw new Error("no column of tickers found (name it 'ticker' or 'symbol')");
      }
      col = best;
      hasHeader = !isTicker(rows[0][col] || "");
    }
    var body = hasHeader ? rows.slice(1) : rows;
    var checked = checkTickers(body.map(function (r) { return r[col] || ""; }));
    return {
      column: hasHeader ? rows[0][col] : null, tickers: checked.tickers,
      invalid: checked.invalid.slice(0, 20), preview: rows.slice(0, PREVIEW_ROWS + 1)
    };
  }

  function $(id) { return document.getElementById(id); }
  function text(el, s) { if (el) el.textContent = s; }
  function api(method, url, body) { return root.TickZenRunView.api(method, url, body); }

  function Form(form, view) {
    this.form = form;
    this.view = view;
    this.kind = document.getElementById("tz-run-page").getAttribute("data-kind");
    this.uploaded = null;
    this.pricesUpload = null;
    this.picked = {};            // sports: story id -> story
    var self = this;
    form.addEventListener("submit", function (ev) { ev.preventDefault(); self.submit(); });
    var file = $("items-file");
    if (file) file.addEventListener("change", function () { self.readFile(file.files[0]); });
    var use = $("upload-use");
    if (use) use.addEventListener("click", function () { self.useUpload(); });
    var source = $("data-source");
    if (source) {
      var sync = function () { $("prices-field").hidden = source.value !== "csv"; };
      source.addEventListener("change", sync);
      sync();
    }
    var prices = $("prices-file");
    if (prices) prices.addEventListener("change", function () { self.uploadPrices(prices.files); });
    var cal = $("calendar-load");
    if (cal) cal.addEventListener("click", function () { self.loadCalendar(); });
    var stories = $("stories-load");
    if (stories) stories.addEventListener("click", function () { self.loadStories(); });
  }

  Form.prototype.error = function (msg) { text($("form-error"), msg || ""); };

  /* ---- ticker files ---------------------------------------------------------------- */
  Form.prototype.readFile = function (file) {
    var self = this;
    this.uploaded = null;
    $("upload-preview").hidden = true;
    this.error("");
    if (!file) return;
    if (/\.(csv|txt)$/i.test(file.name)) {
      file.text().then(function (t) {
        try { self.showUpload(detectTickerColumn(parseCsv(t))); } catch (e) { self.error(e.message); }
      });
      return;
    }
    if (!/\.xlsx$/i.test(file.name)) { this.error("Upload a .csv or .xlsx file."); return; }
    var data = new FormData();
    data.append("file", file);
    api("POST", "/api/uploads/tickers", data).then(function (j) { self.showUpload(j); }).catch(function (e) { self.error(e.message); });
  };

  Form.prototype.showUpload = function (found) {
    this.uploaded = found;
    var table = $("upload-table");
    table.textContent = "";
    (found.preview || []).forEach(function (row, i) {
      var tr = document.createElement("tr");
      row.forEach(function (cell) {
        var td = document.createElement(i === 0 && found.column ? "th" : "td");
        td.textContent = String(cell);
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    var msg = found.tickers.length + " tickers found" +
      (found.column ? " in column \u201c" + found.column + "\u201d" : "") +
      (found.invalid && found.invalid.length ? "; ignored: " + found.invalid.join(", ") : "") + ".";
    text($("upload-summary"), msg);
    $("upload-preview").hidden = false;
  };

  Form.prototype.useUpload = function () {
    if (!this.uploaded) return;
    $("items").value = this.uploaded.tickers.join("\n");
    $("items").focus();
  };

  Form.prototype.uploadPrices = function (files) {
    var self = this;
    this.pricesUpload = null;
    if (!files || !files.length) return;
    var data = new FormData();
    data.append("file", files[0]);
    // A file without a ticker column is named by the one ticker typed (else by its file name).
    var typed = checkTickers(splitItems($("items").value)).tickers;
    if (typed.length === 1) data.append("ticker", typed[0]);
    text($("prices-status"), "Uploading…");
    api("POST", "/api/uploads/prices", data).then(function (j) {
      self.pricesUpload = j;
      var names = (j.tickers || []).map(String);
      var items = $("items");
      if (names.length && !splitItems(items.value).length) items.value = names.join("\n");
      var problems = (j.problems || []).map(String);
      text($("prices-status"), "Uploaded " + (names.length ? "prices for " + names.join(", ") : "a price file") +
        ": " + j.rows + " rows." + (problems.length ? " Repaired: " + problems.join("; ") + "." : ""));
    }).catch(function (e) { text($("prices-status"), "Not uploaded: " + e.message); });
  };

  /* ---- earnings calendar / sports stories (picked with checkboxes) ------------------ */
  function checkbox(name, value, label, checked) {
    var wrap = document.createElement("label");
    wrap.className = "tz-pick";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = name;
    box.value = value;
    box.checked = !!checked;
    wrap.appendChild(box);
    wrap.appendChild(document.createTextNode(" " + label));
    return wrap;
  }

  /* Accepts {calendar: {day: [entries]}}, {days: [{date, entries}]} or a flat list. */
  function calendarDays(j) {
    var days = {};
    var add = function (day, e) { (days[day] = days[day] || []).push(e); };
    if (j && j.calendar && !Array.isArray(j.calendar)) {
      Object.keys(j.calendar).forEach(function (d) { j.calendar[d].forEach(function (e) { add(d, e); }); });
    } else if (j && Array.isArray(j.days)) {
      j.days.forEach(function (d) { (d.entries || d.tickers || []).forEach(function (e) { add(d.date, e); }); });
    } else {
      var list = Array.isArray(j) ? j : (j.entries || j.calendar || []);
      list.forEach(function (e) { add(e.date || "", e); });
    }
    return days;
  }

  Form.prototype.loadCalendar = function () {
    var provider = $("calendar-provider").value;
    var box = $("calendar-days");
    text($("calendar-status"), "Loading…");
    api("GET", "/api/earnings/calendar?provider=" + encodeURIComponent(provider)).then(function (j) {
      var days = calendarDays(j);
      box.textContent = "";
      var keys = Object.keys(days).sort();
      keys.forEach(function (day) {
        var fs = document.createElement("fieldset");
        fs.className = "tz-day";
        var lg = document.createElement("legend");
        lg.textContent = day || "Undated";
        fs.appendChild(lg);
        days[day].forEach(function (e) {
          var t = typeof e === "string" ? e : e.ticker;
          if (!t) return;
          var label = t + (e.name ? " \u2014 " + e.name : "");
          fs.appendChild(checkbox("calendar_ticker", t, label, false));
        });
        box.appendChild(fs);
      });
      text($("calendar-status"), keys.length ? "Pick the tickers to report on." : "No earnings in the calendar.");
    }).catch(function (e) { text($("calendar-status"), e.message); });
  };

  Form.prototype.loadStories = function () {
    var self = this;
    var box = $("stories-list");
    var site = $("site");
    var from = $("stories-source");
    var url = "/api/sports/stories?source=" + encodeURIComponent(from ? from.value : "auto") +
      (site && site.value ? "&site_id=" + encodeURIComponent(site.value) : "");
    text($("stories-status"), "Loading…");
    api("GET", url).then(function (j) {
      var stories = Array.isArray(j) ? j : (j.stories || []);
      box.textContent = "";
      self.picked = {};
      stories.forEach(function (s, i) {
        var id = String(s.id || i);
        self.picked[id] = s;
        var n = s.source_count || (Array.isArray(s.sources) ? s.sources.length : 0);
        var label = (s.demo ? "[Demo] " : "") + String(s.title || id) +
          (n ? " (" + n + (n === 1 ? " source)" : " sources)") : "") +
          (s.published_on_site ? " — already on this site" : "");
        box.appendChild(checkbox("story", id, label, false));
      });
      var errs = (j.sources || []).filter(function (r) { return r.status === "error"; })
        .map(function (r) { return String(r.name || r.url) + ": " + String(r.error || "failed"); });
      var demo = j.demo ? "Demo stories (synthetic, made by TickZen; their articles are labelled demo): " +
        String(j.demo_reason || "") + ". " : "";
      text($("stories-status"), demo + (stories.length ? "Pick the stories to write up." : "No stories found.") +
        (errs.length ? " Feed problems: " + errs.join("; ") : ""));
    }).catch(function (e) { text($("stories-status"), e.message); });
  };

  /* ---- submit ------------------------------------------------------------------------ */
  Form.prototype.items = function () {
    if (this.kind === "sports") {
      var self = this;
      return Array.prototype.map.call(
        this.form.querySelectorAll('input[name="story"]:checked'),
        function (b) { return self.picked[b.value]; });
    }
    var typed = splitItems($("items").value);
    Array.prototype.forEach.call(this.form.querySelectorAll('input[name="calendar_ticker"]:checked'),
      function (b) { typed.push(b.value); });
    return typed;
  };

  Form.prototype.submit = function () {
    var self = this;
    this.error("");
    var items = this.items();
    if (this.kind !== "sports") {
      var checked = checkTickers(items);
      if (checked.invalid.length) {
        this.error("Not a valid ticker: " + checked.invalid.join(", ") +
          ". Use 1\u201310 letters, digits, '.', '-' or '^'.");
        return;
      }
      items = checked.tickers;
    }
    if (!items.length) { this.error(this.kind === "sports" ? "Pick at least one story." : "Enter at least one ticker."); return; }
    var site = $("site");
    if (!site || !site.value) { this.error("Choose a site to publish to."); return; }
    var options = {};
    var source = $("data-source");
    if (source && source.value === "csv" && !this.pricesUpload &&
        !$("prices-field").getAttribute("data-server-folder")) {
      this.error("Upload a price file (CSV) for the CSV data source, or choose another source.");
      $("prices-file").focus();
      return;
    }
    if (source) options.data_source = source.value;
    if (source && source.value === "csv" && this.pricesUpload) {
      options.csv_upload_id = this.pricesUpload.upload_id || this.pricesUpload.id;
    }
    var benchmark = $("benchmark");
    if (benchmark && benchmark.value.trim()) options.benchmark = benchmark.value.trim();
    var provider = $("calendar-provider");
    if (provider) options.provider = provider.value;
    if ($("post-status").value) options.status = $("post-status").value;
    if ($("opt-category").value.trim()) options.category = $("opt-category").value.trim();
    var tags = $("opt-tags").value.split(",").map(function (t) { return t.trim(); }).filter(Boolean);
    if (tags.length) options.tags = tags;
    var btn = $("start-run");
    btn.disabled = true;
    api("POST", "/api/runs", { kind: this.kind, site_id: site.value, items: items, options: options })
      .then(function (j) {
        btn.disabled = false;
        var id = String(j.run_id || j.id);
        var view = self.view || root.tickzenView;
        if (view) { view.focusNext = id; view.load(id); }
        var notes = j.notes || j.removed || [];
        if (notes.length) self.error(notes.join("; "));
      }).catch(function (e) { btn.disabled = false; self.error(e.message); });
  };

  function boot() {
    var form = document.getElementById("tz-run-form");
    if (!form) return null;
    return new Form(form, root.tickzenView || null);
  }

  var exported = { splitItems: splitItems, checkTickers: checkTickers, parseCsv: parseCsv,
                   detectTickerColumn: detectTickerColumn, calendarDays: calendarDays, boot: boot };
  root.TickZenRunForm = exported;
  if (typeof module !== "undefined" && module.exports) module.exports = exported;
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
    else boot();
  }
})(typeof window !== "undefined" ? window : globalThis);
