"use strict";
const MAIN = ["size", "iterations", "style_weight", "tv_weight", "original_colors", "style_scale", "model"];
const $ = (id) => document.getElementById(id);
let current = null, optionTypes = {};

function field(o) {
  const label = document.createElement("label");
  label.textContent = o.name + " ";
  let input;
  if (o.choices) {
    input = document.createElement("select");
    for (const c of o.choices) { const opt = new Option(c, c); input.add(opt); }
    input.value = o.default;
  } else {
    input = document.createElement("input");
    if (o.type === "bool") { input.type = "checkbox"; input.checked = o.default; }
    else { input.value = o.default === null ? "" : (Array.isArray(o.default) ? o.default.join(",") : o.default); }
  }
  input.id = "opt-" + o.name; input.dataset.default = input.type === "checkbox" ? input.checked : input.value;
  label.appendChild(input);
  return label;
}

function collect() {
  const out = {};
  for (const [name, o] of Object.entries(optionTypes)) {
    const input = $("opt-" + name);
    const raw = input.type === "checkbox" ? String(input.checked) : input.value;
    if (raw === input.dataset.default) continue;
    if (o.type === "bool") out[name] = input.checked;
    else if (o.type === "int") out[name] = raw === "" ? null : parseInt(raw, 10);
    else if (o.type === "float") out[name] = parseFloat(raw);
    else if (o.type === "floats") out[name] = raw === "" ? null : raw.split(",").map(Number);
    else if (o.type === "strs") out[name] = raw.split(",");
    else out[name] = raw;
  }
  return out;
}

function show(s) {
  let text = s.status;
  if (s.status === "queued") text += ", place " + s.position + " in the queue";
  if (s.iteration !== null) text += ` · scale ${s.scale}/${s.scales} · iteration ${s.iteration}/${s.iterations}`;
  if (s.loss !== null) text += ` · loss ${s.loss.toPrecision(4)}`;
  for (const [k, v] of Object.entries(s.terms)) text += ` ${k} ${v.toPrecision(3)}`;
  if (s.rate) text += ` · ${s.rate.toFixed(1)} it/s`;
  if (s.eta_s !== null) text += ` · ${Math.round(s.eta_s)} s left`;
  $("status").textContent = text;
  if (s.error) $("error").textContent = s.error;
  if (s.iteration !== null) $("preview").src = `/api/jobs/${s.id}/preview?v=${s.iteration}-${s.scale}`;
  if (s.has_result) {
    const a = $("download"); a.href = `/api/jobs/${s.id}/result`; a.download = `nst-rt-${s.id.slice(0, 8)}.png`;
    a.hidden = false;
    const img = document.createElement("img"); img.src = a.href; img.title = JSON.stringify(s.settings);
    $("results").prepend(img);
  }
}

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").textContent = ""; $("download").hidden = true;
  const data = new FormData();
  if ($("content").files[0]) data.append("content", $("content").files[0]);
  for (const f of $("style").files) data.append("style", f);
  data.append("options", JSON.stringify(collect()));
  const r = await fetch("/api/jobs", { method: "POST", body: data });
  const body = await r.json();
  if (!r.ok) { $("error").textContent = body.error; return; }
  current = body.id;
  const events = new EventSource(`/api/jobs/${body.id}/events`);
  events.onmessage = (m) => { const s = JSON.parse(m.data); show(s); if (["done", "stopped", "failed"].includes(s.status)) events.close(); };
});
$("stop").addEventListener("click", () => { if (current) fetch(`/api/jobs/${current}`, { method: "DELETE" }); });

fetch("/api/options").then((r) => r.json()).then((d) => {
  for (const o of d.options) {
    optionTypes[o.name] = o;
    $(MAIN.includes(o.name) ? "main" : "advanced").appendChild(field(o));
  }
});
