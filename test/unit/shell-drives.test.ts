// Removable-drive listing: the parsers against fixtures of what lsblk, /proc/mounts, PowerShell
// and /Volumes give, and the probe with injected commands.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DISKUTIL,
  formatBytes,
  listRemovableDrives,
  LSBLK_ARGS,
  macVolumeFromDiskutil,
  parseLsblk,
  parsePlistDict,
  readOnlyMounts,
  windowsPowerShell,
  WINDOWS_DRIVES_SCRIPT,
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

// \`lsblk -J -p -o NAME,RM,RO,TRAN,TYPE,FSTYPE,MOUNTPOINT,LABEL,SIZE\` (util-linux 2.38, recorded on
// this kind of VM): full device paths, RO and FSTYPE.
const LSBLK_P_VM = `{
   "blockdevices": [
      {"name": "/dev/zram0", "rm": false, "ro": false, "tran": null, "type": "disk", "fstype": null, "mountpoint": null, "label": null, "size": "0B"},
      {"name": "/dev/vda", "rm": false, "ro": false, "tran": null, "type": "disk", "fstype": null, "mountpoint": "/", "label": null, "size": "256G"}
   ]
}`;

// The same columns on a workstation: a LUKS-encrypted USB stick (the mounted volume is
// /dev/mapper/…, not /dev/NAME), a write-locked SD card (RO), a CD in a USB drive (iso9660), a
// normal stick, and a stick whose filesystem is mounted read-only.
const LSBLK_P_WORKSTATION = {
  blockdevices: [
    {
      name: '/dev/sda', rm: true, ro: false, tran: 'usb', type: 'disk', fstype: null, mountpoint: null, label: null, size: '28.9G',
      children: [
        {
          name: '/dev/sda1', rm: true, ro: false, tran: null, type: 'part', fstype: 'crypto_LUKS', mountpoint: null, label: null, size: '28.9G',
          children: [
            { name: '/dev/mapper/luks-3f2a9c1e', rm: false, ro: false, tran: null, type: 'crypt', fstype: 'ext4', mountpoint: '/media/alice/SECURE', label: 'SECURE', size: '28.9G' },
          ],
        },
      ],
    },
    {
      name: '/dev/mmcblk0', rm: true, ro: true, tran: null, type: 'disk', fstype: null, mountpoint: null, label: null, size: '29.7G',
      children: [{ name: '/dev/mmcblk0p1', rm: true, ro: true, tran: null, type: 'part', fstype: 'exfat', mountpoint: '/media/alice/LOCKED', label: 'LOCKED', size: '29.7G' }],
    },
    { name: '/dev/sr0', rm: true, ro: false, tran: 'usb', type: 'rom', fstype: 'iso9660', mountpoint: '/media/alice/INSTALL_CD', label: 'INSTALL_CD', size: '650M' },
    {
      name: '/dev/sdb', rm: true, ro: false, tran: 'usb', type: 'disk', fstype: null, mountpoint: null, label: null, size: '14.9G',
      children: [{ name: '/dev/sdb1', rm: true, ro: false, tran: null, type: 'part', fstype: 'vfat', mountpoint: '/media/alice/KINGSTON', label: 'KINGSTON', size: '14.9G' }],
    },
    {
      name: '/dev/sdc', rm: true, ro: false, tran: 'usb', type: 'disk', fstype: null, mountpoint: null, label: null, size: '7.5G',
      children: [{ name: '/dev/sdc1', rm: true, ro: false, tran: null, type: 'part', fstype: 'vfat', mountpoint: '/media/alice/MOUNTED_RO', label: 'MOUNTED_RO', size: '7.5G' }],
    },
  ],
};
const PROC_MOUNTS_P = `/dev/vda / ext4 rw,relatime 0 0
/dev/mapper/luks-3f2a9c1e /media/alice/SECURE ext4 rw,nosuid,nodev,relatime 0 0
/dev/mmcblk0p1 /media/alice/LOCKED exfat ro,nosuid,nodev,relatime 0 0
/dev/sr0 /media/alice/INSTALL_CD iso9660 ro,nosuid,nodev,relatime 0 0
/dev/sdb1 /media/alice/KINGSTON vfat rw,nosuid,nodev,relatime 0 0
/dev/sdc1 /media/alice/MOUNTED_RO vfat ro,nosuid,nodev,relatime 0 0
`;

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

  test('-p output: LUKS volumes get their /dev/mapper path; read-only devices and filesystems are left out', () => {
    assert.deepEqual(parseLsblk(LSBLK_P_WORKSTATION), [
      { mountpoint: '/media/alice/SECURE', label: 'SECURE', device: '/dev/mapper/luks-3f2a9c1e', size: '28.9G', transport: 'usb' },
      { mountpoint: '/media/alice/KINGSTON', label: 'KINGSTON', device: '/dev/sdb1', size: '14.9G', transport: 'usb' },
      { mountpoint: '/media/alice/MOUNTED_RO', label: 'MOUNTED_RO', device: '/dev/sdc1', size: '7.5G', transport: 'usb' },
    ]);
    assert.deepEqual(parseLsblk(LSBLK_P_VM), []);
    assert.deepEqual([...readOnlyMounts(PROC_MOUNTS_P)], ['/media/alice/LOCKED', '/media/alice/INSTALL_CD', '/media/alice/MOUNTED_RO']);
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
    const one = '{"DeviceID":"E:","DriveType":2,"VolumeName":"KINGSTON","Size":15502147584,"FileSystem":"FAT32","Access":0,"OnUsb":true}';
    assert.deepEqual(parseWindowsLogicalDisks(one), [{ mountpoint: 'E:\\', label: 'KINGSTON', device: 'E:', size: '14.4G', transport: 'usb' }]);
    // An empty card reader (no size, no filesystem), a fixed internal disk, a USB hard disk that
    // reports as fixed, a write-protected stick (Access 1), an SD card in a built-in reader.
    const many = JSON.stringify([
      { DeviceID: 'D:', DriveType: 2, VolumeName: null, Size: null, FileSystem: null, Access: null, OnUsb: false },
      { DeviceID: 'C:', DriveType: 3, VolumeName: 'OS', Size: 511_000_000_000, FileSystem: 'NTFS', Access: 0, OnUsb: false },
      { DeviceID: 'F:', DriveType: 3, VolumeName: 'Backup Drive', Size: 1_000_202_273_280, FileSystem: 'NTFS', Access: 0, OnUsb: true },
      { DeviceID: 'G:', DriveType: 2, VolumeName: 'LOCKED', Size: 8_000_000_000, FileSystem: 'FAT32', Access: 1, OnUsb: true },
      { DeviceID: 'H:', DriveType: 2, VolumeName: 'SDCARD', Size: 31_902_400_512, FileSystem: 'exFAT', Access: 0, OnUsb: false },
    ]);
    assert.deepEqual(parseWindowsLogicalDisks(many), [
      { mountpoint: 'F:\\', label: 'Backup Drive', device: 'F:', size: '931.5G', transport: 'usb' },
      { mountpoint: 'H:\\', label: 'SDCARD', device: 'H:', size: '29.7G', transport: null },
    ]);
    assert.deepEqual(parseWindowsLogicalDisks(''), []);
    assert.throws(() => parseWindowsLogicalDisks('[{"Nope":1}]'));
  });

  test('PowerShell by its full path under the system root, never a bare name', () => {
    assert.equal(windowsPowerShell('C:\\Windows'), 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
    assert.equal(windowsPowerShell('D:\\WINNT\\'), 'D:\\WINNT\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
    for (const bad of [undefined, '', 'Windows', '\\\\server\\share', 'C:\\x"y']) {
      assert.equal(windowsPowerShell(bad), 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe', String(bad));
    }
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

  test('diskutil info -plist: external, physical, writable volumes only', () => {
    const plist = (fields: string) => `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>APFSContainerReference</key>
	<string>disk5</string>
	<key>Stores</key>
	<array>
		<dict><key>Internal</key><true/></dict>
	</array>
${fields}
</dict>
</plist>`;
    const usb = parsePlistDict(
      plist(`	<key>BusProtocol</key><string>USB</string>
	<key>DeviceNode</key><string>/dev/disk4s1</string>
	<key>Internal</key><false/>
	<key>RemovableMedia</key><true/>
	<key>TotalSize</key><integer>15502147584</integer>
	<key>VirtualOrPhysical</key><string>Physical</string>
	<key>VolumeName</key><string>AUDIT &amp; BACKUP</string>
	<key>WritableVolume</key><true/>`),
    );
    assert.equal(usb.Internal, false, 'the nested Internal in the array is skipped');
    assert.equal(usb.VolumeName, 'AUDIT & BACKUP');
    assert.deepEqual(macVolumeFromDiskutil('/Volumes/AUDIT & BACKUP', usb), {
      mountpoint: '/Volumes/AUDIT & BACKUP',
      label: 'AUDIT & BACKUP',
      device: '/dev/disk4s1',
      size: '14.4G',
      transport: 'usb',
    });
    const base = { BusProtocol: 'USB', DeviceNode: '/dev/disk4s1', Internal: false, VirtualOrPhysical: 'Physical', WritableVolume: true };
    assert.equal(macVolumeFromDiskutil('/Volumes/X', { ...base, Internal: true }), null, 'an internal second disk');
    assert.equal(macVolumeFromDiskutil('/Volumes/X', { ...base, WritableVolume: false }), null, 'read-only (a locked card, an NTFS disk)');
    assert.equal(macVolumeFromDiskutil('/Volumes/X', { ...base, BusProtocol: 'Disk Image', VirtualOrPhysical: 'Virtual' }), null, 'a mounted .dmg');
    assert.equal(macVolumeFromDiskutil('/Volumes/X', { ...base, VirtualOrPhysical: 'Virtual' }), null, 'a virtual volume');
    assert.equal(macVolumeFromDiskutil('/Volumes/X', { ...base, Internal: undefined as unknown as boolean }), null, 'unknown: not offered');
    assert.throws(() => parsePlistDict('Could not find disk: /Volumes/share'));
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
    assert.deepEqual(ran, [['lsblk', '-J', '-p', '-o', 'NAME,RM,RO,TRAN,TYPE,FSTYPE,MOUNTPOINT,LABEL,SIZE']]);
    assert.deepEqual(ran[0]!.slice(1), LSBLK_ARGS);
    assert.equal(drives.length, 2);
  });

  test('Linux leaves out filesystems /proc/mounts says are mounted read-only', async () => {
    const { deps: d } = deps({
      run: async () => JSON.stringify(LSBLK_P_WORKSTATION),
      readFile: async (f) => {
        if (f === '/proc/mounts') return PROC_MOUNTS_P;
        throw new Error(`ENOENT ${f}`);
      },
    });
    assert.deepEqual(
      (await listRemovableDrives(d)).map((x) => [x.mountpoint, x.device]),
      [
        ['/media/alice/SECURE', '/dev/mapper/luks-3f2a9c1e'],
        ['/media/alice/KINGSTON', '/dev/sdb1'],
      ],
    );
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

  test('Windows asks PowerShell, by its full path, for removable and USB logical disks', async () => {
    const { deps: d, ran } = deps({
      platform: 'win32',
      systemRoot: 'C:\\WINDOWS',
      run: async () => '{"DeviceID":"F:","DriveType":2,"VolumeName":"AUDIT","Size":1024,"FileSystem":"FAT32","Access":0,"OnUsb":true}',
    });
    assert.deepEqual(await listRemovableDrives(d), [{ mountpoint: 'F:\\', label: 'AUDIT', device: 'F:', size: '1.0K', transport: 'usb' }]);
    assert.equal(ran[0]![0], 'C:\\WINDOWS\\System32\\WindowsPowerShell\\v1.0\\powershell.exe');
    assert.equal(ran[0]![ran[0]!.length - 1], WINDOWS_DRIVES_SCRIPT);
    assert.match(WINDOWS_DRIVES_SCRIPT, /InterfaceType -eq 'USB'/);
    assert.match(WINDOWS_DRIVES_SCRIPT, /DriveType -eq 2/);
  });

  test('macOS asks diskutil about each /Volumes entry but the system volume; failures are left out', async () => {
    const info: Record<string, string> = {
      '/Volumes/AUDIT': `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>BusProtocol</key><string>USB</string><key>DeviceNode</key><string>/dev/disk4s1</string><key>Internal</key><false/><key>VirtualOrPhysical</key><string>Physical</string><key>VolumeName</key><string>AUDIT</string><key>WritableVolume</key><true/></dict></plist>`,
      '/Volumes/Installer': `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>BusProtocol</key><string>Disk Image</string><key>DeviceNode</key><string>/dev/disk6s1</string><key>Internal</key><false/><key>VirtualOrPhysical</key><string>Virtual</string><key>WritableVolume</key><false/></dict></plist>`,
    };
    const logs: string[] = [];
    const { deps: d, ran } = deps({
      platform: 'darwin',
      readdir: async () => ['Macintosh HD', 'AUDIT', 'Installer', 'share', '.timemachine'],
      realpath: async (p) => (p === '/Volumes/Macintosh HD' ? '/' : p),
      run: async (_file, args) => {
        const v = info[args[2]!];
        if (!v) throw new Error(`Could not find disk: ${args[2]}`);
        return v;
      },
    });
    assert.deepEqual(
      (await listRemovableDrives(d, (l) => logs.push(l))).map((x) => [x.mountpoint, x.device]),
      [['/Volumes/AUDIT', '/dev/disk4s1']],
    );
    assert.deepEqual(
      ran.map((r) => r.join(' ')),
      [`${DISKUTIL} info -plist /Volumes/AUDIT`, `${DISKUTIL} info -plist /Volumes/Installer`, `${DISKUTIL} info -plist /Volumes/share`],
    );
    assert.ok(logs.some((l) => /diskutil info \/Volumes\/share failed/.test(l)), logs.join('\n'));
  });

  test('other platforms: empty list', async () => {
    const { deps: d } = deps({ platform: 'freebsd' });
    assert.deepEqual(await listRemovableDrives(d), []);
  });
});
