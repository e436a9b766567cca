/**
 * The `studio` command line: generate, tokenize, info. The first real user of the engine.
 * Every command prints JSON on stdout; errors go to stderr as `{ error: {name, code, message} }` with exit 1.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { formatA1111Parameters, loraHashesSetting } from '../shared/a1111.js';
import { InvalidRequestError, serializeError } from '../shared/errors.js';
import { GENERATION_MODES, SAMPLERS, type ExecutionProviderName, type GenerationMode, type InpaintArea, type SamplerName } from '../shared/generation.js';
import { Engine } from '../engine/engine.js';
import { DEFAULT_CONTROL_SCALE } from '../shared/generation-limits.js';
import type { GenerateRequest } from '../engine/pipelines/types.js';
import { readNpyFloat32 } from '../engine/tensor/npy.js';
import { ClipTokenizer } from '../engine/tokenizer/clip-tokenizer.js';
import { describePrompt, EmbeddingVocabulary } from '../engine/prompt/chunker.js';
import { loadEmbeddingFolder } from '../engine/prompt/embeddings.js';
import { stripLoraTags } from '../engine/lora/prompt-tags.js';
import { embeddingFolder } from '../model-library/embeddings.js';
import { encodePng } from '../history/png.js';
import { importLora, listLoras, loraFolder, removeLora } from '../model-library/loras.js';
import { upscalerFolder } from '../model-library/upscalers.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The model that ships with the app (native-models/), used when no other is chosen. */
export const BUNDLED_MODEL_DIR = join(REPO_ROOT, 'native-models', 'emoji-ldm');
const PROVIDER_NAMES: readonly ExecutionProviderName[] = ['webgpu', 'cuda', 'dml', 'coreml', 'cpu'];

const USAGE = `Usage:
  studio generate [--model DIR] --prompt TEXT [--negative TEXT] [--init IMG --strength S] [--mask PNG]
                  [--mask-blur PX] [--inpaint-area whole|masked] [--mask-padding PX] [--steps N] [--cfg G] [--sampler NAME] [--seed N] [--width W --height H]
                  [--latents FILE.npy] [--control IMG [--control-scale S] [--controlnet DIR]] [--label-map PNG] [--mode MODE]
                  [--lora-dir DIR]… [--clip-skip N] [--embeddings-dir DIR]… [--data-dir DIR] [--providers cpu,webgpu,…] [--threads N]
                  [--soft-inpaint] [--hires-upscaler NAME] [--hires-scale S] [--hires-steps N] [--hires-strength S] [--hires-resize WxH]
                  [--upscaler-dir DIR]… [--region MASK.png[@WEIGHT]=PROMPT]… [--aesthetic-score S] [--negative-aesthetic-score S]
                  --out FILE.png
  studio tokenize [--model DIR] [--embeddings-dir DIR]… [--data-dir DIR] TEXT
  studio info [--model DIR]
  studio loras list|import FILE…|remove NAME… [--data-dir DIR]
  studio history import PATH… [--data-dir DIR]
  studio history export ID… --to DIR [--data-dir DIR]
  studio serve [--port N] [--host 127.0.0.1] [--data-dir DIR] [--static-root DIR] [--max-upload-mb N]

Without --model, the bundled model (native-models/emoji-ldm) is used.
The mode follows the inputs: --label-map → layout (a layout model; the map is a PNG in its label colours,
and sets the size), --mask → inpaint, --init → img2img, else txt2img. --mode, if given, must agree.
<lora:name:weight> (or <lora:name:te_weight:unet_weight>) in the prompt applies <name>.safetensors, looked up
in each --lora-dir, then in the library's LoRA folder (<data dir>/loras, managed with studio loras).
Prompts follow AUTOMATIC1111: (word:1.2), ((word)), [word], BREAK, long prompts in 75-token chunks; a word equal
to the file name of a textual-inversion embedding (.pt, .safetensors) in an --embeddings-dir or in
<data dir>/embeddings uses its vectors. --clip-skip N is A1111's "Clip skip". tokenize prints the chunks.
--soft-inpaint: the mask's grey levels say how much each pixel may change (differential diffusion).
Any --hires-* flag turns on A1111's hires fix (txt2img): upscaler Latent, Latent (bicubic), Latent (nearest),
Latent (nearest-exact), Lanczos, Nearest, or the file stem of an ONNX upscaler in an --upscaler-dir or in
<data dir>/upscalers; scale 2, steps 0 (= the first pass's), strength 0.7 unless given.
--aesthetic-score / --negative-aesthetic-score (SDXL refiner only, 0 to 10): the scores its time ids end
with for the prompt and the negative (default 6 and 2.5, as diffusers and A1111).
Modes: ${GENERATION_MODES.join(', ')}. Samplers: ${SAMPLERS.join(', ')}.`;

