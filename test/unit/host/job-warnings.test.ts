/**
 * What the engine says of a run (its result's warnings: a prompt cut to the U-Net's length, an fp16 VAE
 * decoded in fp32) is kept on the job beside the host's own (a resized mask), stored with it, and
 * returned by queue.list after a restart. The model's fp16 VAE decoder sets force_upcast, so every
 * picture it makes says it was decoded in fp32.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from '../../../electron/host/host.js';
import { FIXTURE_MODELS, FIXTURE_SIZE, jobFinished, ok, tempDir, TEST_ENGINE_SETTINGS } from './support/host-fixtures.js';

const UPCAST = /^vae_decoder: runs in fp32 \(upcast from its fp16 weights\) because its config\.json sets force_upcast/;
const data = tempDir('job-warnings');
const dataDir = join(data.dir, 'data');
// tiny-sd1 with the fp16 VAE decoder of tiny-sdxl-fp16-vae, whose config sets force_upcast (SDXL's VAE
// overflows in fp16).
const FP16_VAE = join(data.dir, 'sd1-fp16-vae');
cpSync(join(FIXTURE_MODELS, 'tiny-sd1'), FP16_VAE, { recursive: true });
rmSync(join(FP16_VAE, 'vae_decoder'), { recursive: true });
cpSync(join(FIXTURE_MODELS, 'tiny-sdxl-fp16-vae', 'vae_decoder'), join(FP16_VAE, 'vae_decoder'), { recursive: true });
const hosts: Host[] = [];
after(async () => {
  for (const h of hosts) await h.close();
  data.remove();
});

test("the engine's result warnings are kept on the job and returned by queue.list, also after a restart", async () => {
  const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  hosts.push(host);
  ok('models.import', await host.invoke('models.import', { path: FP16_VAE }));
  const answer = ok('generate', await host.invoke('generate', { mode: 'txt2img', prompt: 'a fox', seed: 1, steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE }));
  assert.deepEqual(answer.warnings, [], 'nothing was changed at enqueue');
  const job = await jobFinished(host, answer.jobId);
  assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
  assert.equal(job.warnings.length, 1, JSON.stringify(job.warnings));
  assert.match(job.warnings[0]!, UPCAST);
  await host.close();

  const reopened = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
  hosts.push(reopened);
  const listed = ok('queue.list', await reopened.invoke('queue.list', {})).recent.find((j) => j.id === answer.jobId);
  assert.ok(listed, 'the job is listed');
  assert.deepEqual(listed.warnings, job.warnings);
});
