/**
 * Run-time LoRA end to end on test/fixtures/models/tiny-sd1-named with the tiny LoRAs in test/fixtures/loras:
 * parity with the torch pipeline with the LoRAs fused by diffusers (native-models/tools/fixtures_lib/lora.py),
 * weight 0 = the base model byte for byte, the folded transposed MatMul weights patched as Wᵀ + Δᵀ, switching
 * sets, unmatched modules reported, and bad files refused with the model still working.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../../../electron/engine/engine.js';
import { readLoraFile } from '../../../../electron/engine/lora/lora-file.js';
import { mergedValues, planMerge } from '../../../../electron/engine/lora/merge.js';
import { OnnxWeights } from '../../../../electron/engine/lora/onnx-weights.js';
import type { GenerateRequest } from '../../../../electron/engine/pipelines/types.js';
import { encodePng } from '../../../../electron/history/png.js';
import { FIXTURES, MODELS, PARITY, type ReferenceCase, caseRequest, maxAbsDiff, readCases, readParityNpy, readRgb } from '../../../support/engine-fixtures.js';
import { safetensorsBytes } from '../../../support/safetensors.js';

interface LoraCase extends ReferenceCase {
  loras: { name: string; file: string; weight: number }[];
}

const DIR = join(MODELS, 'tiny-sd1-named');
const LORAS = join(FIXTURES, 'loras');
const cases = readCases<LoraCase>('lora-cases.json');
const quick = { mode: 'txt2img', prompt: 'a red apple', negativePrompt: '', seed: 5, steps: 3, width: 64, height: 64 } as const;

describe('LoRA at run time', () => {
  const engine = new Engine({ providers: ['cpu'], threads: 1 });
  const tmp = mkdtempSync(join(tmpdir(), 'lora-engine-'));
  let basePng: Buffer;
  const png = async (req: GenerateRequest): Promise<Buffer> => encodePng((await engine.generate(DIR, req)).image);
  before(async () => {
    basePng = await png(quick);
  });
  after(async () => {
    await engine.unloadAll();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const c of cases) {
    test(`parity with diffusers fuse_lora: ${c.name}`, async (t) => {
      const tags = c.loras.map((l) => `<lora:${l.name}:${l.weight}>`).join(' ');
      const result = await engine.generate(join(FIXTURES, c.model), {
        mode: 'txt2img',
        ...caseRequest(c),
        prompt: `${c.prompt} ${tags}`,
        loraDirs: [LORAS],
      });
      assert.deepEqual(result.loras.map((l) => [l.name, l.unmatched]), c.loras.map((l) => [l.name, 0]));
      assert.ok(result.loras.every((l) => l.matched > 0 && /^[0-9a-f]{12}$/.test(l.hash)));
      assert.equal(result.params.prompt, `${c.prompt} ${tags}`, 'the prompt keeps its tags');
      // The bar, 2/255 from the reference PNG; the float image within 1/255 (the merge sums in
      // another order than torch's fuse, so this is looser than the base pipelines' 0.6/255).
      const diff = maxAbsDiff(result.image, await readRgb(join(PARITY, c.reference)));
      const exact = readParityNpy(c.reference_float);
      let floatDiff = 0;
      for (let i = 0; i < exact.length; i++) floatDiff = Math.max(floatDiff, Math.abs(result.image.rgb[i]! / 255 - exact[i]!));
      t.diagnostic(`max diff ${diff}/255 vs reference PNG; ${(floatDiff * 255).toFixed(3)}/255 vs float reference`);
      assert.ok(diff <= 2, `${c.name}: max pixel difference ${diff}/255`);
      assert.ok(floatDiff * 255 <= 1, `${c.name}: ${(floatDiff * 255).toFixed(3)}/255 from the float reference`);
    });
  }

  test('weight 0 gives the base model byte for byte (no patched session)', async () => {
    assert.ok((await png({ ...quick, prompt: `${quick.prompt} <lora:tiny-kohya:0>`, loraDirs: [LORAS] })).equals(basePng));
    assert.ok((await png({ ...quick, prompt: `<lora:tiny-locon:0:0> ${quick.prompt}`, loraDirs: [LORAS] })).equals(basePng));
  });

  test('switching sets reuses the kept weights: A, B, A again gives A', async () => {
    const a = { ...quick, prompt: `${quick.prompt} <lora:tiny-kohya:0.7>`, loraDirs: [LORAS] };
    const b = { ...quick, prompt: `${quick.prompt} <lora:tiny-peft:1> <lora:tiny-locon:0.3>`, loraDirs: [LORAS] };
    const first = await png(a);
    const other = await png(b);
    assert.ok(!first.equals(other) && !first.equals(basePng));
    assert.ok((await png(a)).equals(first), 'A after B differs from A');
    assert.ok((await png(quick)).equals(basePng), 'no LoRA after LoRAs differs from the base');
  });

  test('the text-encoder and U-Net weights split: <lora:x:0:1> changes only the U-Net', async () => {
    const unetOnly = await engine.generate(DIR, { ...quick, prompt: `${quick.prompt} <lora:tiny-kohya:0:1>`, loraDirs: [LORAS] });
    const both = await png({ ...quick, prompt: `${quick.prompt} <lora:tiny-kohya:1>`, loraDirs: [LORAS] });
    const teOnly = await png({ ...quick, prompt: `${quick.prompt} <lora:tiny-kohya:1:0>`, loraDirs: [LORAS] });
    const unetPng = await encodePng(unetOnly.image);
    assert.ok(!unetPng.equals(basePng) && !unetPng.equals(both) && !teOnly.equals(both) && !teOnly.equals(basePng));
    assert.deepEqual([unetOnly.loras[0]!.te, unetOnly.loras[0]!.unet], [0, 1]);
  });

  test('a folded MatMul weight (onnx::MatMul_*, Wᵀ) gets Δᵀ; a Gemm weight and a conv weight get Δ', async () => {
    const weights = OnnxWeights.read(join(DIR, 'unet', 'model.onnx'), 'unet/model.onnx');
    const toQ = weights.target('down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q')!;
    assert.match(toQ.initializer, /^onnx::MatMul_\d+$/);
    assert.equal(toQ.layout, 'linear-transposed');
    assert.match(toQ.node, /^\/down_blocks\.0\/attentions\.0\/transformer_blocks\.0\/attn1\/to_q\/MatMul$/);
    const gemm = weights.target('down_blocks_0_resnets_0_time_emb_proj')!;
    assert.deepEqual([gemm.initializer, gemm.layout], ['down_blocks.0.resnets.0.time_emb_proj.weight', 'linear']);
    assert.equal(weights.target('down_blocks_0_resnets_0_conv1')!.layout, 'conv');

    const lora = await readLoraFile(join(LORAS, 'tiny-kohya.safetensors'));
    const module = lora.modules.find((m) => m.key === 'down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q')!;
    const only = { ...lora, modules: [module] };
    const before = weights.values(toQ.initializer);
    const { plan } = planMerge(weights, 'unet', [{ file: only, te: 1, unet: 0.5 }]);
    assert.deepEqual([...plan.keys()], [toQ.initializer]);
    const after = mergedValues(weights, toQ.initializer, plan.get(toQ.initializer)!);
    const [inputs, out] = toQ.dims as [number, number];
    const rank = module.upShape[1]!;
    for (const [i, o] of [[0, 0], [3, 5], [inputs - 1, out - 1]] as const) {
      let d = 0;
      for (let k = 0; k < rank; k++) d += module.up[o * rank + k]! * module.down[k * inputs + i]!;
      const expected = before[i * out + o]! + 0.5 * module.scale * d;
      assert.ok(Math.abs(after[i * out + o]! - expected) < 1e-6, `Wᵀ[${i}, ${o}]: ${after[i * out + o]} vs ${expected}`);
    }
    assert.deepEqual(weights.values(toQ.initializer), before, 'the kept original changed');
  });

  test('modules the graph lacks are counted and named', async () => {
    const lora = await readLoraFile(join(LORAS, 'tiny-kohya.safetensors'));
    const q = lora.modules.find((m) => m.key.endsWith('mid_block_attentions_0_transformer_blocks_0_attn1_to_q'))!;
    const file = join(tmp, 'partial.safetensors');
    const pair = (m: typeof q) => ({
      down: { dtype: 'F32', shape: m.downShape, values: m.down },
      up: { dtype: 'F32', shape: m.upShape, values: m.up },
    });
    const p = pair(q);
    writeFileSync(
      file,
      safetensorsBytes({
        'lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight': p.down,
        'lora_unet_mid_block_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight': p.up,
        'lora_unet_mid_block_attentions_0_transformer_blocks_7_attn1_to_q.lora_down.weight': p.down,
        'lora_unet_mid_block_attentions_0_transformer_blocks_7_attn1_to_q.lora_up.weight': p.up,
      }),
    );
    const result = await engine.generate(DIR, { ...quick, prompt: `${quick.prompt} <lora:partial:1>`, loraDirs: [tmp] });
    assert.deepEqual([result.loras[0]!.matched, result.loras[0]!.unmatched], [1, 1]);
    assert.deepEqual(result.loras[0]!.unmatchedExamples, ['lora_unet_mid_block_attentions_0_transformer_blocks_7_attn1_to_q']);
  });

  describe('bad files: a clear error, and the model keeps working', () => {
    const bad = (name: string, bytes: Uint8Array): void => writeFileSync(join(tmp, `${name}.safetensors`), bytes);
    const expectError = async (name: string, pattern: RegExp): Promise<void> => {
      await assert.rejects(engine.generate(DIR, { ...quick, prompt: `${quick.prompt} <lora:${name}:1>`, loraDirs: [tmp, LORAS] }), (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'E_LORA_FILE', String(err));
        assert.match((err as Error).message, pattern);
        return true;
      });
      assert.ok((await png(quick)).equals(basePng), `after ${name}, the base model changed`);
      // A good LoRA still applies after a bad one.
      const good = await engine.generate(DIR, { ...quick, prompt: `${quick.prompt} <lora:tiny-peft:1>`, loraDirs: [LORAS] });
      assert.equal(good.loras[0]!.unmatched, 0);
    };

    test('truncated', async () => {
      const whole = readFileSync(join(LORAS, 'tiny-kohya.safetensors'));
      bad('cut', whole.subarray(0, whole.length - 100));
      await expectError('cut', /^cut\.safetensors: truncated: tensor ".+" ends at byte \d+ of the data, which has only \d+/);
    });

    test('wrong dtype', async () => {
      const text = readFileSync(join(LORAS, 'tiny-locon.safetensors')).toString('latin1');
      bad('ints', Buffer.from(text.replace('"BF16"', '"I16" '), 'latin1'));
      await expectError('ints', /has dtype I16; LoRA weights must be F32, F16 or BF16/);
    });

    test('shape mismatch (a LoRA for a wider model)', async () => {
      const t = (shape: number[]) => ({ dtype: 'F16', shape, values: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.01) });
      bad(
        'wider',
        safetensorsBytes({
          'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight': t([4, 48]),
          'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight': t([8, 4]),
        }),
      );
      await expectError('wider', /shape mismatch at lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k: the LoRA changes a \[48, 8\] \(transposed\) weight, but unet\/model.onnx has \[32, 8\]/);
    });

    test('another family (SDXL)', async () => {
      copyFileSync(join(LORAS, 'tiny-sdxl-kohya.safetensors'), join(tmp, 'xl.safetensors'));
      await expectError('xl', /^xl\.safetensors: is an SDXL LoRA \(its metadata says ss_base_model_version=sdxl_base_v1-0\); .* with one text encoder/);
    });
  });

  test('an LCM-LoRA in the prompt brings the LCM sampler and its defaults (4 steps, guidance 1)', async () => {
    copyFileSync(join(LORAS, 'tiny-kohya.safetensors'), join(tmp, 'lcm-lora-tiny.safetensors'));
    const { width, height, seed, mode } = quick;
    const result = await engine.generate(DIR, { mode, width, height, seed, prompt: 'a red apple <lora:lcm-lora-tiny:1>', loraDirs: [tmp] });
    assert.deepEqual([result.params.sampler, result.params.steps, result.params.cfg, result.timings.stepsRun], ['lcm', 4, 1, 4]);
    const guided = await engine.generate(DIR, { mode, width, height, seed, prompt: 'a red apple <lora:lcm-lora-tiny:1>', cfg: 2, loraDirs: [tmp] });
    assert.ok(!(await encodePng(guided.image)).equals(await encodePng(result.image)), 'guidance 2 runs CFG');
  });

  test('the LCM sampler can be chosen by hand on a plain SD folder (an LCM-LoRA under its shipped name)', async () => {
    copyFileSync(join(LORAS, 'lcm-lora-tiny.safetensors'), join(tmp, 'pytorch_lora_weights.safetensors'));
    const { width, height, seed, mode } = quick;
    const prompt = 'a red apple <lora:pytorch_lora_weights:1>';
    // Not known by name: the model's own defaults stay, …
    const plain = await engine.generate(DIR, { mode, width, height, seed, prompt, steps: 2, loraDirs: [tmp] });
    assert.notEqual(plain.params.sampler, 'lcm');
    // … and the LCM sampler is the user's choice, as in A1111 and ComfyUI; so is it without any LoRA.
    const lcm = await engine.generate(DIR, { mode, width, height, seed, prompt, sampler: 'lcm', steps: 4, cfg: 1.5, loraDirs: [tmp] });
    assert.deepEqual([lcm.params.sampler, lcm.params.steps, lcm.params.cfg, lcm.timings.stepsRun], ['lcm', 4, 1.5, 4]);
    assert.equal(lcm.loras[0]!.unmatched, 0);
    const bare = await engine.generate(DIR, { ...quick, sampler: 'lcm' });
    assert.equal(bare.params.sampler, 'lcm');
  });

  test('an unknown name lists the close ones', async () => {
    await assert.rejects(
      engine.generate(DIR, { ...quick, prompt: '<lora:tiny-kohya-v2:1> a red apple', loraDirs: [LORAS] }),
      (err: unknown) => (err as { code?: string }).code === 'E_INVALID_REQUEST' && /no LoRA named "tiny-kohya-v2" .*did you mean "tiny-kohya"/.test((err as Error).message),
    );
  });
});
