/**
 * The engine's merge (onnxruntime Gemm, gemm-merge.ts) against the plain JavaScript reference
 * (merge.ts mergedValues) on tiny-sd1-named's real weights, for every layout (folded transposed MatMul,
 * Gemm, 1×1 and 3×3 conv), fp32 and fp16, two LoRAs stacked on one weight; and the patched model bytes:
 * inline raw_data patched in place (no re-encode), external data patched in a copy, originals untouched.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLoraFile } from '../../../../electron/engine/lora/lora-file.js';
import { gemmMerge } from '../../../../electron/engine/lora/gemm-merge.js';
import { mergedValues, planMerge } from '../../../../electron/engine/lora/merge.js';
import { OnnxWeights, PATCH_LOCATION } from '../../../../electron/engine/lora/onnx-weights.js';
import { schema } from '../../../../electron/engine/model/onnx-graph.js';
import { float16ToFloat32, float32ToFloat16Bits, toFloat16Array } from '../../../../electron/engine/tensor/fp16.js';
import { FIXTURES, MODELS } from '../../../support/engine-fixtures.js';

const DIR = join(MODELS, 'tiny-sd1-named');
const LORAS = join(FIXTURES, 'loras');

describe('LoRA merge with onnxruntime', () => {
  test('equals the JavaScript reference for every layout, fp32 and fp16, two LoRAs on one weight', async () => {
    const weights = OnnxWeights.read(join(DIR, 'unet', 'model.onnx'), 'unet/model.onnx');
    const kohya = await readLoraFile(join(LORAS, 'tiny-kohya.safetensors'));
    const peft = await readLoraFile(join(LORAS, 'tiny-peft.safetensors'));
    const locon = await readLoraFile(join(LORAS, 'tiny-locon.safetensors'));
    const { plan } = planMerge(weights, 'unet', [
      { file: kohya, te: 1, unet: 0.7 },
      { file: peft, te: 1, unet: 1.3 },
      { file: locon, te: 1, unet: -0.4 },
    ]);
    const layouts = new Set<string>();
    let stacked = 0;
    let fp16Off = 0;
    for (const [name, entry] of plan) {
      const kernel = entry.target.dims.slice(2).join('×');
      layouts.add(`${entry.target.layout}${kernel ? ` ${kernel}` : ''}`);
      if (entry.parts.length > 1) stacked++;
      const expected = mergedValues(weights, name, entry);
      const got = await gemmMerge(weights.stored(name), entry, 1);
      assert.ok(got instanceof Float32Array);
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
      assert.ok(maxDiff < 1e-5, `${name} (${entry.target.layout}): ${maxDiff}`);

      // The same weight stored as fp16: Cast, Gemm, Cast back = the reference rounded once to fp16.
      const w16 = toFloat16Array(weights.values(name));
      const ref16 = mergedValues({ values: () => float16ToFloat32(w16) } as unknown as OnnxWeights, name, entry);
      const got16 = await gemmMerge(w16, entry, 1);
      assert.ok(got16 instanceof Uint16Array);
      for (let i = 0; i < ref16.length; i++) {
        // Summation order may differ by a float32 ulp, which can tip a tie: at most one fp16 step apart.
        const off = Math.abs(got16[i]! - float32ToFloat16Bits(ref16[i]!));
        if (off > 0) fp16Off++;
        assert.ok(off <= 1, `${name}[${i}] fp16: ${got16[i]} vs ${float32ToFloat16Bits(ref16[i]!)}`);
      }
    }
    assert.deepEqual([...layouts].sort(), ['conv 1×1', 'conv 3×3', 'linear', 'linear-transposed']);
    assert.ok(stacked > 0, 'no weight had both LoRAs');
    assert.ok(fp16Off < 100, `${fp16Off} fp16 values one step off`);
  });

  test('the patched model: inline raw_data patched where it lies, external weights in a patch of their own, originals unchanged and not copied', async () => {
    for (const [component, lora] of [
      ['text_encoder', 'tiny-kohya'],
      ['unet', 'tiny-kohya'],
    ] as const) {
      const file = join(DIR, component, 'model.onnx');
      const weights = OnnxWeights.read(file, `${component}/model.onnx`);
      const { plan } = planMerge(weights, component, [{ file: await readLoraFile(join(LORAS, `${lora}.safetensors`)), te: 1, unet: 1 }]);
      assert.ok(plan.size > 0);
      const originals = new Map([...plan.keys()].map((n) => [n, weights.values(n)]));
      const { bytes, externalData } = await weights.build(plan.keys(), (name) => gemmMerge(weights.stored(name), plan.get(name)!, 1));
      // tiny-sd1-named's text encoder holds its weights inline: patched in a copy, not encoded again.
      if (component === 'text_encoder') assert.equal(bytes.length, readFileSync(file).length);
      if (component === 'unet') {
        // tiny-sd1-named's U-Net keeps its weights in weights.pb: the file goes along as read (the same
        // bytes, not a patched copy), the changed weights alone in the patch, each 4096-aligned.
        const onDisk = readFileSync(join(DIR, 'unet', 'weights.pb'));
        const kept = externalData.find((e) => e.path === 'weights.pb')!;
        assert.ok(Buffer.from(kept.data.buffer, kept.data.byteOffset, kept.data.byteLength).equals(onDisk));
        const patch = externalData.find((e) => e.path === PATCH_LOCATION)!;
        const patchedBytes = [...plan.keys()].reduce((n, name) => n + weights.stored(name).byteLength, 0);
        assert.ok(patch.data.length >= patchedBytes && patch.data.length < patchedBytes + plan.size * 4096, `patch ${patch.data.length} bytes for ${patchedBytes}`);
        assert.ok(patch.data.length < onDisk.length, 'only the changed weights are new bytes');
      }
      // Read the patched model back through the same reader (its external files from memory).
      const model = schema('ModelProto').decode(bytes) as unknown as { graph: { initializer: { name: string; rawData?: Uint8Array; dataLocation?: number; externalData?: { key: string; value: string }[] }[] } };
      for (const [name, entry] of plan) {
        const t = model.graph.initializer.find((x) => x.name === name)!;
        const expected = mergedValues(weights, name, entry);
        let raw: Uint8Array;
        if (t.dataLocation === 1) {
          const kv = new Map(t.externalData!.map((e) => [e.key, e.value]));
          assert.equal(kv.get('location'), PATCH_LOCATION);
          assert.equal(Number(kv.get('offset')) % 4096, 0);
          const data = externalData.find((e) => e.path === kv.get('location'))!.data;
          const at = Number(kv.get('offset') ?? 0);
          raw = Uint8Array.prototype.slice.call(data, at, at + Number(kv.get('length')));
        } else {
          raw = Uint8Array.prototype.slice.call(t.rawData!);
        }
        const got = new Float32Array(raw.buffer, raw.byteOffset, expected.length);
        for (let i = 0; i < expected.length; i += 7) assert.ok(Math.abs(got[i]! - expected[i]!) < 1e-5, `${component} ${name}[${i}]`);
        assert.deepEqual(weights.values(name), originals.get(name), `${component} ${name}: the kept original changed`);
      }
    }
  });
});
