/**
 * Electron main: app lifecycle, the window, security, and the IPC front door to the host.
 *
 * - One instance: a second launch focuses the first window.
 * - The window is sandboxed with context isolation and no Node; the preload exposes only
 *   `window.studio`, built from the contract.
 * - The host (history, queue, settings, models) lives here; the engine runs in a utilityProcess.
 * - Shutdown is graceful: the running job is cancelled, the engine stopped, the databases closed.
 * - User data lives under `app.getPath('userData')` (the same folder `studio serve` uses by default).
 *
 * Built by build/build-electron.mjs into dist-electron/ (main.mjs, engine-child.mjs, preload.cjs).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, Menu, shell, utilityProcess, type WebContents } from 'electron';
import { Host } from '../host/host.js';
import { handleAppProtocol, registerAppScheme } from './app-protocol.js';
import { utilityEngineLauncher } from './engine-launcher.js';
import { registerIpc } from './ipc.js';
import { buildMenu } from './menu.js';
import { APP_ORIGIN, hardenContents, hardenSession, rendererOrigins } from './security.js';

/** dist-electron/, where this file runs from once built. */
const BUILD_DIR = fileURLToPath(new URL('.', import.meta.url));
/** The repository (development) or the app's resources (packaged: native-models/ is an extraResource). */
const APP_ROOT = join(BUILD_DIR, '..');
const RESOURCES = app.isPackaged ? process.resourcesPath : APP_ROOT;
const RENDERER_ROOT = join(APP_ROOT, 'renderer', 'dist');
const BUNDLED_MODEL_DIR = join(RESOURCES, 'native-models', 'emoji-ldm');
/** Development only: load the renderer from a dev server (e.g. Vite) instead of renderer/dist. */
const DEV_SERVER_URL = !app.isPackaged ? (process.env['STUDIO_RENDERER_URL'] ?? null) : null;
const WINDOW_SIZE = { width: 1440, height: 900, minWidth: 960, minHeight: 640 };

const windows = new Set<WebContents>();
let mainWindow: BrowserWindow | null = null;
let host: Host | null = null;
let shuttingDown = false;

registerAppScheme();

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.whenReady().then(start).catch((err: unknown) => {
    console.error('Latent Studio failed to start:', err);
    app.exit(1);
  });
}

function createWindow(origins: readonly string[]): BrowserWindow {
  const win = new BrowserWindow({
    ...WINDOW_SIZE,
    title: 'Latent Studio',
    show: false,
    webPreferences: {
      preload: join(BUILD_DIR, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  const contents = win.webContents;
  windows.add(contents);
  hardenContents(contents, origins);
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => {
    windows.delete(contents);
    if (mainWindow === win) mainWindow = null;
  });
  void win.loadURL(DEV_SERVER_URL ?? `${APP_ORIGIN}/index.html`);
  return win;
}

async function start(): Promise<void> {
  host = await Host.open({
    dataDir: app.getPath('userData'),
    frontDoor: 'electron',
    bundledModelDir: BUNDLED_MODEL_DIR,
    engineLauncher: utilityEngineLauncher(join(BUILD_DIR, 'engine-child.mjs'), utilityProcess),
    version: app.getVersion(),
    electronVersion: process.versions.electron ?? null,
    // The host resolves and checks the file (history.reveal); only showing it needs Electron.
    platform: { revealFile: (path) => shell.showItemInFolder(path) },
  });
  const origins = rendererOrigins(DEV_SERVER_URL);
  hardenSession();
  handleAppProtocol(RENDERER_ROOT, host);
  registerIpc(host, windows, origins);
  // Every WebContents (including any a bug might create) gets the navigation rules.
  app.on('web-contents-created', (_event, contents) => hardenContents(contents, origins));
  const current = host;
  Menu.setApplicationMenu(buildMenu(current, () => mainWindow, !app.isPackaged));
  mainWindow = createWindow(origins);
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) mainWindow = createWindow(origins);
  });
}

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

app.on('before-quit', (event) => {
  if (shuttingDown || !host) return;
  // Hold the quit until the job is cancelled and the databases are closed.
  event.preventDefault();
  shuttingDown = true;
  host
    .close()
    .catch((err: unknown) => console.error('Latent Studio: error during shutdown:', err))
    .finally(() => app.exit(0));
});
