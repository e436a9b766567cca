/**
 * The preload: exposes `window.studio` (the contract's `StudioApi`) and nothing else. It runs
 * sandboxed, so it is bundled into one CommonJS file (build/build-electron.mjs) that requires only
 * `electron`. Channel and event names are checked against the contract here too, so no other string
 * ever reaches ipcRenderer.
 */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import {
  CHANNELS,
  ELECTRON_APP_ORIGIN,
  ELECTRON_IPC,
  EVENTS,
  type ChannelName,
  type EventName,
  type Events,
  type InvokeResult,
  type StudioApi,
  type StudioEvent,
} from '../shared/contract.js';

const channels = new Set<string>(CHANNELS);
const events = new Set<string>(EVENTS);
const listeners = new Map<EventName, Set<(payload: never) => void>>();

ipcRenderer.on(ELECTRON_IPC.event, (_event, message: StudioEvent) => {
  for (const listener of listeners.get(message.event) ?? []) listener(message.payload as never);
});

const studio: StudioApi = {
  invoke<C extends ChannelName>(channel: C, request: unknown): Promise<InvokeResult<C>> {
    if (!channels.has(channel)) {
      return Promise.resolve({ ok: false, error: { name: 'InvalidRequestError', code: 'E_INVALID_REQUEST', message: `unknown channel ${JSON.stringify(String(channel))}` } });
    }
    return ipcRenderer.invoke(ELECTRON_IPC.invoke, channel, request) as Promise<InvokeResult<C>>;
  },
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    if (!events.has(event)) throw new TypeError(`unknown event ${JSON.stringify(String(event))}`);
    let set = listeners.get(event);
    if (!set) {
      set = new Set();
      listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  },
  // Since Electron 32 a dropped File no longer carries `.path`; webUtils gives it, for our own page only.
  pathForFile(file: unknown): string {
    return file instanceof File ? webUtils.getPathForFile(file) : '';
  },
  // Stored images load by URL from main's app protocol (app-protocol.ts), not as base64 over IPC.
  imageOrigin: ELECTRON_APP_ORIGIN,
};

contextBridge.exposeInMainWorld('studio', studio);
