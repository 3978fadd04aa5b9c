// Removable-drive listing: the parsers against fixtures of what lsblk, /proc/mounts, PowerShell
// and /Volumes give, and the probe with injected commands.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatBytes,
  listRemovableDrives,
  parseLsblk,
  parseMacVolumes,
  parseProcMounts,
  parseWindowsLogicalDisks,
  sysBlockName,
  type DriveProbeDeps,
} from '../../main/lib/drives.js';

// `lsblk -J -o NAME,RM,TRAN,MOUNTPOINT,LABEL,SIZE` (util-linux 2.38) on a workstation with an
// NVMe system disk, a USB stick, an SD card, a USB hard disk (not "removable" but on USB),
// an unmounted USB stick, and a CD-ROM.
const LSBLK_WORKSTATION = `{
   "blockdevices": [
      {"name": "sda", "rm": true, "tran": "usb", "mountpoint": null, "label": null, "size": "14.9G",
         "children": [
            {"name": "sda1", "rm": true, "tran": null, "mountpoint": "/media/alice/KINGSTON", "label": "KINGSTON", "size": "14.9G"}
         ]
      },
      {"name": "sdb", "rm": false, "tran": "usb", "mountpoint": null, "label": null, "size": "931.5G",
         "children": [
            {"name": "sdb1", "rm": false, "tran": null, "mountpoint": "/media/alice/Backup Drive", "label": "Backup Drive", "size": "931.5G"}
         ]
      },
      {"name": "sdc", "rm": true, "tran": "usb", "mountpoint": null, "label": null, "size": "7.5G",
         "children": [
            {"name": "sdc1", "rm": true, "tran": null, "mountpoint": null, "label": "UNMOUNTED", "size": "7.5G"}
         ]
      },
      {"name": "sr0", "rm": true, "tran": "sata", "mountpoint": null, "label": null, "size": "1024M"},
      {"name": "mmcblk0", "rm": false, "tran": null, "mountpoint": null, "label": null, "size": "29.7G",
         "children": [
            {"name": "mmcblk0p1", "rm": false, "tran": null, "mountpoint": "/run/media/alice/SDCARD", "label": "SDCARD", "size": "29.7G"}
         ]
      },
      {"name": "nvme0n1", "rm": false, "tran": "nvme", "mountpoint": null, "label": null, "size": "476.9G",
         "children": [
            {"name": "nvme0n1p1", "rm": false, "tran": null, "mountpoint": "/boot/efi", "label": null, "size": "512M"},
            {"name": "nvme0n1p2", "rm": false, "tran": null, "mountpoint": "/", "label": null, "size": "460G"},
            {"name": "nvme0n1p3", "rm": false, "tran": null, "mountpoint": "[SWAP]", "label": null, "size": "16G"}
         ]
      }
   ]
}`;

// The same shape from an older lsblk (util-linux < 2.33): booleans as "1"/"0".
const LSBLK_OLD = {
  blockdevices: [
    {
      name: 'sdb',
      rm: '1',
      tran: 'usb',
      mountpoint: null,
      label: null,
      size: '3.8G',
      children: [{ name: 'sdb1', rm: '1', tran: null, mountpoint: '/media/bob/STICK', label: 'STICK', size: '3.8G' }],
    },
    { name: 'sda', rm: '0', tran: 'sata', mountpoint: null, label: null, size: '238.5G', children: [{ name: 'sda1', rm: '0', tran: null, mountpoint: '/', label: null, size: '238.5G' }] },
  ],
};

// A server booted from a USB stick: its system mounts must never be offered; an LVM volume on a
// USB disk (nested children) mounted under /mnt is.
const LSBLK_SERVER = {
  blockdevices: [
    {
      name: 'sda',
      rm: true,
      tran: 'usb',
      mountpoint: null,
      label: null,
      size: '28.7G',
      children: [
        { name: 'sda1', rm: true, tran: null, mountpoint: '/boot', label: null, size: '512M' },
        { name: 'sda2', rm: true, tran: null, mountpoint: '/', label: null, size: '28.2G' },
      ],
    },
    {
      name: 'sdb',
      rm: false,
      tran: 'usb',
      mountpoint: null,
      label: null,
      size: '1.8T',
      children: [
        {
          name: 'sdb1',
          rm: false,
          tran: null,
          mountpoint: null,
          label: null,
          size: '1.8T',
          children: [{ name: 'vgusb-export', rm: false, tran: null, mountpoint: '/mnt/export', label: 'export', size: '1.8T' }],
        },
      ],
    },
  ],
};

// What this kind of machine (a VM) reports: no removable drive.
const LSBLK_VM = `{"blockdevices": [
  {"name": "zram0", "rm": false, "tran": null, "mountpoint": null, "label": null, "size": "0B"},
  {"name": "vda", "rm": false, "tran": null, "mountpoint": "/", "label": null, "size": "256G"}
]}`;

