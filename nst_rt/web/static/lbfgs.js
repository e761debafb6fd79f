// L-BFGS with optional bounds lo <= x <= hi (scalars), the JavaScript twin of nst_rt/optimize (_lbfgs.py,
// _history.py, _linesearch.py, _box.py): the same steps in the same order, so that both give the same iterates
// (tests/test_web_lbfgs.py holds them to 1e-6 relative). Read the Python package's docstring for the method:
//
// - the direction is -H g by the two-loop recursion over the last `maxcor` pairs s = x' - x, y = g' - g, kept in
//   float32 (dot products in float64), run "vector-free" on the small Gram matrices s_i.y_j and y_i.y_j;
// - a pair with y.s <= eps y.y is skipped; a non-descent direction drops the memory (steepest descent);
// - with bounds: variables on a bound whose gradient points out are held (zeroed in the direction and the pairs),
//   the strong-Wolfe search is capped where the first variable meets its bound (then extended along the projected
//   path while f falls steeply), and a first step that leaves the box takes a backtracking Armijo search on the
//   projected path P(x + t d);
// - the line searches are in linesearch.js.
//
// `fun(x)` may be async; it gets a Float64Array it must not keep and returns [f, g] (g any array of x's length).
// `callback({x, fun, nit, nfev})` runs after each iteration; returning false stops the run (status 99).

import {extendOnPath, projectedArmijo, strongWolfe} from './linesearch.js';

const EPS = 2.220446049250313e-16;
export const DEFAULTS = {maxiter: 1000, maxfun: 15000, maxcor: 100, ftol: 2.220446049250313e-09, gtol: 1e-5, maxls: 20};
export const MESSAGES = {
  pgtol: 'CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL',
  ftol: 'CONVERGENCE: REL_REDUCTION_OF_F <= FACTR*EPSMCH',
  maxiter: 'STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT',
  maxfun: 'STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT',
  linesearch: 'ABNORMAL: the line search found no lower point',
  nonfinite: 'ABNORMAL: the objective returned nan or inf',
  callback: 'STOP: the callback asked to stop',
};

const dot = (a, b) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const absMax = (v) => {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
};

class Box {
  constructor(lo, hi) { this.lo = lo; this.hi = hi; }
  project(x) { for (let i = 0; i < x.length; i++) x[i] = Math.min(Math.max(x[i], this.lo), this.hi); }
  active(x, g) {  // variables on a bound whose gradient points out of the box
    const a = new Uint8Array(x.length);
    for (let i = 0; i < x.length; i++) a[i] = (x[i] <= this.lo && g[i] > 0) || (x[i] >= this.hi && g[i] < 0) ? 1 : 0;
    return a;
  }
  projectedGradientMax(x, g) {  // max |x - P(x - g)|, SciPy's projected gradient norm
    let m = 0;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - Math.min(Math.max(x[i] - g[i], this.lo), this.hi)));
    return m;
  }
  dropOutward(x, d) {
    for (let i = 0; i < x.length; i++) if ((x[i] <= this.lo && d[i] < 0) || (x[i] >= this.hi && d[i] > 0)) d[i] = 0;
  }
  steps(x, d, reduce) {  // reduce (min or max) over the steps at which each moving component meets its bound
    let t = NaN;
    for (let i = 0; i < x.length; i++) {
      const step = Math.abs(((d[i] < 0 ? this.lo : this.hi) - x[i]) / d[i]);
      if (!Number.isNaN(step)) t = Number.isNaN(t) ? step : reduce(t, step);
    }
    return Number.isNaN(t) ? Infinity : t;
  }
  maxStep(x, d) { return this.steps(x, d, Math.min); }
  maxStepAll(x, d) { return this.steps(x, d, Math.max); }
}

