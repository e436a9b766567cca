/**
 * One ONNX submodel (text_encoder, unet, vae_encoder, vae_decoder) opened with onnxruntime-node.
 *
 * - Sessions are created from the file path, so external weights (`weights.pb`, `model.onnx_data`)
 *   resolve relative to the model's folder (sd-onnx-reference §1).
 * - Execution providers are tried in the configured order; each failure is kept as a reason and the
 *   provider that actually runs the session is reported.
 * - Host code works in float32. Inputs are converted at the boundary to whatever the session declares
 *   (float16 as Uint16Array bit patterns, int64 as BigInt64Array) and float outputs come back as float32.
 */
import { existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { ModelFolderError, StudioError } from '../../shared/errors.js';
import type { ExecutionProviderName } from '../../shared/generation.js';
import { float16Table, float32ToFloat16Bits, fromFloat16Array, toFloat16Array } from '../tensor/fp16.js';

export interface IoSpec {
  name: string;
  type: string;
  /** Each dim is a number (static) or a string (symbolic); an empty array means rank 0 (or unknown). */
  shape: ReadonlyArray<number | string>;
}

export interface ProviderAttempt {
  provider: ExecutionProviderName;
  error: string;
}

/** Host-side tensor: float data is always float32 here. */
export interface HostTensor {
  data: Float32Array | Int32Array | BigInt64Array;
  dims: readonly number[];
  /**
   * The caller never changes `data` after this run (a job's prompt states, SDXL's added conditioning): its
   * conversion to the session's dtype (float32 → float16 for fp16 graphs: 2×77×2048 values each SDXL step) is
   * made once and reused while the array lives.
   */
  constant?: true;
}

export interface SessionSettings {
  providers: readonly ExecutionProviderName[];
  /** Intra-op threads for the CPU provider; 0 lets onnxruntime decide. */
  threads: number;
  /**
   * Release the text encoders' sessions once a job's prompts are encoded (SDXL's two encoders hold
   * ~1.6 GB in fp16): memory for the U-Net and VAE, at the cost of loading them again for the next prompt.
   */
  releaseTextEncoders?: boolean;
}

const ORT_PROVIDER_IDS: Record<ExecutionProviderName, string> = {
  webgpu: 'webgpu',
  cuda: 'cuda',
  dml: 'dml',
  coreml: 'coreml',
  cpu: 'cpu',
};

/**
 * Providers that failed for reasons of this machine (library missing, no GPU adapter) are not tried
 * again for every submodel of every model: the first reason is remembered for the process.
 */
const unavailableProviders = new Map<ExecutionProviderName, string>();

// Errors reach us as exceptions with their message; onnxruntime's own logger would repeat them on stderr.
ort.env.logLevel = 'fatal';

/** The Vulkan loader that onnxruntime's WebGPU provider (Dawn) opens on Linux. */
const VULKAN_LOADER = 'libvulkan.so.1';

/**
 * Why the WebGPU provider can't start on this machine, found without starting it; null when it may.
 * On Linux, Dawn runs WebGPU on Vulkan and, when the Vulkan loader is missing, prints "Warning: Couldn't
 * load Vulkan" with a source location straight to stderr (its own logger, which onnxruntime's log level
 * doesn't reach) before failing the session: a line of noise on every command of a machine with no GPU
 * stack. The same dlopen is tried here first; when it fails, WebGPU is skipped with that reason, which
 * the session report carries (`studio info`). Loading the library when it is there is what Dawn does
 * next anyway. Exported for tests.
 */
export function webgpuUnavailableReason(platform: NodeJS.Platform = process.platform, loader = VULKAN_LOADER): string | null {
  if (platform !== 'linux') return null;
  try {
    process.dlopen({ exports: {} }, loader);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // A library that loads but is no Node add-on ends here too: it is there, and that is all we asked.
    if (/did not self-register/i.test(message)) return null;
    return `Couldn't load Vulkan (WebGPU on Linux runs on it): ${firstLine(message)}`;
  }
  return null;
}

/** ONNX files start with a protobuf field tag: ir_version (field 1, varint) = 0x08. */
function looksLikeOnnx(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    readSync(fd, head, 0, 2, 0);
    return head[0] === 0x08 && head[1]! > 0 && head[1]! < 0x40;
  } finally {
    closeSync(fd);
  }
}

/**
 * The options every session is created with. `force_spinning_stop`: onnxruntime's intra-op threads spin
 * between parallel sections (fast within a run) and, by default, go on spinning after the run returns.
 * A model is several sessions (text encoder, U-Net, VAE), each with its own pool, so after the U-Net's
 * run its threads would spin while the decoder runs, and between live frames they would spin while the
 * host and the renderer (the same few cores) prepare the next frame. With it they stop when the run
 * returns. bench:live on a loaded 2-core machine, medians of 3–4 runs: 3.0 → 4.3 frames per second at 4
 * steps, 4.3 → 6.9 at 2; a queued job is as fast as before (bench:engine). Never spinning at all
 * (`allow_spinning` 0) made the bundled model's queued steps about 25% slower.
 */
