// Removable drives an admin can export audit bundles and backups onto (a USB stick, an SD
// card, a USB disk), writable ones only. Linux: `lsblk -J -p` with RO and FSTYPE (device paths
// as the kernel names them, /dev/mapper/… for LUKS and LVM; /proc/mounts as the fallback and for
// read-only mounts); Windows: logical disks that are removable or on a USB disk, via PowerShell
// by its full system path; macOS: the /Volumes entries `diskutil info -plist` calls external,
// physical and writable. The parsers are pure functions tested with fixtures; `listRemovableDrives`
// runs the commands.
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
  ro?: boolean | null | undefined;
  type?: string | null | undefined;
  fstype?: string | null | undefined;
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
    ro: LsblkBool,
    type: LsblkStr,
    fstype: LsblkStr,
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
/** Filesystems that cannot be written (optical media, images). */
const READ_ONLY_FILESYSTEMS = new Set(['iso9660', 'squashfs', 'erofs', 'cramfs']);

/** The lsblk command (`-p`: full device paths, right for /dev/mapper/… volumes). */
export const LSBLK_ARGS = ['-J', '-p', '-o', 'NAME,RM,RO,TRAN,TYPE,FSTYPE,MOUNTPOINT,LABEL,SIZE'];

function usableMount(m: string | null | undefined): m is string {
  return !!m && m.startsWith('/') && !SYSTEM_MOUNTS.has(m) && !m.startsWith('/snap/');
}

/**
 * Mounted, writable filesystems on removable or USB block devices, from the JSON of
 * `lsblk` with LSBLK_ARGS. Partitions and the volumes on them (LUKS, LVM) inherit removability,
 * transport and read-only-ness from their disk (lsblk reports TRAN only on the disk); read-only
 * devices (a locked SD card) and read-only filesystems (a CD) are left out. Names are device paths
 * with `-p`; without it (older fixtures) `/dev/` is put in front. Throws when the JSON does not
 * have lsblk's shape.
 */
export function parseLsblk(json: unknown): RemovableDrive[] {
  const out = LsblkOutput.parse(typeof json === 'string' ? JSON.parse(json) : json);
  const drives: RemovableDrive[] = [];
  const seen = new Set<string>();
  const walk = (d: LsblkDevice, inherited: { removable: boolean; tran: string | null; ro: boolean }) => {
    const tran = d.tran ?? inherited.tran;
    const removable = inherited.removable || d.rm === true || (tran !== null && REMOVABLE_TRANSPORTS.has(tran));
    const ro = inherited.ro || d.ro === true;
    const writable = !ro && !(d.fstype && READ_ONLY_FILESYSTEMS.has(d.fstype));
    const mounts = [d.mountpoint, ...(d.mountpoints ?? [])];
    for (const m of mounts) {
      if (!removable || !writable || !usableMount(m) || seen.has(m)) continue;
      seen.add(m);
      drives.push({
        mountpoint: m,
        label: d.label ?? null,
        device: d.name.startsWith('/') ? d.name : `/dev/${d.name}`,
        size: d.size === null || d.size === undefined ? null : String(d.size),
        transport: tran,
      });
    }
    for (const c of d.children ?? []) walk(c, { removable, tran, ro });
  };
  for (const d of out.blockdevices) walk(d, { removable: false, tran: null, ro: false });
  return drives;
}

/** Mount points mounted read-only, from /proc/mounts (a writable device mounted `ro`). */
export function readOnlyMounts(procMounts: string): Set<string> {
  const out = new Set<string>();
  for (const line of procMounts.split('\n')) {
    const [, mnt, , opts] = line.trim().split(/\s+/);
    if (mnt && opts && opts.split(',').includes('ro')) out.add(unescapeMount(mnt));
  }
  return out;
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
    const [dev, mnt, , opts] = line.trim().split(/\s+/);
    if (!dev || !mnt || !dev.startsWith('/dev/')) continue;
    if (opts?.split(',').includes('ro')) continue;
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
  FileSystem: z.string().nullable().optional(),
  /** Win32_LogicalDisk.Access: 0 unknown, 1 readable, 2 writeable, 3 read/write, 4 write once. */
  Access: z.number().nullable().optional(),
  /** Computed by WINDOWS_DRIVES_SCRIPT: the logical disk is on a disk drive attached by USB. */
  OnUsb: z.boolean().nullable().optional(),
});