export function resolveModelDir(dir: string | undefined): string {
  if (dir) return resolve(dir);
  if (existsSync(join(BUNDLED_MODEL_DIR, 'model_index.json'))) return BUNDLED_MODEL_DIR;
  throw new InvalidRequestError(`no model given and the bundled model is missing (${BUNDLED_MODEL_DIR}); pass --model DIR`);
}

function parse(argv: string[], options: ParseArgsConfig['options']): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new InvalidRequestError(`${(err as Error).message}\n\n${USAGE}`);
  }
}

function numberArg(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n)) throw new InvalidRequestError(`--${name} must be a number, got "${String(v)}"`);
  return n;
}

/** `--region MASK.png[@WEIGHT]=PROMPT`: a regional prompt (pipelines/regions.ts), its mask a PNG at the picture's size. */
function regionArg(arg: string, i: number): { prompt: string; mask: Uint8Array; weight?: number } {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new InvalidRequestError(`--region must be MASK.png[@WEIGHT]=PROMPT, got "${arg}"`);
  const [path, weightText] = arg.slice(0, eq).split('@') as [string, string | undefined];
  const weight = weightText === undefined ? undefined : Number(weightText);
  if (weight !== undefined && !Number.isFinite(weight)) throw new InvalidRequestError(`--region ${i + 1}: the weight after @ must be a number, got "${weightText}"`);
  return { prompt: arg.slice(eq + 1), mask: readInput(path, `mask of region ${i + 1}`), ...(weight !== undefined ? { weight } : {}) };
}

function readInput(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new InvalidRequestError(`${what} not found: ${path}`);
  return readFileSync(path);
}

function engineFrom(values: Record<string, unknown>): Engine {
  const providers = typeof values['providers'] === 'string' ? values['providers'].split(',').map((p) => p.trim()) : undefined;
  for (const p of providers ?? []) {
    if (!PROVIDER_NAMES.includes(p as ExecutionProviderName)) {
      throw new InvalidRequestError(`unknown execution provider "${p}"; choose from ${PROVIDER_NAMES.join(', ')}`);
    }
  }
  return new Engine({
    ...(providers ? { providers: providers as ExecutionProviderName[] } : {}),
    ...(values['threads'] !== undefined ? { threads: numberArg(values, 'threads')! } : {}),
  });
}