export function sessionOptions(provider: ExecutionProviderName, settings: Pick<SessionSettings, 'threads'>): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [ORT_PROVIDER_IDS[provider]],
    graphOptimizationLevel: 'all',
    ...(settings.threads > 0 ? { intraOpNumThreads: settings.threads } : {}),
    extra: { session: { force_spinning_stop: '1' } },
    logSeverityLevel: 4, // errors reach us as exceptions; a probe run must not print to stderr
  };
}

export class OnnxModule {
  private constructor(
    readonly file: string,
    /** Folder-relative name for messages, e.g. "unet/model.onnx". */
    readonly label: string,
    private session: ort.InferenceSession | null,
    readonly provider: ExecutionProviderName,
    readonly fallbacks: readonly ProviderAttempt[],
    readonly inputs: ReadonlyMap<string, IoSpec>,
    readonly outputs: ReadonlyMap<string, IoSpec>,
  ) {}

  /** Converted `constant` feeds, by their source array (converted for this module's declared dtypes). */
  private readonly constants = new WeakMap<object, { name: string; dims: string; tensor: ort.Tensor }>();

  /**
   * Opens a session from the file (so external weights resolve next to it), or from `bytes` when the
   * graph was patched in memory (onnx-graph.ts, lora/), with its external data files given in memory
   * (`externalData`: one entry per file the graph names, by its `location`).
   */
  static async open(
    file: string,
    label: string,
    settings: SessionSettings,
    bytes?: Uint8Array,
    externalData?: readonly { path: string; data: Uint8Array }[],
  ): Promise<OnnxModule> {
    if (!bytes) {
      if (!existsSync(file)) throw new ModelFolderError('file is missing', label);
      if (statSync(file).size === 0) throw new ModelFolderError('file is empty', label);
      if (!looksLikeOnnx(file)) throw new ModelFolderError('not an ONNX model (bad header)', label);
    }
    const fallbacks: ProviderAttempt[] = [];
    const providers = settings.providers.length > 0 ? settings.providers : (['cpu'] as const);
    for (const provider of providers) {
      if (provider === 'webgpu' && !unavailableProviders.has('webgpu')) {
        const reason = webgpuUnavailableReason();
        if (reason !== null) unavailableProviders.set('webgpu', reason);
      }
      const known = unavailableProviders.get(provider);
      if (known !== undefined && provider !== 'cpu') {
        fallbacks.push({ provider, error: known });
        continue;
      }
      try {
        const options: ort.InferenceSession.SessionOptions = {
          ...sessionOptions(provider, settings),
          ...(bytes && externalData && externalData.length > 0 ? { externalData: [...externalData] } : {}),
        };
        const session = bytes ? await ort.InferenceSession.create(bytes, options) : await ort.InferenceSession.create(file, options);
        const module = new OnnxModule(
          file,
          label,
          session,
          provider,
          fallbacks,
          toSpecMap(session.inputMetadata),
          toSpecMap(session.outputMetadata),
        );
        if (!bytes) module.reopen = () => ort.InferenceSession.create(file, options);
        return module;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (provider === 'cpu' || isModelDefect(message)) {
          throw new ModelFolderError(`onnxruntime could not load it: ${firstLine(message)}`, label, { cause: err });
        }
        fallbacks.push({ provider, error: firstLine(message) });
        unavailableProviders.set(provider, firstLine(message));
      }
    }
    const reasons = fallbacks.map((f) => `${f.provider}: ${f.error}`).join('; ');
    throw new StudioError('E_MODEL_RUNTIME', `${label}: no execution provider could run it (${reasons})`);
  }

  input(name: string): IoSpec | undefined {
    return this.inputs.get(name);
  }

  requireInput(name: string): IoSpec {
    const spec = this.inputs.get(name);
    if (!spec) {
      throw new ModelFolderError(
        `expected an input named "${name}", found ${[...this.inputs.keys()].map((n) => `"${n}"`).join(', ')}`,
        this.label,
      );
    }
    return spec;
  }

  /** The named output, else the first one (diffusers exports name them; a few tools don't). */
  outputName(preferred: readonly string[]): string {
    for (const name of preferred) if (this.outputs.has(name)) return name;
    const first = this.outputs.keys().next();
    if (first.done) throw new ModelFolderError('the model has no outputs', this.label);
    return first.value;
  }

  /** Sessions created for this module: 1, plus one per reload after `unloadSession`. */
  get sessionLoads(): number {
    return this.loads;
  }

