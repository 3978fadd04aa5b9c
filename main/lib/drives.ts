// Removable drives an admin can export audit bundles and backups onto (a USB stick, an SD
// card). Linux: `lsblk -J` (with /proc/mounts as the fallback); Windows: logical disks of
// type "removable" via PowerShell; macOS: the volumes under /Volumes. The parsers are pure
// functions tested with fixtures; `listRemovableDrives` runs the commands.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';

export interface RemovableDrive {
  /** Where to write, e.g. /media/alice/USBSTICK or E:\ */
  mountpoint: string;
  /** Volume label when known. */
  label: string | null;
  /** Device, e.g. /dev/sdb1, when known. */
  device: string | null;
  /** Human-readable size as the OS reports it ("14.9G"), when known. */
  size: string | null;
  /** Bus, e.g. "usb", when known. */
  transport: string | null;
}

// lsblk prints booleans as true/false (util-linux >= 2.33) or "1"/"0" (older), sizes as strings
// (or numbers with --bytes).
const LsblkBool = z.union([z.boolean(), z.enum(['0', '1']).transform((v) => v === '1'), z.null()]).optional();
const LsblkStr = z.string().nullable().optional();

interface LsblkDevice {
  name: string;
  rm?: boolean | null | undefined;
  tran?: string | null | undefined;
  mountpoint?: string | null | undefined;
  mountpoints?: Array<string | null> | null | undefined;
  label?: string | null | undefined;
  size?: string | number | null | undefined;
  children?: LsblkDevice[] | undefined;
}

const LsblkDeviceSchema: z.ZodType<LsblkDevice, unknown> = z.lazy(() =>
  z.object({
    name: z.string(),
    rm: LsblkBool,
    tran: LsblkStr,
    mountpoint: LsblkStr,
    mountpoints: z.array(z.string().nullable()).nullable().optional(),
    label: LsblkStr,
    size: z.union([z.string(), z.number()]).nullable().optional(),
    children: z.array(LsblkDeviceSchema).optional(),
  }),
);

const LsblkOutput = z.object({ blockdevices: z.array(LsblkDeviceSchema) });

/** Mount points that are never offered even on a removable device (a system booted from USB). */
const SYSTEM_MOUNTS = new Set(['/', '/boot', '/boot/efi', '/efi', '/usr', '/var', '/home', '/tmp']);
const REMOVABLE_TRANSPORTS = new Set(['usb', 'mmc', 'sdio', 'ieee1394']);

function usableMount(m: string | null | undefined): m is string {
  return !!m && m.startsWith('/') && !SYSTEM_MOUNTS.has(m) && !m.startsWith('/snap/');
}

/**
 * Mounted filesystems on removable or USB block devices, from the JSON of
 * `lsblk -J -o NAME,RM,TRAN,MOUNTPOINT,LABEL,SIZE`. Partitions inherit removability and
 * transport from their disk (lsblk reports TRAN only on the disk). Throws when the JSON does not
 * have lsblk's shape.
 */
export function parseLsblk(json: unknown): RemovableDrive[] {
  const out = LsblkOutput.parse(typeof json === 'string' ? JSON.parse(json) : json);
  const drives: RemovableDrive[] = [];
  const seen = new Set<string>();
  const walk = (d: LsblkDevice, inherited: { removable: boolean; tran: string | null }) => {
    const tran = d.tran ?? inherited.tran;
    const removable = inherited.removable || d.rm === true || (tran !== null && REMOVABLE_TRANSPORTS.has(tran));
    const mounts = [d.mountpoint, ...(d.mountpoints ?? [])];
    for (const m of mounts) {
      if (!removable || !usableMount(m) || seen.has(m)) continue;
      seen.add(m);
      drives.push({
        mountpoint: m,
        label: d.label ?? null,
        device: `/dev/${d.name}`,
        size: d.size === null || d.size === undefined ? null : String(d.size),
        transport: tran,
      });
    }
    for (const c of d.children ?? []) walk(c, { removable, tran });
  };
  for (const d of out.blockdevices) walk(d, { removable: false, tran: null });
  return drives;
}

/** Undo the octal escapes of /proc/mounts ("\040" is a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The fallback when lsblk is missing: filesystems in /proc/mounts whose block device is
 * removable (`isRemovable`, e.g. from /sys/block/DEV/removable), or that are mounted where
 * desktops mount hot-plugged media (/media, /run/media: USB hard disks say "not removable").
 */
export function parseProcMounts(text: string, isRemovable: (device: string) => boolean | undefined = () => undefined): RemovableDrive[] {
  const drives: RemovableDrive[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const [dev, mnt] = line.trim().split(/\s+/);
    if (!dev || !mnt || !dev.startsWith('/dev/')) continue;
    const device = unescapeMount(dev);
    const mountpoint = unescapeMount(mnt);
    if (!usableMount(mountpoint) || seen.has(mountpoint)) continue;
    const removable = isRemovable(device) === true || mountpoint.startsWith('/media/') || mountpoint.startsWith('/run/media/');
    if (!removable) continue;
    seen.add(mountpoint);
    drives.push({ mountpoint, label: null, device, size: null, transport: null });
  }
  return drives;
}

