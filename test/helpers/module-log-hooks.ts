// The loader hooks of module-log.ts: one line per module loaded, appended synchronously (the file
// is complete whenever the test reads it).
import fs from 'node:fs';

let file = '';

export function initialize(data: { file: string }): void {
  file = data.file;
}

export async function load(url: string, context: unknown, next: (url: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  fs.appendFileSync(file, `${url}\n`);
  return next(url, context);
}
