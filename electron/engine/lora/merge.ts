/**
 * The merge: W' = W + Σ_l m_l · scale_l · (up_l · down_l) over the active LoRAs (wave2-reference §3a),
 * with m the tag's text-encoder or U-Net multiplier and scale = alpha / rank. Each LoRA module's delta is
 * added to W in float32 in the initializer's own layout (Wᵀ for a folded MatMul weight), one initializer at a
 * time when the patched model is written; fp16 weights are widened, summed and rounded back once.
 * The engine computes it with onnxruntime (gemm-merge.ts); `mergedValues` here is the plain reference.
 */
import type { LoraComponent, LoraFile, LoraModule } from './lora-file.js';
import type { OnnxWeights, WeightTarget } from './onnx-weights.js';
import { LoraFileError } from './safetensors.js';

export interface ActiveLora {
  file: LoraFile;
  /** Text-encoder multiplier. */
  te: number;
  /** U-Net multiplier. */
  unet: number;
}

/** What one LoRA did to one component. */
export interface ComponentMatch {
  matched: number;
  /** The file's names of modules with no weight in the graph. */
  unmatched: string[];
}

export function multiplierFor(lora: ActiveLora, component: LoraComponent): number {
  return component === 'unet' ? lora.unet : lora.te;
}

/** CLIP's module path starts `text_model.` in transformers 4 (the exports people have) and not in 5. */
const TEXT_MODEL = 'text_model_';

function findTarget(weights: OnnxWeights, m: LoraModule): WeightTarget | undefined {
  const direct = weights.target(m.key);
  if (direct || m.component === 'unet') return direct;
  return m.key.startsWith(TEXT_MODEL) ? weights.target(m.key.slice(TEXT_MODEL.length)) : weights.target(TEXT_MODEL + m.key);
}

/** Checks the LoRA module fits the weight and says how, or throws a shape-mismatch error. */
function checkShape(m: LoraModule, target: WeightTarget, file: LoraFile, label: string): void {
  const out = m.upShape[0]!;
  const [, inputs, kh = 1, kw = 1] = m.downShape as [number, number, number?, number?];
  const d = target.dims;
  let fits: boolean;
  let expected: string;
  switch (target.layout) {
    case 'conv':
      fits = d[0] === out && d[1] === inputs && d[2] === kh && d[3] === kw;
      expected = `[${out}, ${inputs}, ${kh}, ${kw}]`;
      break;
    case 'linear':
      fits = d[0] === out && d[1] === inputs && kh * kw === 1;
      expected = `[${out}, ${inputs}]`;
      break;
    case 'linear-transposed':
      fits = d[0] === inputs && d[1] === out && kh * kw === 1;
      expected = `[${inputs}, ${out}] (transposed)`;
      break;
  }
  if (!fits) {
    throw new LoraFileError(
      `shape mismatch at ${m.source}: the LoRA changes a ${expected} weight, but ${label} has [${d.join(', ')}] there (${target.node}); ` +
        'the LoRA was made for a different model',
      file.path,
    );
  }
}

/** Adds m·(up·down) to `delta` ([out, in·kh·kw] for linear/conv, [in, out] for linear-transposed). */
export function accumulateDelta(delta: Float32Array, m: LoraModule, layout: WeightLayoutLike, multiplier: number): void {
  const out = m.upShape[0]!;
  const rank = m.upShape[1]!;
  const inner = m.down.length / rank;
  const { up, down } = m;
  if (layout !== 'linear-transposed') {
    for (let o = 0; o < out; o++) {
      const row = o * inner;
      for (let k = 0; k < rank; k++) {
        const u = up[o * rank + k]! * multiplier;
        if (u === 0) continue;
        const dRow = k * inner;
        for (let c = 0; c < inner; c++) delta[row + c]! += u * down[dRow + c]!;
      }
    }
    return;
  }
  // Δᵀ[c, o] = Σ_k down[k, c] · up[o, k]: walk `up` transposed so the inner loop is contiguous.
  const upT = new Float32Array(rank * out);
  for (let o = 0; o < out; o++) for (let k = 0; k < rank; k++) upT[k * out + o] = up[o * rank + k]! * multiplier;
  for (let c = 0; c < inner; c++) {
    const row = c * out;
    for (let k = 0; k < rank; k++) {
      const dk = down[k * inner + c]!;
      if (dk === 0) continue;
      const uRow = k * out;
      for (let o = 0; o < out; o++) delta[row + o]! += dk * upT[uRow + o]!;
    }
  }
}

type WeightLayoutLike = WeightTarget['layout'];

/** The LoRA modules (with their multipliers × scales) that change one initializer. */
export interface InitializerPlan {
  target: WeightTarget;
  parts: { module: LoraModule; factor: number }[];
}

/**
 * Which initializers of one component a set of LoRAs changes (none when no LoRA touches it with a non-zero
 * multiplier), checked for shape, and per LoRA how many of its modules for this component were found.
 * Nothing heavy is computed here: `mergedValues` makes one initializer's new values when it is written.
 */
export function planMerge(
  weights: OnnxWeights,
  component: LoraComponent,
  loras: readonly ActiveLora[],
): { plan: Map<string, InitializerPlan>; matches: ComponentMatch[] } {
  const plan = new Map<string, InitializerPlan>();
  const matches: ComponentMatch[] = [];
  for (const lora of loras) {
    const match: ComponentMatch = { matched: 0, unmatched: [] };
    matches.push(match);
    const multiplier = multiplierFor(lora, component);
    for (const m of lora.file.modules) {
      if (m.component !== component) continue;
      const target = findTarget(weights, m);
      if (!target) {
        match.unmatched.push(m.source);
        continue;
      }
      checkShape(m, target, lora.file, weights.label);
      match.matched++;
      if (multiplier === 0) continue;
      let entry = plan.get(target.initializer);
      if (!entry) plan.set(target.initializer, (entry = { target, parts: [] }));
      entry.parts.push({ module: m, factor: multiplier * m.scale });
    }
  }
  return { plan, matches };
}

/**
 * W + Σ factor·(up·down) for one initializer, in its own layout, as float32, computed in JavaScript: the
 * reference the engine's merge (gemm-merge.ts, onnxruntime) is tested against.
 */
export function mergedValues(weights: OnnxWeights, name: string, entry: InitializerPlan): Float32Array {
  const w = weights.values(name);
  for (const { module, factor } of entry.parts) accumulateDelta(w, module, entry.target.layout, factor);
  return w;
}
