// flatlab dashboard: reads the /v1 API with the API key kept in localStorage.
"use strict";

const KEY = "flatlab_api_key";
const TERMINAL = ["succeeded", "failed", "cancelled", "pruned"];
const $ = (sel, root = document) => root.querySelector(sel);

function headers(extra = {}) {
  const key = localStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (response.status === 401) {
    location.href = `/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new ApiError(401, { detail: "an API key is needed" });
  }
  if (!response.ok) {
    let problem = {};
    try { problem = await response.json(); } catch (e) { problem = { detail: response.statusText }; }
    throw new ApiError(response.status, problem);
  }
  return response;
}

const getJson = async (path) => (await api(path)).json();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function flash(message, kind = "error") {
  const box = $("#flash");
  box.textContent = message;
  box.className = `flash ${kind}`;
  box.hidden = !message;
}

const fmt = (x, digits = 4) =>
  x === null || x === undefined ? "—" : typeof x === "number" ? Number(x.toPrecision(digits)).toString() : String(x);
// the full-precision number behind a rounded cell, for copying and for tests
const exact = (name, x) => (x === null || x === undefined ? {} : { [`data-value-${name}`]: String(x) });
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const badge = (status) => el("span", { class: `status s-${status}`, text: status });
const short = (id) => id.slice(0, 8);

function progressText(p) {
  if (!p) return "";
  const of = p.total_steps ? ` of ${p.total_steps}` : "";
  return `step ${p.step}${of} · epoch ${fmt(p.epoch, 3)} · ${Math.round(100 * (p.fraction || 0))}%`;
}

// Why a job is where it is: a failure's reason, a queued job's wait, a cancel in flight.
function jobNote(job) {
  if (job.status === "failed") return `failed${job.failure_reason ? ` (${job.failure_reason})` : ""}: ${job.error || "no error recorded"}`;
  if (job.status === "queued") {
    const why = job.waiting_reason || job.queue_status?.reason;
    return why ? `waiting: ${why}` : `waiting for a worker on queue '${job.queue}' (attempt ${job.attempts + 1} of ${job.max_attempts})`;
  }
  if (job.status === "cancelled") return job.error || "cancelled";
  if (job.cancel_requested || job.timings?.cancel_requested_at) return "cancel requested: stops at its next step";
  return "";
}

// ---- images: fetched with the key, shown as blobs; a 4xx shows its reason instead
async function loadPlot(box, url) {
  try {
    const blob = await (await api(url)).blob();
    const img = el("img", { alt: box.dataset.plot, src: URL.createObjectURL(blob) });
    const old = $("img", box);
    if (old) URL.revokeObjectURL(old.src);
    box.replaceChildren(img);
    box.classList.remove("missing");
  } catch (err) {
    box.replaceChildren(el("p", { text: `${box.dataset.plot}: ${err.message}` }));
    box.classList.add("missing");
  }
}

// ---- server-sent events over fetch (EventSource cannot send the Authorization header)
async function streamEvents(path, onEvent) {
  const response = await api(path, { headers: { Accept: "text/event-stream" } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(event, JSON.parse(data.join("\n")));
    }
  }
}

// ---- pages
async function jobsPage() {
  const body = $("#jobs tbody");
  const filter = $("#status-filter");
  let cursor = null;
  async function refresh(append = false) {
    const params = new URLSearchParams({ limit: "50" });
    if (filter.value) params.set("status", filter.value);
    if (append && cursor) params.set("cursor", cursor);
    const page = await getJson(`/v1/jobs?${params}`);
    if (!append) body.replaceChildren();
    for (const job of page.items) {
      const acc = job.summary?.final_test_acc;
      body.append(el("tr", { "data-job-id": job.id, "data-status": job.status },
        el("td", {}, el("a", { href: `/ui/jobs/${job.id}`, text: short(job.id) })),
        el("td", { text: job.label || job.optimizer }),
        el("td", { text: `${job.model} · ${job.dataset}` }),
        el("td", { text: job.seed }),
        el("td", {}, badge(job.status)),
        el("td", { text: `${Math.round(100 * (job.progress.fraction || 0))}%` }),
        el("td", { text: fmt(acc) }),
        el("td", { text: when(job.timings.created_at) }),
        el("td", { class: "note-cell", text: jobNote(job) })));
    }
    cursor = page.next_cursor;
    $("#more").hidden = !cursor;
    $("#jobs-empty").hidden = body.children.length > 0;
    $("#updated").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  }
  filter.addEventListener("change", () => refresh().catch((e) => flash(e.message)));
  $("#more").addEventListener("click", () => refresh(true).catch((e) => flash(e.message)));
  await refresh();
  // the list has no event stream: poll, but only the first page and only while visible
  setInterval(() => { if (!document.hidden && !cursor) refresh().catch(() => {}); }, 3000);
}

function kvRows(table, rows) {
  table.replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", {}, v))));
}

async function jobPage() {
  const id = $("#job").dataset.jobId;
  const plots = [...document.querySelectorAll("#job .plot")];
  const refreshPlots = (kinds) => Promise.all(plots
    .filter((box) => !kinds || kinds.includes(box.dataset.plot))
    .map((box) => loadPlot(box, `/v1/jobs/${id}/plots/${box.dataset.plot}?format=svg`)));

  function showStatus(job) {
    const status = $("#job-status");
    status.replaceWith(Object.assign(badge(job.status), { id: "job-status" }));
    $("#job-progress").style.width = `${Math.round(100 * (job.progress.fraction || 0))}%`;
    $("#job-progress-text").textContent = progressText(job.progress);
    const note = jobNote(job);
    $("#job-note").hidden = !note;
    $("#job-note").textContent = note;
    $("#job-note").className = `note ${job.status === "failed" ? "error" : ""}`;
    $("#cancel").hidden = TERMINAL.includes(job.status);
  }

  async function loadJob() {
    const job = await getJson(`/v1/jobs/${id}`);
    showStatus(job);
    kvRows($("#job-facts"), [
      ["configuration", job.label || job.optimizer], ["optimizer", job.optimizer],
      ["model", job.model], ["data", job.dataset], ["seed", String(job.seed)],
      ["queue", job.queue], ["attempts", `${job.attempts} of ${job.max_attempts}`],
      ["benchmark", job.benchmark_id ? el("a", { href: `/ui/benchmarks/${job.benchmark_id}`, text: short(job.benchmark_id) }) : "—"],
      ["created", when(job.timings.created_at)], ["started", when(job.timings.started_at)],
      ["finished", when(job.timings.finished_at)],
    ]);
    const summary = Object.entries(job.summary || {}).sort(([a], [b]) => a.localeCompare(b));
    kvRows($("#job-summary"), summary.length ? summary.map(([k, v]) => [k, fmt(v)]) : [["", "no summary until the job succeeds"]]);
    $("#job-spec").textContent = JSON.stringify(job.spec, null, 2);
    const artifacts = (await getJson(`/v1/jobs/${id}/artifacts`)).items;
    $("#artifacts").replaceChildren(...(artifacts.length ? artifacts.map((a) => {
      const link = el("a", { href: "#", text: a.name });
      link.addEventListener("click", (e) => { e.preventDefault(); download(`/v1/jobs/${id}/artifacts/${a.name}`, a.name); });
      return el("li", {}, link, ` · ${a.kind} · ${fmt(a.size_bytes / 1024, 3)} KiB`);
    }) : [el("li", { class: "muted", text: "none yet" })]));
    return job;
  }

  $("#cancel").addEventListener("click", async () => {
    try { showStatus(await (await api(`/v1/jobs/${id}/cancel`, { method: "POST" })).json()); }
    catch (e) { flash(e.message); }
  });

  const job = await loadJob();
  if (TERMINAL.includes(job.status)) {
    await refreshPlots();
    $("#live").textContent = "finished";
    return;
  }
  refreshPlots();
  $("#live").textContent = "live";
  let lastCurves = Date.now();
  await streamEvents(`/v1/jobs/${id}/events`, (event, data) => {
    if (event === "status") showStatus(data);
    if (event === "metric" && Date.now() - lastCurves > 4000) {
      lastCurves = Date.now();
      refreshPlots(["curves", "measures"]);
    }
  });
  $("#live").textContent = "loading the final plots…";
  await loadJob();
  await refreshPlots();
  $("#live").textContent = "finished";  // set only once everything shown is final
}

async function download(path, name) {
  try {
    const blob = await (await api(path)).blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: name.split("/").pop() });
    link.click();
  } catch (e) { flash(e.message); }
}

async function benchmarksPage() {
  $("#open-benchmark").addEventListener("submit", (e) => {
    e.preventDefault();
    location.href = `/ui/benchmarks/${encodeURIComponent(new FormData(e.target).get("id").trim())}`;
  });
  const body = $("#benchmarks tbody");
  let cursor = null;
  async function refresh(append = false) {
    const params = new URLSearchParams({ limit: "50" });
    if (append && cursor) params.set("cursor", cursor);
    let page;
    try { page = await getJson(`/v1/benchmarks?${params}`); }
    catch (e) {
      if (e.status === 404 || e.status === 405) {
        flash("This server cannot list benchmarks (GET /v1/benchmarks is missing): open one by its id.", "info");
        $("#benchmarks").hidden = true;
        return;
      }
      throw e;
    }
    if (!append) body.replaceChildren();
    for (const b of page.items) {
      body.append(el("tr", {},
        el("td", {}, el("a", { href: `/ui/benchmarks/${b.id}`, text: short(b.id) })),
        el("td", { text: b.name || "—" }), el("td", { text: b.jobs }),
        el("td", { text: b.baseline || "—" }), el("td", { text: (b.tags || []).join(", ") }),
        el("td", { text: when(b.created_at) })));
    }
    cursor = page.next_cursor;
    $("#more").hidden = !cursor;
    $("#benchmarks-empty").hidden = body.children.length > 0;
  }
  $("#more").addEventListener("click", () => refresh(true).catch((e) => flash(e.message)));
  await refresh();
}

async function benchmarkPage() {
  const id = $("#benchmark").dataset.benchmarkId;
  const select = $("#metric");
  let timer = null;
  async function refresh() {
    const params = new URLSearchParams();
    if (select.value) params.set("metric", select.value);
    const b = await getJson(`/v1/benchmarks/${id}?${params}`);
    const c = b.comparison;
    $("#bench-title").replaceChildren("Benchmark ", el("code", { text: b.name || short(b.id) }));
    const p = b.progress;
    $("#bench-progress").style.width = `${Math.round(100 * p.fraction_done)}%`;
    $("#bench-progress-text").textContent = `${Object.entries(p.by_status).map(([s, n]) => `${n} ${s}`).join(" · ")} of ${p.total} jobs`;
    const names = [...new Set(Object.values(c.configurations).flatMap((x) => Object.keys(x.metrics)))].sort();
    if (!select.options.length || select.options.length !== names.length) {
      select.replaceChildren(...names.map((n) => el("option", { text: n })));
      select.value = names.includes(c.metric) ? c.metric : names[0] || "";
    }
    const ranks = Object.fromEntries(c.ranking.map((r) => [r.label, r.rank]));
    const rows = Object.entries(c.configurations).sort(([a], [b2]) => (ranks[a] ?? 1e9) - (ranks[b2] ?? 1e9));
    $("#comparison tbody").replaceChildren(...rows.map(([label, conf]) => {
      const m = conf.metrics[c.metric] || {};
      const test = c.paired_tests[label]?.[c.metric];
      return el("tr", { "data-label": label },
        el("td", { text: ranks[label] ?? "—" }),
        el("td", { text: label + (label === c.baseline ? " (baseline)" : "") }),
        el("td", { class: "n", text: `${m.n ?? 0} of ${conf.runs}` }),
        el("td", { class: "mean", text: fmt(m.mean), ...exact("mean", m.mean) }),
        el("td", { class: "std", text: fmt(m.std), ...exact("std", m.std) }),
        el("td", { class: "ci", text: m.ci_low == null ? "—" : `[${fmt(m.ci_low)}, ${fmt(m.ci_high)}]`,
          ...exact("ci-low", m.ci_low), ...exact("ci-high", m.ci_high) }),
        el("td", { text: test ? fmt(test.mean_diff) : "—" }),
        el("td", { text: test ? fmt(test.p_value, 3) : "—" }));
    }));
    $("#comparison-note").textContent = `${c.metric}, ${c.order === "desc" ? "higher" : "lower"} is better; mean and 95% t interval over seeds; paired t-test against ${c.baseline} on seeds both ran.`;
    $("#kendall tbody").replaceChildren(...(c.flatness_vs_generalization.length
      ? c.flatness_vs_generalization.map((k) => el("tr", {}, el("td", { text: k.measure }), el("td", { text: k.gap }),
        el("td", { text: k.n }), el("td", { text: fmt(k.tau, 3) }), el("td", { text: fmt(k.p_value, 3) })))
      : [el("tr", {}, el("td", { colspan: "5", class: "muted", text: "no sharpness measure in these runs" }))]));
    $("#bench-jobs tbody").replaceChildren(...b.job_list.map((j) => el("tr", {},
      el("td", {}, el("a", { href: `/ui/jobs/${j.job_id}`, text: short(j.job_id) })),
      el("td", { text: j.label }), el("td", { text: j.seed }), el("td", {}, badge(j.status)),
      el("td", { text: j.reused ? "yes" : "" }))));
    await Promise.all([...document.querySelectorAll("#benchmark .plot")].map((box) => {
      const q = box.dataset.plot === "comparison" ? `&metric=${encodeURIComponent(c.metric)}` : "";
      return loadPlot(box, `/v1/benchmarks/${id}/plots/${box.dataset.plot}?format=svg${q}`);
    }));
    $("#updated").textContent = p.fraction_done < 1 ? `live · updated ${new Date().toLocaleTimeString()}` : "finished";
    clearTimeout(timer);
    if (p.fraction_done < 1) timer = setTimeout(() => refresh().catch((e) => flash(e.message)), 4000);
  }
  select.addEventListener("change", () => refresh().catch((e) => flash(e.message)));
  await refresh();
}

function resultsParams(form, format) {
  const data = new FormData(form);
  const params = new URLSearchParams({ format, limit: "500" });
  for (const f of String(data.get("filter") || "").split(";").map((s) => s.trim()).filter(Boolean)) params.append("filter", f);
  for (const k of ["group_by", "metrics"]) if (String(data.get(k) || "").trim()) params.set(k, String(data.get(k)).trim());
  return params;
}

async function resultsPage() {
  const form = $("#results-form");
  for (const format of ["csv", "parquet", "json"]) {
    $(`#export-${format}`).addEventListener("click", (e) => {
      e.preventDefault();
      download(`/v1/results?${resultsParams(form, format)}`, `results.${format}`);
    });
  }
  async function run() {
    flash("");
    const body = await getJson(`/v1/results?${resultsParams(form, "json")}`);
    const rows = body.groups || body.items || [];
    const flat = rows.map((r) => flatten(r));
    const cols = [...new Set(flat.flatMap((r) => Object.keys(r)))];
    $("#results thead").replaceChildren(el("tr", {}, ...cols.map((c) => el("th", { text: c }))));
    $("#results tbody").replaceChildren(...flat.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: fmt(r[c]) })))));
    $("#results-empty").hidden = rows.length > 0;
    $("#results-note").textContent = body.groups
      ? `${rows.length} groups by ${body.group_by.join(", ")}`
      : `${rows.length} jobs${body.next_cursor ? " (first 500; export for all)" : ""}`;
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); run().catch((err) => flash(err.message)); });
  await run();
}

