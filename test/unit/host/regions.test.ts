/**
 * Regional prompts through the host: a generate request with two regions runs, history stores each
 * region's prompt, weight, area and mask (the masks byte for byte, for Reuse), and the infotext says them;
 * bad regions are refused at enqueue with the field and the reason. Real host, real engine process,
 * test/fixtures/models/tiny-sd1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Host } from '../../../electron/host/host.js';
import { readPngMetadata } from '../../../electron/history/png.js';
import { MAX_REGIONS } from '../../../electron/shared/generation-limits.js';
import { FIXTURE_SIZE, TEST_ENGINE_SETTINGS, TINY_SD1, jobFinished, ok, tempDir } from './support/host-fixtures.js';

const data = tempDir('regions');
let host: Host;
let modelId: string;

async function maskPng(paint: (x: number, y: number) => number, size = FIXTURE_SIZE): Promise<string> {
  const px = Buffer.alloc(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) px[y * size + x] = paint(x, y);
  return (await sharp(px, { raw: { width: size, height: size, channels: 1 } }).png().toBuffer()).toString('base64');
}

const base = { mode: 'txt2img', prompt: 'a red apple', negativePrompt: 'blurry', seed: 9, steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE } as const;

before(async () => {
  host = await Host.open({ dataDir: join(data.dir, 'data'), engineSettings: TEST_ENGINE_SETTINGS, bundledModelDirs: [] });
  modelId = ok('models.import', await host.invoke('models.import', { path: TINY_SD1 })).id;
});

after(async () => {
  await host?.close();
  data.remove();
});

test('generate with two regions: history keeps prompts, weights, areas and the masks as sent; the infotext says them', async () => {
  const left = await maskPng((x) => (x < 32 ? 255 : 0));
  const disc = await maskPng((x, y) => ((x - 44) ** 2 + (y - 40) ** 2 < 144 ? 255 : 0));
  const regions = [
    { prompt: 'a green leaf', mask: left },
    { prompt: 'a blue plate', mask: disc, weight: 0.7 },
  ];
  const { jobId } = ok('generate', await host.invoke('generate', { ...base, modelId, regions }));
  const job = await jobFinished(host, jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  const item = ok('history.get', await host.invoke('history.get', { id: job.historyId! }));
  assert.deepEqual(item.params.regions?.map((r) => [r.prompt, r.weight, r.area]), [['a green leaf', 1, 0.5], ['a blue plate', 0.7, item.params.regions![1]!.area]]);
  assert.ok(item.params.regions![1]!.area > 0.1 && item.params.regions![1]!.area < 0.12);
  for (const [i, r] of item.regions!.entries()) {
    const stored = ok('history.image', await host.invoke('history.image', { hash: r.mask.hash }));
    assert.equal(stored.data, regions[i]!.mask, `region ${i + 1}'s mask comes back byte for byte`);
  }
  const meta = readPngMetadata(readFileSync(host.history.imagePath(item.output!.hash)));
  assert.match(meta.parameters!, /Regions: "a green leaf \(area 50%, weight 1\); a blue plate \(area 1\d\.\d%, weight 0\.7\)"/);

  // The same request without regions draws another picture.
  const plain = await jobFinished(host, ok('generate', await host.invoke('generate', { ...base, modelId })).jobId);
  const other = ok('history.get', await host.invoke('history.get', { id: plain.historyId! }));
  assert.notEqual(other.output!.hash, item.output!.hash);
  assert.equal(other.regions, undefined);
});

test('bad regions are refused at enqueue with the field and the reason; an empty mask fails the job in words', async () => {
  const ok64 = await maskPng((x) => (x < 32 ? 255 : 0));
  const refused = async (regions: unknown, pattern: RegExp) => {
    const r = await host.invoke('generate', { ...base, modelId, regions } as never);
    assert.equal(r.ok, false, `accepted ${JSON.stringify(regions).slice(0, 80)}`);
    if (!r.ok) assert.match(r.error.message, pattern);
  };
  await refused([{ prompt: 'a', mask: await maskPng(() => 255, 32) }], /regions\.0\.mask: region 1's mask is 32×32; it must be the picture's size 64×64/);
  await refused([{ prompt: 'a', mask: Buffer.from('not a png').toString('base64') }], /regions\.0\.mask/);
  await refused([{ prompt: ' ', mask: ok64 }], /regions\.0\.prompt: a region needs a prompt/);
  await refused([{ prompt: 'a <lora:ink:0.5>', mask: ok64 }], /<lora:ink:…> can only go in the main prompt/);
  await refused([{ prompt: 'a', mask: ok64, weight: 0 }], /regions\.0\.weight/);
  await refused(Array.from({ length: MAX_REGIONS + 1 }, () => ({ prompt: 'a', mask: ok64 })), new RegExp(`at most ${MAX_REGIONS} regions`));

  const empty = await jobFinished(host, ok('generate', await host.invoke('generate', { ...base, modelId, regions: [{ prompt: 'a', mask: await maskPng(() => 0) }] })).jobId);
  assert.equal(empty.status, 'failed');
  assert.match(JSON.stringify(empty.error), /region 1's mask is empty: paint the area its prompt is for/);
});