/** The whole-disk name under /sys/block for a partition device: /dev/sdb1 → sdb, /dev/mmcblk0p1 → mmcblk0. */
export function sysBlockName(device: string): string | null {
  const name = path.posix.basename(device);
  let m = /^((?:mmcblk|nvme\d+n|loop|nbd|sr)\d+)(?:p\d+)?$/.exec(name);
  if (m) return m[1]!;
  m = /^([a-z]+)\d*$/.exec(name);
  return m ? m[1]! : null;
}

const WinDisk = z.object({
  DeviceID: z.string(),
  DriveType: z.number().optional(),
  VolumeName: z.string().nullable().optional(),
  Size: z.union([z.number(), z.string()]).nullable().optional(),
});

/**
 * Output of `Get-CimInstance Win32_LogicalDisk -Filter "DriveType=2" | ConvertTo-Json`
 * (one object, or an array of them). Drive type 2 is "removable disk"; USB hard disks report as
 * fixed (3) and are not listed: Windows does not tell them apart here.
 */
export function parseWindowsLogicalDisks(json: string): RemovableDrive[] {
  const text = json.trim();
  if (!text) return [];
  const parsed: unknown = JSON.parse(text);
  const list = z.array(WinDisk).parse(Array.isArray(parsed) ? parsed : [parsed]);
  return list
    .filter((d) => d.DriveType === undefined || d.DriveType === 2)
    .filter((d) => /^[A-Za-z]:$/.test(d.DeviceID))
    .map((d) => ({
      mountpoint: `${d.DeviceID}\\`,
      label: d.VolumeName || null,
      device: d.DeviceID,
      size: d.Size === null || d.Size === undefined ? null : formatBytes(Number(d.Size)),
      transport: null,
    }));
}

/**
 * macOS: the entries of /Volumes that are not the system volume (the one that resolves to "/").
 * `entries` are the names in /Volumes with their resolved paths. macOS does not say cheaply
 * which are removable (diskutil would), so every mounted non-system volume is offered.
 */
export function parseMacVolumes(entries: Array<{ name: string; realPath: string }>): RemovableDrive[] {
  return entries
    .filter((e) => e.realPath !== '/' && !e.name.startsWith('.') && e.name !== 'Recovery' && e.name !== 'Preboot')
    .map((e) => ({ mountpoint: path.posix.join('/Volumes', e.name), label: e.name, device: null, size: null, transport: null }));
}

export function formatBytes(n: number): string | null {
  if (!Number.isFinite(n) || n < 0) return null;
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)}${units[i]}`;
}

export interface DriveProbeDeps {
  platform: NodeJS.Platform;
  /** Run a program without a shell; resolves to its stdout. */
  run: (file: string, args: string[]) => Promise<string>;
  readFile: (file: string) => Promise<string>;
  readdir: (dir: string) => Promise<string[]>;
  realpath: (p: string) => Promise<string>;
}

const execFileP = promisify(execFile);

export const realDriveProbeDeps: DriveProbeDeps = {
  platform: process.platform,
  run: async (file, args) => (await execFileP(file, args, { timeout: 5000, maxBuffer: 4 * 1024 * 1024, windowsHide: true })).stdout,
  readFile: (f) => fs.readFile(f, 'utf8'),
  readdir: (d) => fs.readdir(d),
  realpath: (p) => fs.realpath(p),
};

/** The removable drives mounted now. Never throws: an empty list when nothing can be determined. */
export async function listRemovableDrives(deps: DriveProbeDeps = realDriveProbeDeps, log: (line: string) => void = () => {}): Promise<RemovableDrive[]> {
  try {
    if (deps.platform === 'linux') {
      try {
        return parseLsblk(await deps.run('lsblk', ['-J', '-o', 'NAME,RM,TRAN,MOUNTPOINT,LABEL,SIZE']));
      } catch (e) {
        log(`drives: lsblk failed (${(e as Error).message}); reading /proc/mounts`);
      }
      const mounts = await deps.readFile('/proc/mounts');
      const removable = new Map<string, boolean | undefined>();
      for (const line of mounts.split('\n')) {
        const dev = line.split(/\s+/)[0];
        const name = dev?.startsWith('/dev/') ? sysBlockName(dev) : null;
        if (!dev || !name || removable.has(dev)) continue;
        removable.set(dev, await deps.readFile(`/sys/block/${name}/removable`).then((s) => s.trim() === '1', () => undefined));
      }
      return parseProcMounts(mounts, (d) => removable.get(d));
    }
    if (deps.platform === 'win32') {
      const out = await deps.run('powershell.exe', [
        '-NoProfile',
        '-NonInteractive',
        '-Command',
        'Get-CimInstance Win32_LogicalDisk -Filter "DriveType=2" | Select-Object DeviceID,DriveType,VolumeName,Size | ConvertTo-Json -Compress',
      ]);
      return parseWindowsLogicalDisks(out);
    }
    if (deps.platform === 'darwin') {
      const names = await deps.readdir('/Volumes');
      const entries: Array<{ name: string; realPath: string }> = [];
      for (const name of names) entries.push({ name, realPath: await deps.realpath(path.posix.join('/Volumes', name)).catch(() => '/') });
      return parseMacVolumes(entries);
    }
    return [];
  } catch (e) {
    log(`drives: could not list removable drives: ${(e as Error).message}`);
    return [];
  }
}
