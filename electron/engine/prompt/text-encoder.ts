/**
 * One CLIP text encoder as the prompt code uses it: 77-token rows in, the chosen hidden state out.
 *
 * The folder's own session gives `last_hidden_state`. Clip skip (another hidden state) and textual-inversion
 * vectors need the rewritten graph (model/onnx-graph.ts rewriteTextEncoder), opened on first use only, so a
 * plain prompt loads and runs exactly as before.
 */
import { readFileSync } from 'node:fs';
import { StudioError } from '../../shared/errors.js';
import {
  EXTRA_TOKEN_EMBEDDINGS_INPUT,
  HIDDEN_STATE_OUTPUT_PREFIX,
  NORMED_HIDDEN_STATE_OUTPUT_PREFIX,
  rewriteTextEncoder,
  TOKEN_EMBEDDING_IDS_INPUT,
} from '../model/onnx-graph.js';
import { OnnxModule, type HostTensor, type SessionSettings } from '../model/onnx-module.js';

/**
 * Which hidden state conditions the U-Net: `fromEnd` 1 is the last layer's output, 2 the one before (A1111's
 * "Clip skip: 2"), …; `finalNorm` applies the text model's final LayerNorm to it (A1111 SD 1.x does; SDXL's
 * penultimate states do not).
 */
export interface HiddenStateChoice {
  fromEnd: number;
  finalNorm: boolean;
}

export const LAST_HIDDEN_STATE: HiddenStateChoice = { fromEnd: 1, finalNorm: true };

/** A1111's "Clip skip: N" for SD 1.x/2.x folders: `final_layer_norm(hidden_states[-N])`. */
export function clipSkipState(clipSkip: number): HiddenStateChoice {
  return { fromEnd: Math.max(1, Math.trunc(clipSkip)), finalNorm: true };
}

/**
 * Where the rewrite reads the text encoder's graph: the folder's file, or, for a session built in memory
 * (a LoRA-patched text encoder), the same patched bytes built again on demand, with their external data.
 */
export type GraphSource = () => Promise<{ bytes: Uint8Array; externalData?: readonly { path: string; data: Uint8Array }[] }>;

/** The graph sources of sessions built in memory (lora/sessions.ts registers its patched text encoders). */
const graphSources = new WeakMap<OnnxModule, GraphSource>();

export function registerGraphSource(module: OnnxModule, source: GraphSource): void {
  graphSources.set(module, source);
}

/** The source a session's graph can be read from again: its registered one, else its file when it has one. */
export function graphSourceOf(module: OnnxModule, fromFile: boolean): GraphSource | null {
  return graphSources.get(module) ?? (fromFile ? async () => ({ bytes: readFileSync(module.file) }) : null);
}

export interface EncoderRun {
  /** Rows of exactly `tokens` ids each (what `input_ids` gets). */
  ids: number[][];
  state: HiddenStateChoice;
  /**
   * Textual inversion: extra token-embedding rows [n, width] and, per row, the table rows to look up
   * (ids past the vocabulary reach the extra rows). Omitted: the token table as it is.
   */
  extra?: { rows: Float32Array; lookup: number[][] };
  /** Another output of the graph to return beside the state, one row per input row (SDXL encoder 2's `text_embeds`). */
  pooled?: string;
}

/** What `run` gives: the hidden states [rows, tokens, width] as one flat array, and `pooled` when asked for. */
export interface EncoderOutput {
  data: Float32Array;
  width: number;
  /** [rows, pooled width] when the run asked for `pooled`. */
  pooled?: Float32Array;
}

interface Rewritten {
  module: OnnxModule;
  layers: number;
  vocabRows: number;
  width: number;
}

export class PromptTextEncoder {
  private rewritten: Promise<Rewritten | null> | undefined;

  constructor(
    /** The folder's session, as opened (it has `input_ids` and `last_hidden_state`). */
    readonly plain: OnnxModule,
    private readonly settings: SessionSettings,
    /** Whether the batch axis is dynamic (else one row per run). */
    readonly batchDynamic: boolean,
    readonly tokens: number,
    /**
     * Where the rewrite reads the graph (the folder's file by default; a LoRA-patched session's own bytes,
     * built again); null: no rewrite possible, clip skip and embeddings are refused.
     */
    private readonly source: GraphSource | null = async () => ({ bytes: readFileSync(plain.file) }),
  ) {}