async function generate(argv: string[]): Promise<unknown> {
  const { values } = parse(argv, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    negative: { type: 'string' },
    init: { type: 'string' },
    strength: { type: 'string' },
    mask: { type: 'string' },
    'mask-blur': { type: 'string' },
    'inpaint-area': { type: 'string' },
    'mask-padding': { type: 'string' },
    steps: { type: 'string' },
    cfg: { type: 'string' },
    sampler: { type: 'string' },
    seed: { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    latents: { type: 'string' },
    control: { type: 'string' },
    'control-scale': { type: 'string' },
    controlnet: { type: 'string' },
    'label-map': { type: 'string' },
    mode: { type: 'string' },
    providers: { type: 'string' },
    threads: { type: 'string' },
    'lora-dir': { type: 'string', multiple: true },
    'clip-skip': { type: 'string' },
    'soft-inpaint': { type: 'boolean' },
    'aesthetic-score': { type: 'string' },
    'negative-aesthetic-score': { type: 'string' },
    'hires-upscaler': { type: 'string' },
    'hires-scale': { type: 'string' },
    'hires-steps': { type: 'string' },
    'hires-strength': { type: 'string' },
    'hires-resize': { type: 'string' },
    'upscaler-dir': { type: 'string', multiple: true },
    'embeddings-dir': { type: 'string', multiple: true },
    region: { type: 'string', multiple: true },
    'data-dir': { type: 'string' },
    out: { type: 'string' },
  });
  if (typeof values['prompt'] !== 'string') throw new InvalidRequestError(`--prompt is required\n\n${USAGE}`);
  if (typeof values['out'] !== 'string') throw new InvalidRequestError(`--out is required\n\n${USAGE}`);
  const modelDir = resolveModelDir(values['model'] as string | undefined);
  const init = values['init'] as string | undefined;
  const mask = values['mask'] as string | undefined;
  const labelMap = values['label-map'] as string | undefined;
  if (mask && !init) throw new InvalidRequestError('--mask needs --init (the image to repaint)');
  if (labelMap && init) throw new InvalidRequestError('--label-map (layout) draws from the label map: it takes no --init or --mask');
  const mode: GenerationMode = labelMap ? 'layout' : mask ? 'inpaint' : init ? 'img2img' : 'txt2img';
  const asked = values['mode'] as string | undefined;
  if (asked !== undefined && asked !== mode) {
    if (!GENERATION_MODES.includes(asked as GenerationMode)) {
      throw new InvalidRequestError(`unknown mode "${asked}"; choose one of ${GENERATION_MODES.join(', ')}`);
    }
    const needs: Record<GenerationMode, string> = {
      txt2img: 'no --init, --mask or --label-map',
      img2img: '--init IMG',
      inpaint: '--init IMG and --mask PNG',
      layout: '--label-map PNG (a label map in the model\'s label colours)',
    };
    throw new InvalidRequestError(`--mode ${asked} needs ${needs[asked as GenerationMode]}; the inputs given make it ${mode}`);
  }
  const seed = numberArg(values, 'seed') ?? randomInt(0, 2 ** 32);
  const loraDirs = [...((values['lora-dir'] as string[] | undefined) ?? []).map((d) => resolve(d)), loraFolder(await dataDirOf(values))];
  const request: GenerateRequest = {
    mode,
    prompt: values['prompt'],
    negativePrompt: (values['negative'] as string | undefined) ?? '',
    seed,
    loraDirs,
    embeddingDirs: await embeddingDirsOf(values),
  };
  const optional: Array<[keyof GenerateRequest, string]> = [
    ['steps', 'steps'],
    ['cfg', 'cfg'],
    ['width', 'width'],
    ['height', 'height'],
    ['strength', 'strength'],
    ['maskBlur', 'mask-blur'],
    ['maskPadding', 'mask-padding'],
    ['clipSkip', 'clip-skip'],
    ['aestheticScore', 'aesthetic-score'],
    ['negativeAestheticScore', 'negative-aesthetic-score'],
  ];
  for (const [key, flag] of optional) {
    const n = numberArg(values, flag);
    if (n !== undefined) (request as unknown as Record<string, number>)[key] = n;
  }
  if (typeof values['sampler'] === 'string') request.sampler = values['sampler'] as SamplerName;
  if (typeof values['inpaint-area'] === 'string') request.inpaintArea = values['inpaint-area'] as InpaintArea;
  if (values['soft-inpaint'] === true) request.softInpaint = true;
  // Hires fix: any --hires-* flag turns it on (A1111's defaults for the others).
  const hiresFlags = ['hires-upscaler', 'hires-scale', 'hires-steps', 'hires-strength', 'hires-resize'];
  if (hiresFlags.some((f) => values[f] !== undefined)) {
    const resize = typeof values['hires-resize'] === 'string' ? /^(\d+)x(\d+)$/.exec(values['hires-resize']) : null;
    if (values['hires-resize'] !== undefined && !resize) throw new InvalidRequestError('--hires-resize takes WIDTHxHEIGHT, e.g. 1024x768');
    request.hires = {
      ...(typeof values['hires-upscaler'] === 'string' ? { upscaler: values['hires-upscaler'] } : {}),
      ...(numberArg(values, 'hires-scale') !== undefined ? { scale: numberArg(values, 'hires-scale')! } : {}),
      ...(numberArg(values, 'hires-steps') !== undefined ? { steps: numberArg(values, 'hires-steps')! } : {}),
      ...(numberArg(values, 'hires-strength') !== undefined ? { strength: numberArg(values, 'hires-strength')! } : {}),
      ...(resize ? { resizeWidth: Number(resize[1]), resizeHeight: Number(resize[2]) } : {}),
    };
    const dataDir = await dataDirOf(values);
    request.upscalerDirs = [...((values['upscaler-dir'] as string[] | undefined) ?? []).map((d) => resolve(d)), upscalerFolder(dataDir)];
  }
  if (init) request.initImage = readInput(init, 'init image');
  if (mask) request.mask = readInput(mask, 'mask');
  if (labelMap) request.labelMap = readInput(labelMap, 'label map');
  const regions = (values['region'] as string[] | undefined) ?? [];
  if (regions.length > 0) request.regions = regions.map(regionArg);
  if (typeof values['latents'] === 'string') {
    request.latents = readNpyFloat32(readInput(values['latents'], 'latents file'), values['latents']).data;
  }
  if (typeof values['control'] === 'string') {
    request.control = {
      image: readInput(values['control'], 'control image'),
      scale: numberArg(values, 'control-scale') ?? DEFAULT_CONTROL_SCALE,
      ...(typeof values['controlnet'] === 'string' ? { model: resolve(values['controlnet']) } : {}),
    };
  } else if (values['control-scale'] !== undefined || values['controlnet'] !== undefined) {
    throw new InvalidRequestError('--control-scale and --controlnet need --control IMG (the control image)');
  }

  const engine = engineFrom(values);
  try {
    const { info } = await engine.info(modelDir);
    // An init image without explicit size keeps its own size (rounded down to what the model accepts).
    if (request.initImage && request.width === undefined && request.height === undefined && request.inpaintArea !== 'masked') {
      const { default: sharp } = await import('sharp');
      const meta = await sharp(request.initImage).metadata().catch(() => null);
      if (meta?.width && meta.height) {
        const m = info.sizeMultiple;
        request.width = Math.max(m, Math.floor(meta.width / m) * m);
        request.height = Math.max(m, Math.floor(meta.height / m) * m);
      }
    }
    // A label map sets the picture's size (it must be exactly width×height).
    if (request.labelMap && request.width === undefined && request.height === undefined) {
      const { default: sharp } = await import('sharp');
      const meta = await sharp(request.labelMap).metadata().catch(() => null);
      if (meta?.width && meta.height) {
        request.width = meta.width;
        request.height = meta.height;
      }
    }
    const result = await engine.generate(modelDir, request);
    const png = await encodePng(result.image, {
      parameters: formatA1111Parameters(result.params, { name: info.name }, loraHashesSetting(result.loras)),
      request: { params: result.params, model: info.name },
    });
    const out = resolve(values['out']);
    await mkdir(dirname(out), { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    await writeFile(tmp, png);
    await rename(tmp, out);
    return {
      path: out,
      seed: result.params.seed,
      width: result.params.width,
      height: result.params.height,
      mode: result.params.mode,
      sampler: result.params.sampler,
      steps: result.params.steps,
      ...(result.params.controlScale !== undefined ? { controlScale: result.params.controlScale } : {}),
      ...(result.params.clipSkip !== undefined ? { clipSkip: result.params.clipSkip } : {}),
      ...(result.params.embeddings !== undefined ? { embeddings: result.params.embeddings } : {}),
      ...(result.params.regions !== undefined ? { regions: result.params.regions } : {}),
      ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
      provider: result.provider,
      timings: roundTimings(result.timings),
      ...(result.loras.length > 0
        ? { loras: result.loras.map(({ name, hash, te, unet, matched, unmatched, unmatchedExamples }) => ({ name, hash, te, unet, matched, unmatched, ...(unmatched > 0 ? { unmatchedExamples } : {}) })) }
        : {}),
    };
  } finally {
    await engine.unloadAll();
  }
}

async function dataDirOf(values: Record<string, unknown>): Promise<string> {
  const { defaultDataDir } = await import('./serve.js');
  return resolve(typeof values['data-dir'] === 'string' ? values['data-dir'] : defaultDataDir());
}

/** `studio loras list | import FILE… | remove NAME…`: the library's LoRA folder (<data dir>/loras). */
async function loras(argv: string[]): Promise<unknown> {
  const [action, ...rest] = argv;
  const { values, positionals } = parse(rest, { 'data-dir': { type: 'string' } });
  const dir = loraFolder(await dataDirOf(values));
  switch (action) {
    case 'list':
      return listLoras(dir);
    case 'import': {
      if (positionals.length === 0) throw new InvalidRequestError('loras import needs .safetensors files');
      const imported = [];
      for (const file of positionals) imported.push(await importLora(dir, resolve(file)));
      return { imported };
    }
    case 'remove': {
      if (positionals.length === 0) throw new InvalidRequestError('loras remove needs LoRA names');
      for (const name of positionals) await removeLora(dir, name);
      return { removed: positionals };
    }
    default:
      throw new InvalidRequestError(`loras needs "list", "import" or "remove"\n\n${USAGE}`);
  }
}

function roundTimings<T extends object>(t: T): T {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 10) / 10 : v])) as T;
}

