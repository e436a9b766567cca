/**
 * The text encoder's detector: the `input_ids` dtype and batch axis, the token count (which must match
 * the tokenizer's), the hidden-state output and its width (config.json `hidden_size`, a static dim, or
 * one probe run on an empty prompt).
 */
import { ModelFolderError } from '../../shared/errors.js';
import type { ModelInfo } from '../../shared/model.js';
import type { ClipTokenizer } from '../tokenizer/clip-tokenizer.js';
import { num, staticDim, type JsonObject } from './folder-config.js';
import type { OnnxModule } from './onnx-module.js';

export interface TextEncoderDetection {
  info: ModelInfo['textEncoder'];
  /** The output the pipelines read (`last_hidden_state`, else the first output). */
  outputName: string;
  /** Its element type (float32 or float16). */
  outputType: string;
  hiddenSize: number;
  maxTokens: number;
}

export async function detectTextEncoder(
  encoder: OnnxModule,
  tokenizer: ClipTokenizer,
  config: JsonObject | null,
): Promise<TextEncoderDetection> {
  const ids = encoder.requireInput('input_ids');
  if (ids.type !== 'int32' && ids.type !== 'int64') {
    throw new ModelFolderError(`input_ids must be int32 or int64, found ${ids.type}`, encoder.label);
  }
  const outputName = encoder.outputName(['last_hidden_state']);
  const out = encoder.outputs.get(outputName)!;
  const maxTokens = staticDim(ids.shape, 1) ?? tokenizer.maxLength;
  if (maxTokens !== tokenizer.maxLength) {
    throw new ModelFolderError(
      `${encoder.label.split('/')[0]} takes ${maxTokens} tokens but tokenizer model_max_length is ${tokenizer.maxLength}`,
      encoder.label,
    );
  }
  let hiddenSize = num(config, 'hidden_size') ?? staticDim(out.shape, 2);
  if (hiddenSize === undefined) {
    // Probe: one encode of an empty prompt tells the width.
    const probe = await encoder.run(
      { input_ids: { data: Int32Array.from(tokenizer.encode('').ids), dims: [1, tokenizer.maxLength] } },
      [outputName],
    );
    hiddenSize = probe[outputName]!.dims[2]!;
  }
  return {
    info: { inputIdsType: ids.type, batchDynamic: staticDim(ids.shape, 0) === undefined },
    outputName,
    outputType: out.type,
    hiddenSize,
    maxTokens,
  };
}
