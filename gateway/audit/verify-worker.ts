// Checks an exported bundle in a worker thread (POST /audit/verify-bundle): verifying reads and
// hashes every record, which for a large bundle would otherwise hold up the event loop that
// serves the data plane. The bundle's own verify.mjs is never run (it came from a drive).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { auditCore, type BundleVerdict } from './core.js';

if (parentPort && (workerData as { verifyBundle?: unknown } | null)?.verifyBundle) {
  const { dir, key } = (workerData as { verifyBundle: { dir: string; key?: string } }).verifyBundle;
  let v: BundleVerdict;
  try {
    v = auditCore({ crypto, fs, path }).verifyBundle(dir, { key });
  } catch (e) {
    v = { ok: false, problems: [`the bundle cannot be checked: ${(e as Error).message}`], key_fingerprint: null, count: 0, first_seq: null, last_seq: null };
  }
  parentPort.postMessage(v);
}

/** Verify the bundle in `dir` (pinned to `key` when given) off the main thread. */
export function verifyBundleInWorker(dir: string, key?: string): Promise<BundleVerdict> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { verifyBundle: { dir, key } } });
    w.once('message', (v: BundleVerdict) => resolve(v));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`the verifier stopped (exit code ${code})`)));
  });
}
