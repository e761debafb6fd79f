// The page: loads onnxruntime-web and the model from this folder, reads the pictures the visitor picks, and runs
// L-BFGS (lbfgs.js) on the pixels against the objective graph (objective.js), all in this tab.
//
// URL parameters: ?backend=wasm keeps WASM where WebGPU is present; ?backend=webgpu takes WebGPU even on a software
// (fallback) adapter, which the page otherwise leaves for WASM; ?threads=N sets WASM's threads (default: up to 4
// where the page is cross-origin isolated, else 1, the most a plain static host allows).
import {minimize} from './lbfgs.js';
import {Objective} from './objective.js';

const $ = (id) => document.getElementById(id);
const MIN_SIDE = 16;  // the smallest side the graphs take
const params = new URLSearchParams(location.search);
const page = {bundle: null, ort: null, sessions: null, backend: '', picked: {content: null, style: null}, stop: false,
              running: false};
window.nstPage = page;  // for embedding pages and tests

function fail(message, field = 'error') {
  $(field).textContent = message;
  return new Error(message);
}

/** The WebGPU backend, or null for WASM: no adapter, or a software one (a CPU doing the GPU's work, as Chromium's
 * SwiftShader does) unless ?backend=webgpu asks for it. onnxruntime-web then asks for the same default adapter. */
async function webgpuBackend(wanted) {
  if (wanted === 'wasm' || !navigator.gpu) return null;
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch { /* none: WASM */ }
  if (!adapter) return null;
  const info = adapter.info || {};
  const software = info.isFallbackAdapter ?? adapter.isFallbackAdapter;
  if (software && wanted !== 'webgpu') return null;
  const label = software ? `WebGPU (software adapter${info.architecture ? `: ${info.architecture}` : ''})` : 'WebGPU';
  return {module: './ort/ort.webgpu.min.mjs', providers: ['webgpu'], label};
}

async function chooseBackend() {
  const webgpu = await webgpuBackend(params.get('backend'));
  if (webgpu) return webgpu;
  const threads = Number(params.get('threads')) ||
    (self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
  return {module: './ort/ort.wasm.min.mjs', providers: ['wasm'], threads,
          label: `WASM, ${threads} thread${threads === 1 ? '' : 's'}`};
}

async function load() {
  page.bundle = await (await fetch('bundle.json')).json();
  const {model, defaults} = page.bundle;
  $('opt-size').value = defaults.size;
  $('opt-iterations').value = defaults.iterations;
  $('opt-content-weight').value = defaults.content_weight;
  $('opt-style-weight').value = defaults.style_weight;
  $('opt-tv-weight').value = defaults.tv_weight;
  $('opt-normalize').checked = defaults.normalize;
  for (const kind of ['content', 'style']) {
    for (const name of page.bundle.examples[kind] || []) {
      const button = Object.assign(document.createElement('button'), {type: 'button', textContent: name});
      button.dataset.name = name;
      button.addEventListener('click', async () => {
        page.picked[kind] = {name, blob: await (await fetch(`examples/${kind}/${encodeURIComponent(name)}`)).blob()};
        showPicked(kind);
      });
      $(`examples-${kind}`).append(button);
    }
    $(kind).addEventListener('change', () => {
      const file = $(kind).files[0];
      page.picked[kind] = file ? {name: file.name, blob: file} : null;
      showPicked(kind);
    });
  }
  const backend = await chooseBackend();
  const ort = page.ort = await import(backend.module);
  if (backend.threads) ort.env.wasm.numThreads = backend.threads;
  const weights = new Uint8Array(await (await fetch(model.files.weights)).arrayBuffer());
  const options = {executionProviders: backend.providers, externalData: [{path: model.weights_file, data: weights}]};
  page.sessions = {
    features: await ort.InferenceSession.create(model.files.features, options),
    objective: await ort.InferenceSession.create(model.files.objective, options),
  };
  page.backend = backend.label;
  $('backend').textContent = `runs on ${backend.label} · ${model.name} (${model.architecture}` +
    `${model.random_weights ? ', random weights' : ''}) · onnxruntime-web ${page.bundle.onnxruntime_web}`;
  $('status').textContent = 'ready';
  $('start').disabled = false;
  document.body.dataset.ready = '1';
}

function showPicked(kind) {
  $(`${kind}-picked`).textContent = page.picked[kind] ? page.picked[kind].name : '';
  $(`error-${kind}`).textContent = '';
}

/** The picture of `kind` as planar float32 RGB in [0, 1], its longest side `size` px. */
async function readPicture(kind, size) {
  const picked = page.picked[kind];
  if (!picked) throw fail(`choose a ${kind} picture`, `error-${kind}`);
  const raw = {colorSpaceConversion: 'none', premultiplyAlpha: 'none'};  // the file's own values, as Pillow reads them
  let bitmap;
  try {
    bitmap = await createImageBitmap(picked.blob, raw);
  } catch (exc) {
    throw fail(`could not read '${picked.name}' as a picture; choose a PNG, JPEG, WebP or GIF file`, `error-${kind}`);
  }
  const scale = size / Math.max(bitmap.width, bitmap.height);
  const width = Math.max(1, Math.round(bitmap.width * scale)), height = Math.max(1, Math.round(bitmap.height * scale));
  if (Math.min(width, height) < MIN_SIDE) {
    throw fail(`'${picked.name}' is ${width}x${height} px at this size; the short side must be at least ${MIN_SIDE} px`,
               `error-${kind}`);
  }
  if (width !== bitmap.width || height !== bitmap.height) {
    bitmap = await createImageBitmap(picked.blob, {...raw, resizeWidth: width, resizeHeight: height,
                                                   resizeQuality: 'high'});
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, width, height).data, plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) data[c * plane + i] = rgba[4 * i + c] / 255;
  }
  return {data, width, height, name: picked.name};
}

