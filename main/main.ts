// Electron main process of the Airlock desktop shell. Thin wiring only: the logic (gateway
// supervision, IPC checks, URL policy, drives, logs, settings, CSP) lives in ./lib, which
// imports nothing from electron and is unit-tested under Node.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BaseWindow,
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  Menu,
  nativeImage,
  powerMonitor,
  session,
  shell,
  Tray,
  utilityProcess,
  type WebContents,
  type WebPreferences,
} from 'electron';
import { AdminOriginProof, SHELL_CHALLENGE_HEADER, SHELL_PROOF_KEY_ENV } from './lib/admin-proof.js';
import { gatewayEnv } from './lib/gateway-env.js';
import { ADMIN_CSP, withCsp } from './lib/csp.js';
import { listRemovableDrives } from './lib/drives.js';
import { checkChosenFolder } from './lib/export-folder.js';
import { SessionEndHandler, afterWindowClosed, needsSessionSentinel } from './lib/session-end.js';
import { trayIconPng } from './lib/icon.js';
import { CHANNELS, IpcRouter, type PickExportFolderOptions } from './lib/ipc.js';
import { lineSplitter, RotatingLog } from './lib/logs.js';
import { dataUrl, statusLine, statusPage } from './lib/pages.js';
import { loadSettings, saveSettings, type ShellSettings } from './lib/settings.js';
import { GatewaySupervisor, type GatewayChild, type GatewayStatus } from './lib/supervisor.js';
import { decideNavigation, isAdminOrigin, isPermissionAllowed } from './lib/urls.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/main (or app.asar/dist/main)
const GATEWAY_ENTRY = path.join(here, '..', '..', 'bin', 'airlock.js');
const PRELOAD = path.join(here, 'preload.cjs');

const SECURE_WEB_PREFERENCES: WebPreferences = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  webviewTag: false,
  navigateOnDragDrop: false,
  spellcheck: false,
};

app.enableSandbox();

