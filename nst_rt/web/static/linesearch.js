// The line searches of lbfgs.js, the twins of nst_rt/optimize/_linesearch.py: strong Wolfe with cubic interpolation
// (PyTorch's torch/optim/lbfgs.py port of Mark Schmidt's minFunc, BSD-3-Clause, as in the Python package; a
// non-finite trial point makes the interpolation bisect, `tMax` caps the extrapolation at the first bound), a
// backtracking Armijo search on the projected path P(x + t d), and the extension along that path.
// `phi(t)` evaluates at the trial point and resolves to [f, g, g.d] (f = Infinity where the point is not finite).

const C1 = 1e-4;  // sufficient decrease
const C2 = 0.9;  // curvature

function cubicInterpolate(x1, f1, g1, x2, f2, g2, bounds) {  // minimiser of the cubic through both points
  const [lo, hi] = bounds || (x1 <= x2 ? [x1, x2] : [x2, x1]);
  const midpoint = (lo + hi) / 2.0;
  if (x1 === x2 || ![f1, g1, f2, g2].every(Number.isFinite)) return midpoint;
  const d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2);
  const d2Square = d1 * d1 - g1 * g2;
  if (d2Square < 0) return midpoint;
  const d2 = Math.sqrt(d2Square);
  const [num, den, base, span] = x1 <= x2 ? [g2 + d2 - d1, g2 - g1 + 2 * d2, x2, x2 - x1]
    : [g1 + d2 - d1, g1 - g2 + 2 * d2, x1, x1 - x2];
  if (den === 0 || !Number.isFinite(d2)) return midpoint;
  const minPos = base - span * (num / den);
  if (!Number.isFinite(minPos)) return midpoint;
  return Math.min(Math.max(minPos, lo), hi);
}

export async function strongWolfe(phi, t, f, g, gtd, dNorm, maxEvals, tMax, xtol) {
  t = Math.min(t, tMax);
  let [fNew, gNew, gtdNew] = await phi(t);
  let evals = 1;
  let tPrev = 0.0, fPrev = f, gPrev = g, gtdPrev = gtd;
  let done = false;
  let bracket = null, bf, bg, bgtd;
  while (evals < maxEvals) {  // bracketing
    if (fNew > f + C1 * t * gtd || (evals > 2 && fNew >= fPrev)) {
      bracket = [tPrev, t]; bf = [fPrev, fNew]; bg = [gPrev, gNew]; bgtd = [gtdPrev, gtdNew];
      break;
    }
    if (Math.abs(gtdNew) <= -C2 * gtd) {  // the Wolfe conditions hold
      bracket = [t]; bf = [fNew]; bg = [gNew]; done = true;
      break;
    }
    if (gtdNew >= 0) {
      bracket = [tPrev, t]; bf = [fPrev, fNew]; bg = [gPrev, gNew]; bgtd = [gtdPrev, gtdNew];
      break;
    }
    if (t >= tMax) {  // still descending at the first bound: that step is as far as it may go
      bracket = [t]; bf = [fNew]; bg = [gNew]; done = true;
      break;
    }
    const minStep = Math.min(t + 0.01 * (t - tPrev), tMax), maxStep = Math.min(t * 10, tMax);
    const tmp = t;
    t = cubicInterpolate(tPrev, fPrev, gtdPrev, t, fNew, gtdNew, [minStep, maxStep]);
    tPrev = tmp; fPrev = fNew; gPrev = gNew; gtdPrev = gtdNew;
    [fNew, gNew, gtdNew] = await phi(t);
    evals += 1;
  }
  if (!bracket) {  // out of evaluations while extrapolating
    if (fNew <= f + C1 * t * gtd && fNew < fPrev) return [t, fNew, gNew, evals];
    return [tPrev, fPrev, gPrev, evals];
  }
  let insufProgress = false;
  let [low, high] = bf[0] <= bf[bf.length - 1] ? [0, 1] : [1, 0];
  while (!done && evals < maxEvals) {  // zoom
    if (Math.abs(bracket[1] - bracket[0]) * dNorm < xtol) break;
    t = cubicInterpolate(bracket[0], bf[0], bgtd[0], bracket[1], bf[1], bgtd[1]);
    const loB = Math.min(...bracket), hiB = Math.max(...bracket), eps = 0.1 * (hiB - loB);
    if (Math.min(hiB - t, t - loB) < eps) {
      if (insufProgress || t >= hiB || t <= loB) {
        t = Math.abs(t - hiB) < Math.abs(t - loB) ? hiB - eps : loB + eps;
        insufProgress = false;
      } else insufProgress = true;
    } else insufProgress = false;
    [fNew, gNew, gtdNew] = await phi(t);
    evals += 1;
    if (fNew > f + C1 * t * gtd || fNew >= bf[low]) {
      bracket[high] = t; bf[high] = fNew; bg[high] = gNew; bgtd[high] = gtdNew;
      [low, high] = bf[0] <= bf[1] ? [0, 1] : [1, 0];
    } else {
      if (Math.abs(gtdNew) <= -C2 * gtd) done = true;
      else if (gtdNew * (bracket[high] - bracket[low]) >= 0) {
        bracket[high] = bracket[low]; bf[high] = bf[low]; bg[high] = bg[low]; bgtd[high] = bgtd[low];
      }
      bracket[low] = t; bf[low] = fNew; bg[low] = gNew; bgtd[low] = gtdNew;
    }
  }
  return [bracket[low], bf[low], bg[low], evals];
}

export async function projectedArmijo(phi, x, t, f, g, xTrial, maxEvals) {  // backtracking on P(x + t d)
  let evals = 0;
  while (evals < maxEvals) {
    const [fT, gT] = await phi(t);  // phi leaves P(x + t d) in xTrial
    evals += 1;
    if (!Number.isFinite(fT)) { t *= 0.5; continue; }
    let slope = 0;
    for (let i = 0; i < x.length; i++) slope += g[i] * (xTrial[i] - x[i]);
    if (fT < f && fT <= f + C1 * slope) return [t, fT, gT, evals];
    const curvature = fT - f - slope;
    const tNew = curvature > 0 && slope < 0 ? -0.5 * slope * t / curvature : 0.5 * t;
    t = Math.min(Math.max(tNew, 0.1 * t), 0.5 * t);
  }
  return [0.0, f, g, evals];
}

export async function extendOnPath(phi, t, fT, maxEvals, tLast, gT) {  // steps 4x longer on the projected path while f falls
  while (maxEvals > 0 && t < tLast) {
    const tNext = Math.min(t * 4.0, tLast);
    const [fNext, gNext] = await phi(tNext);
    maxEvals -= 1;
    if (!(fNext < fT)) break;
    t = tNext; fT = fNext; gT = gNext;
  }
  return [t, fT, gT];
}
