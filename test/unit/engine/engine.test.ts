/** Engine behaviour around the pipelines: providers, session cache, one job at a time, CFG batching. */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, prepareJob, runJob } from '../../../electron/engine/engine.js';
import { maxAbsDiff, modelDir } from '../../support/engine-fixtures.js';
import { assertProviderContract } from '../../support/provider-contract.js';

const base = { mode: 'txt2img', prompt: 'a red apple', seed: 3, steps: 4, width: 64, height: 64 } as const;

describe('Engine', () => {
  const engine = new Engine({ providers: ['cpu'] });
  after(() => engine.unloadAll());

  test('each session reports the provider it runs on; every provider tried before it has a recorded reason', async () => {
    // Whatever this machine has: a GPU provider that works ends the search there, one that doesn't is
    // a fallback with its reason, and the CPU always works.
    for (const order of [['webgpu', 'cuda', 'cpu'], ['coreml', 'dml', 'cpu']] as const) {
      const gpuFirst = new Engine({ providers: order });
      try {
        const { sessions } = await gpuFirst.info(modelDir('tiny-sd1'));
        assertProviderContract(sessions, order);
      } finally {
        await gpuFirst.unloadAll();
      }
    }
  });

  test('caches sessions per model, and unload frees them', async () => {
    const dir = modelDir('tiny-optimum');
    const a = await engine.loadModel(dir);
    assert.equal(await engine.loadModel(dir), a, 'the second load should reuse the sessions');
    assert.ok(engine.loadedModels().some((d) => d.endsWith('tiny-optimum')));
    assert.equal(await engine.unload(dir), true);
    assert.ok(!engine.loadedModels().some((d) => d.endsWith('tiny-optimum')));
    assert.notEqual(await engine.loadModel(dir), a, 'after unload, a fresh open');
  });

  test('runs one job at a time, in call order', async () => {
    const events: string[] = [];
    const track = (name: string) => ({ onProgress: (p: { step: number }) => events.push(`${name}${p.step}`) });
    await Promise.all([
      engine.generate(modelDir('tiny-sd1'), base, track('a')),
      engine.generate(modelDir('tiny-sd1'), base, track('b')),
    ]);
    const firstB = events.findIndex((e) => e.startsWith('b'));
    assert.ok(events.slice(0, firstB).every((e) => e.startsWith('a')), events.join(' '));
    assert.ok(events.slice(firstB).every((e) => e.startsWith('b')), events.join(' '));
  });

  test('a failed job does not block the next one', async () => {
    await assert.rejects(engine.generate(modelDir('tiny-sd1'), { ...base, width: 65 }), /multiples of 8/);
    const ok = await engine.generate(modelDir('tiny-sd1'), base);
    assert.equal(ok.image.width, 64);
  });

  test('classifier-free guidance gives the same image batched [uncond, cond] or as two calls', async () => {
    const model = await engine.loadModel(modelDir('tiny-sd1'));
    const request = { ...base, cfg: 6, negativePrompt: 'green' };
    const batched = await runJob(await prepareJob(model, request));
    const info = model.info;
    const saved = { unet: info.unet.batchDynamic, text: info.textEncoder.batchDynamic };
    try {
      // As if the batch axis were static (e.g. an Olive export pinned to batch 1).
      info.unet.batchDynamic = false;
      info.textEncoder.batchDynamic = false;
      const twoCalls = await runJob(await prepareJob(model, request));
      assert.ok(maxAbsDiff(batched, twoCalls) <= 1, `differs by ${maxAbsDiff(batched, twoCalls)}`);
    } finally {
      info.unet.batchDynamic = saved.unet;
      info.textEncoder.batchDynamic = saved.text;
    }
  });

  test('cfg ≤ 1 skips guidance: the negative prompt then has no effect', async () => {
    const a = await engine.generate(modelDir('tiny-sd1'), { ...base, cfg: 1, negativePrompt: '' });
    const b = await engine.generate(modelDir('tiny-sd1'), { ...base, cfg: 1, negativePrompt: 'something else entirely' });
    assert.deepEqual(a.image.rgb, b.image.rgb);
    const c = await engine.generate(modelDir('tiny-sd1'), { ...base, cfg: 7, negativePrompt: 'something else entirely' });
    assert.notDeepEqual(a.image.rgb, c.image.rgb);
  });

  test('progress carries i/n, elapsed, ETA and a latent-resolution preview', async () => {
    const seen: Array<{ step: number; total: number; etaMs: number; w?: number }> = [];
    await engine.generate(modelDir('tiny-optimum'), { ...base, steps: 5, sampler: 'euler' }, {
      onProgress: (p) => seen.push({ step: p.step, total: p.total, etaMs: p.etaMs, w: p.preview?.width }),
    });
    assert.deepEqual(seen.map((s) => s.step), [1, 2, 3, 4, 5]);
    assert.ok(seen.every((s) => s.total === 5 && s.w === 8));
    assert.equal(seen.at(-1)!.etaMs, 0);
  });

  test('rejects a request before any session runs when the size, steps or mode do not fit', async () => {
    const dir = modelDir('tiny-sd1');
    const bad: Array<[object, RegExp]> = [
      [{ width: 60 }, /multiples of 8/],
      [{ steps: 0 }, /steps must be an integer/],
      // SD's PNDM config (leading, steps_offset 1) overshoots ᾱ at 1000 steps; diffusers fails mid-run.
      [{ steps: 1000, sampler: 'pndm' }, /pndm cannot run 1000 steps: .*use at most 999 steps/],
      [{ cfg: Number.NaN }, /cfg must be a number/],
      [{ seed: -1 }, /seed must be an integer/],
      [{ mode: 'img2img' }, /needs an init image/],
      [{ mode: 'inpaint', initImage: new Uint8Array([1]) }, /needs a mask/],
      [{ latents: new Float32Array(10) }, /latents must be float32 \[1, 4, 8, 8\]/],
    ];
    for (const [patch, message] of bad) {
      await assert.rejects(engine.generate(dir, { ...base, ...patch }), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'E_INVALID_REQUEST');
        assert.match(err.message, message);
        return true;
      });
    }
  });
});
