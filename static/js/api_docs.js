/* The API reference page: fetches /api/openapi.json and lays it out with DOM nodes only
   (textContent, never innerHTML), grouped by tag: each operation's method, path, summary,
   parameters, request body and answers, with schemas shown as nested field lists. */
(function () {
  "use strict";
  var root = document.getElementById("api-reference");
  var toc = document.getElementById("api-toc");
  if (!root) return;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function refName(ref) { return ref.split("/").pop(); }

  function typeOf(schema, defs) {
    if (!schema) return "any";
    if (schema.$ref) return refName(schema.$ref);
    if (schema.anyOf) return schema.anyOf.map(function (s) { return typeOf(s, defs); }).join(" | ");
    if (schema.enum) return schema.enum.map(function (v) { return JSON.stringify(v); }).join(" | ");
    if (schema.const !== undefined) return JSON.stringify(schema.const);
    if (schema.type === "array") return "array of " + typeOf(schema.items, defs);
    if (schema.type === "object" && schema.additionalProperties && schema.additionalProperties !== true)
      return "object of " + typeOf(schema.additionalProperties, defs);
    return schema.type || "any";
  }

  function limits(schema) {
    var parts = [];
    ["minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "default", "format"].forEach(function (key) {
      if (schema && schema[key] !== undefined) parts.push(key + " " + JSON.stringify(schema[key]));
    });
    return parts.join(", ");
  }

  function schemaBlock(schema, defs, depth) {
    var resolved = schema;
    if (schema && schema.$ref) resolved = defs[refName(schema.$ref)] || {};
    var wrap = el("div", null, "api-schema");
    if (!resolved || !resolved.properties) {
      wrap.appendChild(el("code", typeOf(schema, defs)));
      return wrap;
    }
    if (schema.$ref) wrap.appendChild(el("p", refName(schema.$ref), "api-model"));
    var list = el("ul", null, "api-fields");
    var required = resolved.required || [];
    Object.keys(resolved.properties).forEach(function (name) {
      var prop = resolved.properties[name];
      var item = el("li");
      item.appendChild(el("code", name, "api-field"));
      item.appendChild(el("span", " " + typeOf(prop, defs), "api-type"));
      if (required.indexOf(name) >= 0) item.appendChild(el("span", " required", "api-required"));
      var extra = limits(prop);
      if (extra) item.appendChild(el("span", " (" + extra + ")", "muted"));
      if (prop.description) item.appendChild(el("span", " — " + prop.description, "muted"));
      var nested = prop.$ref || (prop.items && prop.items.$ref) ||
        (prop.anyOf && prop.anyOf.filter(function (s) { return s.$ref || (s.items && s.items.$ref); })[0]);
      if (nested && depth < 3) {
        var target = nested.$ref ? nested : (nested.items || nested);
        item.appendChild(schemaBlock(target.$ref ? target : nested, defs, depth + 1));
      }
      list.appendChild(item);
    });
    wrap.appendChild(list);
    return wrap;
  }

  function operationBlock(method, path, op, defs) {
    var section = el("section", null, "card api-op");
    section.id = op.operationId;
    var head = el("h3");
    head.appendChild(el("span", method.toUpperCase(), "api-method api-" + method));
    head.appendChild(el("code", " " + path));
    section.appendChild(head);
    section.appendChild(el("p", op.summary));
    if (op.description) section.appendChild(el("p", op.description, "muted"));
    if (op.security && op.security.length === 0) section.appendChild(el("p", "No sign-in needed.", "muted"));
    if (op.parameters && op.parameters.length) {
      section.appendChild(el("h4", "Parameters"));
      var list = el("ul", null, "api-fields");
      op.parameters.forEach(function (p) {
        var item = el("li");
        item.appendChild(el("code", p.name, "api-field"));
        item.appendChild(el("span", " in " + p.in + ", " + typeOf(p.schema, defs), "api-type"));
        if (p.required) item.appendChild(el("span", " required", "api-required"));
        var extra = limits(p.schema);
        if (extra) item.appendChild(el("span", " (" + extra + ")", "muted"));
        if (p.description) item.appendChild(el("span", " — " + p.description, "muted"));
        list.appendChild(item);
      });
      section.appendChild(list);
    }
    if (op.requestBody) {
      section.appendChild(el("h4", "Request body"));
      Object.keys(op.requestBody.content).forEach(function (media) {
        section.appendChild(el("p", media, "muted"));
        section.appendChild(schemaBlock(op.requestBody.content[media].schema, defs, 0));
      });
    }
    section.appendChild(el("h4", "Answers"));
    var answers = el("dl", null, "api-answers");
    Object.keys(op.responses).forEach(function (status) {
      var response = op.responses[status];
      answers.appendChild(el("dt", status + " " + (response.description || "")));
      var dd = el("dd");
      var content = response.content || {};
      Object.keys(content).forEach(function (media) {
        if (status.charAt(0) === "2") dd.appendChild(schemaBlock(content[media].schema, defs, 0));
        else dd.appendChild(el("code", media + ": " + typeOf(content[media].schema, defs)));
      });
      answers.appendChild(dd);
    });
    section.appendChild(answers);
    return section;
  }

  function render(spec) {
    root.textContent = "";
    var defs = (spec.components && spec.components.schemas) || {};
    var byTag = {};
    Object.keys(spec.paths).forEach(function (path) {
      Object.keys(spec.paths[path]).forEach(function (method) {
        var op = spec.paths[path][method];
        var tag = (op.tags && op.tags[0]) || "other";
        (byTag[tag] = byTag[tag] || []).push([method, path, op]);
      });
    });
    var tocList = el("ul", null, "api-toc-list");
    Object.keys(byTag).sort().forEach(function (tag) {
      var group = el("section", null, "api-tag");
      group.id = "tag-" + tag;
      group.appendChild(el("h2", tag));
      byTag[tag].forEach(function (entry) { group.appendChild(operationBlock(entry[0], entry[1], entry[2], defs)); });
      root.appendChild(group);
      var link = el("a", tag + " (" + byTag[tag].length + ")");
      link.href = "#tag-" + tag;
      var li = el("li");
      li.appendChild(link);
      tocList.appendChild(li);
    });
    if (toc) toc.appendChild(tocList);
  }

  fetch(root.getAttribute("data-spec"), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
    .then(function (resp) {
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      return resp.json();
    })
    .then(render)
    .catch(function (err) {
      root.textContent = "";
      root.appendChild(el("p", "The API document could not be loaded: " + err.message, "form-error"));
    });
})();
