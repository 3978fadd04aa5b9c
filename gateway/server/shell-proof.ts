// Proof, for the desktop shell, that an admin-plane response comes from the gateway it started.
//
// The shell passes a per-fork secret in AIRLOCK_SHELL_PROOF_KEY (taken out of the environment
// here, never logged) and sends a fresh random challenge with each request of its window
// (x-airlock-shell-challenge). The answer carries
//   x-airlock-shell-proof: base64url(HMAC-SHA256(key, "airlock-shell-proof-v1\n" + challenge + "\n" + local address + "\n" + local port))
// The challenge is the shell's own and new for every request, so a proof cannot be replayed; the
// local address and port are those this socket was accepted on, so a process squatting another
// spelling of the port (127.0.0.1:4001 next to 0.0.0.0:4001, or ::1 next to 127.0.0.1) cannot
// relay the window's requests to the real gateway and pass its proofs back: they would prove
// the relay's connection, not the window's. The check is in main/lib/admin-proof.ts.
import { createHmac } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const SHELL_PROOF_KEY_ENV = 'AIRLOCK_SHELL_PROOF_KEY';
export const SHELL_CHALLENGE_HEADER = 'x-airlock-shell-challenge';
export const SHELL_PROOF_HEADER = 'x-airlock-shell-proof';
const CHALLENGE = /^[A-Za-z0-9_-]{22,128}$/;

/** The shell's key, removed from the environment (nothing started later inherits or shows it). */
export function takeShellProofKey(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const v = env[SHELL_PROOF_KEY_ENV];
  delete env[SHELL_PROOF_KEY_ENV];
  if (!v) return undefined;
  const key = Buffer.from(v, 'base64url');
  return key.length >= 32 ? key : undefined;
}

/** "::ffff:127.0.0.1" (an IPv4 client of a dual-stack socket) → "127.0.0.1"; lower case. */
export function plainAddress(a: string): string {
  const l = a.toLowerCase();
  return l.startsWith('::ffff:') && l.includes('.') ? l.slice(7) : l;
}

export function shellProof(key: Buffer, challenge: string, address: string, port: number): string {
  return createHmac('sha256', key).update(`airlock-shell-proof-v1\n${challenge}\n${plainAddress(address)}\n${port}`).digest('base64url');
}

/** onRequest: prove this response when the request carries the shell's challenge. */
export function addShellProof(key: Buffer | undefined, req: FastifyRequest, reply: FastifyReply): void {
  if (!key) return;
  const challenge = req.headers[SHELL_CHALLENGE_HEADER];
  const { localAddress, localPort } = req.socket;
  if (typeof challenge !== 'string' || !CHALLENGE.test(challenge) || !localAddress || !localPort) return;
  reply.header(SHELL_PROOF_HEADER, shellProof(key, challenge, localAddress, localPort));
}
