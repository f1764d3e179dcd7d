/* TickZen notifications: the bell's unread count, kept live, and the /notifications list.
 *
 * - The count comes with the page (the server renders it) and then follows the Socket.IO
 *   events `notification` ({id, type, title, message, run_id, campaign_id, link, created_at,
 *   read, unread}) and `notifications_read` ({ids, all, unread}) sent to this user's room; on
 *   every (re)connect brings it again in `connection_status` ({..., unread}).
 * - One socket per page: the run view's when the page has one, else our own (the vendored
 *   socket.io client is loaded from the bell's data-socketio-src when the page lacks it).
 * - Server data is only ever text (textContent, input values) and links must be local paths.
 */
(function (root) {
  "use strict";

  var seen = {};

  function byId(id) { return document.getElementById(id); }

  function safeHref(link) {
    if (typeof link !== "string" || link.charAt(0) !== "/") return null;
    if (link.charAt(1) === "/" || link.charAt(1) === "\\") return null;
    return link;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function Bell(anchor) {
    this.anchor = anchor;
    this.badge = byId("tz-bell-count");
    this.number = byId("tz-bell-number");
    var n = parseInt(this.number ? this.number.textContent : "0", 10);
    this.count = isFinite(n) ? n : 0;
  }

  Bell.prototype.set = function (n) {
    if (typeof n !== "number" || !isFinite(n) || n < 0) return;
    this.count = Math.floor(n);
    if (this.number) this.number.textContent = String(this.count);
    if (this.badge) this.badge.hidden = this.count === 0;
    var unread = byId("tz-notifications-unread");
    if (unread) unread.textContent = String(this.count);
  };

  Bell.prototype.refresh = function () {
    var self = this;
    if (typeof root.fetch !== "function") return;
    root.fetch("/api/notifications?unread=1&limit=1", {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body) self.set(body.unread); })
      .catch(function () { /* the next event or page load corrects the count */ });
  };

  /* The /notifications page: new ones on top, read ones lose their marks. */
  function List(node) {
    this.node = node;
    this.page = node.getAttribute("data-page") || "1";
  }

  List.prototype.readForm = function (id) {
    var form = el("form");
    form.method = "post";
    form.action = "/notifications/read";
    var token = document.querySelector('meta[name="csrf-token"]');
    [["csrf_token", token ? token.getAttribute("content") : ""], ["ids", id],
     ["page", this.page]].forEach(function (pair) {
      var input = el("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    form.appendChild(document.createTextNode(" · "));
    var button = el("button", "link-button link-button-inline", "Mark read");
    button.type = "submit";
    form.appendChild(button);
    return form;
  };

  List.prototype.add = function (p) {
    if (this.page !== "1") return;
    var list = byId("tz-notification-list");
    if (!list || list.querySelector('[data-notification-id="' + cssId(p.id) + '"]')) return;
    var item = el("li", "notification unread");
    item.setAttribute("data-notification-id", String(p.id));
    var title = el("p", "notification-title");
    var href = safeHref(p.link);
    if (href) {
      var a = el("a", null, p.title);
      a.href = href;
      title.appendChild(a);
    } else {
      title.appendChild(document.createTextNode(String(p.title || "")));
    }
    title.appendChild(document.createTextNode(" "));
    title.appendChild(el("span", "badge", "new"));
    item.appendChild(title);
    item.appendChild(el("p", "notification-message", p.message));
    var meta = el("p", "notification-meta");
    // Printed as the server prints the list after a reload (static/js/local_time.js).
    var when = typeof p.created_at === "string" && root.TZTime ?
      root.TZTime.pageClock().format(p.created_at) : "";
    var time = el("time", null, when || "just now");
    if (typeof p.created_at === "string") time.setAttribute("datetime", p.created_at);
    meta.appendChild(time);
    meta.appendChild(document.createTextNode(" · " + String(p.type || "")));
    meta.appendChild(this.readForm(String(p.id)));
    item.appendChild(meta);
    list.insertBefore(item, list.firstChild);
    var empty = byId("tz-notifications-empty");
    if (empty) empty.hidden = true;
  };

  List.prototype.markRead = function (ids, all) {
    var items = this.node.querySelectorAll(".notification.unread");
    var wanted = {};
    (ids || []).forEach(function (id) { wanted[String(id)] = true; });
    Array.prototype.forEach.call(items, function (item) {
      if (!all && !wanted[item.getAttribute("data-notification-id")]) return;
      item.classList.remove("unread");
      Array.prototype.forEach.call(item.querySelectorAll(".badge, form"), function (n) {
        n.parentNode.removeChild(n);
      });
    });
  };

  function cssId(id) {
    return String(id).replace(/["\\]/g, "\\$&");
  }

  function attach(socket, bell, list) {
    /* Every (re)connect brings the count in connection_status: no HTTP call needed. */
    socket.on("connection_status", function (p) {
      if (p && typeof p === "object" && typeof p.unread === "number") bell.set(p.unread);
    });
    socket.on("notification", function (p) {
      if (!p || typeof p !== "object" || p.id === undefined || seen[p.id]) return;
      seen[p.id] = true;
      bell.set(typeof p.unread === "number" ? p.unread : bell.count + 1);
      if (list) list.add(p);
    });
    socket.on("notifications_read", function (p) {
      if (!p || typeof p !== "object") return;
      bell.set(p.unread);
      if (list) list.markRead(Array.isArray(p.ids) ? p.ids : [], p.all === true);
    });
    if (socket.connected) bell.refresh();   // its connection_status went by already
  }

  function withSocket(anchor, ready) {
    var view = root.tickzenView;
    if (view && view.socket) { ready(view.socket); return; }
    var make = function () { ready(root.io({ transports: ["websocket", "polling"] })); };
    if (typeof root.io === "function") { make(); return; }
    var src = anchor.getAttribute("data-socketio-src");
    if (!src) return;
    var script = el("script");
    script.src = src;
    script.onload = function () { if (typeof root.io === "function") make(); };
    document.head.appendChild(script);
  }

  function boot() {
    var anchor = byId("tz-bell");
    if (!anchor) return null;
    var bell = new Bell(anchor);
    var page = byId("tz-notifications");
    var list = page ? new List(page) : null;
    withSocket(anchor, function (socket) { attach(socket, bell, list); });
    root.tickzenBell = bell;
    return bell;
  }

  var api = { safeHref: safeHref, boot: boot };
  root.TickZenNotifications = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
    else boot();
  }
})(typeof window !== "undefined" ? window : globalThis);
