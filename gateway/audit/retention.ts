// Audit retention (settings.audit.retention_days): records older than the cutoff move out of the
// database into archive segments, DATA_DIR/audit-archive/seq-FIRST-LAST/, each a signed bundle
// in the export format (verify.mjs included). The database keeps the segment's last hash, so the
// next record still links to it and the live chain stays verifiable from there; the segment
// itself verifies with `airlock audit verify`.
import fs from 'node:fs';
import path from 'node:path';
import { exportBundle } from './export.js';
import type { AuditLog } from './log.js';

export const ARCHIVE_DIR = 'audit-archive';
/** the most records one segment holds */
export const SEGMENT_RECORDS = 100_000;

export interface ArchivedSegment {
  first_seq: number;
  through_seq: number;
  dir: string;
  manifest_sha256: string;
}

/** Move the oldest records written before `cutoff` (ms) into one archive segment; undefined when there are none. */
export async function archiveOld(log: AuditLog, dataDir: string, cutoff: number): Promise<ArchivedSegment | undefined> {
  log.flush();
  const first = (log.archivedThrough()?.through_seq ?? 0) + 1;
  const old = log.db.prepare(`SELECT MAX(seq) FROM audit_log WHERE ts < ?`).pluck().get(new Date(cutoff).toISOString()) as number | null;
  if (old === null || old < first) return undefined;
  const through = Math.min(old, first + SEGMENT_RECORDS - 1);
  const dir = path.join(dataDir, ARCHIVE_DIR, `seq-${first}-${through}`);
  fs.rmSync(dir, { recursive: true, force: true }); // a segment from an attempt that was never committed
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  const r = await exportBundle(log, { to: dir, exact: true, seq: { first, last: through }, actor: 'airlock', source: 'retention', unrecorded: true });
  const lastHash = log.db.prepare(`SELECT hash FROM audit_log WHERE seq = ?`).pluck().get(through) as string;
  log.db
    .transaction(() => {
      log.db.prepare(`INSERT INTO audit_archives (through_seq, first_seq, last_hash, dir, created_at) VALUES (?, ?, ?, ?, ?)`).run(through, first, lastHash, dir, new Date().toISOString());
      log.db.prepare(`DELETE FROM audit_log WHERE seq <= ?`).run(through);
    })
    .immediate();
  const seg: ArchivedSegment = { first_seq: first, through_seq: through, dir, manifest_sha256: r.manifest_sha256 };
  log.append({ kind: 'audit.archive', actor: 'airlock', source: 'retention', data: { action: 'archive audit records', ...seg, count: r.count } });
  return seg;
}