  /**
   * The encoder's hidden states, [rows, tokens, width] as one flat array, and the width. The folder's own
   * session runs when it has the state as an output (`last_hidden_state`, or optimum's `hidden_states.N`
   * as SDXL exports have them) and no embedding is used; else the rewritten graph.
   */
  async run(request: EncoderRun): Promise<EncoderOutput> {
    const plainOutput = this.plainOutput(request.state);
    if (plainOutput !== null && !request.extra) {
      return this.batched(request.ids, request.pooled, (rows) => this.runPlain(rows, plainOutput, request.pooled));
    }
    if (!this.source) {
      throw new StudioError(
        'E_UNSUPPORTED',
        `${this.plain.label}: ${request.extra ? 'textual-inversion embeddings' : `clip skip ${request.state.fromEnd}`} need the text encoder's graph, and this session was built in memory without one`,
      );
    }
    const rw = await this.rewrite();
    if (!rw) {
      throw new StudioError(
        'E_UNSUPPORTED',
        `${this.plain.label}: this text encoder's graph could not be rewritten to give ${
          request.extra ? 'textual-inversion embeddings' : `clip skip ${request.state.fromEnd}`
        } (it keeps its weights in an external file or is not a plain CLIP text model)`,
      );
    }
    if (request.state.fromEnd > rw.layers) {
      throw new StudioError('E_UNSUPPORTED', `clip skip ${request.state.fromEnd}: the text encoder has only ${rw.layers} layers`);
    }
    const k = rw.layers + 1 - request.state.fromEnd;
    const output = `${request.state.finalNorm ? NORMED_HIDDEN_STATE_OUTPUT_PREFIX : HIDDEN_STATE_OUTPUT_PREFIX}${k}`;
    const extraRows = request.extra?.rows.length ? request.extra.rows : new Float32Array(rw.width);
    const lookup = request.extra?.lookup ?? request.ids;
    const indexed = request.ids.map((ids, i) => ({ ids, lookup: lookup[i]! }));
    return this.batched(indexed, request.pooled, async (rows) => {
      const out = await rw.module.run(
        {
          input_ids: idsTensor(rows.map((r) => r.ids), this.tokens),
          [TOKEN_EMBEDDING_IDS_INPUT]: idsTensor(rows.map((r) => r.lookup), this.tokens),
          [EXTRA_TOKEN_EMBEDDINGS_INPUT]: { data: extraRows, dims: [extraRows.length / rw.width, rw.width] },
        },
        request.pooled ? [output, request.pooled] : [output],
      );
      return { state: out[output]!, ...(request.pooled ? { pooled: out[request.pooled]! } : {}) };
    });
  }

  async release(): Promise<void> {
    const rw = await this.rewritten?.catch(() => null);
    await rw?.module.release();
  }

  /**
   * The folder session's output holding `state`, or null when only the rewritten graph has it:
   * `last_hidden_state` for the last normed state; optimum's raw `hidden_states.N` (N = 0 … L) for the others.
   */
  private plainOutput(state: HiddenStateChoice): string | null {
    if (state.fromEnd === 1 && state.finalNorm) return this.plain.outputName(['last_hidden_state']);
    if (state.finalNorm) return null;
    const layers = Math.max(-1, ...[...this.plain.outputs.keys()].map((n) => /^hidden_states\.(\d+)$/.exec(n)).map((m) => (m ? Number(m[1]) : -1)));
    const k = layers + 1 - state.fromEnd;
    return layers > 0 && k >= 0 ? `hidden_states.${k}` : null;
  }

  private async runPlain(rows: number[][], name: string, pooled: string | undefined): Promise<{ state: HostTensor; pooled?: HostTensor }> {
    const out = await this.plain.run({ input_ids: idsTensor(rows, this.tokens) }, pooled ? [name, pooled] : [name]);
    return { state: out[name]!, ...(pooled ? { pooled: out[pooled]! } : {}) };
  }

  /** Runs all rows at once when the batch axis is dynamic, else one by one; concatenates the results. */
  private async batched<R>(
    rows: R[],
    pooled: string | undefined,
    run: (rows: R[]) => Promise<{ state: HostTensor; pooled?: HostTensor }>,
  ): Promise<EncoderOutput> {
    const parts = this.batchDynamic ? [await run(rows)] : await sequential(rows.map((r) => () => run([r])));
    const width = parts[0]!.state.dims[2]!;
    const data = concat(parts.map((p) => p.state));
    return { data, width, ...(pooled ? { pooled: concat(parts.map((p) => p.pooled!)) } : {}) };
  }

  private rewrite(): Promise<Rewritten | null> {
    this.rewritten ??= (async () => {
      const { bytes, externalData } = await this.source!();
      // External weights resolve only when the source gives them (a LoRA patch does; a folder file is read alone).
      const patch = rewriteTextEncoder(bytes, { externalData: externalData !== undefined });
      if (!patch) return null;
      const module = await OnnxModule.open(this.plain.file, this.plain.label, this.settings, patch.bytes, externalData);
      return { module, layers: patch.layers, vocabRows: patch.vocabRows, width: patch.width };
    })();
    return this.rewritten;
  }

  /** Rows in the token table before any extra rows: the first id an extra row gets. */
  async vocabRows(): Promise<number | null> {
    return (await this.rewrite())?.vocabRows ?? null;
  }
}

function concat(parts: HostTensor[]): Float32Array {
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p.data as Float32Array, o);
    o += p.data.length;
  }
  return data;
}

async function sequential<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = [];
  for (const task of tasks) out.push(await task());
  return out;
}

/** int32 rows; OnnxModule converts to the declared dtype (int64 for optimum ≥ 1.24 and our extra input). */
function idsTensor(rows: number[][], tokens: number): HostTensor {
  const data = new Int32Array(rows.length * tokens);
  rows.forEach((r, i) => data.set(r, i * tokens));
  return { data, dims: [rows.length, tokens] };
}
