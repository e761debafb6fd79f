"use strict";
// The inputs: the pictures (chosen, dropped or from the examples), the blend weights, and the options,
// generated from GET /api/options (every default comes from there).

const $ = (id) => document.getElementById(id);
const LABELS = { size: "Size (px)", tv_weight: "TV weight", original_colors: "Original colours",
  original_colors_mode: "Original colours mode", color_transfer: "Colour transfer" };
const OWN_CONTROL = ["style_blend_weights"];  // set by the sliders beside the styles
const picked = { content: null, styles: [] };   // {file, name, url}; styles also {weight}
const described = {};                           // option name -> its GET /api/options entry

function label(name) {
  if (LABELS[name]) return LABELS[name];
  const words = name.replace(/_/g, " ");
  return words[0].toUpperCase() + words.slice(1);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (k in node) node[k] = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function shown(value) {
  return value === null ? "" : Array.isArray(value) ? value.join(", ") : String(value);
}

function optionField(o) {
  let input;
  if (o.choices) {
    input = el("select");
    for (const c of o.choices) input.add(new Option(c, c));
    input.value = o.default;
  } else if (o.type === "bool") {
    input = el("input", { type: "checkbox", checked: o.default });
  } else if (o.type === "int" || o.type === "float") {
    input = el("input", { type: "number", step: o.type === "int" ? "1" : "any", value: shown(o.default) });
    if (o.nullable) input.placeholder = "auto";
  } else {
    input = el("input", { type: "text", value: shown(o.default) });
  }
  input.id = "opt-" + o.name;
  input.name = o.name;
  if (o.fixed) { input.disabled = true; input.title = "set when the server starts (nst-rt serve --help)"; }
  input.addEventListener("input", () => clearError(o.name));
  const row = el("div", { className: "option" + (o.type === "bool" ? " check" : "") },
    el("label", { htmlFor: input.id, text: label(o.name), title: o.name }), input,
    el("p", { className: "field-error", id: "error-" + o.name }));
  return row;
}

function valueOf(o) {
  const input = $("opt-" + o.name);
  if (o.type === "bool") return input.checked;
  const raw = input.value.trim();
  if (o.choices) return raw;
  if (raw === "" && o.nullable) return null;
  if (o.type === "int") return raw === "" ? null : Number(raw);
  if (o.type === "float") return raw === "" ? null : Number(raw);
  if (o.type === "floats") return raw === "" ? [] : raw.split(",").map((v) => Number(v.trim()));
  if (o.type === "strs") return raw === "" ? [] : raw.split(",").map((v) => v.trim());
  return raw;
}

function collectOptions() {
  // Only what differs from the server's defaults is sent.
  const out = {};
  for (const o of Object.values(described)) {
    if (OWN_CONTROL.includes(o.name)) continue;
    const value = valueOf(o);
    if (JSON.stringify(value) !== JSON.stringify(o.default)) out[o.name] = value;
  }
  const weights = picked.styles.map((s) => s.weight);
  if (weights.length > 1 && weights.some((w) => w !== weights[0])) out.style_blend_weights = weights;
  return out;
}

function clearError(field) {
  const p = $("error-" + field);
  if (p) p.textContent = "";
}

function clearErrors() {
  for (const p of document.querySelectorAll(".field-error")) p.textContent = "";
}

function showError(message, field) {
  const target = (field && $("error-" + field)) || $("error");
  target.textContent = message;
  if (field && $("advanced").contains(target)) $("advanced-box").open = true;
  target.scrollIntoView({ block: "nearest" });
}

function pictureOf(file) {
  return { file, name: file.name, url: URL.createObjectURL(file), weight: 1 };
}

function setContent(file) {
  if (picked.content) URL.revokeObjectURL(picked.content.url);
  picked.content = pictureOf(file);
  clearError("content");
  const box = $("content-picked");
  box.replaceChildren(el("img", { src: picked.content.url, alt: "" }), el("span", { text: file.name }));
  $("drop-content").classList.add("has-picture");
}

function addStyles(files) {
  for (const file of files) picked.styles.push(pictureOf(file));
  clearError("style");
  clearError("style_blend_weights");
  drawStyles();
}

function share(weight) {
  const sum = picked.styles.reduce((a, s) => a + s.weight, 0);
  return sum > 0 ? Math.round((100 * weight) / sum) + "%" : "–";
}

function drawStyles() {
  const list = $("styles");
  list.replaceChildren();
  picked.styles.forEach((s, i) => {
    const remove = el("button", { type: "button", className: "remove", text: "×", title: "Remove " + s.name });
    remove.addEventListener("click", () => {
      URL.revokeObjectURL(s.url);
      picked.styles.splice(i, 1);
      drawStyles();
    });
    const item = el("li", {}, el("img", { src: s.url, alt: "" }), el("span", { className: "name", text: s.name }));
    if (picked.styles.length > 1) {
      const slider = el("input", { type: "range", min: "0", max: "1", step: "0.05", value: String(s.weight),
        className: "blend", title: "blend weight of " + s.name });
      const out = el("output", { text: share(s.weight) });
      slider.addEventListener("input", () => {
        s.weight = Number(slider.value);
        clearError("style_blend_weights");
        for (const [k, o] of Array.from(list.querySelectorAll("output")).entries()) {
          o.textContent = share(picked.styles[k].weight);
        }
      });
      item.append(slider, out);
    }
    item.append(remove);
    list.append(item);
  });
}

async function fileFromUrl(url, name) {
  const r = await fetch(url);
  return new File([await r.blob()], name, { type: r.headers.get("content-type") || "" });
}

function drawExamples(examples) {
  for (const [kind, target] of [["content", "examples-content"], ["style", "examples-style"]]) {
    const box = $(target);
    const list = examples[kind] || [];
    if (!list.length) continue;
    box.append(el("span", { className: "examples-label", text: "Examples" }));
    for (const ex of list) {
      const b = el("button", { type: "button", className: "example", title: ex.name },
        el("img", { src: ex.url, alt: ex.name, loading: "lazy" }));
      b.dataset.name = ex.name;
      b.addEventListener("click", async () => {
        const file = await fileFromUrl(ex.url, ex.name);
        if (kind === "content") setContent(file); else addStyles([file]);
      });
      box.append(b);
    }
  }
}

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) onFiles(Array.from(e.dataTransfer.files));
  });
}

function setUpInputs(described_options, examples) {
  for (const o of described_options) {
    described[o.name] = o;
    if (!OWN_CONTROL.includes(o.name)) $(o.main ? "main" : "advanced").append(optionField(o));
  }
  drawExamples(examples);
  $("content").addEventListener("change", (e) => { if (e.target.files[0]) setContent(e.target.files[0]); e.target.value = ""; });
  $("style").addEventListener("change", (e) => { addStyles(Array.from(e.target.files)); e.target.value = ""; });
  dropZone($("drop-content"), (files) => setContent(files[0]));
  dropZone($("drop-style"), addStyles);
  // A picture dropped beside the zones must not make the browser leave the page to show it.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => e.preventDefault());
}
