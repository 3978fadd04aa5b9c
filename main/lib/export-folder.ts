// The folder the admin chose for an audit export (or a bundle to verify), checked again in main
// before the window gets it: the dialog's answer is resolved (symbolic links and junctions
// followed) and must be an existing, writable folder; when the dialog was opened on a removable
// drive the shell listed, the resolved folder must still be on that drive (a link on a stick
// that points into the system disk is refused). The page sends the resolved path to the gateway.
// Plain Node (no electron import), tested under Node with real folders and links.
import fs from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';

export class FolderRefused extends Error {
  override name = 'FolderRefused';
}

export interface FolderFs {
  realpath(p: string): Promise<string>;
  stat(p: string): Promise<{ isDirectory(): boolean }>;
  access(p: string, mode: number): Promise<void>;
}

/** Is `child` the folder `root` or inside it? (Windows and macOS compare without case.) */
export function isWithin(child: string, root: string, platform: NodeJS.Platform = process.platform): boolean {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const fold = (s: string) => (platform === 'win32' || platform === 'darwin' ? s.toLowerCase() : s);
  const rel = p.relative(fold(p.resolve(root)), fold(p.resolve(child)));
  return rel === '' || (!rel.startsWith('..') && !p.isAbsolute(rel));
}

/**
 * The chosen folder, resolved; throws FolderRefused naming the problem.
 * `within`: the drive (mount point) the dialog was opened on, when it was one the shell listed.
 * `writable`: false for a folder that is only read (a bundle to verify); default true.
 */
export async function checkChosenFolder(chosen: string, o: { within?: string | undefined; writable?: boolean; fs?: FolderFs; platform?: NodeJS.Platform } = {}): Promise<string> {
  const f = o.fs ?? fs;
  const platform = o.platform ?? process.platform;
  let resolved: string;
  try {
    resolved = await f.realpath(chosen);
  } catch {
    throw new FolderRefused(`${chosen} does not exist any more (was the drive removed?)`);
  }
  if (!(await f.stat(resolved)).isDirectory()) throw new FolderRefused(`${chosen} is not a folder`);
  try {
    await f.access(resolved, o.writable === false ? constants.R_OK : constants.W_OK);
  } catch {
    if (o.writable === false) throw new FolderRefused(`${chosen} cannot be read (no permission)`);
    throw new FolderRefused(`${chosen} cannot be written (read-only drive, or no permission)`);
  }
  if (o.within !== undefined) {
    let root: string;
    try {
      root = await f.realpath(o.within);
    } catch {
      throw new FolderRefused(`the drive ${o.within} is gone (was it removed?)`);
    }
    if (!isWithin(resolved, root, platform))
      throw new FolderRefused(`${chosen} leads to ${resolved}, which is not on the drive ${o.within} (a link on the drive points elsewhere); choose a folder on the drive itself`);
  }
  return resolved;
}