class History {  // the last m pairs in float32 ring buffers, and the two-loop recursion on their Gram matrices
  constructor(m, n) {
    this.m = m; this.n = n;
    this.s = new Float32Array(m * n); this.y = new Float32Array(m * n);
    this.newS = new Float32Array(n); this.newY = new Float32Array(n);
    this.sy = new Float64Array(m * m); this.yy = new Float64Array(m * m); this.rho = new Float64Array(m);
    this.reset();
  }
  reset() { this.head = 0; this.count = 0; this.gamma = 1.0; }
  row(buffer, i) { return buffer.subarray(i * this.n, (i + 1) * this.n); }
  update(xNew, x, gNew, g, active) {
    const {newS, newY, m} = this;
    for (let i = 0; i < this.n; i++) {
      newS[i] = active && active[i] ? 0 : xNew[i] - x[i];
      newY[i] = active && active[i] ? 0 : gNew[i] - g[i];
    }
    const ys = dot(newS, newY), yy = dot(newY, newY);
    if (!(ys > EPS * yy)) return false;  // skipping keeps H positive definite
    const r = this.head;
    this.row(this.s, r).set(newS);
    this.row(this.y, r).set(newY);
    this.head = (r + 1) % m;
    const k = this.count = Math.min(this.count + 1, m);
    for (let j = 0; j < k; j++) {
      this.sy[r * m + j] = dot(this.row(this.y, j), newS);
      this.yy[r * m + j] = this.yy[j * m + r] = dot(this.row(this.y, j), newY);
    }
    for (let j = 0; j < k; j++) this.sy[j * m + r] = dot(this.row(this.s, j), newY);
    this.sy[r * m + r] = ys; this.yy[r * m + r] = yy;
    this.rho[r] = 1.0 / ys;
    this.gamma = ys / yy;
    return true;
  }
  direction(g, active, out) {  // out = -H g; active components zeroed in and out
    for (let i = 0; i < out.length; i++) out[i] = active && active[i] ? 0 : -g[i];
    const k = this.count, m = this.m;
    if (k === 0) {
      for (let i = 0; i < out.length; i++) out[i] *= this.gamma;
      return out;
    }
    const sv = new Float64Array(m), yv = new Float64Array(m);
    for (let i = 0; i < k; i++) { sv[i] = dot(this.row(this.s, i), out); yv[i] = dot(this.row(this.y, i), out); }
    // q = a.s + b.y + c v, as coefficients over the stored pairs; it starts as v.
    const a = new Float64Array(m), b = new Float64Array(m), alpha = new Float64Array(m);
    let c = 1.0;
    const order = [];
    for (let j = 0; j < k; j++) order.push((((this.head - 1 - j) % m) + m) % m);  // newest first
    for (const i of order) {
      let sb = 0;
      for (let j = 0; j < k; j++) sb += this.sy[i * m + j] * b[j];
      alpha[i] = this.rho[i] * (sb + c * sv[i]);
      b[i] -= alpha[i];
    }
    for (let j = 0; j < k; j++) b[j] *= this.gamma;
    c *= this.gamma;
    for (const i of order.slice().reverse()) {
      let sa = 0, yb = 0;
      for (let j = 0; j < k; j++) { sa += this.sy[j * m + i] * a[j]; yb += this.yy[i * m + j] * b[j]; }
      const beta = this.rho[i] * (sa + yb + c * yv[i]);
      a[i] += alpha[i] - beta;
    }
    for (let i = 0; i < out.length; i++) out[i] *= c;
    // r = a.s + b.y + c v, in the Python order: per component the sum over the pairs, then added to out (the rows
    // are walked one after the other, which keeps the memory access sequential)
    const sum = this.sum || (this.sum = new Float64Array(this.n));
    for (const [coef, rows] of [[a, this.s], [b, this.y]]) {
      sum.fill(0);
      for (let j = 0; j < k; j++) {
        const row = this.row(rows, j), cj = coef[j];
        for (let i = 0; i < sum.length; i++) sum[i] += cj * row[i];
      }
      for (let i = 0; i < out.length; i++) out[i] += sum[i];
    }
    if (active) for (let i = 0; i < out.length; i++) if (active[i]) out[i] = 0;
    return out;
  }
}