/** --embeddings-dir folders first, then the library's <data dir>/embeddings. */
async function embeddingDirsOf(values: Record<string, unknown>): Promise<string[]> {
  return [...((values['embeddings-dir'] as string[] | undefined) ?? []).map((d) => resolve(d)), embeddingFolder(await dataDirOf(values))];
}

/** The prompt as the engine conditions on it: A1111's chunks, each with its 77 ids and weights. */
async function tokenize(argv: string[]): Promise<unknown> {
  const { values, positionals } = parse(argv, {
    model: { type: 'string' },
    'embeddings-dir': { type: 'string', multiple: true },
    'data-dir': { type: 'string' },
  });
  if (positionals.length === 0) throw new InvalidRequestError(`tokenize needs a text\n\n${USAGE}`);
  const modelDir = resolveModelDir(values['model'] as string | undefined);
  const tokenizer = await ClipTokenizer.fromFolder(join(modelDir, 'tokenizer'));
  const embeddings = await loadEmbeddingFolder(await embeddingDirsOf(values), null);
  const all = [...embeddings.usable, ...embeddings.mismatched];
  const vocabulary = all.length > 0 ? new EmbeddingVocabulary(tokenizer, all) : undefined;
  return describePrompt(stripLoraTags(positionals.join(' ')), tokenizer, vocabulary ? { embeddings: vocabulary } : {});
}

