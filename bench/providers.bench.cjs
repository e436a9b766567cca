/**
 * Execution-provider probe: prints one JSON object.
 *   npm run bench:providers -- [--providers webgpu,cuda,cpu] [--runs N] [MODEL.onnx …]
 * For each model (default: the bundled emoji-ldm VAE decoder and U-Net) and each provider it opens an
 * onnxruntime-node session, runs it on fixed pseudo-random inputs and reports session create ms, first and
 * median run ms, and the largest absolute difference of the first output against the CPU provider, or the
 * provider's error. Plain CommonJS with onnxruntime-node as its only dependency, so it also runs on a
 * GPU machine that has Node and that one package but not the rest of the checkout's dependencies
 * (`NODE_PATH=<dir holding onnxruntime-node and onnxruntime-common> node bench/providers.bench.cjs`).
 * Inputs are built from the models' declared shapes, with the free dimensions set as below; a model with
 * an input it doesn't know (by name) is reported as skipped.
 */
'use strict';
const { parseArgs } = require('node:util');
const path = require('node:path');
const ort = require('onnxruntime-node');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { providers: { type: 'string', default: 'webgpu,cuda,cpu' }, runs: { type: 'string', default: '10' } },
});
const root = path.resolve(__dirname, '..');
const models = positionals.length > 0 ? positionals : [
  path.join(root, 'native-models/emoji-ldm/vae_decoder/model.onnx'),
  path.join(root, 'native-models/emoji-ldm/unet/model.onnx'),
];
const providers = values.providers.split(',').filter(Boolean);
const runs = Math.max(1, Number(values.runs) || 10);
ort.env.logLevel = 'fatal';

function noise(n, seed) {
  const a = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    a[i] = x / 4294967296 - 0.5;
  }
  return a;
}

/** Feeds for the SD ONNX inputs this probe knows, at a 32×32 latent, batch 2 for the U-Net (CFG). */
function feedsFor(inputNames) {
  const known = {
    latent_sample: () => new ort.Tensor('float32', noise(4 * 32 * 32, 1), [1, 4, 32, 32]),
    sample: () => new ort.Tensor('float32', noise(2 * 4 * 32 * 32, 2), [2, 4, 32, 32]),
    timestep: () => new ort.Tensor('float32', new Float32Array([500]), [1]),
    encoder_hidden_states: () => new ort.Tensor('float32', noise(2 * 77 * 192, 3), [2, 77, 192]),
  };
  const feeds = {};
  for (const name of inputNames) {
    if (!known[name]) return null;
    feeds[name] = known[name]();
  }
  return feeds;
}

async function measure(provider, file) {
  const started = Date.now();
  let session;
  try {
    session = await ort.InferenceSession.create(file, { executionProviders: [provider] });
  } catch (err) {
    return { provider, error: String((err && err.message) || err).split('\n')[0].slice(0, 400) };
  }
  const createMs = Date.now() - started;
  const feeds = feedsFor(session.inputNames);
  if (!feeds) return { provider, skipped: `unknown inputs ${session.inputNames.join(', ')}` };
  const times = [];
  let output;
  try {
    for (let i = 0; i < runs; i++) {
      const t = process.hrtime.bigint();
      const result = await session.run(feeds);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      output = result[session.outputNames[0]].data;
    }
  } catch (err) {
    return { provider, create_ms: createMs, error: `run: ${String((err && err.message) || err).split('\n')[0].slice(0, 400)}` };
  } finally {
    await session.release();
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { provider, create_ms: createMs, first_ms: +times[0].toFixed(2), median_ms: +sorted[Math.floor(runs / 2)].toFixed(2), output };
}

async function main() {
  const results = [];
  for (const file of models) {
    const cpu = await measure('cpu', file);
    for (const provider of providers) {
      const r = provider === 'cpu' ? { ...cpu } : await measure(provider, file);
      if (r.output && cpu.output && provider !== 'cpu') {
        let diff = 0;
        for (let i = 0; i < cpu.output.length; i++) diff = Math.max(diff, Math.abs(cpu.output[i] - r.output[i]));
        r.max_abs_diff_vs_cpu = diff;
      }
      delete r.output;
      results.push({ model: path.relative(root, file), ...r });
    }
  }
  const ortVersion = require('onnxruntime-node/package.json').version;
  process.stdout.write(`${JSON.stringify({ onnxruntime_node: ortVersion, node: process.version, runs, results }, null, 1)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
