"use strict";
// The run: post the job, watch its events (any number of tabs may watch one job: #job=ID), show the iterate,
// the progress and the queue place; finished results join this tab's strip.

const FINAL = ["done", "stopped", "failed"];
const STORE = "nst-rt-results";  // this tab's results: [{id, settings}]
let shownJob = null;             // the job the run panel shows
const watching = {};             // job id -> EventSource

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s` : `${s} s`;
}

function number(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toPrecision(3);
}

function statusLine(s) {
  if (s.status === "queued") return `queued: place ${s.position} in the queue`;
  let text = s.status;
  if (s.status === "failed") return text;
  if (s.status === "running" && s.iteration === null) return "running · preparing (the model, the style targets)";
  if (s.status === "stopping") return "stopping · the best image so far is being saved";
  if (s.iteration !== null) text += ` · scale ${s.scale}/${s.scales} · iteration ${s.iteration}/${s.iterations}`;
  if (s.status === "stopped" && s.has_result) text += " · the best image so far is kept";
  return text;
}

function numbersLine(s) {
  const parts = [];
  if (s.loss !== null) {
    const terms = Object.entries(s.terms).map(([k, v]) => `${k} ${number(v)}`).join(", ");
    parts.push(`loss ${number(s.loss)}` + (terms ? ` (${terms})` : ""));
  }
  if (s.rate) parts.push(`${s.rate.toFixed(2)} it/s`);
  if (s.eta_s !== null) parts.push(`${duration(s.eta_s)} left`);
  return parts.join(" · ");
}

function render(s) {
  if (s.id !== shownJob) return;
  $("status").textContent = statusLine(s);
  const [what, how] = caption(s.settings);  // the job's own settings, also in a tab that only watches it
  $("job-settings").textContent = `${what} · ${how} · model ${s.settings.options.model}`;
  $("numbers").textContent = numbersLine(s);
  $("progress").value = s.total ? s.done / s.total : 0;
  $("stop").disabled = FINAL.includes(s.status);
  if (s.status === "failed") showError(s.error, null);
  if (s.iteration !== null) {
    $("preview").src = `/api/jobs/${s.id}/preview?v=${s.scale}-${s.iteration}`;
    $("empty").hidden = true;
  }
  const a = $("download");
  a.hidden = !s.has_result;
  if (s.has_result) {
    a.href = `/api/jobs/${s.id}/result`;
    a.download = `nst-rt-${s.id.slice(0, 8)}.png`;
    $("preview").src = a.href;
  }
}

function caption(settings) {
  // The pictures, then size and iterations and every option that differs from the server's defaults; the
  // whole list in the tooltip.
  const o = settings.options;
  const w = o.style_blend_weights;
  const styles = settings.styles.map((name, i) => (w ? `${name} (${w[i]})` : name));
  const value = (k, v) => (Array.isArray(v) ? v.join(",") : described[k]?.type === "bool" ? (v ? "on" : "off") : v);
  const changed = Object.entries(o).filter(([k, v]) => !["size", "iterations", "style_blend_weights"].includes(k)
    && described[k] && JSON.stringify(v) !== JSON.stringify(described[k].default));
  const how = [`${o.size} px`, `${o.iterations} iterations`,
    ...changed.map(([k, v]) => `${label(k).toLowerCase()} ${value(k, v)}`)].join(" · ");
  const all = Object.entries(o).map(([k, v]) => `${label(k)}: ${value(k, v)}`).join("\n");
  return [`${settings.content} in the style of ${styles.join(" + ")}`, how, all];
}

function addResult(id, settings) {
  const box = $("results");
  box.querySelector(".empty")?.remove();
  if (box.querySelector(`[data-id="${id}"]`)) return;
  const url = `/api/jobs/${id}/result`;
  const [what, how, all] = caption(settings);
  const card = el("figure", { className: "result", title: all },
    el("a", { href: url, download: `nst-rt-${id.slice(0, 8)}.png`, title: "Download PNG" },
      el("img", { src: url, alt: what })),
    el("figcaption", {}, el("strong", { text: what }), el("span", { text: how })));
  card.dataset.id = id;
  box.prepend(card);
}

function remember(id, settings) {
  const kept = JSON.parse(sessionStorage.getItem(STORE) || "[]").filter((r) => r.id !== id);
  kept.push({ id, settings });
  sessionStorage.setItem(STORE, JSON.stringify(kept));
}

function watch(id) {
  if (watching[id]) return;
  const events = new EventSource(`/api/jobs/${id}/events`);
  watching[id] = events;
  events.onmessage = (m) => {
    const s = JSON.parse(m.data);
    render(s);
    if (FINAL.includes(s.status)) {
      events.close();
      delete watching[id];
      if (s.has_result) { addResult(s.id, s.settings); remember(s.id, s.settings); }
    }
  };
  events.onerror = () => {  // the server went away or forgot the job: say so instead of retrying for ever
    if (events.readyState === EventSource.CLOSED || id === shownJob) {
      fetch(`/api/jobs/${id}`).then((r) => (r.ok ? null : r.json())).then((b) => {
        if (b) { events.close(); delete watching[id]; if (id === shownJob) showError(b.error, null); }
      }).catch(() => {});
    }
  };
}

function show(id) {
  shownJob = id;
  $("status").textContent = "waiting for the server";
  $("numbers").textContent = "";
  $("progress").value = 0;
  history.replaceState(null, "", `#job=${id}`);
  const w = $("watch");
  w.href = `#job=${id}`;
  w.hidden = false;
  watch(id);
}

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  clearErrors();
  if (!picked.content) return showError("choose or drop a content picture", "content");
  if (!picked.styles.length) return showError("choose or drop one or more style pictures", "style");
  const data = new FormData();
  data.append("content", picked.content.file, picked.content.name);
  for (const s of picked.styles) data.append("style", s.file, s.name);
  data.append("options", JSON.stringify(collectOptions()));
  $("start").disabled = true;
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: data });
    const body = await r.json();
    if (!r.ok) return showError(body.error, body.field);
    $("download").hidden = true;
    show(body.id);
  } catch (err) {
    showError(`the server did not answer (${err.message}); is nst-rt serve still running?`, null);
  } finally {
    $("start").disabled = false;
  }
});

$("stop").addEventListener("click", () => {
  if (shownJob) fetch(`/api/jobs/${shownJob}`, { method: "DELETE" });
});

fetch("/api/options").then((r) => r.json()).then((d) => {
  setUpInputs(d.options, d.examples);
  if (d.notices.length) {  // e.g. that the server's model has random weights
    $("notices").textContent = d.notices.map((n) => `Note: ${n}`).join("\n");
    $("notices").hidden = false;
  }
  for (const r of JSON.parse(sessionStorage.getItem(STORE) || "[]")) {
    fetch(`/api/jobs/${r.id}`).then((a) => a.ok && addResult(r.id, r.settings));  // kept ones only (--keep)
  }
  const m = location.hash.match(/^#job=([0-9a-f-]+)$/);
  if (m) show(m[1]);
  document.body.dataset.ready = "1";
});
