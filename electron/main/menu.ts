/** The application menu: model import, the data folder, the usual edit/view/window roles. */
import { app, dialog, Menu, shell, type BrowserWindow, type MenuItemConstructorOptions } from 'electron';
import type { Host } from '../host/host.js';

export function buildMenu(host: Host, getWindow: () => BrowserWindow | null, isDev: boolean): Menu {
  const isMac = process.platform === 'darwin';
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        {
          label: 'Import Model Folder…',
          click: async () => {
            const win = getWindow();
            const options = { title: 'Import a model folder (diffusers ONNX layout)', properties: ['openDirectory' as const] };
            const picked = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
            const path = picked.filePaths[0];
            if (picked.canceled || !path) return;
            const result = await host.invoke('models.import', { path });
            if (!result.ok) dialog.showErrorBox('The model could not be imported', result.error.message);
          },
        },
        { label: 'Open Data Folder', click: () => void shell.openPath(host.dataDir) },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        ...(isDev ? [{ role: 'reload' as const }, { role: 'toggleDevTools' as const }, { type: 'separator' as const }] : []),
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: `About ${app.getName()}`, click: () => app.showAboutPanel() }],
    },
  ];
  return Menu.buildFromTemplate(template);
}