  private loads = 1;
  /** How the session was made (file-based sessions only can be unloaded and made again). */
  private reopen: (() => Promise<ort.InferenceSession>) | null = null;

  /** Whether the session is in memory now. */
  get loaded(): boolean {
    return this.session !== null;
  }

  /**
   * Releases the session and keeps the module: the next run creates it again from the file, on the same
   * provider. A session built from bytes (a LoRA patch) is kept: there is no file to reload it from.
   * Returns whether the session was released.
   */
  async unloadSession(): Promise<boolean> {
    if (!this.reopen || !this.session) return false;
    const session = this.session;
    this.session = null;
    await session.release();
    return true;
  }

  private async activeSession(): Promise<ort.InferenceSession> {
    if (this.session) return this.session;
    if (!this.reopen) throw new StudioError('E_MODEL_RUNTIME', `${this.label}: the session was released with its model`);
    this.session = await this.reopen();
    this.loads++;
    return this.session;
  }

  /** Runs the session. Float inputs are converted to the declared dtype; float outputs return as float32. */
  async run(feeds: Record<string, HostTensor>, outputNames: readonly string[]): Promise<Record<string, HostTensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      const spec = this.requireInput(name);
      ortFeeds[name] = tensor.constant ? this.constantTensor(name, tensor, spec) : toOrtTensor(tensor, spec, this.label);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      const session = await this.activeSession();
      results = await session.run(ortFeeds, [...outputNames]);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new StudioError('E_MODEL_RUNTIME', `${this.label}: inference failed: ${firstLine(message)}`, { cause: err });
    }
    const out: Record<string, HostTensor> = {};
    for (const name of outputNames) {
      const value = results[name];
      if (!value) throw new StudioError('E_MODEL_RUNTIME', `${this.label}: no output "${name}"`);
      out[name] = fromOrtTensor(value, this.label);
      value.dispose();
    }
    return out;
  }

  private constantTensor(name: string, tensor: HostTensor, spec: IoSpec): ort.Tensor {
    const dims = tensor.dims.join(',');
    const cached = this.constants.get(tensor.data);
    if (cached && cached.name === name && cached.dims === dims) return cached.tensor;
    const converted = toOrtTensor(tensor, spec, this.label);
    this.constants.set(tensor.data, { name, dims, tensor: converted });
    return converted;
  }

  /**
   * Runs the session on tensors the caller built once and reuses (the live path): no dtype conversion
   * and no copies; `outputs` are preallocated tensors that onnxruntime writes into. Only for inputs
   * and outputs whose declared type the tensors already have.
   */
  async runPrepared(feeds: Record<string, ort.Tensor>, outputs: Record<string, ort.Tensor>): Promise<void> {
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await (await this.activeSession()).run(feeds, outputs);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new StudioError('E_MODEL_RUNTIME', `${this.label}: inference failed: ${firstLine(message)}`, { cause: err });
    }
    for (const name of Object.keys(outputs)) {
      if (!results[name]) throw new StudioError('E_MODEL_RUNTIME', `${this.label}: no output "${name}"`);
    }
  }

  async release(): Promise<void> {
    const session = this.session;
    this.session = null;
    this.reopen = null;
    await session?.release();
  }
}

function toSpecMap(meta: readonly ort.InferenceSession.ValueMetadata[]): Map<string, IoSpec> {
  const map = new Map<string, IoSpec>();
  for (const m of meta) {
    if (m.isTensor) map.set(m.name, { name: m.name, type: m.type, shape: m.shape });
    else map.set(m.name, { name: m.name, type: 'non-tensor', shape: [] });
  }
  return map;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.slice(0, 500);
}

/** Errors that no other provider would fix: the file itself is bad. */
function isModelDefect(message: string): boolean {
  return /protobuf parsing failed|invalid model|load model|external data|no such file|model_path|ModelProto|not a valid/i.test(
    message,
  );
}

export function toOrtTensor(tensor: HostTensor, spec: IoSpec, label: string): ort.Tensor {
  const dims = [...tensor.dims];
  const { data } = tensor;
  switch (spec.type) {
    case 'float32':
      return new ort.Tensor('float32', asFloat32(data), dims);
    case 'float16':
      return new ort.Tensor('float16', toFloat16Array(asFloat32(data)), dims);
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(asFloat32(data)), dims);
    case 'int32':
      return new ort.Tensor('int32', data instanceof Int32Array ? data : Int32Array.from(asNumbers(data)), dims);
    case 'int64': {
      if (data instanceof BigInt64Array) return new ort.Tensor('int64', data, dims);
      const out = new BigInt64Array(data.length);
      // Truncation toward zero, as numpy's astype(int64) does for a float Euler timestep (§2.2).
      for (let i = 0; i < data.length; i++) out[i] = BigInt(Math.trunc(data[i]!));
      return new ort.Tensor('int64', out, dims);
    }
    default:
      throw new ModelFolderError(`input "${spec.name}" has unsupported type ${spec.type}`, label);
  }
}

