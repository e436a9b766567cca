/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), headless, with a fresh
 * profile, and with the flags this closed network needs (no background connections at all).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './renderer-build.js';

export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-results', 'renderer');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  // Frame timing for the UI bench: don't throttle a page that has no visible window.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
];

export interface StudioBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Saves a PNG under test-results/renderer/ and returns its path. */
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function openStudio(url: string, viewport = { width: 1440, height: 900 }): Promise<StudioBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'studio-chromium-'));
  // A persistent context is how playwright takes a user-data dir; it is fresh, and removed at close.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  const browser = context.browser() as Browser;
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(url);
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return {
    browser,
    context,
    page,
    async screenshot(name) {
      const path = join(ARTIFACTS_DIR, `${name}.png`);
      await page.screenshot({ path });
      return path;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
      if (errors.length > 0) throw new Error(`the page threw: ${errors.join('; ')}`);
    },
  };
}
