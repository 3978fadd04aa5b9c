// File-tree fingerprints for "nothing was touched" assertions.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** sha256 of every file under dir, by relative path; but the data dir's lock file when it is
 * empty (a refused start or restore may create it; it is never written to: data-dir-lock.ts). */
export function hashTree(dir: string): Record<string, string> {
  const res: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.name === 'airlock.lock' && fs.statSync(p).size === 0) continue;
      if (e.isDirectory()) walk(p);
      else res[path.relative(dir, p)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return res;
}
