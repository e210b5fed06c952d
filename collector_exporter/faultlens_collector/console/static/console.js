/* faultlens console: renders every page from the console's JSON API.
 *
 * Safety rule: text that came from the wire (messages, stack traces, names, tags)
 * only ever becomes a text node (h() turns strings into text nodes); nothing here
 * parses HTML. Links are built only from this console's own paths or from URLs the
 * server built from the operator's trace-URL template (http/https checked again).
 */
"use strict";
(() => {
  const page = document.body.dataset.page;
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const main = document.getElementById("main");

  // ---------- DOM helpers ----------
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "href") node.setAttribute("href", safeHref(value));
      else if (key === "style") for (const [k, v] of Object.entries(value)) node.style.setProperty(k, v);
      else if (key in node && typeof value !== "string") node[key] = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    append(node, children);
    return node;
  }
  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "style") for (const [k, v] of Object.entries(value)) node.style.setProperty(k, v);
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function safeHref(url) {
    const text = String(url);
    if (text.startsWith("/") && !text.startsWith("//")) return text;
    try {
      const parsed = new URL(text);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") return parsed.href;
    } catch (e) { /* not a URL */ }
    return "#";
  }
  function clear(node) { while (node.firstChild) node.firstChild.remove(); return node; }
  function replace(node, ...children) { clear(node); return append(node, children); }

  // ---------- API ----------
  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }
  async function api(path, options = {}) {
    const init = { method: options.method || "GET", credentials: "same-origin",
      headers: { "Accept": "application/json" } };
    if (init.method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = csrf;
      init.body = JSON.stringify(options.body || {});
    }
    const response = await fetch(path, init);
    if (response.status === 401) { toLogin(); throw new ApiError(401, "log in first"); }
    if (response.status === 204) return null;
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      throw new ApiError(response.status, (data && data.detail) || `HTTP ${response.status}`);
    }
    return data;
  }
  function toLogin() {
    const next = location.pathname + location.search;
    location.assign("/login?next=" + encodeURIComponent(next));
  }
  function query(params) {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") search.set(k, v);
    return search.toString();
  }

  // ---------- formatting ----------
  const fmtInt = new Intl.NumberFormat("en-US");
  function num(n) { return fmtInt.format(n); }
  function ago(ms) {
    if (!ms) return "—";
    const seconds = Math.max(0, (Date.now() - ms) / 1000);
    if (seconds < 60) return `${Math.floor(seconds)} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return `${Math.floor(seconds / 86400)} d ago`;
  }
  function when(iso, ms) {
    return h("span", { class: "when", title: iso || "" }, ago(ms));
  }
  function stamp(iso) { return iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "—"; }
  function badge(text, cls) { return h("span", { class: `badge ${cls || ""}` }, text); }
  // Whether a fix held (issue 20): pending until its deadline, then verified or failed.
  function verification(v) {
    if (!v) return "—";
    if (v.state === "pending") return h("span", { title: "verified if the group stays quiet until then" }, badge("pending", "lvl-warning"), h("div", { class: "sub" }, `until ${stamp(v.deadline)}`));
    return h("span", { title: v.reason }, badge(v.state, v.state === "verified" ? "lvl-ok" : "lvl-critical"), h("div", { class: "sub" }, stamp(v.decided_at)));
  }
  function sevBadge(sev) { return badge(sev, `sev-${sev}`); }
  function statusBadge(st) { return badge(st, `st-${st}`); }
  function outcomeBadge(row) {
    const label = row.outcome === "mixed" ? `${num(row.handled_count)} handled` : row.outcome;
    return badge(label, `out-${row.outcome}`);
  }
  function pct(x) { return x === null || x === undefined ? "—" : `${Math.round(x * 1000) / 10} %`; }
  function secs(x) { return x === null || x === undefined ? "—" : `${x.toFixed(x < 10 ? 2 : 1)} s`; }

  // ---------- charts ----------
  function sparkline(counts, width = 110, height = 24) {
    const svg = s("svg", { class: "spark", width, height, viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" });
    svg.append(s("rect", { class: "base", x: 0, y: height - 1, width, height: 1 }));
    if (!counts || !counts.length) return svg;
    const max = Math.max(1, ...counts);
    const step = counts.length > 1 ? width / (counts.length - 1) : width;
    const points = counts.map((c, i) => `${(i * step).toFixed(1)},${(height - 2 - (c / max) * (height - 4)).toFixed(1)}`);
    svg.append(s("polyline", { points: points.join(" ") }));
    return svg;
  }
  const PALETTE = ["#d9480f", "#1c7ed6", "#2b8a3e", "#ae3ec9", "#f08c00", "#0c8599", "#e64980", "#5c7cfa", "#868e96", "#74b816"];
  const SEVERITY_COLORS = { low: "#6c8ebf", medium: "#d4a017", high: "#e8590c", critical: "#c92a2a" };
  function colorOf(key, index, named) { return (named && named[key]) || PALETTE[index % PALETTE.length]; }
  function tick(ms, bucketSeconds, days) {
    const d = new Date(ms);
    const hour = `${String(d.getHours()).padStart(2, "0")}:00`;
    if (bucketSeconds >= 86400) return `${d.getMonth() + 1}/${d.getDate()}`;
    return days ? `${d.getMonth() + 1}/${d.getDate()} ${hour}` : hour;
  }
  function barChart(set, options = {}) {
    const width = options.width || 640, height = options.height || 150, left = 34, bottom = 18, top = 6;
    const buckets = set.buckets || 0;
    const days = buckets * set.bucket_seconds > 86400;
    const totals = new Array(buckets).fill(0);
    for (const series of set.series) series.counts.forEach((c, i) => { totals[i] += c; });
    const max = Math.max(1, ...totals);
    const barW = buckets ? (width - left) / buckets : 0;
    const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": options.label || "occurrences over time" });
    const y = (v) => top + (height - top - bottom) * (1 - v / max);
    svg.append(s("line", { class: "axis", x1: left, y1: height - bottom, x2: width, y2: height - bottom }));
    svg.append(s("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, num(max)));
    svg.append(s("text", { x: left - 4, y: height - bottom, "text-anchor": "end" }, "0"));
    const base = new Array(buckets).fill(0);
    set.series.forEach((series, index) => {
      const color = colorOf(series.key, index, options.colors);
      series.counts.forEach((count, i) => {
        if (!count) return;
        const y0 = y(base[i]), y1 = y(base[i] + count);
        base[i] += count;
        const rect = s("rect", { x: left + i * barW + 0.5, y: y1, width: Math.max(1, barW - 1), height: Math.max(1, y0 - y1), style: { fill: color } });
        rect.append(s("title", {}, `${series.key}: ${num(count)} (${tick(set.start_ms + i * set.bucket_seconds * 1000, set.bucket_seconds, true)})`));
        svg.append(rect);
      });
    });
    const every = Math.max(1, Math.ceil(buckets / (width < 500 ? 4 : 7)));
    for (let i = 0; i < buckets; i += every) {
      svg.append(s("text", { x: left + i * barW + barW / 2, y: height - 4, "text-anchor": "middle" },
        tick(set.start_ms + i * set.bucket_seconds * 1000, set.bucket_seconds, days)));
    }
    const legend = h("div", { class: "legend" }, set.series.map((series, index) =>
      h("span", { style: { "--swatch": colorOf(series.key, index, options.colors) } }, `${series.key} (${num(series.total)})`)));
    if (set.more) legend.append(h("span", { class: "muted" }, `+${set.more} more`));
    return h("div", { class: "chart" }, svg, options.legend === false ? null : legend);
  }

  // ---------- header ----------
  function renderWho() {
    const who = document.getElementById("who");
    const actor = who.dataset.actor;
    document.querySelectorAll("[data-nav]").forEach((a) => {
      a.classList.toggle("active", a.dataset.nav === page || (page === "group" && a.dataset.nav === "groups"));
    });
    if (!actor) return;
    replace(who, h("span", {}, actor), h("form", { method: "post", action: "/logout" },
      h("input", { type: "hidden", name: "csrf", value: csrf }), h("button", { type: "submit" }, "Log out")));
  }

  // ---------- live events ----------
  let events = null;
  function listen(params, handlers) {
    if (events) events.close();
    events = new EventSource("/api/v1/events?" + query(params));
    for (const [kind, handler] of Object.entries(handlers)) {
      events.addEventListener(kind, (event) => handler(JSON.parse(event.data)));
    }
    events.addEventListener("unauthenticated", () => { events.close(); toLogin(); });
    events.addEventListener("hello", () => { document.body.dataset.live = "on"; });
    return events;
  }

  // ---------- bulk actions ----------
  const ACTION_LABELS = { dismiss: "Dismiss", categorize: "Categorize", fix: "Fix", resolve: "Resolve", reopen: "Reopen" };
  //: The bulk actions that can take a root cause's symptoms along.
  const WITH_SYMPTOMS = ["dismiss", "resolve", "reopen"];
  const PAST = { dismiss: "dismissed", categorize: "categorized", fix: "fix queued for", resolve: "resolved", reopen: "reopened" };
  let hookNames = null;
  async function hooks() {
    if (hookNames === null) {
      try { hookNames = (await api("/api/v1/hooks")).map((hk) => hk.hook); } catch (e) { hookNames = []; }
    }
    return hookNames;
  }
  async function bulkDialog(action, selection, count, onDone) {
    const form = h("form", { method: "dialog" });
    const fields = {};
    const field = (label, input) => { fields[input.name] = input; return h("div", { class: "field" }, h("label", { for: input.id }, label), input); };
    if (action === "dismiss") {
      form.append(
        field("Reason", h("input", { name: "reason", id: "f-reason", required: true, maxlength: 1000, placeholder: "known flaky upstream; ticket OPS-123" })),
        field("Until (optional)", h("input", { name: "until", id: "f-until", type: "datetime-local" })),
        field("…or until more than N occurrences per hour (optional)", h("input", { name: "rate", id: "f-rate", type: "number", min: 0, step: 1, placeholder: "0" })));
    } else if (action === "categorize") {
      form.append(
        field("Category (empty: unchanged)", h("input", { name: "category", id: "f-category", maxlength: 256, placeholder: "timeout" })),
        field("Severity", h("select", { name: "severity", id: "f-severity" }, ["", "low", "medium", "high", "critical"].map((v) => h("option", { value: v }, v || "(unchanged)")))),
        field("Add tags (comma-separated)", h("input", { name: "add", id: "f-add", placeholder: "team-payments" })),
        field("Remove tags", h("input", { name: "remove", id: "f-remove" })));
    } else if (action === "fix") {
      const names = await hooks();
      form.append(field("Hook", h("select", { name: "hook", id: "f-hook", required: true },
        names.length ? names.map((n) => h("option", { value: n }, n)) : h("option", { value: "" }, "(the processor defines no hooks)"))));
    } else {
      form.append(field("Reason (optional)", h("input", { name: "reason", id: "f-reason", maxlength: 1000 })));
    }
    if (WITH_SYMPTOMS.includes(action)) {
      // Root causes across services: a root's symptoms go along only when asked.
      fields.with_symptoms = h("input", { type: "checkbox", name: "with_symptoms", id: "f-with-symptoms" });
      form.append(h("div", { class: "field check-field" }, fields.with_symptoms,
        h("label", { for: "f-with-symptoms" }, " Also the groups marked as symptoms of these (caused by them)")));
    }
    const summary = h("p", {}, `${ACTION_LABELS[action]} ${num(count)} group${count === 1 ? "" : "s"}`,
      selection.match ? " — everything matching the search" : "", "?");
    const bar = h("div", { class: "progress", hidden: true }, h("div"));
    const status = h("p", { class: "status muted" });
    const results = h("div", { class: "results", hidden: true });
    const confirm = h("button", { type: "submit", class: action === "dismiss" ? "danger" : "primary", value: "go" }, ACTION_LABELS[action]);
    const cancel = h("button", { type: "button" }, "Cancel");
    const dialog = h("dialog", { class: "bulk", dataset: { action } },
      h("h2", {}, `${ACTION_LABELS[action]} failure groups`), summary, form, bar, status, results,
      h("div", { class: "actions" }, cancel, confirm));
    form.id = "bulk-form";
    confirm.setAttribute("form", "bulk-form");
    document.body.append(dialog);
    let finished = false;
    cancel.addEventListener("click", () => { dialog.close(); });
    dialog.addEventListener("close", () => { dialog.remove(); if (finished) onDone(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (finished) { dialog.close(); return; }
      const body = { selection: fields.with_symptoms && fields.with_symptoms.checked ? { ...selection, with_symptoms: true } : selection };
      if (action === "dismiss") {
        body.reason = fields.reason.value;
        if (fields.until.value) body.until = new Date(fields.until.value).toISOString();
        if (fields.rate.value) body.reopen_above_per_hour = Number(fields.rate.value);
      } else if (action === "categorize") {
        if (fields.category.value.trim()) body.category = fields.category.value.trim();
        if (fields.severity.value) body.severity = fields.severity.value;
        body.add_tags = fields.add.value.split(",").map((t) => t.trim()).filter(Boolean);
        body.remove_tags = fields.remove.value.split(",").map((t) => t.trim()).filter(Boolean);
      } else if (action === "fix") {
        body.hook = fields.hook.value;
      } else if (fields.reason.value) {
        body.reason = fields.reason.value;
      }
      confirm.disabled = true; cancel.disabled = true;
      bar.hidden = false; bar.classList.add("busy");
      replace(status, `${ACTION_LABELS[action]}: ${num(count)} group${count === 1 ? "" : "s"}…`);
      dialog.dataset.state = "running";
      try {
        const result = await api(`/api/v1/groups/${action}`, { method: "POST", body });
        bar.classList.remove("busy");
        showResults(action, result, bar, status, results, dialog);
      } catch (error) {
        bar.classList.remove("busy"); bar.hidden = true;
        replace(status, h("span", { class: "error" }, error.message));
        dialog.dataset.state = "error";
        confirm.disabled = false; cancel.disabled = false;
        return;
      }
      finished = true;
      confirm.disabled = false; cancel.disabled = false;
      confirm.textContent = "Close"; cancel.hidden = true;
      form.hidden = true;
    });
    dialog.showModal();
    return dialog;
  }
  function showResults(action, result, bar, status, results, dialog) {
    const outcomes = new Map(result.results.map((r) => [r.fingerprint, r.outcome]));
    const cells = new Map();
    const table = h("table", {}, h("tbody", {}, result.results.slice(0, 500).map((r) => {
      const cell = h("td", { class: "outcome" }, r.outcome);
      cells.set(r.fingerprint, cell);
      return h("tr", {}, h("td", { class: "mono" }, h("a", { href: `/groups/${r.fingerprint}` }, r.fingerprint)), cell);
    })));
    replace(results, table);
    results.hidden = false;
    const more = result.results.length > 500 || result.results_truncated ? ` (the first ${Math.min(500, result.results.length)} are listed)` : "";
    bar.firstChild.style.width = "100%";
    if (action !== "fix") {
      replace(status, `Done: ${num(result.matched)} group${result.matched === 1 ? "" : "s"} ${PAST[action]}${more}.`);
      dialog.dataset.state = "done";
      return;
    }
    const queued = [...outcomes.entries()].filter(([, o]) => o === "queued" || o === "deferred").map(([fp]) => fp);
    const dropped = result.dropped;
    const report = (done) => replace(status,
      `Hook runs finished: ${num(done)} of ${num(queued.length)}` + (dropped ? `; ${num(dropped)} not queued (the hook queue was full)` : "") + more + ".");
    bar.firstChild.style.width = queued.length ? "0%" : "100%";
    report(0);
    dialog.dataset.state = queued.length ? "running" : "done";
    if (!queued.length) return;
    const waiting = new Set(queued);
    const started = Date.now();
    const poll = async () => {
      if (!dialog.isConnected) return;
      try {
        const runs = await api("/api/v1/hook-runs?" + query({ since_ms: result.at_ms, limit: 1000 }));
        for (const run of runs) {
          if (waiting.has(run.fingerprint)) {
            waiting.delete(run.fingerprint);
            const cell = cells.get(run.fingerprint);
            if (cell) replace(cell, `${run.outcome} (${secs(run.duration)})`);
          }
        }
      } catch (e) { /* keep polling */ }
      const done = queued.length - waiting.size;
      bar.firstChild.style.width = `${Math.round((done / queued.length) * 100)}%`;
      report(done);
      if (waiting.size && Date.now() - started < 300000) setTimeout(poll, 500);
      else dialog.dataset.state = "done";
    };
    setTimeout(poll, 300);
  }
  function actionButtons(getSelection, onDone, extra) {
    return h("span", { class: "stack-row" }, Object.keys(ACTION_LABELS).map((action) =>
      h("button", { type: "button", dataset: { bulk: action }, onclick: () => {
        const [selection, count] = getSelection();
        if (count) bulkDialog(action, selection, count, onDone);
      } }, `${ACTION_LABELS[action]}${action === "resolve" || action === "reopen" ? "" : "…"}`)), extra || null);
  }

  // ---------- groups list ----------
  const TABS = ["open", "regressed", "dismissed", "resolved", "all"];
  const SORTS = { last_seen: "Last seen", count: "Count", first_seen: "First seen", severity: "Severity" };
  function groupsPage() {
    const params = new URLSearchParams(location.search);
    const state = {
      tab: TABS.includes(params.get("tab")) ? params.get("tab") : "open",
      q: params.get("q") || "",
      sort: params.get("sort") in SORTS ? params.get("sort") : "last_seen",
      order: params.get("order") === "asc" ? "asc" : "desc",
      limit: [10, 25, 50, 100, 200].includes(Number(params.get("limit"))) ? Number(params.get("limit")) : 50,
      // Root causes across services: symptoms folded under their root (unless flat).
      flat: params.get("flat") === "1", under: new Map(), expanded: new Set(),
      cursor: null, previous: [], page: null, rows: new Map(), selected: new Set(), matchAll: false,
      pendingNew: new Set(), pendingUpdated: new Set(), changedBy: new Set(), resync: false, generation: 0,
    };
    const tabs = h("div", { class: "tabs", role: "tablist" }, TABS.map((tab) =>
      h("button", { type: "button", role: "tab", dataset: { tab }, onclick: () => { state.tab = tab; reset(); } }, tab[0].toUpperCase() + tab.slice(1))));
    const search = h("input", { class: "search", type: "search", value: state.q, placeholder: "category:timeout service:orders handled:true card declined", "aria-label": "search", spellcheck: false });
    const sort = h("select", { "aria-label": "sort", onchange: () => { state.sort = sort.value; reset(); } },
      Object.entries(SORTS).map(([value, label]) => h("option", { value, selected: value === state.sort }, `Sort: ${label}`)));
    const order = h("button", { type: "button", title: "order", onclick: () => { state.order = state.order === "desc" ? "asc" : "desc"; reset(); } });
    const size = h("select", { "aria-label": "rows per page", class: "page-size", onchange: () => { state.limit = Number(size.value); reset(); } },
      [10, 25, 50, 100, 200].map((n) => h("option", { value: n, selected: n === state.limit }, `${n} per page`)));
    const flat = h("input", { type: "checkbox", id: "flat", checked: state.flat, onchange: () => { state.flat = flat.checked; state.expanded.clear(); syncControls(); if (state.page) render(state.page); } });
    const flatToggle = h("label", { class: "flat-toggle", title: "one row per group; by default a group marked as the symptom of another group on the page is folded under its root cause" }, flat, " Flat list");
    const problem = h("div", { class: "error", hidden: true });
    const total = h("span", { class: "muted total" });
    const banner = h("div", { class: "banner", hidden: true }, h("button", { type: "button", class: "show-new", onclick: () => reset() }));
    const selCount = h("strong", { class: "selected-count" });
    const selectAll = h("a", { href: "#", class: "select-all", hidden: true, onclick: (e) => { e.preventDefault(); state.matchAll = true; syncSelection(); } });
    const bulkbar = h("div", { class: "bulkbar", hidden: true }, selCount, selectAll,
      actionButtons(() => selection(), () => { state.selected.clear(); state.matchAll = false; load(); },
        h("button", { type: "button", onclick: () => { state.selected.clear(); state.matchAll = false; syncSelection(); } }, "Clear")));
    const headCheck = h("input", { type: "checkbox", class: "check", "aria-label": "select page", onchange: () => {
      if (headCheck.checked) for (const fp of state.rows.keys()) state.selected.add(fp);
      else { state.selected.clear(); state.matchAll = false; }
      syncSelection();
    } });
    const tbody = h("tbody");
    const table = h("table", { class: "groups" }, h("thead", {}, h("tr", {},
      h("th", {}, headCheck), h("th", {}, "24 h"), h("th", {}, "Failure"), h("th", {}, "Category"), h("th", {}, "Severity"),
      h("th", {}, "Handled"), h("th", {}, "Services"), h("th", { class: "num" }, "Count"), h("th", {}, "First seen"), h("th", {}, "Last seen"))), tbody);
    const pager = h("div", { class: "pager" });
    replace(main, tabs, h("div", { class: "toolbar" }, search, sort, order, size, flatToggle, total),
      h("div", { class: "hint" }, "key:value — status, category, severity (or severity:>=high), service, type, tag, handled:true|false, seen:2h, new:24h, regressed:7d; other words match the message, type or fingerprint."),
      problem, banner, bulkbar, table, pager);

    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state.q = search.value; reset(); }, 250); });
    search.addEventListener("keydown", (e) => { if (e.key === "Enter") { clearTimeout(timer); state.q = search.value; reset(); } });

    function selection() {
      if (state.matchAll) return [{ match: true, query: state.q, tab: state.tab }, state.page ? state.page.total : 0];
      return [{ fingerprints: [...state.selected] }, state.selected.size];
    }
    function syncSelection() {
      for (const [fp, entry] of state.rows) {
        const on = state.matchAll || state.selected.has(fp);
        entry.check.checked = on;
        entry.tr.classList.toggle("selected", on);
      }
      const count = state.matchAll ? (state.page ? state.page.total : 0) : state.selected.size;
      bulkbar.hidden = count === 0;
      replace(selCount, state.matchAll ? `All ${num(count)} matching groups selected` : `${num(count)} selected`);
      const pageAll = state.rows.size > 0 && [...state.rows.keys()].every((fp) => state.selected.has(fp));
      headCheck.checked = state.matchAll || pageAll;
      const more = state.page && state.page.total !== null && state.page.total > state.rows.size;
      selectAll.hidden = state.matchAll || !pageAll || !more;
      if (!selectAll.hidden) replace(selectAll, `Select all ${num(state.page.total)} matching this search`);
    }
    function reset() {
      state.cursor = null; state.previous = []; state.selected.clear(); state.matchAll = false;
      load();
    }
    function syncControls() {
      tabs.querySelectorAll("button").forEach((b) => b.classList.toggle("active", b.dataset.tab === state.tab));
      order.textContent = state.order === "desc" ? "↓ newest first" : "↑ oldest first";
      if (state.sort === "count") order.textContent = state.order === "desc" ? "↓ most first" : "↑ fewest first";
      const url = "/?" + query({ q: state.q, tab: state.tab === "open" ? "" : state.tab, sort: state.sort === "last_seen" ? "" : state.sort, order: state.order === "desc" ? "" : state.order, limit: state.limit === 50 ? "" : state.limit, flat: state.flat ? "1" : "" });
      history.replaceState(null, "", url === "/?" ? "/" : url);
    }
    function cells(row) {
      const folded = state.under.get(row.fingerprint) || [];
      const open = state.expanded.has(row.fingerprint);
      const title = h("td", {}, h("div", { class: "title" },
        folded.length ? h("button", { type: "button", class: "fold", "aria-expanded": String(open), title: "symptoms of this root cause",
          onclick: () => toggleFold(row.fingerprint) }, `${open ? "▾" : "▸"} ${folded.length}`) : null,
        h("a", { href: `/groups/${row.fingerprint}`, class: "type" }, row.exception_type || "(no type)"),
        " ", h("span", { class: "msg" }, row.message)),
        h("div", { class: "sub" }, h("span", { class: "mono" }, row.fingerprint), " · ", statusBadge(row.status),
          row.pattern ? [" ", badge(row.pattern, `pattern-${row.pattern}`)] : null,
          row.root_fingerprint ? [" · ", h("span", { class: "caused-by" }, "caused by ", h("a", { href: `/groups/${row.root_fingerprint}`, class: "mono" }, row.root_fingerprint))] : null,
          row.causes ? [" · ", h("span", { class: "causes" }, `causes ${num(row.causes)} group${row.causes === 1 ? "" : "s"}`)] : null,
          row.tags.length ? [" ", row.tags.map((t) => h("span", { class: "tag" }, t))] : null));
      const services = Object.keys(row.services);
      return [
        h("td", { class: "spark-cell" }, sparkline(row.spark || [])),
        title,
        h("td", {}, badge(row.category)),
        h("td", {}, sevBadge(row.severity)),
        h("td", {}, outcomeBadge(row)),
        h("td", { title: services.join(", ") }, services.slice(0, 2).join(", "), services.length > 2 ? ` +${services.length - 2}` : ""),
        h("td", { class: "num count" }, num(row.count)),
        h("td", {}, when(row.first_seen, row.first_seen_ms)),
        h("td", { class: "last-seen" }, when(row.last_seen, row.last_seen_ms)),
      ];
    }
    function rowElement([row, symptom]) {
      const check = h("input", { type: "checkbox", class: "check", "aria-label": `select ${row.fingerprint}`, onchange: () => {
        if (check.checked) state.selected.add(row.fingerprint);
        else { state.selected.delete(row.fingerprint); state.matchAll = false; }
        syncSelection();
      } });
      const tr = h("tr", { class: symptom ? "row symptom" : "row", dataset: symptom ? { fingerprint: row.fingerprint, root: row.root_fingerprint } : { fingerprint: row.fingerprint } },
        h("td", {}, check), cells(row));
      if (symptom) tr.hidden = !state.expanded.has(row.root_fingerprint);
      state.rows.set(row.fingerprint, { row, tr, check });
      return tr;
    }
    // Each group of the page, a symptom right after its root when both are on the page
    // ([row, folded symptom]); the page's order with a flat list.
    function folded(groups) {
      state.under = new Map();
      if (state.flat) return groups.map((row) => [row, false]);
      const present = new Set(groups.map((row) => row.fingerprint));
      const isFolded = (row) => row.root_fingerprint && row.root_fingerprint !== row.fingerprint && present.has(row.root_fingerprint);
      for (const row of groups) {
        if (!isFolded(row)) continue;
        if (!state.under.has(row.root_fingerprint)) state.under.set(row.root_fingerprint, []);
        state.under.get(row.root_fingerprint).push(row);
      }
      return groups.filter((row) => !isFolded(row)).flatMap((row) =>
        [[row, false], ...(state.under.get(row.fingerprint) || []).map((symptom) => [symptom, true])]);
    }
    function toggleFold(root) {
      if (state.expanded.has(root)) state.expanded.delete(root); else state.expanded.add(root);
      for (const entry of state.rows.values()) {
        if (entry.tr.dataset.root === root) entry.tr.hidden = !state.expanded.has(root);
        if (entry.row.fingerprint === root) replace(entry.tr, entry.check.parentNode, cells(entry.row));
      }
    }
    function render(data) {
      state.page = data;
      state.rows.clear();
      state.pendingNew.clear(); state.pendingUpdated.clear(); state.changedBy.clear(); state.resync = false;
      syncBanner();
      showTotal(data);
      if (!data.groups.length) {
        replace(tbody, h("tr", {}, h("td", { colspan: 10, class: "empty" }, state.q ? "No failure group matches this search." : "No failure groups here.")));
      } else {
        replace(tbody, folded(data.groups).map(rowElement));
      }
      replace(pager,
        state.previous.length ? h("button", { type: "button", onclick: () => { state.cursor = state.previous.pop() || null; load(true); } }, "← Previous") : null,
        state.previous.length ? h("button", { type: "button", onclick: () => { reset(); } }, "First page") : null,
        data.next_cursor ? h("button", { type: "button", class: "next", onclick: () => { state.previous.push(state.cursor); state.cursor = data.next_cursor; load(true); } }, "Next →") : null);
      syncSelection();
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
      performance.mark("faultlens:groups-rendered");
    }
    function showTotal(data) {
      replace(total, data.total === null ? "counting…" : `${num(data.total)} group${data.total === 1 ? "" : "s"}`);
    }
    async function load(keepCursor) {
      const generation = ++state.generation;
      syncControls();
      problem.hidden = true;
      if (!keepCursor) { state.cursor = null; state.previous = []; }
      document.body.dataset.loading = "1";
      try {
        const data = await api("/api/v1/groups?" + query({ q: state.q, tab: state.tab, sort: state.sort, order: state.order, limit: state.limit, cursor: state.cursor, count: "false" }));
        if (generation !== state.generation) return;
        render(data);
        // The rows are on screen; counting every match may scan the store: after.
        const counted = await api("/api/v1/groups-count?" + query({ q: state.q, tab: state.tab }));
        if (generation !== state.generation) return;
        data.total = counted.total;
        showTotal(data);
        syncSelection();
      } catch (error) {
        if (generation !== state.generation) return;
        replace(problem, error.message); problem.hidden = false;
      } finally {
        if (generation === state.generation) delete document.body.dataset.loading;
      }
      follow();
    }
    let followed = null;
    function follow() {
      const key = `${state.q}\n${state.tab}`;
      if (followed === key) return;
      followed = key;
      listen({ q: state.q, tab: state.tab }, { groups: onGroups });
    }
    function onGroups(data) {
      if (data.resync) { state.resync = true; }
      for (const row of data.updated || []) {
        const entry = state.rows.get(row.fingerprint);
        if (entry) {
          entry.row = row;
          const check = entry.tr.firstChild;
          replace(entry.tr, check, cells(row));
          if (row.root_fingerprint !== (entry.tr.dataset.root || row.root_fingerprint)) state.resync = true;
          entry.tr.classList.remove("flash"); void entry.tr.offsetWidth; entry.tr.classList.add("flash");
        } else if (!state.cursor) {
          state.pendingUpdated.add(row.fingerprint);
        }
      }
      for (const row of data.created || []) if (!state.rows.has(row.fingerprint)) state.pendingNew.add(row.fingerprint);
      for (const action of data.actions || []) state.changedBy.add(action.actor);
      syncBanner();
    }
    function syncBanner() {
      const parts = [];
      if (state.pendingNew.size) parts.push(`${num(state.pendingNew.size)} new`);
      if (state.pendingUpdated.size) parts.push(`${num(state.pendingUpdated.size)} updated`);
      if (state.changedBy.size) parts.push(`changed by ${[...state.changedBy].join(", ")}`);
      if (state.resync && !parts.length) parts.push("changes");
      banner.hidden = parts.length === 0;
      banner.dataset.new = String(state.pendingNew.size);
      replace(banner.firstChild, parts.join(" · ") + " — show");
    }
    const initial = readInitial();
    if (initial && initial.groups && !initial.error) {
      syncControls();
      render(initial);
      follow();
    } else {
      if (initial && initial.error) { replace(problem, initial.error); problem.hidden = false; }
      load();
    }
  }
  function readInitial() {
    const node = document.getElementById("initial-data");
    try { return node ? JSON.parse(node.textContent || "null") : null; } catch (e) { return null; }
  }

  // ---------- one group ----------
  async function groupPage() {
    const fingerprint = decodeURIComponent(location.pathname.split("/").pop() || "");
    let hours = 168;
    const load = async () => {
      let data;
      try {
        data = await api(`/api/v1/groups/${encodeURIComponent(fingerprint)}?hours=${hours}`);
      } catch (error) {
        replace(main, h("p", { class: "error" }, error.message), h("p", {}, h("a", { href: "/" }, "← all failure groups")));
        return;
      }
      renderGroup(data);
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    };
    function renderGroup(data) {
      const g = data.group;
      document.title = `${g.exception_type} — faultlens`;
      const range = h("div", { class: "range" }, [[24, "24 h"], [168, "7 d"], [720, "30 d"]].map(([value, label]) =>
        h("button", { type: "button", class: value === hours ? "active" : "", onclick: () => { hours = value; load(); } }, label)));
      const single = () => [{ fingerprints: [g.fingerprint] }, 1];
      const attrs = h("dl", { class: "attrs" });
      for (const pair of [["Fingerprint", h("span", { class: "mono" }, g.fingerprint)], ["Status", statusBadge(g.status)],
        ["Category", [g.category, g.category_locked ? " (set by an operator)" : ""]],
        ["Severity", [sevBadge(g.severity), g.severity_locked ? " (set by an operator)" : ""]],
        ["Occurrences", num(g.count)], ["Handled", `${num(g.handled_count)} of ${num(g.count)}`],
        ["First seen", stamp(g.first_seen)], ["Last seen", stamp(g.last_seen)],
        g.regressed_at ? ["Regressed", stamp(g.regressed_at)] : null,
        ["Tags", g.tags.length ? g.tags.map((t) => h("span", { class: "tag" }, t)) : "—"],
        ["Span names", data.span_names.length ? data.span_names.join(", ") : "—"],
        g.dismissal ? ["Dismissed", [`by ${g.dismissal.by}: ${g.dismissal.reason}`,
          g.dismissal.until ? ` (until ${stamp(g.dismissal.until)})` : "",
          g.dismissal.reopen_above_per_hour ? ` (reopens above ${num(g.dismissal.reopen_above_per_hour)}/h)` : ""]] : null]) {
        if (pair) attrs.append(h("dt", {}, pair[0]), h("dd", {}, pair[1]));
      }
      const services = h("table", {}, h("tbody", {}, Object.entries(g.services).map(([name, count]) =>
        h("tr", {}, h("td", {}, name), h("td", { class: "num" }, num(count))))));
      const samples = data.samples.length ? h("table", { class: "samples" }, h("thead", {}, h("tr", {}, h("th", {}, "Trace"), h("th", {}, "Span"), h("th", {}, "Service"), h("th", {}, "Time"))),
        h("tbody", {}, data.samples.map((sample) => h("tr", {},
          h("td", { class: "mono", title: sample.trace_id }, sample.url ? h("a", { href: sample.url, target: "_blank", rel: "noopener noreferrer" }, short(sample.trace_id)) : short(sample.trace_id)),
          h("td", { class: "mono" }, sample.span_id), h("td", {}, sample.service), h("td", {}, when(sample.time, sample.time ? Date.parse(sample.time) : 0))))))
        : h("p", { class: "muted" }, "No occurrence with a trace context yet.");
      const runs = data.hook_runs.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Started", "Hook", "Purpose", "Outcome", "Fix", "Duration", "Exit", "Requested by", "Output"].map((t) => h("th", {}, t)))),
        h("tbody", {}, data.hook_runs.map((run) => h("tr", {},
          h("td", {}, stamp(run.started_at)), h("td", {}, run.hook), h("td", {}, run.purpose), h("td", {}, badge(run.outcome, run.outcome === "ok" ? "lvl-ok" : "lvl-critical")),
          h("td", {}, verification(run.verification)),
          h("td", { class: "num" }, secs(run.duration)), h("td", { class: "num" }, run.exit_code === null ? "—" : String(run.exit_code)),
          h("td", {}, run.requested_by || run.rule), h("td", { class: "mono" }, run.output_tail || run.detail)))))
        : h("p", { class: "muted" }, "No hook has run for this group.");
      const audit = data.audit.length ? h("table", {}, h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Detail"].map((t) => h("th", {}, t)))),
        h("tbody", {}, data.audit.map((entry) => h("tr", {}, h("td", {}, stamp(entry.at)), h("td", {}, entry.actor, h("div", { class: "sub" }, entry.peer)),
          h("td", {}, entry.action), h("td", { class: "mono" }, describe(entry.detail))))))
        : h("p", { class: "muted" }, "No operator has acted on this group.");
      // Root causes across services: what caused this group's failures, what they caused.
      const cause = data.root_cause;
      const causePanel = cause ? h("section", { class: "panel root-cause" }, h("h2", {}, "Root causes across services"),
        h("dl", { class: "attrs" }, h("dt", {}, "Pattern"), h("dd", { class: "pattern" }, cause.pattern || "—"),
          h("dt", {}, "Caused by"), h("dd", { class: "caused-by" }, links(cause.caused_by, "of this group's occurrences")),
          h("dt", {}, "Causes"), h("dd", { class: "causes" }, links(cause.causes, "of that group's occurrences")))) : null;
      const rootLine = cause && cause.root ? h("p", { class: "root-line" }, "Caused by ", linkedGroup(cause.root),
        " — a symptom of that root cause; resolving or dismissing it can take this group along.") : null;
      const causesLine = cause && cause.causes.length ? h("p", { class: "causes-line" },
        `Causes ${num(cause.causes.length)} other group${cause.causes.length === 1 ? "" : "s"}: `,
        cause.causes.slice(0, 5).map((link, index) => [index ? ", " : "", linkedGroup(link)]), cause.causes.length > 5 ? ", …" : "") : null;
      replace(main,
        h("p", {}, h("a", { href: "/" }, "← all failure groups")),
        h("h1", {}, h("span", { class: "type" }, g.exception_type || "(no type)"), " ", h("span", { class: "msg muted" }, g.message)),
        h("div", { class: "badges" }, statusBadge(g.status), badge(g.category), sevBadge(g.severity), outcomeBadge(g),
          g.pattern ? badge(g.pattern, `pattern-${g.pattern}`) : null, h("span", { class: "mono muted" }, g.fingerprint)),
        rootLine, causesLine,
        h("div", { class: "toolbar group-actions" }, actionButtons(single, () => load())),
        h("div", { class: "grid2" },
          h("div", {},
            h("section", { class: "panel" }, h("div", { class: "toolbar" }, h("h2", {}, `Occurrences (${num(data.series.series.reduce((a, x) => a + x.total, 0))} in the window)`), range),
              barChart(data.series, { legend: false, label: "occurrences of this group over time" })),
            h("section", { class: "panel" }, h("h2", {}, "Stack trace"), h("pre", { class: "trace" }, data.stacktrace || "(none reported)")),
            h("section", { class: "panel" }, h("h2", {}, "Hook runs"), runs),
            h("section", { class: "panel" }, h("h2", {}, "Audit trail"), audit)),
          h("div", {},
            h("section", { class: "panel" }, h("h2", {}, "Attributes"), attrs),
            causePanel,
            h("section", { class: "panel" }, h("h2", {}, "Services"), services),
            h("section", { class: "panel" }, h("h2", {}, "Sample traces"), samples))));
    }
    function linkedGroup(link) {
      return h("a", { href: `/groups/${link.fingerprint}`, class: "linked", dataset: { fingerprint: link.fingerprint } },
        link.exception_type || link.fingerprint, link.service ? ` (${link.service})` : "");
    }
    function links(list, of) {
      return list.length ? list.map((link) => h("div", { class: "link", dataset: { fingerprint: link.fingerprint } }, linkedGroup(link),
        " ", h("span", { class: "mono muted" }, link.fingerprint),
        h("div", { class: "sub" }, `${pct(link.share)} ${of} · ${num(link.traces)} trace${link.traces === 1 ? "" : "s"}`, link.last_seen ? ` · last ${stamp(link.last_seen)}` : ""))) : "—";
    }
    await load();
    let pending = null;
    listen({ q: "", tab: "all" }, { groups: (data) => {
      const mine = (data.updated || []).concat(data.created || []).some((row) => row.fingerprint.startsWith(fingerprint));
      const acted = (data.actions || []).length > 0;
      if ((mine || acted || data.resync) && !pending) pending = setTimeout(() => { pending = null; load(); }, 300);
    } });
  }
  function short(id) { return id.length > 16 ? `${id.slice(0, 16)}…` : id; }
  function describe(detail) {
    return Object.entries(detail || {}).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
  }

  // ---------- dashboard ----------
  async function dashboardPage() {
    let hours = 24;
    const feed = h("div", { class: "feed alert-feed" });
    const halts = h("div", { class: "halts" });
    const load = async () => {
      let data;
      try {
        data = await api(`/api/v1/dashboard?hours=${hours}`);
      } catch (error) {
        replace(main, h("p", { class: "error" }, error.message));
        return;
      }
      render(data);
      document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
    };
    function groupList(list, empty) {
      if (!list.length) return h("p", { class: "muted" }, empty);
      return h("table", { class: "compact" }, h("tbody", {}, list.map((row) => h("tr", {},
        h("td", {}, sparkline(row.spark || [], 60, 20)),
        h("td", {}, h("a", { href: `/groups/${row.fingerprint}` }, row.exception_type), " ", h("span", { class: "muted" }, row.message.slice(0, 90))),
        h("td", {}, sevBadge(row.severity)), h("td", { class: "num" }, num(row.count))))));
    }
    function hookPanel(data) {
      if (!data.hooks.length) return h("p", { class: "muted" }, "The processor defines no fix hooks.");
      const t = data.thresholds;
      return data.hooks.map((hook) => {
        const rate = hook.success_rate;
        const bar = h("div", { class: "hookbar", title: `success rate ${pct(rate)}` },
          h("div", { class: `fill ${hook.level}`, style: { width: `${Math.round((rate || 0) * 100)}%` } }),
          h("div", { class: "mark warn", style: { left: `${t.success_warning * 100}%` } }),
          h("div", { class: "label", style: { left: `${t.success_warning * 100}%` } }, `${Math.round(t.success_warning * 100)} %`),
          h("div", { class: "mark crit", style: { left: `${t.success_critical * 100}%` } }),
          h("div", { class: "label", style: { left: `${t.success_critical * 100}%` } }, `${Math.round(t.success_critical * 100)} %`));
        return h("div", { class: "hook", dataset: { hook: hook.hook } },
          h("div", { class: "toolbar" }, h("strong", {}, hook.hook), badge(hook.level, `lvl-${hook.level}`),
            h("span", { class: "muted" }, `success ${pct(rate)} · ${num(hook.verified)} of ${num(hook.samples)} verified · ${num(hook.pending)} pending · mean ${secs(hook.mean_duration)}`),
            badge(`duration ${hook.duration_level}`, `lvl-${hook.duration_level}`)),
          bar);
      });
    }
    function alertItem(alert, fresh) {
      return h("div", { class: `item${fresh ? " fresh" : ""}` }, h("div", {}, badge(alert.kind, alert.severity === "ERROR" || alert.severity === "error" ? "lvl-critical" : "lvl-warning"),
        " ", h("span", { class: "muted" }, stamp(alert.created_at))), h("div", {}, alert.body));
    }
    function renderHalts(list) {
      const rows = list.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Key", "Reason", "Rule", "Since", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, list.map((halt) => h("tr", { dataset: { halt: halt.id } },
          h("td", { class: "mono" }, Object.entries(halt.key).map(([k, v]) => `${k}=${v}`).join(", ")),
          h("td", {}, halt.reason), h("td", {}, halt.rule), h("td", {}, when(halt.since, halt.since_ms)),
          h("td", {}, h("button", { type: "button", class: "resume", onclick: () => confirmDialog(
            `Resume halt ${halt.id}?`, `Work on ${Object.entries(halt.key).map(([k, v]) => `${k}=${v}`).join(", ")} will be allowed again.`, "Resume",
            async () => { await api(`/api/v1/halts/${encodeURIComponent(halt.id)}/resume`, { method: "POST" }); await reloadHalts(); }) }, "Resume…"))))))
        : h("p", { class: "muted" }, "No halt in force.");
      const keyInput = h("input", { name: "key", placeholder: "service.name=checkout span.name=charge-card", "aria-label": "halt key" });
      const reasonInput = h("input", { name: "reason", placeholder: "reason", "aria-label": "halt reason" });
      const start = h("form", { class: "toolbar start-halt", onsubmit: (e) => {
        e.preventDefault();
        const key = {};
        for (const part of keyInput.value.trim().split(/\s+/).filter(Boolean)) {
          const at = part.indexOf("=");
          if (at > 0) key[part.slice(0, at)] = part.slice(at + 1);
        }
        confirmDialog("Start a halt?", `Work on ${Object.entries(key).map(([k, v]) => `${k}=${v}`).join(", ") || "(no key)"} will be refused until resumed.`, "Start halt",
          async () => { await api("/api/v1/halts", { method: "POST", body: { key, reason: reasonInput.value } }); keyInput.value = ""; reasonInput.value = ""; await reloadHalts(); });
      } }, keyInput, reasonInput, h("button", { type: "submit" }, "Start halt…"));
      replace(halts, rows, start);
    }
    async function reloadHalts() {
      try { renderHalts(await api("/api/v1/halts")); } catch (e) { /* keep what is shown */ }
    }
    function render(data) {
      const range = h("div", { class: "range" }, [[24, "24 h"], [168, "7 d"]].map(([value, label]) =>
        h("button", { type: "button", class: value === hours ? "active" : "", onclick: () => { hours = value; load(); } }, label)));
      replace(feed, data.alerts.length ? data.alerts.map((a) => alertItem(a, false)) : h("p", { class: "muted empty-feed" }, "No alert yet."));
      renderHalts(data.halts);
      replace(main,
        h("div", { class: "toolbar" }, h("h1", {}, "Dashboard"), range),
        h("div", { class: "grid3" },
          h("section", { class: "panel" }, h("h2", {}, `New groups (${hours} h)`), h("div", { class: "kpi new-count" }, num(data.new_groups.total)), groupList(data.new_groups.groups, "None.")),
          h("section", { class: "panel" }, h("h2", {}, `Regressions (${hours} h)`), h("div", { class: "kpi regression-count" }, num(data.regressions.total)), groupList(data.regressions.groups, "None.")),
          h("section", { class: "panel" }, h("h2", {}, `Top groups (${hours} h)`), groupList(data.top_groups, "No occurrences in this window."))),
        h("div", { class: "grid3" },
          h("section", { class: "panel" }, h("h2", {}, "Failures by category"), barChart(data.by_category, { width: 400, label: "failures by category" })),
          h("section", { class: "panel" }, h("h2", {}, "Failures by severity"), barChart(data.by_severity, { width: 400, colors: SEVERITY_COLORS, label: "failures by severity" })),
          h("section", { class: "panel" }, h("h2", {}, "Failures by service"), barChart(data.by_service, { width: 400, label: "failures by service" }))),
        h("div", { class: "grid2" },
          h("div", {},
            h("section", { class: "panel hooks" }, h("h2", {}, "Fix-hook effectiveness"),
              h("p", { class: "muted" }, `Success rate below ${Math.round(data.thresholds.success_warning * 100)} % is a warning, below ${Math.round(data.thresholds.success_critical * 100)} % critical; mean duration above ${data.thresholds.duration_warning} s a warning, above ${data.thresholds.duration_critical} s critical.`),
              hookPanel(data)),
            h("section", { class: "panel" }, h("h2", {}, "Halts in force"), halts)),
          h("section", { class: "panel" }, h("h2", {}, "Alerts"), feed)));
    }
    await load();
    listen({ q: "", tab: "all" }, {
      alert: (alert) => { const empty = feed.querySelector(".empty-feed"); if (empty) empty.remove(); feed.prepend(alertItem(alert, true)); },
      halts: () => { reloadHalts(); },
    });
  }
  function confirmDialog(title, text, label, action) {
    const status = h("p", { class: "status" });
    const ok = h("button", { type: "button", class: "danger confirm" }, label);
    const cancel = h("button", { type: "button" }, "Cancel");
    const dialog = h("dialog", { class: "confirm-dialog" }, h("h2", {}, title), h("p", {}, text), status, h("div", { class: "actions" }, cancel, ok));
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => dialog.remove());
    ok.addEventListener("click", async () => {
      ok.disabled = true;
      try { await action(); dialog.close(); } catch (error) { replace(status, h("span", { class: "error" }, error.message)); ok.disabled = false; }
    });
    document.body.append(dialog);
    dialog.showModal();
  }

  // ---------- login ----------
  function loginPage() {
    const state = readInitial() || { needs_token: true, title: "faultlens" };
    const params = new URLSearchParams(location.search);
    const error = params.get("error");
    const form = h("form", { method: "post", action: "/login", class: "panel login-form" },
      h("h1", {}, `Log in to ${state.title}`),
      error ? h("p", { class: "error" }, error) : null,
      h("div", { class: "field" }, h("label", { for: "actor" }, "Your name (for the audit log)"),
        h("input", { id: "actor", name: "actor", required: true, maxlength: 64, autocomplete: "username" })),
      state.needs_token ? h("div", { class: "field" }, h("label", { for: "token" }, "The processor's token"),
        h("input", { id: "token", name: "token", type: "password", required: true, autocomplete: "current-password" })) : null,
      h("input", { type: "hidden", name: "next", value: params.get("next") || "/" }),
      h("button", { type: "submit", class: "primary" }, "Log in"),
      state.needs_token ? null : h("p", { class: "muted" }, "This processor needs no token."));
    replace(main, h("div", { class: "login" }, form));
    form.querySelector("#actor").focus();
  }

  renderWho();
  ({ groups: groupsPage, group: groupPage, dashboard: dashboardPage, login: loginPage })[page]();
})();