async function info(argv: string[]): Promise<unknown> {
  const { values } = parse(argv, { model: { type: 'string' }, providers: { type: 'string' }, threads: { type: 'string' } });
  const engine = engineFrom(values);
  try {
    const { info, sessions } = await engine.info(resolveModelDir(values['model'] as string | undefined));
    return { ...info, sessions };
  } finally {
    await engine.unloadAll();
  }
}

/** `studio serve`: browser mode (electron/host/serve.ts); runs until SIGINT/SIGTERM. */
async function serve(argv: string[]): Promise<unknown> {
  const { runServe } = await import('./serve.js');
  return runServe(argv, existsSync(join(BUNDLED_MODEL_DIR, 'model_index.json')) ? BUNDLED_MODEL_DIR : null);
}

/**
 * `studio history import PATH…` (PNGs or folders of them, with A1111 or our metadata) and
 * `studio history export ID… --to DIR`, on the same history the app and `studio serve` use.
 * Close the app first: one process writes the history at a time.
 */
async function history(argv: string[]): Promise<unknown> {
  const [action, ...rest] = argv;
  const { values, positionals } = parse(rest, { 'data-dir': { type: 'string' }, to: { type: 'string' } });
  const { defaultDataDir } = await import('./serve.js');
  const { HistoryStore } = await import('../history/store.js');
  const dataDir = resolve(typeof values['data-dir'] === 'string' ? values['data-dir'] : defaultDataDir());
  if (action !== 'import' && action !== 'export') throw new InvalidRequestError(`history needs "import" or "export"\n\n${USAGE}`);
  if (positionals.length === 0) throw new InvalidRequestError(`history ${action} needs ${action === 'import' ? 'files or folders' : 'item ids'}`);
  const store = await HistoryStore.open(join(dataDir, 'history'));
  try {
    if (action === 'import') return await store.import(positionals.map((p) => resolve(p)));
    if (typeof values['to'] !== 'string') throw new InvalidRequestError('history export needs --to DIR');
    const ids = positionals.map((p) => {
      const id = Number(p);
      if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidRequestError(`not a history item id: "${p}"`);
      return id;
    });
    return store.export(ids, resolve(values['to']));
  } finally {
    store.close();
  }
}

const COMMANDS: Record<string, (argv: string[]) => Promise<unknown>> = { generate, tokenize, info, serve, history, loras };

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command ? 0 : 1;
  }
  const fn = COMMANDS[command];
  if (!fn) {
    process.stderr.write(`${JSON.stringify({ error: serializeError(new InvalidRequestError(`unknown command "${command}"`)) })}\n${USAGE}\n`);
    return 1;
  }
  try {
    const out = await fn(rest);
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${JSON.stringify({ error: serializeError(err) })}\n`);
    if (!(err instanceof Error && 'code' in err)) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return 1;
  }
}