/**
 * Logical disks that are removable (DriveType 2) or on a USB disk drive (USB hard disks and many
 * sticks report as fixed, DriveType 3), with what decides whether they can be written; one JSON
 * object, or an array of them. Run by PowerShell (full path: WINDOWS_POWERSHELL).
 */
export const WINDOWS_DRIVES_SCRIPT = [
  "$usb = @(Get-CimInstance Win32_DiskDrive | Where-Object { $_.InterfaceType -eq 'USB' -or $_.MediaType -like 'Removable*' -or $_.MediaType -like 'External*' } |",
  '  ForEach-Object { Get-CimAssociatedInstance -InputObject $_ -ResultClassName Win32_DiskPartition } |',
  '  ForEach-Object { Get-CimAssociatedInstance -InputObject $_ -ResultClassName Win32_LogicalDisk } | ForEach-Object { $_.DeviceID });',
  'Get-CimInstance Win32_LogicalDisk | Where-Object { $_.DriveType -eq 2 -or $usb -contains $_.DeviceID } |',
  "  Select-Object DeviceID,DriveType,VolumeName,Size,FileSystem,Access,@{n='OnUsb';e={$usb -contains $_.DeviceID}} | ConvertTo-Json -Compress",
].join('\n');

/** PowerShell by its full path under the system root, never by a name looked up on PATH. */
export function windowsPowerShell(systemRoot: string | undefined): string {
  const root = systemRoot && /^[A-Za-z]:\\[^"*?<>|\r\n]*$/.test(systemRoot) ? systemRoot.replace(/\\+$/, '') : 'C:\\Windows';
  return `${root}\\System32\\WindowsPowerShell\\v1.0\\powershell.exe`;
}

/**
 * Output of WINDOWS_DRIVES_SCRIPT. Kept: removable (2) or on a USB disk, with a filesystem and a
 * size (an empty card reader has neither), not read-only (Access 1).
 */
export function parseWindowsLogicalDisks(json: string): RemovableDrive[] {
  const text = json.trim();
  if (!text) return [];
  const parsed: unknown = JSON.parse(text);
  const list = z.array(WinDisk).parse(Array.isArray(parsed) ? parsed : [parsed]);
  return list
    .filter((d) => d.DriveType === 2 || d.OnUsb === true)
    .filter((d) => /^[A-Za-z]:$/.test(d.DeviceID))
    .filter((d) => !!d.FileSystem && d.Size !== null && d.Size !== undefined && Number(d.Size) > 0)
    .filter((d) => d.Access !== 1)
    .map((d) => ({
      mountpoint: `${d.DeviceID}\\`,
      label: d.VolumeName || null,
      device: d.DeviceID,
      size: formatBytes(Number(d.Size)),
      transport: d.OnUsb ? 'usb' : null,
    }));
}

/**
 * macOS: the entries of /Volumes that are candidates (not the system volume, the one that
 * resolves to "/", nor hidden or system helper volumes); each is then asked about with diskutil.
 */
export function parseMacVolumes(entries: Array<{ name: string; realPath: string }>): RemovableDrive[] {
  return entries
    .filter((e) => e.realPath !== '/' && !e.name.startsWith('.') && e.name !== 'Recovery' && e.name !== 'Preboot')
    .map((e) => ({ mountpoint: path.posix.join('/Volumes', e.name), label: e.name, device: null, size: null, transport: null }));
}

export const DISKUTIL = '/usr/sbin/diskutil';

type PlistValue = string | number | boolean;

/** The top-level keys of a plist dictionary with string, integer, real or boolean values (nested
 * dictionaries and arrays are skipped). Throws when it is no plist dictionary. */
export function parsePlistDict(xml: string): Record<string, PlistValue> {
  const start = xml.indexOf('<dict>');
  if (start < 0 || !/<plist[\s>]/.test(xml)) throw new Error('not a plist dictionary');
  const out: Record<string, PlistValue> = {};
  const tokens = /<(\/?)(dict|array|key|string|integer|real|true|false|data|date)(\/?)>([^<]*)/g;
  tokens.lastIndex = start + '<dict>'.length;
  let depth = 0;
  let key: string | null = null;
  const unescape = (t: string) => t.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  for (let m = tokens.exec(xml); m; m = tokens.exec(xml)) {
    const [, close, tag, selfClose, text] = m;
    if (tag === 'dict' || tag === 'array') {
      if (selfClose) {
        if (depth === 0) key = null;
        continue;
      }
      if (close) {
        if (depth === 0) break; // the end of the top-level dictionary
        depth--;
        if (depth === 0) key = null;
      } else depth++;
      continue;
    }
    if (depth > 0 || close) continue;
    if (tag === 'key') key = unescape(text ?? '');
    else if (key !== null) {
      if (tag === 'true' || tag === 'false') out[key] = tag === 'true';
      else if (tag === 'integer' || tag === 'real') out[key] = Number(text);
      else if (tag === 'string') out[key] = unescape(text ?? '');
      key = null;
    }
  }
  return out;
}

/**
 * One volume from `diskutil info -plist /Volumes/NAME`: kept when it is external (not Internal),
 * physical (not a disk image or a virtual volume) and writable. Network shares are not disks
 * (diskutil fails on them, so they never get here).
 */
export function macVolumeFromDiskutil(mountpoint: string, info: Record<string, PlistValue>): RemovableDrive | null {
  if (info.Internal !== false) return null;
  if (info.WritableVolume !== true) return null;
  if (info.VirtualOrPhysical === 'Virtual' || info.BusProtocol === 'Disk Image') return null;
  if (typeof info.DeviceNode !== 'string') return null;
  const size = typeof info.TotalSize === 'number' ? info.TotalSize : typeof info.Size === 'number' ? info.Size : null;
  return {
    mountpoint,
    label: typeof info.VolumeName === 'string' && info.VolumeName ? info.VolumeName : null,
    device: info.DeviceNode,
    size: size === null ? null : formatBytes(size),
    transport: typeof info.BusProtocol === 'string' ? info.BusProtocol.toLowerCase() : null,
  };
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
  /** Windows: %SystemRoot% (PowerShell is run from under it). */
  systemRoot?: string | undefined;
  /** Run a program without a shell; resolves to its stdout. */
  run: (file: string, args: string[]) => Promise<string>;
  readFile: (file: string) => Promise<string>;
  readdir: (dir: string) => Promise<string[]>;
  realpath: (p: string) => Promise<string>;
}

const execFileP = promisify(execFile);

export const realDriveProbeDeps: DriveProbeDeps = {
  platform: process.platform,
  systemRoot: process.env.SystemRoot,
  run: async (file, args) => (await execFileP(file, args, { timeout: 5000, maxBuffer: 4 * 1024 * 1024, windowsHide: true })).stdout,
  readFile: (f) => fs.readFile(f, 'utf8'),
  readdir: (d) => fs.readdir(d),
  realpath: (p) => fs.realpath(p),
};

/** The removable drives mounted now. Never throws: an empty list when nothing can be determined. */
export async function listRemovableDrives(deps: DriveProbeDeps = realDriveProbeDeps, log: (line: string) => void = () => {}): Promise<RemovableDrive[]> {
  try {
    if (deps.platform === 'linux') {
      let fromLsblk: RemovableDrive[] | null = null;
      try {
        fromLsblk = parseLsblk(await deps.run('lsblk', LSBLK_ARGS));
      } catch (e) {
        log(`drives: lsblk failed (${(e as Error).message}); reading /proc/mounts`);
      }
      if (fromLsblk) {
        // A writable device can still be mounted read-only.
        const ro = await deps.readFile('/proc/mounts').then(readOnlyMounts, () => new Set<string>());
        return fromLsblk.filter((d) => !ro.has(d.mountpoint));
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
      const out = await deps.run(windowsPowerShell(deps.systemRoot), ['-NoProfile', '-NonInteractive', '-Command', WINDOWS_DRIVES_SCRIPT]);
      return parseWindowsLogicalDisks(out);
    }
    if (deps.platform === 'darwin') {
      const names = await deps.readdir('/Volumes');
      const entries: Array<{ name: string; realPath: string }> = [];
      for (const name of names) entries.push({ name, realPath: await deps.realpath(path.posix.join('/Volumes', name)).catch(() => '/') });
      const drives: RemovableDrive[] = [];
      for (const candidate of parseMacVolumes(entries)) {
        try {
          const d = macVolumeFromDiskutil(candidate.mountpoint, parsePlistDict(await deps.run(DISKUTIL, ['info', '-plist', candidate.mountpoint])));
          if (d) drives.push(d);
        } catch (e) {
          log(`drives: diskutil info ${candidate.mountpoint} failed (${(e as Error).message}); not offered`);
        }
      }
      return drives;
    }
    return [];
  } catch (e) {
    log(`drives: could not list removable drives: ${(e as Error).message}`);
    return [];
  }
}
