// The desktop shell's re-check of a folder chosen for an audit export (main/lib/export-folder.ts),
// with real folders and symbolic links standing in for a USB stick and the system disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { FolderRefused, checkChosenFolder, isWithin } from '../../main/lib/export-folder.js';
import { tmpDir } from '../helpers/gateway.js';

const tmp = () => fs.realpathSync(tmpDir('airlock-folder-'));

test('a folder on the chosen drive is accepted and given back resolved', async () => {
  const drive = tmp();
  fs.mkdirSync(path.join(drive, 'audits', '2027'), { recursive: true });
  assert.equal(await checkChosenFolder(path.join(drive, 'audits', '2027'), { within: drive }), path.join(drive, 'audits', '2027'));
  assert.equal(await checkChosenFolder(drive, { within: drive }), drive, 'the drive itself');
  assert.equal(await checkChosenFolder(path.join(drive, 'audits', '..', 'audits'), { within: drive + path.sep }), path.join(drive, 'audits'));
  // a link on the drive to another folder on the same drive is fine
  fs.symlinkSync(path.join(drive, 'audits'), path.join(drive, 'shortcut'));
  assert.equal(await checkChosenFolder(path.join(drive, 'shortcut'), { within: drive }), path.join(drive, 'audits'));
});

test('a link on the drive that leads off it is refused, naming where it leads', async () => {
  const drive = tmp();
  const systemDisk = tmp();
  fs.symlinkSync(systemDisk, path.join(drive, 'innocent-looking'));
  await assert.rejects(checkChosenFolder(path.join(drive, 'innocent-looking'), { within: drive }), (e: Error) => {
    assert.ok(e instanceof FolderRefused);
    assert.match(e.message, new RegExp(`leads to ${systemDisk.replace(/[/\\^$.*+?()[\]{}|-]/g, '\\$&')}, which is not on the drive`));
    return true;
  });
  // without a drive to stay on (a folder picked anywhere), the resolved folder is what counts
  assert.equal(await checkChosenFolder(path.join(drive, 'innocent-looking')), systemDisk);
});

test('a sibling whose name starts like the drive is not on the drive', async () => {
  const parent = tmp();
  fs.mkdirSync(path.join(parent, 'usb'));
  fs.mkdirSync(path.join(parent, 'usb-evil'));
  await assert.rejects(checkChosenFolder(path.join(parent, 'usb-evil'), { within: path.join(parent, 'usb') }), FolderRefused);
  assert.equal(isWithin('/media/usb-evil', '/media/usb', 'linux'), false);
  assert.equal(isWithin('/media/usb/a', '/media/usb/', 'linux'), true);
  assert.equal(isWithin('/media/USB/a', '/media/usb', 'linux'), false, 'Linux paths keep their case');
  assert.equal(isWithin('E:\\Audits\\2027', 'e:\\', 'win32'), true);
  assert.equal(isWithin('C:\\Windows', 'E:\\', 'win32'), false);
  assert.equal(isWithin('/Volumes/STICK/x', '/Volumes/stick', 'darwin'), true);
});

test('a removed drive, a file, a missing folder and a read-only folder are refused with the reason', async () => {
  const drive = tmp();
  fs.writeFileSync(path.join(drive, 'a-file'), 'x');
  await assert.rejects(checkChosenFolder(path.join(drive, 'a-file')), /is not a folder/);
  await assert.rejects(checkChosenFolder(path.join(drive, 'gone')), /does not exist any more/);
  await assert.rejects(checkChosenFolder(drive, { within: path.join(drive, 'unplugged') }), /the drive .*unplugged is gone/);
  if (process.getuid?.() !== 0) {
    const ro = path.join(drive, 'read-only');
    fs.mkdirSync(ro, { mode: 0o555 });
    await assert.rejects(checkChosenFolder(ro), /cannot be written/);
    assert.equal(await checkChosenFolder(ro, { writable: false }), ro, 'a bundle to verify may be on read-only media');
  }
});