if (!app.requestSingleInstanceLock()) {
  // Another Airlock shell owns the gateway; it shows its window (second-instance below).
  app.quit();
} else {
  // The gateway's files and Chromium's profile data live apart in the same per-user folder.
  const dataDir = process.env.AIRLOCK_DATA_DIR ? path.resolve(process.env.AIRLOCK_DATA_DIR) : app.getPath('userData');
  app.setPath('sessionData', path.join(dataDir, 'chromium'));
  const log = new RotatingLog({ dir: path.join(dataDir, 'logs') });
  const logLine = (line: string) => log.write('shell', line);
  logLine(`Airlock shell ${app.getVersion()} starting; data dir ${dataDir}`);
  process.on('uncaughtException', (e) => logLine(`uncaught exception: ${e.stack ?? String(e)}`));
  process.on('unhandledRejection', (e) => logLine(`unhandled rejection: ${(e as Error)?.stack ?? String(e)}`));

  const loaded = loadSettings(dataDir);
  let settings: ShellSettings = loaded.settings;
  if (loaded.problem) logLine(loaded.problem);

  let mainWindow: BrowserWindow | null = null;
  let tray: Tray | null = null;
  /** Windows only: the hidden window that receives the session's end */
  let sentinel: BaseWindow | null = null;
  let quitting = false;
  let gatewayStopped = false;

  // Proof that the admin origin is the gateway started here (lib/admin-proof.ts): a new key per fork.
  const proof = new AdminOriginProof();

  const supervisor = new GatewaySupervisor({
    logPath: log.path,
    log: logLine,
    fork: (): GatewayChild => {
      logLine(`starting the gateway: ${GATEWAY_ENTRY} serve --data-dir ${dataDir}`);
      const child = utilityProcess.fork(GATEWAY_ENTRY, ['serve', '--data-dir', dataDir], {
        stdio: 'pipe',
        serviceName: 'Airlock gateway',
        // The proof key: set only here, never logged (the gateway removes it from its environment).
        env: gatewayEnv(process.env, dataDir, { [SHELL_PROOF_KEY_ENV]: proof.rotate() }),
      });
      const out = lineSplitter((line) => {
        log.write('gateway', line);
        supervisor.handleOutputLine(line);
      });
      const err = lineSplitter((line) => {
        log.write('gateway', line);
        supervisor.handleErrorLine(line);
      });
      child.stdout?.on('data', (c: Buffer) => out.push(c));
      child.stderr?.on('data', (c: Buffer) => err.push(c));
      child.on('exit', () => {
        out.flush();
        err.flush();
      });
      return child;
    },
  });

  // --- the admin window ---------------------------------------------------------------

  const showStatusPage = (win: BrowserWindow, status: GatewayStatus) => {
    void win.loadURL(dataUrl(statusPage(status))).catch((e: Error) => logLine(`could not show the status page: ${e.message}`));
  };

  const showAdmin = (win: BrowserWindow, status: GatewayStatus) => {
    if (!status.admin) return;
    if (isAdminOrigin(win.webContents.getURL(), supervisor.adminOrigin)) return; // already there
    void win.loadURL(status.admin).catch((e: Error) => logLine(`could not load the admin app at ${status.admin}: ${e.message}`));
  };

  const openWindow = () => {
    if (mainWindow && !mainWindow.isDestroyed()) {
      if (mainWindow.isMinimized()) mainWindow.restore();
      mainWindow.show();
      mainWindow.focus();
      return;
    }
    const win = new BrowserWindow({
      width: 1280,
      height: 860,
      minWidth: 800,
      minHeight: 560,
      title: 'Airlock',
      show: false,
      autoHideMenuBar: true,
      webPreferences: { ...SECURE_WEB_PREFERENCES, preload: PRELOAD },
    });
    mainWindow = win;
    win.once('ready-to-show', () => win.show());
    // (installers/smoke-test.mjs looks for this line)
    win.webContents.on('did-finish-load', () => {
      if (isAdminOrigin(win.webContents.getURL(), supervisor.adminOrigin)) logLine('window: the admin app is loaded');
    });
    // (Windows log-off / shutdown reach the hidden sentinel window, open or not: see sessionEnd below.)
    win.on('closed', () => {
      if (mainWindow === win) mainWindow = null;
      const next = afterWindowClosed({ keepServing: settings.keepServingWhenWindowClosed, quitting });
      if (next === 'quit') app.quit();
      else if (next === 'keep-serving') logLine('window closed; the gateway keeps serving (quit from the tray icon)');
    });
    const status = supervisor.status;
    if (status.state === 'running') showAdmin(win, status);
    else showStatusPage(win, status);
  };

  // Every webContents (the window, and any window it is allowed to open) gets the same policy.
  const harden = (wc: WebContents) => {
    const guard = (kind: string) => (event: { preventDefault(): void }, url: string) => {
      const d = decideNavigation(url, supervisor.adminOrigin, settings.externalLinkHosts);
      if (d === 'allow') return;
      event.preventDefault();
      if (d === 'open-external') {
        logLine(`${kind}: opening ${url} in the system browser`);
        void shell.openExternal(url);
      } else {
        logLine(`${kind}: refused ${url.slice(0, 300)}`);
      }
    };
    wc.on('will-navigate', guard('navigation'));
    wc.on('will-redirect', guard('redirect'));
    wc.on('will-attach-webview', (event) => {
      event.preventDefault();
      logLine('refused a <webview>');
    });
    wc.setWindowOpenHandler(({ url }) => {
      const d = decideNavigation(url, supervisor.adminOrigin, settings.externalLinkHosts);
      if (d === 'allow') {
        return { action: 'allow', overrideBrowserWindowOptions: { autoHideMenuBar: true, webPreferences: { ...SECURE_WEB_PREFERENCES } } };
      }
      if (d === 'open-external') {
        logLine(`new window: opening ${url} in the system browser`);
        void shell.openExternal(url);
      } else {
        logLine(`new window: refused ${url.slice(0, 300)}`);
      }
      return { action: 'deny' };
    });
  };
  app.on('web-contents-created', (_event, wc) => harden(wc));

  // --- tray ---------------------------------------------------------------------------

  const updateTray = (status: GatewayStatus) => {
    if (!tray) return;
    tray.setImage(nativeImage.createFromBuffer(trayIconPng(status.state), { scaleFactor: 2 }));
    tray.setToolTip(statusLine(status));
    tray.setContextMenu(
      Menu.buildFromTemplate([
        { label: statusLine(status), enabled: false },
        { type: 'separator' },
        { label: 'Open Airlock', click: openWindow },
        {
          label: status.state === 'failed' || status.state === 'stopped' ? 'Start the gateway' : 'Restart the gateway',
          click: () => {
            void supervisor.stop().then(() => supervisor.start());
          },
        },
        {
          label: 'Keep serving when the window closes',
          type: 'checkbox',
          checked: settings.keepServingWhenWindowClosed,
          click: (item) => {
            try {
              settings = saveSettings(dataDir, { ...settings, keepServingWhenWindowClosed: item.checked });
              logLine(`setting: keep serving when the window closes = ${settings.keepServingWhenWindowClosed}`);
            } catch (e) {
              logLine(`could not save the settings: ${(e as Error).message}`);
            }
          },
        },
        { label: 'Show the log folder', click: () => void shell.openPath(path.dirname(log.path)) },
        { type: 'separator' },
        { label: 'Quit Airlock (stops the gateway)', click: () => app.quit() },
      ]),
    );
  };

  supervisor.on('status', (status: GatewayStatus) => {
    if (status.state === 'running') proof.setAdminOrigin(status.admin);
    logLine(`gateway status: ${status.state}${status.error ? ` — ${status.error}` : ''}`);
    updateTray(status);
    const win = mainWindow;
    if (!win || win.isDestroyed()) {
      if (status.state === 'failed') openWindow(); // the admin must see why
      return;
    }
    if (status.state === 'running') showAdmin(win, status);
    else if (!quitting) showStatusPage(win, status);
  });

  // --- IPC ----------------------------------------------------------------------------

  /** the mount points the last listRemovableDrives returned: a dialog opened on one must stay on it */
  let listedDrives = new Set<string>();
  const router = new IpcRouter(
    {
      pickExportFolder: async (options?: PickExportFolderOptions) => {
        const win = mainWindow && !mainWindow.isDestroyed() ? mainWindow : null;
        const dialogOptions: Electron.OpenDialogOptions = {
          title: options?.title ?? 'Choose a folder to export to',
          properties: ['openDirectory', 'createDirectory'],
          ...(options?.defaultPath ? { defaultPath: options.defaultPath } : {}),
        };
        const r = win ? await dialog.showOpenDialog(win, dialogOptions) : await dialog.showOpenDialog(dialogOptions);
        const chosen = r.canceled ? undefined : r.filePaths[0];
        if (chosen === undefined) return null;
        // resolved (links followed), a writable folder, and on the drive the dialog was opened on
        const within = options?.defaultPath !== undefined && listedDrives.has(options.defaultPath) ? options.defaultPath : undefined;
        return checkChosenFolder(chosen, { within, writable: options?.purpose !== 'read' });
      },
      listRemovableDrives: async () => {
        const drives = await listRemovableDrives(undefined, logLine);
        listedDrives = new Set(drives.map((d) => d.mountpoint));
        return drives;
      },
      getSetupToken: () => supervisor.getSetupToken(),
      getAppVersion: () => app.getVersion(),
      getGatewayStatus: () => supervisor.status,
    },
    () => ({
      // IPC (and with it the setup token) only once a response of this origin proved it is our gateway.
      adminOrigin: proof.trustedOrigin(supervisor.adminOrigin),
      windowWebContentsId: mainWindow && !mainWindow.isDestroyed() ? mainWindow.webContents.id : null,
    }),
    logLine,
  );
  for (const channel of Object.values(CHANNELS)) {
    ipcMain.handle(channel, (event, ...args: unknown[]) => router.invoke(channel, event, args));
  }

  // --- app lifecycle ------------------------------------------------------------------

  app.on('second-instance', () => openWindow());
  app.on('activate', () => openWindow()); // macOS dock click

  // Closing the admin window decides (see win.on('closed')); other windows (the admin app's own
  // pop-ups, the hidden sentinel) do not keep or end the app.
  app.on('window-all-closed', () => {});

  app.on('before-quit', () => {
    quitting = true;
  });

  // Quit (tray menu, session end, system shutdown): the gateway gets the stop message, in-flight
  // requests and streams finish within its shutdown grace, only then is it killed (supervisor.ts).
  app.on('will-quit', (event) => {
    if (gatewayStopped) return;
    event.preventDefault();
    void supervisor.stop().finally(() => {
      gatewayStopped = true;
      sentinel?.destroy();
      sentinel = null;
      logLine('Airlock shell quitting');
      log.close();
      app.quit();
    });
  });

  void app.whenReady().then(() => {
    const ses = session.defaultSession;
    ses.setPermissionRequestHandler((_wc, permission, callback, details) => {
      const ok = isPermissionAllowed(permission, details.requestingUrl, supervisor.adminOrigin);
      if (!ok) logLine(`permission request refused: ${permission} from ${details.requestingUrl.slice(0, 200)}`);
      callback(ok);
    });
    ses.setPermissionCheckHandler((_wc, permission, requestingOrigin) => isPermissionAllowed(permission, requestingOrigin, supervisor.adminOrigin));
    ses.setDevicePermissionHandler(() => false);
    ses.webRequest.onBeforeSendHeaders((details, callback) => {
      const challenge = proof.challengeFor(details.id, details.url);
      if (!challenge) return callback({});
      callback({ requestHeaders: { ...details.requestHeaders, [SHELL_CHALLENGE_HEADER]: challenge } });
    });
    ses.webRequest.onErrorOccurred((details) => proof.forget(details.id));
    ses.webRequest.onHeadersReceived((details, callback) => {
      // A response from the admin origin that does not prove it comes from our gateway is cancelled.
      const wasProven = proof.proven;
      const verdict = proof.check(details.id, details.url, details.responseHeaders);
      if (verdict.kind === 'proven' && !wasProven) logLine('the admin origin proved it is the gateway this shell started; IPC granted');
      if (verdict.kind === 'refused') {
        logLine(`refused a response from the admin origin (${verdict.reason}): ${details.method} ${details.url.slice(0, 300)}; another program may be listening on the gateway's admin port`);
        callback({ cancel: true });
        return;
      }
      // The window only ever shows the admin app: every http(s) document gets its CSP.
      if (details.url.startsWith('http:') || details.url.startsWith('https:')) {
        callback({ responseHeaders: withCsp(details.responseHeaders, ADMIN_CSP) });
      } else {
        callback({});
      }
    });

    // Linux/macOS shutdown or reboot: delay it while the gateway drains, then quit.
    // (Electron passes an event with preventDefault() to delay the shutdown; its typings omit it.)
    powerMonitor.on('shutdown', (...args: unknown[]) => {
      logLine('system shutting down: stopping the gateway');
      (args[0] as { preventDefault?: () => void } | undefined)?.preventDefault?.();
      app.quit();
    });

    // Windows tells only windows that the session ends: a hidden one hears it while no admin window is open.
    if (needsSessionSentinel(process.platform)) {
      const sessionEnd = new SessionEndHandler({
        stopGateway: () => supervisor.stop(),
        quit: () => {
          gatewayStopped = true;
          app.quit();
        },
        log: logLine,
      });
      sentinel = new BaseWindow({ show: false, width: 1, height: 1, skipTaskbar: true, focusable: false, title: 'Airlock (session watcher)' });
      sentinel.on('query-session-end', (e) => sessionEnd.onQuerySessionEnd(e));
      sentinel.on('session-end', (e) => sessionEnd.onSessionEnd(e));
    }

    tray = new Tray(nativeImage.createFromBuffer(trayIconPng('starting'), { scaleFactor: 2 }));
    tray.on('click', openWindow);
    updateTray(supervisor.status);

    supervisor.start();
    openWindow();
  });
}
