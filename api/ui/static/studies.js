// flatlab dashboard: the studies pages (helpers $, el, getJson, api, fmt, badge, short, when,
// loadPlot and flash come from ui.js, loaded before this file).
"use strict";

async function studiesPage() {
  $("#open-study").addEventListener("submit", (e) => {
    e.preventDefault();
    location.href = `/ui/studies/${encodeURIComponent(new FormData(e.target).get("id").trim())}`;
  });
  const body = $("#studies tbody");
  let cursor = null;
  async function refresh(append = false) {
    const params = new URLSearchParams({ limit: "50" });
    if (append && cursor) params.set("cursor", cursor);
    const page = await getJson(`/v1/studies?${params}`);
    if (!append) body.replaceChildren();
    for (const s of page.items) {
      const trials = Object.entries(s.trials_by_state).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`);
      body.append(el("tr", {},
        el("td", {}, el("a", { href: `/ui/studies/${s.id}`, text: short(s.id) })),
        el("td", { text: s.name || s.label || "—" }), el("td", {}, badge(s.status)),
        el("td", { text: `${s.metric} (${s.direction})` }), el("td", { text: fmt(s.best_value) }),
        el("td", { text: trials.join(" · ") || "—" }), el("td", { text: when(s.created_at) })));
    }
    cursor = page.next_cursor;
    $("#more").hidden = !cursor;
    $("#studies-empty").hidden = body.children.length > 0;
  }
  $("#more").addEventListener("click", () => refresh(true).catch((e) => flash(e.message)));
  await refresh();
}

async function studyPage() {
  const id = $("#study").dataset.studyId;
  let timer = null;
  $("#cancel-study").addEventListener("click", async () => {
    await api(`/v1/studies/${id}/cancel`, { method: "POST" });
    refresh().catch((e) => flash(e.message));
  });
  async function refresh() {
    const s = await getJson(`/v1/studies/${id}`);
    $("#study-title").replaceChildren("Study ", el("code", { text: s.name || short(s.id) }), " ", badge(s.status));
    const counts = Object.entries(s.trials_by_state).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`);
    const budget = s.budget.trials != null ? `${s.budget.trials_used} of ${s.budget.trials} trials`
      : `${fmt(s.budget.grad_evals_used)} of ${fmt(s.budget.grad_evals)} gradient evaluations`;
    $("#study-summary").textContent = `${s.metric} (${s.direction}) on the validation split · ${budget} · ${counts.join(" · ")}`;
    $("#study-best").textContent = s.best
      ? `best ${fmt(s.best.value)} at trial ${s.best.trial}: ${Object.entries(s.best.params).map(([k, v]) => `${k} = ${fmt(v)}`).join(", ")}`
      : (s.error || "no trial has completed yet");
    const paths = [...new Set(s.trials.flatMap((t) => Object.keys(t.params)))].sort();
    $("#trials thead").replaceChildren(el("tr", {}, ...["trial", "state", "value", ...paths, "job", "job status"]
      .map((h) => el("th", { text: h }))));
    $("#trials tbody").replaceChildren(...s.trials.map((t) => el("tr", { "data-trial": t.number },
      el("td", { text: t.number }), el("td", { text: t.state }), el("td", { text: fmt(t.value) }),
      ...paths.map((p) => el("td", { text: fmt(t.params[p]) })),
      el("td", {}, el("a", { href: `/ui/jobs/${t.job_id}`, text: short(t.job_id) })),
      el("td", {}, badge(t.job_status)))));
    await Promise.all([...document.querySelectorAll("#study .plot")].map((box) =>
      loadPlot(box, `/v1/studies/${id}/plots/${box.dataset.plot}?format=svg`)));
    const running = s.status === "running";
    $("#cancel-study").hidden = !running;
    $("#updated").textContent = running ? `live · updated ${new Date().toLocaleTimeString()}` : "finished";
    clearTimeout(timer);
    if (running) timer = setTimeout(() => refresh().catch((e) => flash(e.message)), 4000);
  }
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  const run = $("#study") ? studyPage : ($("#studies") ? studiesPage : null);
  if (run) run().catch((e) => flash(e.message));
});