function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

const EXAMPLES = {
  job: {
    model: { name: "mlp", hidden: [64] },
    data: { name: "digits", batch_size: 64 },
    optimizer: { name: "sam", rho: 0.05, base: { name: "sgd", lr: 0.05 } },
    training: { epochs: 3, seed: 0 },
    measure: { every_epochs: 3, sharpness: ["hessian_top_eigenvalue", "hessian_trace"] },
  },
  benchmark: {
    name: "sam-vs-sgd",
    base: { model: { name: "mlp", hidden: [64] }, data: { name: "digits" }, optimizer: { name: "sgd", base: { name: "sgd", lr: 0.05 } }, training: { epochs: 3 } },
    axes: { optimizer: [{ name: "sgd", base: { name: "sgd", lr: 0.05 }, label: "SGD" }, { name: "sam", rho: 0.05, base: { name: "sgd", lr: 0.05 }, label: "SAM" }] },
    seeds: [0, 1],
  },
};

async function submitPage() {
  const form = $("#submit-form");
  const spec = $("#spec");
  const what = () => new FormData(form).get("what");
  const fill = () => { spec.value = JSON.stringify(EXAMPLES[what()], null, 2); };
  if (location.hash === "#benchmark") form.querySelector("input[value=benchmark]").checked = true;
  fill();
  form.addEventListener("change", (e) => { if (e.target.name === "what") fill(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = $("#submit-errors");
    box.hidden = true;
    let body;
    try { body = JSON.parse(spec.value); } catch (err) { box.textContent = `not JSON: ${err.message}`; box.hidden = false; return; }
    const path = what() === "job" ? "/v1/jobs" : "/v1/benchmarks";
    try {
      const made = await (await api(path, {
        method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
      })).json();
      location.href = `/ui/${what() === "job" ? "jobs" : "benchmarks"}/${made.id}`;
    } catch (err) {
      const errors = err.problem?.errors || [];
      box.replaceChildren(el("p", { text: err.message }),
        ...errors.map((x) => el("p", { text: `${x.loc}: ${x.msg}` })));
      box.hidden = false;
    }
  });
}

async function loginPage() {
  const state = $("#auth-state");
  const probe = await fetch("/v1/jobs?limit=1");
  state.textContent = probe.ok
    ? "Authentication is off on this server: no key is needed."
    : localStorage.getItem(KEY) ? "A key is stored in this browser." : "This server needs an API key.";
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = String(new FormData(e.target).get("key")).trim();
    const check = await fetch("/v1/jobs?limit=1", { headers: { Authorization: `Bearer ${key}` } });
    if (!check.ok) { flash(`this key is refused (HTTP ${check.status})`); return; }
    localStorage.setItem(KEY, key);
    location.href = new URLSearchParams(location.search).get("next") || "/ui";
  });
  $("#forget").addEventListener("click", () => { localStorage.removeItem(KEY); state.textContent = "The key is forgotten."; });
}

const PAGES = { jobs: jobsPage, submit: submitPage, results: resultsPage, login: loginPage };

document.addEventListener("DOMContentLoaded", () => {
  $("#who").replaceChildren(el("a", { href: "/ui/login", text: localStorage.getItem(KEY) ? "key set" : "API key" }));
  let run = PAGES[document.body.dataset.page];
  if ($("#job")) run = jobPage;
  else if ($("#benchmark")) run = benchmarkPage;
  else if (document.body.dataset.page === "benchmarks") run = benchmarksPage;
  if (run) run().catch((e) => flash(e.message));
});
