/* TickZen live run view.
 *
 * State = the server's snapshot + automation_progress events applied in seq order.
 * - Every run keeps two cursors: stateSeq (the seq its status/percent/items reflect) and
 *   logSeq (the last event shown in its log). An event with seq <= logSeq is a duplicate.
 * - Out-of-order events wait in a buffer while a `replay` from logSeq fills the gap.
 * - On (re)connect the server sends automation_snapshot; we apply it (only when it is not
 *   older than what we hold) and then ask `replay {automation_id, after_seq: logSeq}` for
 *   every visible run, which rebuilds the log and catches up missed events.
 * - Nothing from the server is ever parsed as HTML: text goes through textContent, links
 *   through a checked href.
 * Two tabs of one user stay in step because both just follow the server.
 */
(function (root) {
  "use strict";

  var STAGE_BAR = {
    initializing: "bg-info", processing: "bg-primary", resumed: "bg-primary",
    publishing: "bg-warning", complete: "bg-success", error: "bg-danger",
    paused: "bg-secondary", cancelled: "bg-secondary"
  };
  var STATUS_BAR = {
    queued: "bg-info", running: "bg-primary", pausing: "bg-secondary", paused: "bg-secondary",
    interrupted: "bg-secondary", completed: "bg-success", cancelled: "bg-secondary",
    failed: "bg-danger"
  };
  var STATUS_TEXT = {
    queued: "Queued", running: "Running", pausing: "Pausing…", paused: "Paused",
    interrupted: "Interrupted", completed: "Completed", cancelled: "Cancelled", failed: "Failed"
  };
  var ITEM_TEXT = {
    pending: "Pending", processing: "Processing…", publishing: "Publishing…",
    published: "Published", skipped: "Skipped", failed: "Failed"
  };
  var ITEM_ICON = {
    pending: "○", processing: "◐", publishing: "↑", published: "✓", skipped: "–",
    failed: "✗"
  };
  var ITEM_DONE = { published: true, skipped: true };     // never processed again
  var RUN_FINAL = { completed: true, cancelled: true, failed: true };
  var GAP_WAIT_MS = 2000;
  var REPORT_WAIT_MS = 400;
  var CONTROL_ANSWER_MS = 8000;    // a pause/resume/cancel not acknowledged by then was lost
  var LOG_MAX = 1000;

  function num(v, dflt) { return typeof v === "number" && isFinite(v) ? v : dflt; }

  /* ------------------------------------------------------------------------------------
   * RunModel: one run's state machine, no DOM.
   */
  function RunModel(data) {
    this.id = String(data.run_id || data.id);
    this.kind = data.kind || "";
    this.status = "queued";
    this.percent = 0;
    this.items = [];
    this.counts = {};
    this.total = 0;
    this.stage = null;
    this.message = "";
    this.error = null;
    this.stateSeq = -1;
    this.logSeq = 0;
    this.log = [];
    this.pending = {};          // seq -> event waiting for a gap to fill
    this.gapTimer = null;
    this.campaignId = null;     // the campaign whose fire started the run, and its name
    this.campaignName = null;
    this.replace(data);
  }

  /* Replace status/percent/items by a server view, unless we already hold a newer one. */
  RunModel.prototype.replace = function (data) {
    var seq = num(data.last_seq, 0);
    // Retention removed the events up to events_pruned_seq (a view without it: last_seq):
    // there is nothing up to it to replay; a retry's events follow it.
    var pruned = num(data.events_pruned_seq, data.events_pruned_at ? seq : 0);
    if (pruned) this.logSeq = Math.max(this.logSeq, pruned);
    if (data.campaign_id) {
      this.campaignId = String(data.campaign_id);
      if (data.campaign_name !== undefined) this.campaignName = data.campaign_name ? String(data.campaign_name) : null;
    }
    this.mergeReports(data.items);
    if (seq < this.stateSeq) return false;
    this.kind = data.kind || this.kind;
    this.status = data.status || this.status;
    this.percent = Math.max(this.percent, num(data.percent, 0));   // never goes down in a run
    if (data.error !== undefined) this.error = data.error;
    if (Array.isArray(data.items)) {
      var old = {};
      this.items.forEach(function (it) { old[it.key] = it; });
      this.items = data.items.map(function (it, i) {
        var prev = old[it.key] || {};
        return {
          key: String(it.key), position: num(it.position, i),
          label: it.label || prev.label || it.key,
          status: it.status || "pending", post_id: it.post_id || null,
          post_url: it.post_url || null, error: it.error || null,
          report_url: it.report_url || prev.report_url || null,
          // who wrote it ("template" | "llm:<model>") and why the template did, once written
          writer: it.writer || prev.writer || null,
          writer_note: String(it.writer ? it.writer_note || "" : prev.writer_note || "")
        };
      });
    }
    this.total = num(data.total, this.items.length);
    this.stateSeq = seq;
    this.recount();
    return true;
  };

  /* Report links only ever appear (an item's report page stays once written), so they are
     taken from any server view, even one older than the state we hold. */
  RunModel.prototype.mergeReports = function (items) {
    if (!Array.isArray(items)) return;
    var byKey = {};
    items.forEach(function (it) { if (it && it.report_url) byKey[String(it.key)] = it.report_url; });
    this.items.forEach(function (it) { if (byKey[it.key]) it.report_url = byKey[it.key]; });
  };

  /* Finished items whose report link the server has not told us yet. */
  RunModel.prototype.missingReports = function () {
    return this.items.some(function (it) {
      return (it.status === "published" || it.status === "skipped") && !it.report_url;
    });
  };

  RunModel.prototype.recount = function () {
    var c = {};
    this.items.forEach(function (it) { c[it.status] = (c[it.status] || 0) + 1; });
    this.counts = c;
  };

  /* The item an event is about: by key, then by index (the item's 0-based position), then
     by label (ticker / item). */
  RunModel.prototype.findItem = function (d) {
    if (!d) return null;
    var i;
    if (d.key) {
      for (i = 0; i < this.items.length; i++) if (this.items[i].key === d.key) return this.items[i];
    }
    var pos = typeof d.index === "number" ? d.index : d.position;
    if (typeof pos === "number") {
      for (i = 0; i < this.items.length; i++) if (this.items[i].position === pos) return this.items[i];
    }
    var name = d.item || d.ticker || d.label;
    if (typeof name === "string" && name) {
      var up = name.toUpperCase();
      for (i = 0; i < this.items.length; i++) {
        if (String(this.items[i].label).toUpperCase() === up) return this.items[i];
      }
    }
    return null;
  };

  /* Take one event. Returns "applied" | "duplicate" | "buffered". */
  RunModel.prototype.receive = function (evt) {
    var seq = evt.seq;
    if (typeof seq !== "number") { this.accept(evt); return "applied"; }
    if (seq <= this.logSeq || this.pending[seq]) return "duplicate";
    if (seq > this.logSeq + 1) { this.pending[seq] = evt; return "buffered"; }
    this.accept(evt);
    this.drain();
    return "applied";
  };

  RunModel.prototype.drain = function () {
    while (this.pending[this.logSeq + 1]) {
      var next = this.pending[this.logSeq + 1];
      delete this.pending[this.logSeq + 1];
      this.accept(next);
    }
  };

  RunModel.prototype.hasGap = function () {
    for (var k in this.pending) if (Object.prototype.hasOwnProperty.call(this.pending, k)) return true;
    return false;
  };

  /* Give up waiting for a gap that no replay filled: take the buffered events as they are. */
  RunModel.prototype.skipGap = function () {
    var seqs = Object.keys(this.pending).map(Number).sort(function (a, b) { return a - b; });
    if (!seqs.length) return;
    this.logSeq = seqs[0] - 1;
    this.drain();
  };

  RunModel.prototype.accept = function (evt) {
    var seq = evt.seq;
    this.log.push({
      seq: seq, stage: String(evt.stage || ""), message: String(evt.message || ""),
      timestamp: evt.timestamp || null
    });
    if (this.log.length > LOG_MAX) this.log.splice(0, this.log.length - LOG_MAX);
    if (typeof seq === "number") this.logSeq = Math.max(this.logSeq, seq);
    if (typeof seq !== "number" || seq > this.stateSeq) {
      this.apply(evt);
      if (typeof seq === "number") this.stateSeq = seq;
    }
  };

  /* Fold one event into status, percent and item states. */
  RunModel.prototype.apply = function (evt) {
    var d = evt.data || {};
    var stage = evt.stage;
    var item = this.findItem(d);
    if (typeof evt.percent === "number") this.percent = Math.max(this.percent, evt.percent);
    this.stage = stage;
    this.message = String(evt.message || "");
    var moving = this.status === "pausing" ? "pausing" : "running";
    switch (stage) {
      case "initializing":
      case "resumed":
        this.status = "running";
        break;
      case "processing":
      case "publishing":
        if (this.status !== "paused") this.status = moving;
        if (item && !ITEM_DONE[item.status]) { item.status = stage; item.error = null; }
        break;
      case "paused":
      case "cancelled":
        // The worker puts an item it stopped in the middle of back to pending.
        this.status = stage;
        this.items.forEach(function (it) { if (it.status === "processing") it.status = "pending"; });
        break;
      case "complete":
        this.status = "completed";
        this.percent = Math.max(this.percent, num(evt.percent, 100));
        break;
      case "error":
        if (item) {
          item.status = "failed";
          item.error = String(d.error || evt.message || "failed");
        } else if (d.recoverable !== true) {
          this.status = "failed";
          this.error = String(d.error || evt.message || "failed");
        }
        break;
    }
    if (item && d.success === true) {
      item.status = d.skipped ? "skipped" : "published";
      item.error = null;
      if (d.post_id !== undefined && d.post_id !== null) item.post_id = String(d.post_id);
      if (d.post_url) item.post_url = String(d.post_url);
      if (d.writer) { item.writer = String(d.writer); item.writer_note = String(d.writer_note || ""); }
    } else if (item && d.success === false) {
      item.status = "failed";
      item.error = String(d.error || evt.message || "failed");
    }
    this.recount();
  };

  /* The buttons the server's state allows. */
  RunModel.prototype.controls = function () {
    var s = this.status;
    return {
      pause: s === "running" || s === "queued",
      resume: s === "paused" || s === "interrupted",
      cancel: !RUN_FINAL[s],
      retry: !!RUN_FINAL[s] && ((this.counts.failed || 0) > 0 ||
        // the server also retries the unfinished items of a failed or cancelled run
        (s !== "completed" && this.unfinished() > 0))
    };
  };

  RunModel.prototype.unfinished = function () {
    var c = this.counts;
    return (c.pending || 0) + (c.processing || 0) + (c.publishing || 0);
  };

  /* ------------------------------------------------------------------------------------
   * DOM helpers: text only.
   */
  function safeHref(url) {
    if (!url || typeof url !== "string") return null;
    try {
      var u = new URL(url, root.location.href);
      return (u.protocol === "http:" || u.protocol === "https:") ? u.href : null;
    } catch (e) { return null; }
  }

  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function api(method, url, body) {
    var opts = {
      method: method, credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() }
    };
    if (typeof FormData !== "undefined" && body instanceof FormData) {
      opts.body = body;                    // a file upload: the browser sets the multipart type
    } else if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (json) {
        if (!resp.ok) {
          var msg = (json && json.error) || ("request failed (" + resp.status + ")");
          if (json && Array.isArray(json.details) && json.details.length) {
            msg += ": " + json.details.map(String).join("; ");
          }
          var err = new Error(msg);
          err.status = resp.status;
          throw err;
        }
        return json;
      });
    });
  }

  /* A log line's time in the account's zone, named as the server names it
     (static/js/local_time.js); UTC where that script is absent. */
  var clock = null;
  function timeText(ts) {
    if (!ts) return "";
    if (!clock) {
      clock = root.TZTime ? root.TZTime.pageClock() : null;
      if (!clock) {
        var d = new Date(ts);
        return isNaN(d.getTime()) ? "" : d.toISOString().slice(11, 19) + " UTC";
      }
    }
    return clock.timeOfDay(ts);
  }

  /* ------------------------------------------------------------------------------------
   * RunPanel: renders one RunModel into a cloned <template>.
   */
  function RunPanel(model, view) {
    this.model = model;
    this.view = view;
    var tpl = document.getElementById("tz-run-template");
    this.el = tpl.content.firstElementChild.cloneNode(true);
    this.el.setAttribute("data-run-id", model.id);
    this.el.setAttribute("aria-label", "Run " + model.id);
    this.q = function (sel) { return this.el.querySelector(sel); };
    this.cards = {};
    this.logCount = 0;
    var self = this;
    this.el.querySelectorAll("[data-action]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        view.control(self.model, btn.getAttribute("data-action"), btn);
      });
    });
    if (view.mode === "dashboard") this.q(".tz-log-wrap").open = false;
    var open = this.q(".tz-run-open");
    open.href = "/runs/" + encodeURIComponent(model.id);
    if (view.mode === "run") open.hidden = true;
  }

  RunPanel.prototype.render = function () {
    var m = this.model;
    var title = (m.kind ? m.kind.charAt(0).toUpperCase() + m.kind.slice(1) : "Run") +
      " run · " + m.items.length + (m.items.length === 1 ? " item" : " items");
    setText(this.q(".tz-run-title"), title);
    var campaign = this.q(".tz-run-campaign");
    campaign.hidden = !m.campaignId;
    setText(campaign, m.campaignId ? "Campaign: " + (m.campaignName || "a deleted campaign") : "");
    this.el.setAttribute("data-status", m.status);
    var badge = this.q(".tz-run-status");
    setText(badge, STATUS_TEXT[m.status] || m.status);
    badge.setAttribute("data-status", m.status);

    var bar = this.q(".tz-progress-bar");
    var pct = Math.max(0, Math.min(100, Math.round(m.percent)));
    bar.style.width = pct + "%";
    bar.setAttribute("aria-valuenow", String(pct));
    bar.setAttribute("aria-valuetext", pct + "% · " + (STATUS_TEXT[m.status] || m.status));
    var colour = (m.status === "running" && STAGE_BAR[m.stage]) ? STAGE_BAR[m.stage]
      : (STATUS_BAR[m.status] || STAGE_BAR[m.stage] || "bg-info");
    if (m.status === "completed" && (m.counts.failed || 0) > 0) colour = "bg-warning";
    bar.className = "tz-progress-bar " + colour;
    bar.setAttribute("data-stage", m.stage || m.status);
    setText(this.q(".tz-progress-label"), pct + "%");

    setText(this.q(".tz-run-message"), m.message || "");
    var c = m.counts, parts = [];
    ["published", "failed", "skipped", "processing", "publishing", "pending"].forEach(function (k) {
      if (c[k]) parts.push(c[k] + " " + k);
    });
    setText(this.q(".tz-run-counts"), parts.join(" · "));
    setText(this.q(".tz-run-error"), m.status === "failed" && m.error ? m.error : (this.notice || ""));

    var allowed = m.controls();
    this.el.querySelectorAll("[data-action]").forEach(function (btn) {
      var action = btn.getAttribute("data-action");
      var ok = !!allowed[action];
      btn.hidden = !ok && (action === "resume" || action === "retry" ||
                           (action === "pause" && allowed.resume));
      if (!btn.hasAttribute("aria-busy")) btn.disabled = !ok;
    });
    this.renderCards();
    this.renderLog();
  };

  RunPanel.prototype.renderCards = function () {
    var list = this.q(".tz-cards");
    var tpl = document.getElementById("tz-card-template");
    var self = this;
    this.model.items.forEach(function (it) {
      var card = self.cards[it.key];
      if (!card) {
        card = tpl.content.firstElementChild.cloneNode(true);
        card.setAttribute("data-key", it.key);
        card.querySelector(".tz-card-retry").addEventListener("click", function (ev) {
          self.view.control(self.model, "retry", ev.currentTarget);
        });
        self.cards[it.key] = card;
        list.appendChild(card);
      }
      card.setAttribute("data-status", it.status);
      setText(card.querySelector(".tz-card-icon"), ITEM_ICON[it.status] || "•");
      setText(card.querySelector(".tz-card-label"), String(it.label));
      setText(card.querySelector(".tz-card-status"), ITEM_TEXT[it.status] || it.status);
      var link = card.querySelector(".tz-card-link");
      var href = it.status === "published" || it.status === "skipped" ? safeHref(it.post_url) : null;
      link.hidden = !href;
      if (href) {
        link.href = href;
        link.setAttribute("aria-label", "View post for " + it.label);
      } else {
        link.removeAttribute("href");
      }
      var report = card.querySelector(".tz-card-report");
      var reportHref = typeof it.report_url === "string" && /^\/runs\//.test(it.report_url) &&
        (it.status === "published" || it.status === "skipped") ? it.report_url : null;
      report.hidden = !reportHref;
      if (reportHref) {
        report.href = reportHref;
        report.setAttribute("aria-label", "Report for " + it.label);
      } else {
        report.removeAttribute("href");
      }
      setText(card.querySelector(".tz-card-error"), it.status === "failed" ? (it.error || "") : "");
      var written = it.writer && (it.status === "published" || it.status === "skipped");
      setText(card.querySelector(".tz-card-writer"), written ? "Written by " + it.writer : "");
      setText(card.querySelector(".tz-card-writer-note"), written ? it.writer_note : "");
      var retry = card.querySelector(".tz-card-retry");
      retry.hidden = !(it.status === "failed" && RUN_FINAL[self.model.status]);
      retry.setAttribute("aria-label", "Retry " + it.label);
    });
  };

  RunPanel.prototype.renderLog = function () {
    var log = this.model.log;
    var list = this.q(".tz-log");
    if (this.logCount > log.length) { list.textContent = ""; this.logCount = 0; }
    for (var i = this.logCount; i < log.length; i++) {
      var e = log[i];
      var li = document.createElement("li");
      li.className = "tz-log-entry log-" + e.stage.replace(/[^a-z]/g, "");
      var t = document.createElement("time");
      t.textContent = timeText(e.timestamp);
      if (e.timestamp) t.setAttribute("datetime", String(e.timestamp));
      var msg = document.createElement("span");
      msg.className = "tz-log-message";
      msg.textContent = e.message;
      li.appendChild(t);
      li.appendChild(document.createTextNode(" "));
      li.appendChild(msg);
      list.appendChild(li);
    }
    while (list.childElementCount > LOG_MAX) list.removeChild(list.firstElementChild);
    var box = list.parentNode;            // the scrolling, focusable role="log" region
    if (log.length !== this.logCount) box.scrollTop = box.scrollHeight;
    this.logCount = log.length;
  };

  /* ------------------------------------------------------------------------------------
   * LiveView: the socket, the runs on this page, and which runs the page shows.
   *   mode "run": one run; "kind": runs of one kind; "dashboard": every run.
   */
  function LiveView(config) {
    this.mode = config.mode || "dashboard";
    this.kind = config.kind || null;
    this.runId = config.run_id || null;
    this.limit = config.limit || 10;
    this.container = document.getElementById("tz-runs");
    this.models = {};
    this.panels = {};
    this.loading = {};
    this.loadFailed = {};       // run id -> the page says it could not be loaded
    this.socket = null;
    var self = this;
    (config.runs || []).forEach(function (r) { self.upsert(r); });
  }

  LiveView.prototype.wants = function (run) {
    if (this.mode === "run") return String(run.run_id || run.id) === String(this.runId);
    if (this.mode === "kind") return run.kind === this.kind;
    // dashboard: the runs that are still going (a finished one stays once shown)
    return !run.status || !RUN_FINAL[run.status] || !!this.models[String(run.run_id || run.id)];
  };

  LiveView.prototype.upsert = function (data) {
    var id = String(data.run_id || data.id);
    var model = this.models[id];
    if (model) {
      model.replace(data);
    } else {
      model = this.models[id] = new RunModel(data);
      var panel = this.panels[id] = new RunPanel(model, this);
      if (this.container) this.container.insertBefore(panel.el, this.container.firstChild);
    }
    this.refresh(id);
    if (this.focusNext === id) {      // a run this page just started: bring it into view
      this.focusNext = null;
      var heading = this.panels[id].q(".tz-run-title");
      heading.setAttribute("tabindex", "-1");
      heading.focus();
      if (heading.scrollIntoView) heading.scrollIntoView({ block: "start" });
    }
    return model;
  };

  LiveView.prototype.refresh = function (id) {
    var panel = this.panels[id];
    if (panel) panel.render();
    var empty = document.getElementById("tz-runs-empty");
    if (empty) empty.hidden = Object.keys(this.models).length > 0;
    var fallback = document.getElementById("tz-static-runs");   // the no-JS list
    if (fallback && this.connection === "connected") fallback.hidden = true;
  };

  LiveView.prototype.connect = function () {
    if (typeof root.io !== "function") { this.setConnection("offline", "Live updates unavailable"); return; }
    var self = this;
    var socket = this.socket = root.io({ transports: ["websocket", "polling"] });
    this.setConnection("connecting", "Connecting…");
    socket.on("connect", function () { self.setConnection("connected", "Live"); });
    socket.on("disconnect", function (reason) {
      if (reason === "io server disconnect") self.setConnection("offline", "Disconnected by the server");
      else self.setConnection("reconnecting", "Reconnecting…");
    });
    socket.on("connect_error", function () {
      if (!socket.active) self.setConnection("offline", "Offline: sign in again and reload");
      else self.setConnection("reconnecting", "Reconnecting…");
    });
    socket.io.on("reconnect_attempt", function () { self.setConnection("reconnecting", "Reconnecting…"); });
    socket.io.on("reconnect_failed", function () { self.setConnection("offline", "Offline"); });
    root.addEventListener("offline", function () { self.setConnection("offline", "Offline"); });
    root.addEventListener("online", function () {
      if (socket.connected) { self.setConnection("connected", "Live"); return; }
      self.setConnection("reconnecting", "Reconnecting…");
      socket.connect();
    });
    socket.on("connection_status", function (p) {
      if (p && p.status === "connected") self.setConnection("connected", "Live");
    });
    socket.on("automation_snapshot", function (p) { self.onSnapshot(p || {}); });
    socket.on("automation_progress", function (e) { self.onProgress(e || {}); });
    socket.on("automation_error", function (e) { self.onError(e || {}); });
    socket.on("automation_paused", function (e) { self.onControl(e || {}, "paused"); });
    socket.on("automation_resumed", function (e) { self.onControl(e || {}, "running"); });
    socket.on("automation_cancelled", function (e) { self.onControl(e || {}, "cancelled"); });
  };

  LiveView.prototype.setConnection = function (state, text) {
    this.connection = state;
    var el = document.getElementById("tz-connection");
    if (!el) return;
    el.setAttribute("data-state", state);
    setText(el.querySelector(".tz-conn-text"), text);
  };

  LiveView.prototype.onSnapshot = function (payload) {
    var self = this, seen = {};
    var fallback = document.getElementById("tz-static-runs");
    if (fallback) fallback.hidden = true;
    var runs = Array.isArray(payload.runs) ? payload.runs.filter(function (r) { return self.wants(r); }) : [];
    if (this.mode !== "run") runs = runs.slice(0, this.limit);
    runs.slice().reverse().forEach(function (r) {
      seen[String(r.run_id)] = true;
      self.upsert(r);
    });
    if (payload.replay_of) return;   // a replay's answer for one run, not a new connection
    Object.keys(this.models).forEach(function (id) {
      if (seen[id]) self.replay(id);
      else self.load(id);          // not in the snapshot (an older run): ask HTTP, then replay
    });
    if (this.mode === "run" && !this.models[this.runId]) this.load(this.runId);
  };

  LiveView.prototype.replay = function (id) {
    var m = this.models[id];
    if (!m || !this.socket || !this.socket.connected) return;
    this.socket.emit("replay", { automation_id: id, after_seq: m.logSeq });
  };

  /* Fetch a run over HTTP (unknown run, or to confirm the truth after a control). */
  LiveView.prototype.load = function (id, thenReplay) {
    var self = this;
    if (this.loading[id]) return null;
    this.loading[id] = true;
    return api("GET", "/api/runs/" + encodeURIComponent(id)).then(function (run) {
      delete self.loading[id];
      if (!run.run_id) run.run_id = run.id || id;
      if (!self.wants(run) && !self.models[id]) return;
      self.upsert(run);
      if (self.loadFailed[id]) { self.loadFailed[id] = false; self.pageNotice(""); }
      if (thenReplay !== false) self.replay(id);
    }).catch(function (err) {
      delete self.loading[id];
      self.cannotLoad(id, err);
    });
  };

  /* A run that could not be read over HTTP: said in its panel, or on the page when it has
     none (the run page's run missing from the snapshot, a run announced by an event). */
  LiveView.prototype.cannotLoad = function (id, err) {
    var reason = (err && err.message) || "no answer";
    var panel = this.panels[id];
    if (panel) {
      var line = "Could not read the run's stored state: " + reason + ".";
      if (panel.notice && panel.notice.indexOf(line) < 0) line = panel.notice + "\n" + line;
      panel.notice = line;
      this.refresh(id);
      return;
    }
    if (this.mode === "run" && String(id) !== String(this.runId)) return;
    this.loadFailed[id] = true;
    this.pageNotice("Run " + id + " could not be loaded: " + reason + ". Reload the page to try again.");
  };

  LiveView.prototype.pageNotice = function (text) {
    var el = document.getElementById("tz-runs-error");
    if (el) setText(el, text);
  };

  LiveView.prototype.onProgress = function (evt) {
    var id = evt.run_id ? String(evt.run_id) : null;
    if (!id) return;
    var m = this.models[id];
    if (!m) {
      if (this.wants({ run_id: id, kind: evt.kind })) this.load(id);
      return;
    }
    var res = m.receive(evt);
    if (res === "buffered") this.fillGap(m);
    this.refresh(id);
    if (evt.data && evt.data.success === true) this.fetchReports(m);
  };

  /* Events do not carry report links: after an item finishes, ask the run once (debounced)
     so its card gets its "Report" link without a reload. */
  LiveView.prototype.fetchReports = function (m) {
    var self = this;
    if (m.reportTimer || m.noReports) return;
    m.reportTimer = root.setTimeout(function () {
      m.reportTimer = null;
      if (!m.missingReports()) return;
      var asked = self.load(m.id, false);
      if (!asked) { self.fetchReports(m); return; }
      asked.then(function () {
        // A kind that writes no reports (earnings, sports): stop asking for this run.
        if (!m.items.some(function (it) { return it.report_url; })) m.noReports = true;
      });
    }, REPORT_WAIT_MS);
  };

  LiveView.prototype.fillGap = function (m) {
    var self = this;
    if (m.gapTimer) return;
    this.replay(m.id);
    m.gapTimer = root.setTimeout(function () {
      m.gapTimer = null;
      if (m.hasGap()) { m.skipGap(); self.refresh(m.id); }
    }, GAP_WAIT_MS);
  };

  LiveView.prototype.onError = function (e) {
    var id = e.run_id || e.automation_id;
    var panel = id && this.panels[String(id)];
    if (!panel) return;
    // An item's failure shows on its card; anything else (a refused pause...) stays shown
    // until the next action on this run.
    if (e.error_type !== "item_failed") panel.notice = String(e.message || "Error");
    this.load(String(id), false);
  };

  LiveView.prototype.onControl = function (e, status) {
    var id = e.automation_id ? String(e.automation_id) : null;
    var m = id && this.models[id];
    if (!m) return;
    m.status = status;
    if (e.message) m.message = String(e.message);
    this.refresh(id);
    this.load(id, false);          // confirm with the stored truth
  };

  /* Pause / resume / cancel over the socket when connected (HTTP otherwise); retry over HTTP. */
  LiveView.prototype.control = function (model, action, btn) {
    var self = this;
    var panel = this.panels[model.id];
    panel.notice = "";
    setText(panel.q(".tz-run-error"), "");
    btn.disabled = true;
    btn.setAttribute("aria-busy", "true");
    var done = function () {
      if (!btn.hasAttribute("aria-busy")) return;
      btn.removeAttribute("aria-busy");
      self.refresh(model.id);
    };
    if (action !== "retry" && this.socket && this.socket.connected) {
      // The server acknowledges with the run's new status or its refusal; no answer in time
      // means the request (or its answer) was lost: the stored state is read over HTTP.
      this.socket.timeout(CONTROL_ANSWER_MS).emit(action + "_automation", { automation_id: model.id },
        function (err, answer) {
          self.onControlAnswer(model, action, err ? null : answer);
          done();
        });
      return;
    }
    api("POST", "/api/runs/" + encodeURIComponent(model.id) + "/" + action, {}).then(function (run) {
      if (!run.run_id) run.run_id = model.id;
      self.upsert(run);
      done();
    }).catch(function (err) {
      panel.notice = err.message;
      done();
      self.load(model.id, false);
    });
  };

  /* The ack of a socket control: null when none came in time (or the socket dropped). */
  LiveView.prototype.onControlAnswer = function (model, action, answer) {
    var panel = this.panels[model.id];
    if (answer && answer.ok === true) {
      if (typeof answer.status === "string" && answer.status) model.status = answer.status;
    } else if (answer && answer.ok === false) {
      panel.notice = String(answer.message || "The " + action + " request was refused.");
    } else {
      panel.notice = "The server did not answer the " + action + " request; showing the stored state.";
    }
    this.refresh(model.id);
    this.load(model.id, false);    // the stored truth, whatever the answer said
  };

  function boot() {
    var cfgEl = document.getElementById("tz-page-config");
    if (!cfgEl) return null;
    var config;
    try { config = JSON.parse(cfgEl.textContent); } catch (e) { return null; }
    var view = new LiveView(config);
    root.tickzenView = view;
    view.connect();
    return view;
  }

  var api_ = { RunModel: RunModel, LiveView: LiveView, boot: boot, api: api, safeHref: safeHref };
  root.TickZenRunView = api_;
  if (typeof module !== "undefined" && module.exports) module.exports = api_;
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
    else boot();
  }
})(typeof window !== "undefined" ? window : globalThis);