/**
 * An input allocated once and refilled in place: callers write float32 values into `host`, and `sync()`
 * puts them into `tensor` in the session's declared dtype, converted exactly as `toOrtTensor` converts a
 * float32 HostTensor (for a float32 input `tensor` wraps `host` itself and `sync()` does nothing). A
 * per-step feed (the U-Net's sample and timestep) then costs no allocation and no ort.Tensor per run.
 */
export class PreparedInput {
  readonly host: Float32Array;
  readonly tensor: ort.Tensor;
  readonly sync: () => void;

  constructor(spec: IoSpec, dims: readonly number[], label: string) {
    const size = dims.reduce((a, b) => a * b, 1);
    const host = new Float32Array(size);
    this.host = host;
    const shape = [...dims];
    switch (spec.type) {
      case 'float32':
        this.tensor = new ort.Tensor('float32', host, shape);
        this.sync = () => undefined;
        break;
      case 'float16': {
        const bits = new Uint16Array(size);
        this.tensor = new ort.Tensor('float16', bits, shape);
        this.sync = () => {
          for (let i = 0; i < size; i++) bits[i] = float32ToFloat16Bits(host[i]!);
        };
        break;
      }
      case 'float64': {
        const wide = new Float64Array(size);
        this.tensor = new ort.Tensor('float64', wide, shape);
        this.sync = () => wide.set(host);
        break;
      }
      case 'int32': {
        const ints = new Int32Array(size);
        this.tensor = new ort.Tensor('int32', ints, shape);
        this.sync = () => ints.set(host);
        break;
      }
      case 'int64': {
        const longs = new BigInt64Array(size);
        this.tensor = new ort.Tensor('int64', longs, shape);
        // Truncation toward zero, as toOrtTensor.
        this.sync = () => {
          for (let i = 0; i < size; i++) longs[i] = BigInt(Math.trunc(host[i]!));
        };
        break;
      }
      default:
        throw new ModelFolderError(`input "${spec.name}" has unsupported type ${spec.type}`, label);
    }
  }
}

/**
 * An output allocated once that onnxruntime writes into (`tensor`, passed to `runPrepared`): `read()` gives
 * its values as float32 in `host`, as `fromOrtTensor` converts them (a float32 output is `host` itself).
 * Null for a dtype other than float32, float16 or float64.
 */
export function preparedOutput(spec: IoSpec, dims: readonly number[]): { tensor: ort.Tensor; read: () => Float32Array } | null {
  const size = dims.reduce((a, b) => a * b, 1);
  const shape = [...dims];
  if (spec.type === 'float32') {
    const host = new Float32Array(size);
    return { tensor: new ort.Tensor('float32', host, shape), read: () => host };
  }
  if (spec.type === 'float16') {
    const host = new Float32Array(size);
    const bits = new Uint16Array(size);
    const table = float16Table();
    return {
      tensor: new ort.Tensor('float16', bits, shape),
      read: () => {
        for (let i = 0; i < size; i++) host[i] = table[bits[i]!]!;
        return host;
      },
    };
  }
  if (spec.type === 'float64') {
    const host = new Float32Array(size);
    const wide = new Float64Array(size);
    return {
      tensor: new ort.Tensor('float64', wide, shape),
      read: () => {
        host.set(wide);
        return host;
      },
    };
  }
  return null;
}

function asFloat32(data: HostTensor['data']): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof BigInt64Array) return Float32Array.from(data, (v) => Number(v));
  return Float32Array.from(data);
}

function asNumbers(data: HostTensor['data']): ArrayLike<number> {
  if (data instanceof BigInt64Array) return Array.from(data, (v) => Number(v));
  return data;
}

export function fromOrtTensor(value: ort.Tensor, label: string): HostTensor {
  const dims = [...value.dims];
  switch (value.type) {
    case 'float32':
      // Copy: the output buffer belongs to onnxruntime and is released by dispose().
      return { data: new Float32Array(value.data as Float32Array), dims };
    case 'float16': {
      const raw = value.data as unknown;
      if (raw instanceof Uint16Array) return { data: fromFloat16Array(raw), dims };
      return { data: Float32Array.from(raw as ArrayLike<number>), dims };
    }
    case 'float64':
      return { data: Float32Array.from(value.data as Float64Array), dims };
    case 'int32':
      return { data: new Int32Array(value.data as Int32Array), dims };
    case 'int64':
      return { data: new BigInt64Array(value.data as BigInt64Array), dims };
    default:
      throw new StudioError('E_MODEL_RUNTIME', `${label}: unsupported output type ${value.type}`);
  }
}
