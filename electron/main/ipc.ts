/**
 * Electron's front door to the host: one `ipcMain.handle` for every invoke (the host validates the
 * channel and the payload against the contract) and one event channel to every window. Messages from
 * anything but the main frame of our own windows are refused.
 */
import { ipcMain, type WebContents } from 'electron';
import { ELECTRON_IPC, type InvokeResult, type ChannelName } from '../shared/contract.js';
import type { Host } from '../host/host.js';
import { isTrustedSender } from './security.js';

export function registerIpc(host: Host, windows: Set<WebContents>, origins: readonly string[]): () => void {
  ipcMain.handle(ELECTRON_IPC.invoke, async (event, channel: unknown, payload: unknown): Promise<InvokeResult<ChannelName>> => {
    if (!isTrustedSender(event.senderFrame, windows, origins)) {
      return { ok: false, error: { name: 'ForbiddenError', code: 'E_FORBIDDEN', message: 'This frame may not talk to the studio.' } };
    }
    return host.invoke(channel, payload);
  });
  const unsubscribe = host.subscribe((message) => {
    for (const contents of windows) {
      if (!contents.isDestroyed()) contents.send(ELECTRON_IPC.event, message);
    }
  });
  return () => {
    unsubscribe();
    ipcMain.removeHandler(ELECTRON_IPC.invoke);
  };
}
