/**
 * Type-level checks of the contract: tsc (which runs over test/) fails this file when a channel is
 * missing or extra in a handler table, or when a request or response has the wrong shape. Each
 * `@ts-expect-error` line must stay an error, or tsc reports the directive as unused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHANNELS_MATCH_SCHEMAS,
  EVENTS_MATCH,
  RESPONSES_MATCH_CHANNELS,
  type ChannelName,
  type Handlers,
  type Requests,
  type Responses,
  type StudioApi,
} from '../../../electron/shared/contract.js';
import type { createHandlers } from '../../../electron/host/handlers.js';

type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

// The host's real table covers exactly the contract's channels.
const hostTableIsExact: Exactly<keyof ReturnType<typeof createHandlers>, ChannelName> = true;
const hostTableIsHandlers: ReturnType<typeof createHandlers> extends Handlers ? true : false = true;

declare const complete: Handlers;
declare const api: StudioApi;

function typeCases(): void {
  const { tokenize: _dropped, ...allButOne } = complete;
  // @ts-expect-error a table without `tokenize` is not a handler table
  const _missing: Handlers = allButOne;

  const _extra = {
    ...complete,
    // @ts-expect-error a channel the contract doesn't have is refused
    'history.nuke': async () => ({ nuked: true }),
  } satisfies Handlers;

  const _wrongResponse = {
    ...complete,
    // @ts-expect-error a handler must answer its channel's response type
    'app.info': async () => ({ name: 'x' }),
  } satisfies Handlers;

  // @ts-expect-error steps is a number
  const _badRequest: Requests['generate'] = { mode: 'txt2img', prompt: 'x', steps: 'four' };
  // @ts-expect-error mode is one of the generation modes
  const _badMode: Requests['generate'] = { mode: 'video', prompt: 'x' };

  // @ts-expect-error no such channel
  void api.invoke('history.nuke', {});
  // @ts-expect-error the request must match the channel
  void api.invoke('history.get', { id: 'one' });
  // @ts-expect-error no such event
  api.on('job.exploded', () => undefined);
  api.on('job.progress', (p) => {
    const _step: number = p.step;
    // @ts-expect-error progress has no image
    void p.png;
  });
  void api.invoke('tokenize', { text: 'a fox' }).then((r) => {
    if (r.ok) {
      const _count: number = r.result.count;
      // @ts-expect-error tokenize answers counts, not ids
      void r.result.ids;
    }
  });
  const _response: Responses['generate'] = { jobId: 'x', seed: 1, position: 0, warnings: [] };

  // @ts-expect-error a download is a manifest of files or a list of URLs, not a single URL string
  void api.invoke('models.download', { name: 'm', urls: 'https://example.com/x' });
  // @ts-expect-error import takes a path, not a model id
  void api.invoke('models.import', { modelId: 'x' });
  void api.invoke('models.import', { path: '/models/x' }).then((r) => {
    if (r.ok) {
      const _kind: 'txt2img' | 'inpaint' | 'layout' = r.result.kind;
      // @ts-expect-error a library model says its origin, not "bundled"
      void r.result.bundled;
    }
  });
  api.on('models.downloadProgress', (p) => {
    const _received: number = p.receivedBytes;
    // @ts-expect-error the phase is one of the download phases
    const _phase: 'paused' = p.phase;
  });
}
void typeCases;

test('the contract type checks hold (the real proof is tsc over this file)', () => {
  assert.equal(CHANNELS_MATCH_SCHEMAS, true);
  assert.equal(RESPONSES_MATCH_CHANNELS, true);
  assert.equal(EVENTS_MATCH, true);
  assert.equal(hostTableIsExact, true);
  assert.equal(hostTableIsHandlers, true);
});
