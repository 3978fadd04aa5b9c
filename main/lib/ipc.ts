// IPC between the admin window and the shell: the channel allowlist, the check of every
// sender, and zod validation of every argument. Plain Node (no electron import): main.ts
// registers one ipcMain.handle per channel and routes each call through `IpcRouter.invoke`.
import path from 'node:path';
import { z } from 'zod';
import type { GatewayStatus } from './supervisor.js';
import type { RemovableDrive } from './drives.js';

/** One channel per function the preload exposes. The preload hard-codes the same names (see preload.cts). */
export const CHANNELS = {
  pickExportFolder: 'airlock:pick-export-folder',
  listRemovableDrives: 'airlock:list-removable-drives',
  getSetupToken: 'airlock:get-setup-token',
  getAppVersion: 'airlock:get-app-version',
  getGatewayStatus: 'airlock:get-gateway-status',
} as const;

export type IpcMethod = keyof typeof CHANNELS;
export type IpcChannel = (typeof CHANNELS)[IpcMethod];

const CHANNEL_TO_METHOD = new Map<string, IpcMethod>(
  (Object.entries(CHANNELS) as Array<[IpcMethod, IpcChannel]>).map(([m, c]) => [c, m]),
);

export function isAllowedChannel(channel: unknown): channel is IpcChannel {
  return typeof channel === 'string' && CHANNEL_TO_METHOD.has(channel);
}

const AbsolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => !p.includes('\0'), 'must not contain a NUL character')
  .refine((p) => path.isAbsolute(p) || path.win32.isAbsolute(p), 'must be an absolute path');

export const PickExportFolderOptions = z
  .object({
    /** Where the folder dialog opens, e.g. the mount point of a drive from listRemovableDrives. */
    defaultPath: AbsolutePath.optional(),
    /** Dialog title. */
    title: z.string().min(1).max(200).optional(),
    /** export (default): the folder must be writable; read: a bundle to verify, read-only media are fine */
    purpose: z.enum(['export', 'read']).optional(),
  })
  .strict();
export type PickExportFolderOptions = z.infer<typeof PickExportFolderOptions>;

/** Argument lists per method: exact tuples, so extra arguments are refused too. */
export const ARGUMENTS = {
  pickExportFolder: z.union([z.tuple([]), z.tuple([PickExportFolderOptions])]),
  listRemovableDrives: z.tuple([]),
  getSetupToken: z.tuple([]),
  getAppVersion: z.tuple([]),
  getGatewayStatus: z.tuple([]),
} satisfies Record<IpcMethod, z.ZodType<unknown[]>>;

export type IpcArgs = { [M in IpcMethod]: z.infer<(typeof ARGUMENTS)[M]> };

/** What the renderer sees of the gateway status (no secrets in it). */
export type PublicGatewayStatus = GatewayStatus;

/** The API the preload puts on `window.airlock`; the renderer can declare this type. */
export interface AirlockBridge {
  /** Opens a folder dialog; resolves to the chosen folder, or null when cancelled. */
  pickExportFolder(options?: PickExportFolderOptions): Promise<string | null>;
  listRemovableDrives(): Promise<RemovableDrive[]>;
  /** The gateway's one-time first-run setup token, or null when there is none. */
  getSetupToken(): Promise<string | null>;
  getAppVersion(): Promise<string>;
  getGatewayStatus(): Promise<PublicGatewayStatus>;
}

export type IpcResults = { [M in IpcMethod]: Awaited<ReturnType<AirlockBridge[M]>> };

/** The parts of an Electron IpcMainInvokeEvent the check needs. */
export interface IpcSenderEvent {
  sender: { id: number };
  senderFrame: { url: string; parent: unknown } | null;
}

export interface TrustContext {
  /** Origin of the admin plane, e.g. http://127.0.0.1:4001; null while the gateway is not running. */
  adminOrigin: string | null;
  /** webContents id of our admin window; null when there is no window. */
  windowWebContentsId: number | null;
}

export class IpcRejected extends Error {
  override name = 'IpcRejected';
}

/**
 * Why the sender of an IPC call is not trusted, or null when it is: it must be the main frame
 * of our own admin window's webContents, showing a page of the admin origin.
 */
export function senderProblem(event: IpcSenderEvent, ctx: TrustContext): string | null {
  if (ctx.windowWebContentsId === null) return 'there is no admin window';
  if (event.sender.id !== ctx.windowWebContentsId) return `webContents ${event.sender.id} is not the admin window`;
  const frame = event.senderFrame;
  if (!frame) return 'the sending frame is gone (navigated or destroyed)';
  if (frame.parent !== null) return 'the call came from a subframe, not the main frame';
  if (ctx.adminOrigin === null) return 'the gateway is not running, so no origin is trusted';
  let origin: string;
  try {
    origin = new URL(frame.url).origin;
  } catch {
    return `the frame URL "${frame.url.slice(0, 200)}" does not parse`;
  }
  if (origin !== ctx.adminOrigin) return `frame origin ${origin} is not the admin origin ${ctx.adminOrigin}`;
  return null;
}

export type IpcHandlers = { [M in IpcMethod]: (...args: IpcArgs[M]) => IpcResults[M] | Promise<IpcResults[M]> };

export class IpcRouter {
  constructor(
    private readonly handlers: IpcHandlers,
    private readonly trust: () => TrustContext,
    private readonly log: (line: string) => void = () => {},
  ) {}

  /** Check channel, sender and arguments, then call the handler. Throws IpcRejected on any refusal. */
  async invoke(channel: string, event: IpcSenderEvent, args: unknown[]): Promise<unknown> {
    const method = CHANNEL_TO_METHOD.get(channel);
    if (!method) return this.reject(`unknown channel "${String(channel).slice(0, 100)}"`);
    const problem = senderProblem(event, this.trust());
    if (problem) return this.reject(`${channel}: sender refused: ${problem}`);
    const parsed = ARGUMENTS[method].safeParse(args);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => `${i.path.length ? `argument ${i.path.join('.')}` : 'arguments'}: ${i.message}`).join('; ');
      return this.reject(`${channel}: bad arguments: ${why}`);
    }
    const handler = this.handlers[method] as (...a: unknown[]) => unknown;
    return await handler(...(parsed.data as unknown[]));
  }

  private reject(message: string): never {
    this.log(`ipc: ${message}`);
    throw new IpcRejected(message);
  }
}
