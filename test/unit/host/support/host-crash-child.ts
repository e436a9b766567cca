/**
 * Run as a separate process by the queue tests: opens a host on the given data folder, starts a long
 * job, and prints `RUNNING <jobId> <enginePid>` once it is under way, so the test can SIGKILL this
 * process mid-job (a crash of the whole app).
 */
import { Host } from '../../../../electron/host/host.js';
import { FIXTURE_SIZE, TEST_ENGINE_SETTINGS, TINY_SD1 } from './host-fixtures.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: host-crash-child.ts DATA_DIR');
const host = await Host.open({ dataDir, engineSettings: TEST_ENGINE_SETTINGS });
const model = await host.invoke('models.import', { path: TINY_SD1 });
if (!model.ok) throw new Error(JSON.stringify(model.error));
let printed = false;
host.subscribe((e) => {
  if (e.event === 'job.progress' && !printed && e.payload.total === 1000) {
    printed = true;
    process.stdout.write(`RUNNING ${e.payload.jobId} ${host.engine.pid}\n`);
  }
});
const job = await host.invoke('generate', { mode: 'txt2img', prompt: 'a long job', steps: 1000, sampler: 'euler', width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 1 });
if (!job.ok) throw new Error(JSON.stringify(job.error));
// Also leave one job queued behind it: it must survive the crash and run at the next start.
const queued = await host.invoke('generate', { mode: 'txt2img', prompt: 'queued behind', steps: 2, width: FIXTURE_SIZE, height: FIXTURE_SIZE, seed: 2 });
if (!queued.ok) throw new Error(JSON.stringify(queued.error));
process.stdout.write(`QUEUED ${(queued.result as { jobId: string }).jobId}\n`);
