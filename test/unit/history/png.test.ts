import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodePng, readPngMetadata, withTextChunks, isPng } from '../../../electron/history/png.js';
import { HistoryError } from '../../../electron/history/errors.js';
import { formatA1111Parameters, parseA1111Parameters } from '../../../electron/shared/a1111.js';
import type { GenerationParams } from '../../../electron/shared/generation.js';
import { pngTextChunks, walkPngChunks } from '../../support/history-png-chunks.js';

function gradient(width: number, height: number): { rgb: Uint8Array; width: number; height: number } {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 255) / (width - 1);
      rgb[i + 1] = (y * 255) / (height - 1);
      rgb[i + 2] = (x * y) % 256;
    }
  }
  return { rgb, width, height };
}

const params: GenerationParams = {
  mode: 'img2img',
  prompt: 'a watercolor fox, autumn forest: morning light',
  negativePrompt: 'blurry, text',
  seed: 1234567890,
  steps: 25,
  cfg: 7.5,
  sampler: 'dpmpp_2m_karras',
  width: 40,
  height: 24,
  strength: 0.6,
  maskBlur: 4,
};
const request = { params, model: { id: 'sd15', hash: 'ab'.repeat(32) }, note: 'ünïcödé ✓' };

test('encodePng writes pixels sharp decodes back exactly', async () => {
  const image = gradient(40, 24);
  const png = await encodePng(image);
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 40);
  assert.equal(info.height, 24);
  assert.equal(info.channels, 3);
  assert.deepEqual(new Uint8Array(data), image.rgb);
});

test('encodePng is deterministic: same input, same bytes', async () => {
  const image = gradient(40, 24);
  const parameters = formatA1111Parameters(params, { name: 'sd15', hash: request.model.hash });
  const a = await encodePng(image, { parameters, request });
  // same request with keys in another order
  const b = await encodePng(image, { parameters, request: { note: request.note, model: request.model, params } });
  assert.ok(a.equals(b));
});

test('metadata round-trips and an independent chunk reader sees valid chunks before IDAT', async () => {
  const parameters = formatA1111Parameters(params, { name: 'sd15', hash: request.model.hash });
  const png = await encodePng(gradient(40, 24), { parameters, request });

  const chunks = walkPngChunks(png);
  assert.ok(chunks.every((c) => c.crcOk), 'every CRC is valid');
  const types = chunks.map((c) => c.type);
  assert.equal(types[0], 'IHDR');
  assert.equal(types.at(-1), 'IEND');
  const firstIdat = types.indexOf('IDAT');
  const text = pngTextChunks(png);
  assert.deepEqual(text.map((t) => [t.type, t.keyword]), [['tEXt', 'parameters'], ['iTXt', 'latent-studio']]);
  assert.ok(types.lastIndexOf('tEXt') < firstIdat && types.lastIndexOf('iTXt') < firstIdat, 'text chunks precede image data');
  assert.equal(text[0]!.text, parameters);
  assert.deepEqual(JSON.parse(text[1]!.text), request);

  const read = readPngMetadata(png);
  assert.equal(read.parameters, parameters);
  assert.deepEqual(read.request, request);
  assert.equal(read.width, 40);
  assert.equal(read.height, 24);
  // img2img: A1111 writes no Mask blur, so everything else comes back
  const { maskBlur: _notWritten, ...written } = params;
  assert.deepEqual({ ...parseA1111Parameters(read.parameters!).params }, written);
});

test('a non-Latin-1 parameters text goes into an iTXt chunk as UTF-8', async () => {
  const parameters = formatA1111Parameters({ ...params, prompt: '一只猫, café ✓' });
  const png = await encodePng(gradient(8, 8), { parameters });
  const text = pngTextChunks(png);
  assert.deepEqual(text, [{ type: 'iTXt', keyword: 'parameters', text: parameters }]);
  assert.equal(readPngMetadata(png).parameters, parameters);
});

test('Pillow (what A1111 uses) reads the chunks back', { skip: !existsSync('native-models/.venv/bin/python') && 'no Python venv' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'history-png-'));
  try {
    const parameters = formatA1111Parameters({ ...params, prompt: 'ein Fuchs, 狐狸' }, { name: 'sd15' });
    const file = join(dir, 'out.png');
    writeFileSync(file, await encodePng(gradient(16, 16), { parameters, request }));
    const py = spawnSync('native-models/.venv/bin/python', ['-c',
      'import json,sys\nfrom PIL import Image\nim=Image.open(sys.argv[1]); im.load()\nprint(json.dumps(im.text))', file], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const seen = JSON.parse(py.stdout) as Record<string, string>;
    assert.equal(seen['parameters'], parameters);
    assert.deepEqual(JSON.parse(seen['latent-studio']!), request);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('withTextChunks replaces an existing chunk of the same keyword', async () => {
  const first = await encodePng(gradient(8, 8), { parameters: 'old\nSteps: 1, Sampler: Euler, CFG scale: 1' });
  const second = withTextChunks(first, { parameters: 'new' });
  assert.deepEqual(pngTextChunks(second).map((t) => t.text), ['new']);
});

function expectHistoryError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof HistoryError && err.code === code);
}

test('readPngMetadata rejects a non-PNG and damaged PNGs with clear codes', async () => {
  const png = await encodePng(gradient(16, 16), { parameters: 'p' });
  assert.equal(isPng(png), true);
  expectHistoryError(() => readPngMetadata(Buffer.from('GIF89a not a png at all')), 'E_NOT_PNG');
  expectHistoryError(() => readPngMetadata(Buffer.alloc(0)), 'E_NOT_PNG');
  expectHistoryError(() => readPngMetadata(png.subarray(0, png.length - 20)), 'E_CORRUPT_IMAGE');
  const flipped = Buffer.from(png);
  flipped[40] = flipped[40]! ^ 0xff; // a byte inside a chunk: its CRC no longer matches
  expectHistoryError(() => readPngMetadata(flipped), 'E_CORRUPT_IMAGE');
  const hugeLength = Buffer.from(png);
  hugeLength.writeUInt32BE(0xfffffff0, 8 + 25); // the chunk after IHDR claims ~4 GiB
  expectHistoryError(() => readPngMetadata(hugeLength), 'E_CORRUPT_IMAGE');
});

test('encodePng rejects a pixel buffer of the wrong length (a caller bug)', async () => {
  await assert.rejects(encodePng({ rgb: new Uint8Array(10), width: 4, height: 4 }), RangeError);
});
