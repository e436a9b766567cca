/** Shared helpers for host tests: temp data folders, fixture models, waiting for events. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventName, Events, InvokeResult, ChannelName, JobSummary, Responses } from '../../../../electron/shared/contract.js';
import type { Host } from '../../../../electron/host/host.js';

export const FIXTURE_MODELS = fileURLToPath(new URL('../../../fixtures/models/', import.meta.url));
export const TINY_SD1 = join(FIXTURE_MODELS, 'tiny-sd1');
export const TINY_SD1_INPAINT = join(FIXTURE_MODELS, 'tiny-sd1-inpaint');
/** The fixtures draw 64×64 images. */
export const FIXTURE_SIZE = 64;
/** Tests run the engine on the CPU with one thread: two slow cores are shared by every engineer. */
export const TEST_ENGINE_SETTINGS = { providers: ['cpu' as const], threads: 1 };

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `studio-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Unwraps an invoke result, failing the test with the error when it isn't ok. */
export function ok<C extends ChannelName>(_channel: C, result: InvokeResult<ChannelName>): Responses[C] {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.error)}`);
  return result.result as Responses[C];
}

/** Resolves with the first event of this kind that passes `match`, or rejects after `timeoutMs`. */
export function nextEvent<E extends EventName>(host: Host, event: E, match: (payload: Events[E]) => boolean = () => true, timeoutMs = 60_000): Promise<Events[E]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = host.subscribe((e) => {
      if (e.event === event && match(e.payload as Events[E])) {
        clearTimeout(timer);
        unsubscribe();
        resolve(e.payload as Events[E]);
      }
    });
  });
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);

/** Waits until the job has finished (succeeded, failed or cancelled) and returns its summary. */
export async function jobFinished(host: Host, jobId: string, timeoutMs = 120_000): Promise<JobSummary> {
  const finished = (j: JobSummary | undefined): j is JobSummary => j !== undefined && j.id === jobId && FINISHED.has(j.status);
  const now = host.queue.get(jobId);
  if (finished(now)) return now;
  const delta = await nextEvent(host, 'queue.changed', (d) => d.changed.some(finished), timeoutMs);
  return delta.changed.find(finished)!;
}
