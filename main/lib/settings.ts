// The shell's own settings, as JSON in the data dir (shell-settings.json), validated with zod.
// A missing file means defaults; a broken one is reported and replaced by defaults in memory
// (the file is left as it is until the admin changes a setting, so nothing is lost silently).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseHostPattern } from './urls.js';

export const SETTINGS_FILE = 'shell-settings.json';

export const ShellSettings = z
  .object({
    /** Closing the window leaves the gateway serving (tray icon stays); Quit stops it. */
    keepServingWhenWindowClosed: z.boolean().default(true),
    /** Hosts whose http(s) links the admin window may open in the system browser. */
    externalLinkHosts: z
      .array(z.string().refine((h) => parseHostPattern(h) !== null, 'must be a host name, host:port or *.domain'))
      .max(100)
      .default([]),
  })
  .strict();
export type ShellSettings = z.infer<typeof ShellSettings>;

export const DEFAULT_SETTINGS: ShellSettings = ShellSettings.parse({});

export interface LoadedSettings {
  settings: ShellSettings;
  /** Set when the file exists but could not be used; the defaults are in effect. */
  problem: string | null;
}

export function settingsPath(dataDir: string): string {
  return path.join(dataDir, SETTINGS_FILE);
}

export function loadSettings(dataDir: string): LoadedSettings {
  const file = settingsPath(dataDir);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { settings: { ...DEFAULT_SETTINGS }, problem: null };
    return { settings: { ...DEFAULT_SETTINGS }, problem: `${file} cannot be read: ${(e as Error).message}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { settings: { ...DEFAULT_SETTINGS }, problem: `${file} is not valid JSON: ${(e as Error).message}; using the defaults` };
  }
  const r = ShellSettings.safeParse(json);
  if (!r.success) {
    const why = r.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`).join('; ');
    return { settings: { ...DEFAULT_SETTINGS }, problem: `${file} has invalid settings (${why}); using the defaults` };
  }
  return { settings: r.data, problem: null };
}

/** Validate and write atomically (temp file + rename). Throws with the offending field named. */
export function saveSettings(dataDir: string, settings: ShellSettings): ShellSettings {
  const r = ShellSettings.safeParse(settings);
  if (!r.success) throw new Error(`invalid shell settings: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const file = settingsPath(dataDir);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(r.data, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(tmp, file);
  return r.data;
}
