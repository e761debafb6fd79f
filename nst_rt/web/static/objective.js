// The objective the page minimises, from the model's two graphs: the features graph gives the targets (the content
// image's activations, the style image's Gram matrices), the objective graph the style and content terms and their
// gradient in one run. The recipe is nst_rt.objective.whole's for one style image and the objective graph's layers:
//
//   total = content_weight * mean((F - P)^2) / n  +  style_weight / L * sum_l mean((G_l - A_l)^2) / m_l  +  tv_weight * tv
//
// with n = mean(P^2), m_l = mean(A_l^2) when `normalize` (else 1), G = F F^T / (C H W), and tv the mean squared
// difference of neighbouring pixels along each axis (computed here, in float64, as the Python runtime does).
// Images are planar float32 RGB in [0, 1]: {data, height, width}, data of length 3 * height * width.

const GRAM_PREFIX = 'target_gram_';
const CONTENT_PREFIX = 'target_';

function meanSquare(values) {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] * values[i];
  return sum / values.length;
}

/** F F^T / (C H W) of a (1, C, H, W) activation, as a C x C float32 matrix. */
export function gram(data, channels) {
  const hw = data.length / channels, out = new Float32Array(channels * channels);
  for (let i = 0; i < channels; i++) {
    const a = data.subarray(i * hw, (i + 1) * hw);
    for (let j = 0; j <= i; j++) {
      const b = data.subarray(j * hw, (j + 1) * hw);
      let sum = 0;
      for (let k = 0; k < hw; k++) sum += a[k] * b[k];
      out[i * channels + j] = out[j * channels + i] = sum / data.length;
    }
  }
  return out;
}

/** tv_weight * tv(x) of planar (3, H, W) pixels, added into grad (float64). */
export function tvTerm(x, height, width, weight, grad) {
  if (!(weight > 0)) return 0;
  let value = 0;
  for (const [step, count, inRange] of [
    [width, 3 * width * (height - 1), (i) => i % (height * width) >= width],  // vertical neighbours
    [1, 3 * height * (width - 1), (i) => i % width !== 0],  // horizontal neighbours
  ]) {
    if (count === 0) continue;
    let sum = 0;
    const scale = 2.0 * weight / count;
    for (let i = 0; i < x.length; i++) {
      if (!inRange(i)) continue;
      const diff = x[i] - x[i - step];
      sum += diff * diff;
      grad[i] += diff * scale;
      grad[i - step] -= diff * scale;
    }
    value += weight * sum / count;
  }
  return value;
}

export class Objective {
  /** `sessions` {features, objective} (onnxruntime-web InferenceSessions), `model` the bundle's model entry
   *  (objective_style_layers, objective_content_layers, channels), `weights` {content, style, tv, normalize}. */
  static async create(ort, sessions, model, content, style, weights) {
    const tensor = (img) => new ort.Tensor('float32', img.data, [1, 3, img.height, img.width]);
    const styleLayers = model.objective_style_layers, contentLayers = model.objective_content_layers;
    const feeds = {};
    const contentActs = await sessions.features.run({image: tensor(content)}, contentLayers);
    const contentWeights = contentLayers.map((layer) => {
      const target = contentActs[layer];
      feeds[CONTENT_PREFIX + layer] = new ort.Tensor('float32', target.data, target.dims);
      return weights.content / (weights.normalize ? nonZero(meanSquare(target.data), 'content', layer) : 1);
    });
    const styleActs = await sessions.features.run({image: tensor(style)}, styleLayers);
    const styleWeights = styleLayers.map((layer) => {
      const c = model.channels[layer], target = gram(styleActs[layer].data, c);
      feeds[GRAM_PREFIX + layer] = new ort.Tensor('float32', target, [c, c]);
      return weights.style / styleLayers.length / (weights.normalize ? nonZero(meanSquare(target), 'style', layer) : 1);
    });
    feeds.style_weights = new ort.Tensor('float32', Float32Array.from(styleWeights), [styleLayers.length]);
    feeds.content_weights = new ort.Tensor('float32', Float32Array.from(contentWeights), [contentLayers.length]);
    for (const acts of [contentActs, styleActs]) for (const t of Object.values(acts)) t.dispose?.();
    return new Objective(ort, sessions.objective, feeds, content.height, content.width, weights.tv);
  }

  constructor(ort, session, feeds, height, width, tvWeight) {
    Object.assign(this, {ort, session, feeds, height, width, tvWeight});
    this.image = new Float32Array(3 * height * width);
    this.evaluations = 0;
    this.terms = null;  // {content, style, tv} of the last evaluation
  }

  /** [total, gradient (Float64Array)] at pixels x (any array of 3 H W numbers). */
  async evaluate(x) {
    this.image.set(x);
    const image = new this.ort.Tensor('float32', this.image, [1, 3, this.height, this.width]);
    const out = await this.session.run({...this.feeds, image});
    const style = out.style_loss.data[0], content = out.content_loss.data[0];
    const grad = Float64Array.from(out.grad_image.data);
    for (const t of Object.values(out)) t.dispose?.();
    const tv = tvTerm(x, this.height, this.width, this.tvWeight, grad);
    this.evaluations += 1;
    this.terms = {content, style, tv};
    return [content + style + tv, grad];
  }
}

function nonZero(value, kind, layer) {
  if (!(value > 0)) {
    throw new Error(`the ${kind} picture gives all-zero activations at ${layer}, so its loss cannot be normalised; ` +
                    'untick "normalise"');
  }
  return value;
}
