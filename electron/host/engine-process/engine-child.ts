/**
 * The engine process: runs the diffusion engine apart from the host, so that a native crash or an
 * out-of-memory in inference takes down only this process. The host restarts it and fails the job.
 *
 * It runs under Node's `fork` (messages on `process.send` / `process.on('message')`) or as an
 * Electron utilityProcess (messages on `process.parentPort`); `parentChannel()` hides the difference.
 */
import { serializeError } from '../../shared/errors.js';
import { Engine } from '../../engine/engine.js';
import { prepareStoredImage } from '../../engine/tensor/stored-image.js';
import { startHeartbeat } from './heartbeat.js';
import { imageSourceBytes, withImageFiles } from './job-files.js';
import type { EngineMessage, HostMessage } from './protocol.js';

interface ParentChannel {
  send(message: EngineMessage): void;
  onMessage(listener: (message: HostMessage) => void): void;
}

/** Electron's utilityProcess exposes `process.parentPort` (a MessagePortMain); Node's fork, `process.send`. */
interface ElectronParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
}

function parentChannel(): ParentChannel {
  const port = (process as unknown as { parentPort?: ElectronParentPort }).parentPort;
  if (port) {
    return {
      send: (message) => port.postMessage(message),
      onMessage: (listener) => port.on('message', (event) => listener(event.data as HostMessage)),
    };
  }
  if (!process.send) throw new Error('engine-child must be started by the host (no IPC channel)');
  return {
    send: (message) => {
      if (process.connected) process.send?.(message);
    },
    onMessage: (listener) => process.on('message', (message) => listener(message as HostMessage)),
  };
}

// Beats on the host's heartbeat socket from a worker thread (heartbeat.ts), when the host gave one.
startHeartbeat();
const channel = parentChannel();
let engine: Engine | null = null;
const running = new Map<number, AbortController>();

function reply(id: number, work: () => Promise<unknown>): void {
  work().then(
    (value) => channel.send({ type: 'result', id, value: value as never }),
    (err: unknown) => channel.send({ type: 'error', id, error: serializeError(err) }),
  );
}

function requireEngine(): Engine {
  if (!engine) throw new Error('the engine process got a request before init');
  return engine;
}

channel.onMessage((message) => {
  switch (message.type) {
    case 'init': {
      engine = new Engine({
        ...(message.settings.providers ? { providers: message.settings.providers } : {}),
        ...(message.settings.threads !== undefined ? { threads: message.settings.threads } : {}),
        ...(message.settings.releaseTextEncoders !== undefined ? { releaseTextEncoders: message.settings.releaseTextEncoders } : {}),
      });
      const { providers, threads } = engine.sessionSettings;
      channel.send({ type: 'ready', pid: process.pid, settings: { providers: [...providers], threads } });
      return;
    }
    case 'generate': {
      const controller = new AbortController();
      running.set(message.id, controller);
      reply(message.id, async () => {
        try {
          const request = await withImageFiles(message.request, message.files);
          return await requireEngine().generate(message.modelDir, request, {
            signal: controller.signal,
            previewEvery: message.previewEvery,
            onProgress: (p) => channel.send({ type: 'progress', id: message.id, ...p }),
          });
        } finally {
          running.delete(message.id);
        }
      });
      return;
    }
    case 'live': {
      const controller = new AbortController();
      running.set(message.id, controller);
      reply(message.id, async () => {
        try {
          return await requireEngine().liveFrame(message.modelDir, message.request, { signal: controller.signal });
        } finally {
          running.delete(message.id);
        }
      });
      return;
    }
    case 'liveEnd':
      reply(message.id, async () => {
        requireEngine().endLive();
        return { ended: true as const };
      });
      return;
    case 'liveCompose':
      reply(message.id, () => requireEngine().composeLiveFrame(message.picture, message.crop, message.image));
      return;
    case 'prepareImages':
      reply(message.id, () => Promise.all(message.images.map(async (image) => prepareStoredImage(await imageSourceBytes(image), image.what, message.maxPixels))));
      return;
    case 'cancel':
      running.get(message.id)?.abort();
      return;
    case 'info':
      reply(message.id, () => requireEngine().info(message.modelDir));
      return;
    case 'configure':
      reply(message.id, async () => {
        const e = requireEngine();
        await e.configure(message.settings);
        return { providers: [...e.sessionSettings.providers], threads: e.sessionSettings.threads };
      });
      return;
    case 'unload':
      reply(message.id, async () => {
        const e = requireEngine();
        if (message.modelDir === null) {
          await e.unloadAll();
          return { unloaded: true };
        }
        return { unloaded: await e.unload(message.modelDir) };
      });
      return;
  }
});

// The host went away (it crashed or closed the channel): nothing is left to serve. A reply sent just
// as it died fails with EPIPE on `process` (Node's fork): that is the same news.
process.on('disconnect', () => process.exit(0));
process.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE' || err.code === 'ERR_IPC_CHANNEL_CLOSED') process.exit(0);
  throw err;
});
