// Runs nst_rt/web/static/lbfgs.js on the problem read as JSON from stdin and prints every iterate as JSON
// (tests/test_web_lbfgs.py compares them with nst_rt.minimize's).
import {minimize} from '../nst_rt/web/static/lbfgs.js';

const problem = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; }).on('end', () => resolve(text));
}));
const functions = {
  rosenbrock: (x) => {  // sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
    let f = 0;
    const g = new Float64Array(x.length);
    for (let i = 0; i + 1 < x.length; i++) {
      const a = x[i + 1] - x[i] * x[i], b = 1 - x[i];
      f += 100 * a * a + b * b;
      g[i] += -400 * x[i] * a - 2 * b;
      g[i + 1] += 200 * a;
    }
    return [f, g];
  },
  quadratic: (x) => {  // 0.5 x.A x - b.x
    const {A, b} = problem;
    const g = new Float64Array(x.length);
    let f = 0;
    for (let i = 0; i < x.length; i++) {
      let row = 0;
      for (let j = 0; j < x.length; j++) row += A[i][j] * x[j];
      g[i] = row - b[i];
      f += 0.5 * x[i] * row - b[i] * x[i];
    }
    return [f, g];
  },
};
const iterates = [];
const result = await minimize(async (x) => functions[problem.name](x), problem.x0, {
  bounds: problem.bounds, options: problem.options, callback: ({x, fun}) => { iterates.push({x: Array.from(x), fun}); },
});
process.stdout.write(JSON.stringify({iterates, nit: result.nit, nfev: result.nfev, status: result.status}));
