/* Times the page receives live (run log, notifications) printed the way the server prints
   times (portal/local_time.py user_time): "YYYY-MM-DD HH:MM IST", in the account's zone and
   not the browser's. The zone and its abbreviations come from the <html> element
   (data-time-zone, data-zone-names: UTC offset in minutes -> the name the server uses), since
   browsers name zones by locale ("GMT+5:30") rather than as the server does. */
(function (root) {
  "use strict";

  var FIELDS = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit",
                 minute: "2-digit", second: "2-digit", hourCycle: "h23" };

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function offsetName(minutes) {
    if (!minutes) return "UTC";
    var sign = minutes < 0 ? "-" : "+", abs = Math.abs(minutes);
    return "UTC" + sign + pad(Math.floor(abs / 60)) + (abs % 60 ? ":" + pad(abs % 60) : "");
  }

  function Clock(zone, names) {
    var format;
    try {
      format = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: zone || "UTC" }, FIELDS));
    } catch (e) {                       // a zone this browser does not know: UTC, named so
      zone = "UTC";
      names = { "0": "UTC" };
      format = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: "UTC" }, FIELDS));
    }
    this.zone = zone || "UTC";
    this.names = names || {};
    this.intl = format;
  }

  /* The wall-clock fields of an instant in the clock's zone, and its UTC offset in minutes;
     null for anything that is not a time. */
  Clock.prototype.parts = function (value) {
    var date = value instanceof Date ? value : new Date(value);
    if (value === null || value === undefined || value === "" || isNaN(date.getTime())) return null;
    var p = {};
    this.intl.formatToParts(date).forEach(function (part) { p[part.type] = part.value; });
    var f = { year: +p.year, month: +p.month, day: +p.day, hour: +p.hour % 24,
              minute: +p.minute, second: +p.second };
    var wall = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second);
    var instant = Math.floor(date.getTime() / 1000) * 1000;
    f.offset = Math.round((wall - instant) / 60000);
    return f;
  };

  Clock.prototype.zoneName = function (offset) {
    var name = this.names[String(offset)];
    return name || offsetName(offset);
  };

  /* "2026-11-25 15:30 IST", as the server's user_time filter; "" for no time. */
  Clock.prototype.format = function (value) {
    var f = this.parts(value);
    if (!f) return "";
    return f.year + "-" + pad(f.month) + "-" + pad(f.day) + " " + pad(f.hour) + ":" +
      pad(f.minute) + " " + this.zoneName(f.offset);
  };

  /* "15:30:07 IST": a log line's time, the day being the run's. */
  Clock.prototype.timeOfDay = function (value) {
    var f = this.parts(value);
    if (!f) return "";
    return pad(f.hour) + ":" + pad(f.minute) + ":" + pad(f.second) + " " + this.zoneName(f.offset);
  };

  /* The clock of this page (UTC outside a browser or without the attributes). */
  function pageClock() {
    var html = root.document && root.document.documentElement;
    var zone = html ? html.getAttribute("data-time-zone") : null;
    var names = null;
    try { names = JSON.parse((html && html.getAttribute("data-zone-names")) || "null"); }
    catch (e) { names = null; }
    return new Clock(zone || "UTC", names || { "0": "UTC" });
  }

  var api = { Clock: Clock, pageClock: pageClock };
  root.TZTime = api;
  if (typeof module !== "undefined" && module.exports) module.exports = api;
})(typeof window !== "undefined" ? window : globalThis);
