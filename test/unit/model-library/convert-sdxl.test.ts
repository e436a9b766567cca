/**
 * Single-file SDXL checkpoints (sgm / A1111 / ComfyUI key layout) through native-models/tools/convert.py:
 * the SDXL variant is read from the weights (dry run), and a tiny checkpoint holding the tiny-sdxl
 * fixture's weights under the original key names (made by make_tiny_sdxl_checkpoint.py) converts to an
 * optimum-layout folder that the library imports as SDXL and the engine runs to diffusers' pictures
 * (test/fixtures/parity/sdxl-cases.json, from the same latents) within 2/255.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Engine, prepareJob, runJob } from '../../../electron/engine/engine.js';
import { ReplayRng } from '../../../electron/engine/tensor/rng.js';
import { CONVERT_SCRIPT, convertCommand, venvPython } from '../../../electron/model-library/convert-command.js';
import { PARITY, type ReferenceCase, assertMatchesReference, caseRequest, readCases, readParityNpy } from '../../support/engine-fixtures.js';
import { fakeCheckpoint, openLibrary, runVenvPython, sandbox } from './support.js';

const PYTHON = venvPython();
const MAKE_CHECKPOINT = join(import.meta.dirname, 'make_tiny_sdxl_checkpoint.py');
const noVenv = existsSync(PYTHON) ? false : `needs the Python venv at ${PYTHON} (native-models/tools/setup-venv.sh)`;
/** Three Python start-ups with torch + diffusers on a busy 2-core machine. */
const CONVERSION_TIMEOUT_MS = 600_000;
/** The bar: within 2/255 per pixel. */
const MAX_LEVELS = 2;

interface SdxlCase extends ReferenceCase {
  mode: 'txt2img' | 'img2img' | 'inpaint';
  strength?: number;
  init_image?: string;
  posterior_noise?: string;
}

const UNET = 'model.diffusion_model.';
const CONV_IN = `${UNET}input_blocks.0.0.weight`;
/** SDXL's first cross-attention sits in input block 4 (input blocks 1–2 have none). */
const CROSS_K = `${UNET}input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight`;
const CLIP_L = 'conditioner.embedders.0.transformer.text_model.embeddings.position_embedding.weight';
const BIG_G = 'conditioner.embedders.1.model.positional_embedding';
const REFINER_BIG_G = 'conditioner.embedders.0.model.positional_embedding';