function readSettings() {
  const whole = (id, name, least) => {
    const text = $(id).value.trim(), value = Number(text);
    if (!/^\d+$/.test(text) || value < least) throw fail(`${name} must be a whole number >= ${least}, got ${text}`,
                                                          `error-${name}`);
    return value;
  };
  const weight = (id, name) => {
    const value = Number($(id).value);
    if ($(id).value.trim() === '' || !Number.isFinite(value) || value < 0) {
      throw fail(`${name} must be a number >= 0, got ${$(id).value}`, 'error-weights');
    }
    return value;
  };
  return {size: whole('opt-size', 'size', MIN_SIDE), iterations: whole('opt-iterations', 'iterations', 1),
          weights: {content: weight('opt-content-weight', 'content weight'),
                    style: weight('opt-style-weight', 'style weight'), tv: weight('opt-tv-weight', 'tv weight'),
                    normalize: $('opt-normalize').checked}};
}

/** The objective for the picked pictures and the settings in the form, and the content picture. */
page.prepare = async () => {
  for (const id of ['error', 'error-content', 'error-style', 'error-size', 'error-iterations', 'error-weights']) {
    $(id).textContent = '';
  }
  const settings = readSettings();
  const content = await readPicture('content', settings.size);
  const style = await readPicture('style', settings.size);
  const objective = await Objective.create(page.ort, page.sessions, page.bundle.model, content, style,
                                           settings.weights);
  return {settings, content, style, objective};
};

/** Loss, terms and gradient at the content picture (for tests: the Python runtime computes the same). */
page.objectiveAtContent = async () => {
  const {content, objective} = await page.prepare();
  const [total, grad] = await objective.evaluate(content.data);
  return {total, terms: objective.terms, grad: Array.from(grad), width: content.width, height: content.height};
};

/** Seconds per evaluation at the content picture, the median of `count` (the objective is made, and evaluated
 *  once to warm up, on the first call; later calls reuse it). */
page.timeEvaluations = async (count) => {
  if (!page.timed) {
    page.timed = await page.prepare();
    await page.timed.objective.evaluate(page.timed.content.data);
  }
  const {content, objective} = page.timed, times = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await objective.evaluate(content.data);
    times.push((performance.now() - start) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(count / 2)];
};

function draw(x, width, height) {
  const canvas = $('preview');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d'), pixels = context.createImageData(width, height), plane = width * height;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) pixels.data[4 * i + c] = Math.round(Math.min(Math.max(x[c * plane + i], 0), 1) * 255);
    pixels.data[4 * i + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
}

async function offerDownload(name) {
  const blob = await new Promise((resolve) => $('preview').toBlob(resolve, 'image/png'));
  const link = $('download');
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.hidden = false;
}

async function run(event) {
  event.preventDefault();
  if (page.running) return;
  page.running = true;
  page.stop = false;
  $('start').disabled = true;
  $('download').hidden = true;
  $('progress').value = 0;
  try {
    $('status').textContent = 'reading the pictures…';
    const {settings, content, style, objective} = await page.prepare();
    $('stop').disabled = false;
    const started = performance.now();
    page.losses = [];
    draw(content.data, content.width, content.height);
    $('status').textContent = `running: iteration 0/${settings.iterations}`;
    const result = await minimize((x) => objective.evaluate(x), content.data, {
      bounds: [0, 1],
      options: {maxiter: settings.iterations, maxcor: Math.min(page.bundle.defaults.history, settings.iterations),
                gtol: 0, ftol: 0},
      callback: async ({x, fun, nit}) => {
        page.losses.push(fun);
        draw(x, content.width, content.height);
        const seconds = (performance.now() - started) / 1000;
        $('status').textContent = `running: iteration ${nit}/${settings.iterations}`;
        $('progress').value = nit / settings.iterations;
        $('numbers').textContent = `loss ${fun.toPrecision(5)} · ${(nit / seconds).toFixed(2)} it/s · ` +
          `${objective.evaluations} evaluations · ${page.backend}`;
        await new Promise((resolve) => setTimeout(resolve));  // let a click on Stop in
        return !page.stop;
      },
    });
    draw(result.x, content.width, content.height);
    const stopped = result.status === 99;
    $('status').textContent = stopped ? `stopped at iteration ${result.nit}: the picture so far`
      : `done: ${result.nit} iterations`;
    if (!stopped) $('progress').value = 1;
    const stem = (name) => name.replace(/\.[^.]*$/, '');
    await offerDownload(`${stem(content.name)}_in_the_style_of_${stem(style.name)}.png`);
    page.result = {loss: result.fun, nit: result.nit, status: result.status, message: result.message};
  } catch (exc) {
    if (!document.querySelector('.field-error:not(:empty)')) fail(exc.message || String(exc));
    $('status').textContent = 'failed: see the message';
  } finally {
    page.running = false;
    $('start').disabled = false;
    $('stop').disabled = true;
  }
}

$('form').addEventListener('submit', run);
$('stop').addEventListener('click', () => { page.stop = true; });
load().catch((exc) => {
  fail(`could not load the model: ${exc.message || exc}`);
  $('status').textContent = 'failed to load';
  $('backend').textContent = '';
});