const PROC_MOUNTS = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
/dev/nvme0n1p1 /boot/efi vfat rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev 0 0
/dev/sda1 /media/alice/KINGSTON vfat rw,nosuid,nodev,relatime,uid=1000 0 0
/dev/sdb1 /media/alice/Backup\\040Drive ext4 rw,nosuid,nodev,relatime 0 0
/dev/sdd1 /srv/usb exfat rw,relatime 0 0
/dev/sde1 /srv/data xfs rw,relatime 0 0
/dev/loop0 /snap/core/123 squashfs ro 0 0
`;

describe('shell drives: lsblk', () => {
  test('mounted removable and USB filesystems on a workstation', () => {
    assert.deepEqual(parseLsblk(LSBLK_WORKSTATION), [
      { mountpoint: '/media/alice/KINGSTON', label: 'KINGSTON', device: '/dev/sda1', size: '14.9G', transport: 'usb' },
      { mountpoint: '/media/alice/Backup Drive', label: 'Backup Drive', device: '/dev/sdb1', size: '931.5G', transport: 'usb' },
    ]);
  });

  test('older lsblk with "1"/"0" flags', () => {
    assert.deepEqual(parseLsblk(LSBLK_OLD), [{ mountpoint: '/media/bob/STICK', label: 'STICK', device: '/dev/sdb1', size: '3.8G', transport: 'usb' }]);
  });

  test('system mounts on a USB boot disk are never offered; nested volumes on a USB disk are', () => {
    assert.deepEqual(parseLsblk(LSBLK_SERVER), [{ mountpoint: '/mnt/export', label: 'export', device: '/dev/vgusb-export', size: '1.8T', transport: 'usb' }]);
  });

  test('a machine without removable drives gives an empty list', () => {
    assert.deepEqual(parseLsblk(LSBLK_VM), []);
  });

  test('the MOUNTPOINTS array of newer lsblk is read too, each mount once', () => {
    const json = {
      blockdevices: [
        { name: 'sdf', rm: true, tran: 'usb', mountpoints: [null], size: '8G', children: [{ name: 'sdf1', rm: true, mountpoints: ['/media/u/A', '/media/u/A', '/mnt/a2'], label: 'A', size: 8e9 }] },
      ],
    };
    assert.deepEqual(
      parseLsblk(json).map((d) => [d.mountpoint, d.size]),
      [
        ['/media/u/A', '8000000000'],
        ['/mnt/a2', '8000000000'],
      ],
    );
  });

  test('output that is not lsblk JSON is an error, not an empty list', () => {
    assert.throws(() => parseLsblk('not json'));
    assert.throws(() => parseLsblk({ devices: [] }));
    assert.throws(() => parseLsblk({ blockdevices: [{ rm: true }] }));
  });
});

describe('shell drives: /proc/mounts fallback', () => {
  test('block devices that /sys says are removable, or mounted under /media or /run/media', () => {
    const removable = new Map([
      ['/dev/sda1', true],
      ['/dev/sdd1', true],
      ['/dev/sde1', false],
    ]);
    assert.deepEqual(parseProcMounts(PROC_MOUNTS, (d) => removable.get(d)), [
      { mountpoint: '/media/alice/KINGSTON', label: null, device: '/dev/sda1', size: null, transport: null },
      { mountpoint: '/media/alice/Backup Drive', label: null, device: '/dev/sdb1', size: null, transport: null },
      { mountpoint: '/srv/usb', label: null, device: '/dev/sdd1', size: null, transport: null },
    ]);
  });

  test('without /sys information only /media and /run/media mounts are offered', () => {
    assert.deepEqual(
      parseProcMounts(PROC_MOUNTS).map((d) => d.mountpoint),
      ['/media/alice/KINGSTON', '/media/alice/Backup Drive'],
    );
  });

  test('whole-disk names for /sys/block', () => {
    assert.equal(sysBlockName('/dev/sdb1'), 'sdb');
    assert.equal(sysBlockName('/dev/sdb'), 'sdb');
    assert.equal(sysBlockName('/dev/mmcblk0p1'), 'mmcblk0');
    assert.equal(sysBlockName('/dev/nvme0n1p2'), 'nvme0n1');
    assert.equal(sysBlockName('/dev/sr0'), 'sr0');
    assert.equal(sysBlockName('/dev/mapper/vg-lv'), null);
  });
});

describe('shell drives: Windows and macOS', () => {
  test('Windows removable logical disks from PowerShell JSON (one object or an array)', () => {
    const one = '{"DeviceID":"E:","DriveType":2,"VolumeName":"KINGSTON","Size":15502147584}';
    assert.deepEqual(parseWindowsLogicalDisks(one), [{ mountpoint: 'E:\\', label: 'KINGSTON', device: 'E:', size: '14.4G', transport: null }]);
    const many = '[{"DeviceID":"E:","DriveType":2,"VolumeName":"","Size":null},{"DeviceID":"C:","DriveType":3,"VolumeName":"OS","Size":1}]';
    assert.deepEqual(parseWindowsLogicalDisks(many), [{ mountpoint: 'E:\\', label: null, device: 'E:', size: null, transport: null }]);
    assert.deepEqual(parseWindowsLogicalDisks(''), []);
    assert.throws(() => parseWindowsLogicalDisks('[{"Nope":1}]'));
  });

  test('macOS volumes except the system volume', () => {
    assert.deepEqual(
      parseMacVolumes([
        { name: 'Macintosh HD', realPath: '/' },
        { name: 'USBSTICK', realPath: '/Volumes/USBSTICK' },
        { name: '.timemachine', realPath: '/Volumes/.timemachine' },
      ]),
      [{ mountpoint: '/Volumes/USBSTICK', label: 'USBSTICK', device: null, size: null, transport: null }],
    );
  });

  test('formatBytes', () => {
    assert.equal(formatBytes(512), '512B');
    assert.equal(formatBytes(1536), '1.5K');
    assert.equal(formatBytes(8 * 1024 ** 3), '8.0G');
    assert.equal(formatBytes(Number.NaN), null);
  });
});

describe('shell drives: probing', () => {
  function deps(over: Partial<DriveProbeDeps>): { deps: DriveProbeDeps; ran: string[][] } {
    const ran: string[][] = [];
    const run =
      over.run ??
      (async () => {
        throw new Error('not here');
      });
    const d: DriveProbeDeps = {
      platform: 'linux',
      readFile: async () => {
        throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      },
      readdir: async () => [],
      realpath: async (p) => p,
      ...over,
      run: async (file, args) => {
        ran.push([file, ...args]);
        return run(file, args);
      },
    };
    return { deps: d, ran };
  }

  test('Linux runs lsblk with the documented columns', async () => {
    const { deps: d, ran } = deps({ run: async () => LSBLK_WORKSTATION });
    const drives = await listRemovableDrives(d);
    assert.deepEqual(ran, [['lsblk', '-J', '-o', 'NAME,RM,TRAN,MOUNTPOINT,LABEL,SIZE']]);
    assert.equal(drives.length, 2);
  });

  test('Linux falls back to /proc/mounts and /sys/block when lsblk fails', async () => {
    const files: Record<string, string> = { '/proc/mounts': PROC_MOUNTS, '/sys/block/sdd/removable': '1\n', '/sys/block/sde/removable': '0\n' };
    const logs: string[] = [];
    const { deps: d } = deps({
      run: async () => {
        throw new Error('spawn lsblk ENOENT');
      },
      readFile: async (f) => {
        if (f in files) return files[f]!;
        throw new Error(`ENOENT ${f}`);
      },
    });
    const drives = await listRemovableDrives(d, (l) => logs.push(l));
    assert.deepEqual(
      drives.map((x) => x.mountpoint),
      ['/media/alice/KINGSTON', '/media/alice/Backup Drive', '/srv/usb'],
    );
    assert.match(logs[0] ?? '', /lsblk failed \(spawn lsblk ENOENT\)/);
  });

  test('never throws: nothing determinable → empty list and a log line', async () => {
    const logs: string[] = [];
    const { deps: d } = deps({});
    assert.deepEqual(await listRemovableDrives(d, (l) => logs.push(l)), []);
    assert.ok(logs.some((l) => /could not list removable drives/.test(l)));
  });

  test('Windows asks PowerShell for removable logical disks', async () => {
    const { deps: d, ran } = deps({ platform: 'win32', run: async () => '{"DeviceID":"F:","DriveType":2,"VolumeName":"AUDIT","Size":1024}' });
    assert.deepEqual(await listRemovableDrives(d), [{ mountpoint: 'F:\\', label: 'AUDIT', device: 'F:', size: '1.0K', transport: null }]);
    assert.equal(ran[0]![0], 'powershell.exe');
    assert.ok(ran[0]!.some((a) => a.includes('DriveType=2')));
  });

  test('macOS lists /Volumes without the system volume', async () => {
    const { deps: d } = deps({
      platform: 'darwin',
      readdir: async () => ['Macintosh HD', 'AUDIT'],
      realpath: async (p) => (p === '/Volumes/Macintosh HD' ? '/' : p),
    });
    assert.deepEqual(
      (await listRemovableDrives(d)).map((x) => x.mountpoint),
      ['/Volumes/AUDIT'],
    );
  });

  test('other platforms: empty list', async () => {
    const { deps: d } = deps({ platform: 'freebsd' });
    assert.deepEqual(await listRemovableDrives(d), []);
  });
});
