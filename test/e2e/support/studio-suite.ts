/**
 * The set-up every renderer end-to-end suite shares, as hooks of the calling `describe`: the current
 * renderer built, a fresh `studio serve` (support/studio-server.ts) and Chromium open on its page
 * (support/browser.ts); both closed again afterwards.
 */
import { after, before } from 'node:test';
import { openStudio, type StudioBrowser } from './browser.js';
import { ensureRendererBuilt } from './renderer-build.js';
import { startStudioServer, type StudioServer, type StudioServerOptions } from './studio-server.js';

export interface StudioSuiteOptions extends StudioServerOptions {
  /** Runs first in the suite's `after`, while the server and page are still up (e.g. to clear the queue). */
  beforeClose?: (server: StudioServer) => Promise<unknown> | void;
}

/** The suite's server and page: there from the suite's `before` on (hooks added later run after it). */
export interface StudioSuite {
  readonly server: StudioServer;
  readonly studio: StudioBrowser;
}

/**
 * Adds the `before` that starts the server (options as startStudioServer) and opens the page, and the
 * `after` that closes the page (failing on errors the page threw) and stops the server, even if closing
 * the page failed. Call it inside `describe`.
 */
export function useStudio(options: StudioSuiteOptions = {}): StudioSuite {
  let server: StudioServer | undefined;
  let studio: StudioBrowser | undefined;
  before(async () => {
    ensureRendererBuilt();
    server = await startStudioServer(options);
    studio = await openStudio(server.url);
  });
  after(async () => {
    try {
      if (server) await options.beforeClose?.(server);
      await studio?.close();
    } finally {
      await server?.stop();
    }
  });
  return {
    get server() {
      if (!server) throw new Error('the studio server is not started: use it in the suite’s tests or later hooks');
      return server;
    },
    get studio() {
      if (!studio) throw new Error('the studio page is not open: use it in the suite’s tests or later hooks');
      return studio;
    },
  };
}