/** Minimise fun from x0 (any array of numbers); returns {x, fun, jac, nit, nfev, status, message}. */
export async function minimize(fun, x0, {bounds = null, options = {}, callback = null} = {}) {
  const opts = {...DEFAULTS, ...options};
  const n = x0.length;
  let x = Float64Array.from(x0);
  const box = bounds && (Number.isFinite(bounds[0]) || Number.isFinite(bounds[1]))
    ? new Box(bounds[0] ?? -Infinity, bounds[1] ?? Infinity) : null;
  if (box) box.project(x);
  let nfev = 0;
  const evaluate = async (point) => {
    nfev += 1;
    const [fRaw, gRaw] = await fun(point);
    const g = Float64Array.from(gRaw);
    const ok = Number.isFinite(fRaw) && g.every(Number.isFinite);
    return [Number(fRaw), g, ok];
  };
  const result = (status, key) => ({x, fun: f, jac: g, nit, nfev, status, message: MESSAGES[key]});
  const history = new History(Math.max(0, Math.min(opts.maxcor, opts.maxiter)), n);
  const d = new Float64Array(n);
  let xTrial = new Float64Array(n);
  const pgMax = (xx, gg) => (box ? box.projectedGradientMax(xx, gg) : absMax(gg));
  const trialPoint = (t, out) => {  // out = P(x + t d): used to evaluate and to rebuild the accepted point
    for (let i = 0; i < n; i++) out[i] = d[i] * t + x[i];
    if (box) box.project(out);
    return out;
  };

  let nit = 0, fOld;
  let [f, g, finite] = await evaluate(x);
  if (!finite) return result(2, 'nonfinite');
  if (pgMax(x, g) <= opts.gtol) return result(0, 'pgtol');
  let active = box ? box.active(x, g) : null;
  for (;;) {
    history.direction(g, active, d);
    if (!(dot(g, d) < 0.0)) {  // not a descent direction: restart from steepest descent
      history.reset();
      history.direction(g, active, d);
    }
    if (box) box.dropOutward(x, d);
    const gtd = dot(g, d);
    if (!(gtd < 0.0)) return result(0, 'pgtol');
    const t0 = history.count === 0 ? Math.min(1.0, 1.0 / Math.sqrt(dot(d, d))) : 1.0;
    const budget = opts.maxfun == null ? opts.maxls : Math.min(opts.maxls, opts.maxfun - nfev);
    if (budget <= 0) return result(1, 'maxfun');
    let metNonfinite = false;
    const phi = async (t) => {
      const [fT, gT, ok] = await evaluate(trialPoint(t, xTrial));
      if (!ok) { metNonfinite = true; return [Infinity, gT, NaN]; }
      return [fT, gT, dot(gT, d)];
    };
    let t, fT, gT, evals;
    const tBreak = box ? box.maxStep(x, d) : Infinity;
    if (t0 <= tBreak) {
      [t, fT, gT, evals] = await strongWolfe(phi, t0, f, g, gtd, absMax(d), budget, tBreak, 1e-12 * Math.max(1.0, absMax(x)));
      if (t === tBreak && fT < f && dot(gT, d) <= gtd) {
        [t, fT, gT] = await extendOnPath(phi, t, fT, budget - evals, box.maxStepAll(x, d), gT);
      }
    } else {
      [t, fT, gT] = await projectedArmijo(phi, x, t0, f, g, xTrial, budget);
    }
    if (!(fT < f)) {  // no lower point found
      if (opts.maxfun != null && nfev >= opts.maxfun) return result(1, 'maxfun');
      if (history.count > 0) { history.reset(); continue; }  // retry once with steepest descent, as L-BFGS-B
      return result(2, metNonfinite ? 'nonfinite' : 'linesearch');
    }
    const xNew = trialPoint(t, xTrial);  // t may be an earlier trial than the last one evaluated
    active = box ? box.active(xNew, gT) : null;
    history.update(xNew, x, gT, g, active);
    [x, xTrial] = [xNew, x];
    fOld = f; f = fT; g = gT;
    nit += 1;
    if (callback && (await callback({x: Float64Array.from(x), fun: f, nit, nfev})) === false) return result(99, 'callback');
    if (opts.gtol > 0 && pgMax(x, g) <= opts.gtol) return result(0, 'pgtol');
    if (fOld - f <= opts.ftol * Math.max(Math.abs(fOld), Math.abs(f), 1.0)) return result(0, 'ftol');
    if (nit >= opts.maxiter) return result(1, 'maxiter');
    if (opts.maxfun != null && nfev >= opts.maxfun) return result(1, 'maxfun');
  }
}
