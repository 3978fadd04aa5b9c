// Preload of the admin window. It runs sandboxed (no Node, only `require('electron')`), so it is
// compiled as CommonJS (.cts → preload.cjs) and imports nothing at run time but electron; the
// types come from lib/ipc.ts, and the channel table below must match CHANNELS there (checked by
// the compiler through `satisfies`, and by test/unit/shell-preload.test.ts).
// One function per message; arguments are checked again in main (lib/ipc.ts).
import { contextBridge, ipcRenderer } from 'electron';
import type { AirlockBridge, CHANNELS, PickExportFolderOptions } from './lib/ipc.js';

const channel = {
  pickExportFolder: 'airlock:pick-export-folder',
  listRemovableDrives: 'airlock:list-removable-drives',
  getSetupToken: 'airlock:get-setup-token',
  getAppVersion: 'airlock:get-app-version',
  getGatewayStatus: 'airlock:get-gateway-status',
} as const satisfies typeof CHANNELS;

const bridge: AirlockBridge = {
  pickExportFolder: (options?: PickExportFolderOptions) =>
    options === undefined ? ipcRenderer.invoke(channel.pickExportFolder) : ipcRenderer.invoke(channel.pickExportFolder, options),
  listRemovableDrives: () => ipcRenderer.invoke(channel.listRemovableDrives),
  getSetupToken: () => ipcRenderer.invoke(channel.getSetupToken),
  getAppVersion: () => ipcRenderer.invoke(channel.getAppVersion),
  getGatewayStatus: () => ipcRenderer.invoke(channel.getGatewayStatus),
};

contextBridge.exposeInMainWorld('airlock', bridge);
