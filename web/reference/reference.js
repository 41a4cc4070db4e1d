// The API reference: draws /api/v1/openapi.json as a page, grouped by tag, with a search
// box. Everything shown is text built with DOM calls; nothing is parsed as HTML.

const METHODS = ["get", "put", "post", "patch", "delete"];

/** An element with attributes and children (strings become text nodes). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Text with `code` spans, as the description writes codes and names. */
function prose(text) {
  const parts = (text || "").split("`");
  return el("p", { class: "prose" }, parts.map((part, i) => (i % 2 ? el("code", {}, part) : part)));
}

function schemaName(ref) {
  return ref.split("/").pop();
}

/** A schema as a short type: `string`, `Room`, `[Message]`, `integer | null`. */
function typeLabel(schema) {
  if (!schema) return "any";
  if (schema.$ref) return schemaName(schema.$ref);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.oneOf || schema.anyOf) return (schema.oneOf || schema.anyOf).map(typeLabel).join(" | ");
  if (schema.allOf) return schema.allOf.map(typeLabel).join(" & ");
  const types = [].concat(schema.type || []);
  const label = types.map((type) => (type === "array" ? `[${typeLabel(schema.items)}]` : type));
  if (schema.format && !["int32", "int64"].includes(schema.format)) label.push(`(${schema.format})`);
  return label.join(" | ") || "object";
}

/** A schema drawn as a table of fields (objects) or a type, with referenced schemas linked. */
function schemaView(schema, document, depth = 0) {
  if (!schema) return el("span", { class: "soft" }, "no body");
  if (schema.$ref) {
    const name = schemaName(schema.$ref);
    const target = document.components?.schemas?.[name];
    if (depth > 0) return el("a", { href: `#schema-${name}` }, name);
    return el("div", {}, el("a", { href: `#schema-${name}` }, name), schemaView(target, document, depth + 1));
  }
  const merged = merge(schema, document);
  if (merged.properties) {
    const required = new Set(merged.required || []);
    return el("table", { class: "fields" },
      Object.entries(merged.properties).map(([name, field]) =>
        el("tr", {},
          el("td", {}, el("code", {}, name), required.has(name) ? "" : el("span", { class: "soft" }, " optional")),
          el("td", {}, field.properties || field.allOf ? schemaView(field, document, depth + 1) : typeLabel(field)),
          el("td", {}, field.description ? prose(field.description) : ""))));
  }
  if (merged.oneOf) {
    return el("ul", { class: "variants" }, merged.oneOf.map((variant) => el("li", {}, schemaView(variant, document, depth + 1))));
  }
  return el("code", {}, typeLabel(merged));
}

/** `allOf` and local references folded into one object schema, for display. */
function merge(schema, document) {
  if (!schema.allOf) return schema;
  const out = { properties: {}, required: [] };
  for (let part of schema.allOf) {
    if (part.$ref) part = document.components?.schemas?.[schemaName(part.$ref)] || {};
    part = merge(part, document);
    for (const [name, field] of Object.entries(part.properties || {})) {
      out.properties[name] = { ...(out.properties[name] || {}), ...field };
    }
    out.required.push(...(part.required || []));
  }
  return out;
}

function operationView(path, method, operation, document) {
  const id = `${method}-${path}`.replace(/[^a-zA-Z0-9]+/g, "-");
  const parameters = operation.parameters || [];
  const body = operation.requestBody?.content || {};
  const secured = Boolean(operation.security);
  const section = el("section", { class: "operation", id },
    el("h3", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), " ", el("code", {}, path)),
    operation.summary ? prose(operation.summary) : null,
    operation.description && operation.description !== operation.summary ? prose(operation.description) : null,
    el("p", { class: "soft" }, secured ? "Needs a session: Authorization: Bearer <token>, or the session cookie." : "No session needed."),
    parameters.length ? el("div", {}, el("h4", {}, "Parameters"),
      el("table", { class: "fields" }, parameters.map((p) =>
        el("tr", {},
          el("td", {}, el("code", {}, p.name), el("span", { class: "soft" }, ` ${p.in}${p.required ? "" : ", optional"}`)),
          el("td", {}, typeLabel(p.schema)),
          el("td", {}, p.description ? prose(p.description) : ""))))) : null,
    Object.keys(body).length ? el("div", {}, el("h4", {}, "Request body"),
      Object.entries(body).map(([type, content]) => el("div", {}, el("p", { class: "soft" }, type), schemaView(content.schema, document)))) : null,
    el("h4", {}, "Responses"),
    el("dl", { class: "responses" }, Object.entries(operation.responses || {}).map(([status, response]) => [
      el("dt", { class: `status s${status[0]}` }, status),
      el("dd", {},
        prose(response.description),
        response.content?.["application/json"] && Number(status) < 400
          ? schemaView(response.content["application/json"].schema, document) : null),
    ])));
  section.dataset.search = JSON.stringify([path, method, operation]).toLowerCase();
  return section;
}

async function main() {
  const response = await fetch("/api/v1/openapi.json");
  const document_ = await response.json();
  const byTag = new Map((document_.tags || []).map((tag) => [tag.name, { tag, operations: [] }]));
  for (const [path, item] of Object.entries(document_.paths || {})) {
    for (const method of METHODS) {
      if (!item[method]) continue;
      const name = item[method].tags?.[0] || "other";
      if (!byTag.has(name)) byTag.set(name, { tag: { name }, operations: [] });
      byTag.get(name).operations.push(operationView(path, method, item[method], document_));
    }
  }
  const main = document.getElementById("operations");
  const toc = document.getElementById("tags");
  main.replaceChildren(
    el("h2", {}, document_.info?.title || "API"), prose(document_.info?.description),
    ...[...byTag.values()].filter((group) => group.operations.length).map(({ tag, operations }) =>
      el("section", { class: "tag", id: `tag-${tag.name}` }, el("h2", {}, tag.name), tag.description ? prose(tag.description) : null, operations)),
    el("section", { class: "tag", id: "schemas" }, el("h2", {}, "Schemas"),
      Object.entries(document_.components?.schemas || {}).map(([name, schema]) =>
        el("section", { class: "operation", id: `schema-${name}` }, el("h3", {}, name),
          schema.description ? prose(schema.description) : null, schemaView(schema, document_, 1)))));
  toc.replaceChildren(...[...byTag.values()].filter((group) => group.operations.length).map(({ tag, operations }) =>
    el("li", {}, el("a", { href: `#tag-${tag.name}` }, tag.name),
      el("ul", { class: "plain" }, operations.map((section) =>
        el("li", { "data-for": section.id }, el("a", { href: `#${section.id}` }, section.querySelector("h3").textContent)))))));
  toc.append(el("li", {}, el("a", { href: "#schemas" }, "Schemas")));
  document.getElementById("filter").addEventListener("input", (event) => {
    const words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const section of main.querySelectorAll("section.operation[data-search]")) {
      const shown = words.every((word) => section.dataset.search.includes(word));
      section.hidden = !shown;
      const entry = toc.querySelector(`[data-for="${section.id}"]`);
      if (entry) entry.hidden = !shown;
    }
  });
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

main().catch((error) => {
  document.getElementById("operations").replaceChildren(el("p", { class: "error" }, `The description could not be read: ${error}`));
});
