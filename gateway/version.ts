import { readFileSync } from 'node:fs';

// dist/gateway/version.js → the package root's package.json
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
