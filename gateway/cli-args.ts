// Argument parsing shared by the `airlock` commands (cli.ts and the commands in cli-*.ts).
import path from 'node:path';
import os from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad usage: printed with a pointer to --help, exit 2. */
export class UsageError extends Error {}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform = process.platform): string {
  if (env.AIRLOCK_DATA_DIR) return path.resolve(env.AIRLOCK_DATA_DIR);
  const home = os.homedir();
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'airlock');
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'airlock');
  return path.join(env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'airlock');
}

type Options = NonNullable<ParseArgsConfig['options']>;
export function parse<O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { 'data-dir': { type: 'string' as const }, ...options }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The data dir a command works on: --data-dir, else AIRLOCK_DATA_DIR, else the OS default. */
export function dataDirOf(values: { 'data-dir'?: string | undefined }): string {
  return path.resolve(values['data-dir'] ?? defaultDataDir());
}

/** Who runs a command, for the audit record. */
export function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}