test('an SDXL single file: base, inpainting or refiner is read from its weights, offline (dry run)', { skip: noVenv }, () => {
  const box = sandbox('model-convert-sdxl-plan-');
  try {
    const plan = (tensors: Record<string, number[]>, extra: string[] = []): { status: number | null; plan?: { config: string }; stderr: string } => {
      const file = join(box.dir, 'model.safetensors');
      fakeCheckpoint(file, tensors);
      const r = runVenvPython([CONVERT_SCRIPT, file, join(box.dir, 'out'), '--dry-run', ...extra]);
      return { status: r.status, plan: r.status === 0 ? (JSON.parse(r.stdout) as { config: string }) : undefined, stderr: r.stderr };
    };
    const base = { [CONV_IN]: [320, 4, 3, 3], [CROSS_K]: [640, 2048], [CLIP_L]: [77, 768], [BIG_G]: [77, 1280] };
    assert.equal(plan(base).plan?.config, 'sdxl');
    assert.equal(plan({ ...base, [CONV_IN]: [320, 9, 3, 3] }).plan?.config, 'sdxl-inpainting');
    const refiner = { [CONV_IN]: [384, 4, 3, 3], [CROSS_K]: [768, 1280], [REFINER_BIG_G]: [77, 1280] };
    assert.equal(plan(refiner).plan?.config, 'sdxl-refiner');
    const refusals: Array<[Record<string, number[]>, string[], RegExp]> = [
      [{ ...base, [CROSS_K]: [640, 1024] }, [], /cross-attention is 1024 wide, SDXL's is 2048 .* pass --config DIR/],
      [{ ...refiner, [CROSS_K]: [768, 2048] }, [], /an SDXL refiner's U-Net has 4 input channels and 1280-wide cross-attention/],
      [base, ['--prediction-type', 'v_prediction'], /--prediction-type is for SD 2\.x checkpoints; SDXL predicts epsilon/],
      [{ [CONV_IN]: [320, 4, 3, 3], [CROSS_K]: [640, 2048] }, [], /no CLIP text encoder .*conditioner\.embedders/],
    ];
    for (const [tensors, extra, message] of refusals) {
      const r = plan(tensors, extra);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  } finally {
    box.cleanup();
  }
});

test("a tiny single-file SDXL checkpoint converts to a folder the engine runs to diffusers' pictures", { skip: noVenv, timeout: CONVERSION_TIMEOUT_MS }, async (t) => {
  const box = sandbox('model-convert-sdxl-');
  try {
    const made = runVenvPython([MAKE_CHECKPOINT, box.dir, 'tiny-sdxl']);
    assert.equal(made.status, 0, made.stderr);
    const checkpoint = join(box.dir, 'tiny-sdxl.safetensors');

    // The tiny architecture is no SDXL preset: without --config the tool refuses (offline: no hub lookup).
    const refused = runVenvPython([CONVERT_SCRIPT, checkpoint, join(box.dir, 'nope')]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /error: tiny-sdxl\.safetensors: the U-Net's cross-attention is 80 wide, SDXL's is 2048 .* pass --config DIR/);

    const cmd = convertCommand({ source: checkpoint, config: join(box.dir, 'config') });
    const converted = runVenvPython(cmd.argv.slice(1));
    assert.equal(converted.status, 0, converted.stderr);
    const report = JSON.parse(converted.stdout.trim().split('\n').at(-1)!) as { sdxl: boolean; max_relative_diff: Record<string, number>; files: string[] };
    assert.equal(report.sdxl, true);
    assert.deepEqual(Object.keys(report.max_relative_diff).sort(), ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder']);
    for (const [part, diff] of Object.entries(report.max_relative_diff)) assert.ok(diff < 1e-4, `${part}: ONNX vs torch ${diff}`);
    for (const file of ['tokenizer_2/vocab.json', 'text_encoder_2/model.onnx', 'unet/model.onnx_data']) assert.ok(report.files.includes(file), file);
    assert.deepEqual(readdirSync(box.dir).filter((n) => n.includes('converting')), [], 'no staging folder left');
    const index = JSON.parse(readFileSync(join(cmd.out, 'model_index.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(index['_class_name'], 'StableDiffusionXLPipeline');
    assert.equal(index['force_zeros_for_empty_prompt'], true);

    const lib = await openLibrary(box);
    const engine = new Engine({ providers: ['cpu'], threads: 1 });
    try {
      const model = await lib.importFolder({ path: cmd.out, copy: false, name: 'tiny sdxl single file' });
      assert.deepEqual([model.family, model.kind, model.exporter, model.precision], ['sdxl', 'txt2img', 'optimum', 'fp32']);
      const loaded = await engine.loadModel(model.dir);
      const cases = readCases<SdxlCase>('sdxl-cases.json').filter((c) => c.model === 'models/tiny-sdxl');
      assert.deepEqual(cases.map((c) => c.mode).sort(), ['img2img', 'txt2img', 'txt2img']);
      for (const c of cases) {
        const request = {
          mode: c.mode,
          ...caseRequest(c),
          ...(c.init_image ? { initImage: readFileSync(join(PARITY, c.init_image)) } : {}),
          ...(c.strength !== undefined ? { strength: c.strength } : {}),
        };
        const rng = c.posterior_noise ? new ReplayRng([readParityNpy(c.posterior_noise).slice(0, request.latents.length)]) : undefined;
        const image = await runJob(await prepareJob(loaded, request, {}, rng));
        t.diagnostic(c.name);
        await assertMatchesReference(t, image, c, MAX_LEVELS);
      }
    } finally {
      await engine.unloadAll();
      await lib.close();
    }
  } finally {
    box.cleanup();
  }
});
