/* The sites pages: "Test connection" buttons (the answer shown beside each button), and on the
   edit page the author rows (add one, remove one). No inline script: the CSP forbids it. */
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";

  document.querySelectorAll(".js-test-site").forEach(function (button) {
    button.addEventListener("click", function () {
      var out = button.parentNode.querySelector(".test-result");
      out.textContent = "Testing…";
      button.disabled = true;
      fetch("/api/sites/" + encodeURIComponent(button.dataset.siteId) + "/test", {
        method: "POST",
        headers: {"X-CSRFToken": token, "Accept": "application/json"},
        credentials: "same-origin"
      }).then(function (resp) {
        return resp.json().catch(function () { return {ok: false, message: "HTTP " + resp.status}; });
      }).then(function (body) {
        out.textContent = (body.ok ? "OK: " : "Problem: ") + (body.message || body.error || "");
        out.className = "test-result " + (body.ok ? "ok" : "form-error");
      }).catch(function (err) {
        out.textContent = "Problem: " + err;
        out.className = "test-result form-error";
      }).finally(function () { button.disabled = false; });
    });
  });

  var authors = document.getElementById("authors");
  var template = document.getElementById("author-row");
  var add = document.getElementById("add-author");
  if (authors && template && add) {
    add.addEventListener("click", function () {
      var row = template.content.firstElementChild.cloneNode(true);
      authors.appendChild(row);
      var first = row.querySelector("input");
      if (first) first.focus();
    });
    authors.addEventListener("click", function (event) {
      var button = event.target.closest(".js-remove-author");
      if (button) button.closest(".author-row").remove();
    });
  }
})();
