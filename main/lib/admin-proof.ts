// Proof that the admin origin the window talks to is the gateway this shell started, not another
// local process that bound the same port under another spelling (127.0.0.1:4001 next to a
// gateway on 0.0.0.0:4001, ::1 next to 127.0.0.1) and would otherwise get the window's traffic,
// the IPC trust and the first-run setup token.
//
// - Each fork gets a new random key (rotate(), passed in AIRLOCK_SHELL_PROOF_KEY: the shell is
//   the only one that sets it; the gateway removes it from its environment and never logs it).
// - Each request of the window to the admin origin gets a fresh random challenge header
//   (challengeFor(), session.webRequest.onBeforeSendHeaders).
// - The gateway answers with HMAC-SHA256(key, challenge + the local address and port it accepted
//   the connection on) (gateway/server/shell-proof.ts); check() (onHeadersReceived) cancels a
//   response to the admin origin whose proof is missing or wrong, and IPC is granted only once a
//   response has been proven.
// Why a per-request challenge from the shell rather than a nonce from the server or one per
// start: a server-chosen nonce travels with its proof, so whoever once saw a proven response
// (e.g. by connecting to the real gateway before squatting the port) could replay it; a fresh
// challenge per request cannot be answered without the key. Why the local endpoint: a squatter
// relaying the window's requests to the real gateway through another address would get proofs
// for its own connection's endpoint, which the shell, comparing with the URL it requested,
// refuses.
// Plain Node (no electron import): main.ts wires it to the session; tested under Node.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SHELL_PROOF_KEY_ENV = 'AIRLOCK_SHELL_PROOF_KEY';
export const SHELL_CHALLENGE_HEADER = 'x-airlock-shell-challenge';
export const SHELL_PROOF_HEADER = 'x-airlock-shell-proof';

/** How many unanswered challenges are kept (oldest dropped first; a dropped one fails its check). */
const MAX_PENDING = 10_000;

export function newProofKey(random: (n: number) => Buffer = randomBytes): string {
  return random(32).toString('base64url');
}

/** The gateway's computation (gateway/server/shell-proof.ts), for the endpoint the URL names. */
export function expectedProof(key: string, challenge: string, address: string, port: number): string {
  return createHmac('sha256', Buffer.from(key, 'base64url')).update(`airlock-shell-proof-v1\n${challenge}\n${address.toLowerCase()}\n${port}`).digest('base64url');
}

/** The address and port a request to this URL connects to (IP literals: the gateway reports addresses). */
export function endpointOf(url: string): { address: string; port: number } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  const address = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  return { address: address.toLowerCase(), port };
}

function originOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

/** One header's value from Electron's header records (any case; arrays joined by the first value). */
export function headerValue(headers: Record<string, string | string[]> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    const values = Array.isArray(v) ? v : [v];
    return values.length === 1 ? values[0] : undefined; // a repeated proof header is no proof
  }
  return undefined;
}

export type ProofVerdict =
  /** not a response from the admin origin: nothing to prove */
  | { kind: 'other' }
  | { kind: 'proven' }
  | { kind: 'refused'; reason: string };

export class AdminOriginProof {
  private key: string | null = null;
  private origin: string | null = null;
  private pending = new Map<string, { challenge: string; url: string }>();
  private provenKey: string | null = null;

  constructor(private readonly random: (n: number) => Buffer = randomBytes) {}

  /** A new key for a new gateway process (its environment gets it). Forgets what was proven. */
  rotate(): string {
    this.key = newProofKey(this.random);
    this.provenKey = null;
    this.pending.clear();
    return this.key;
  }

  /** The admin origin of the current gateway (from its ready message). Kept until replaced. */
  setAdminOrigin(origin: string | null): void {
    if (origin === null) return;
    const o = originOf(origin);
    if (o !== this.origin) this.provenKey = null;
    this.origin = o;
  }

  /** True once a response of the current gateway has been proven (IPC is granted from then on). */
  get proven(): boolean {
    return this.key !== null && this.provenKey === this.key;
  }

  /** The admin origin, only once proven: what IPC trust and the setup token are tied to. */
  trustedOrigin(adminOrigin: string | null): string | null {
    return this.proven && adminOrigin !== null && originOf(adminOrigin) === this.origin ? adminOrigin : null;
  }

  /** The challenge header value for a request to the admin origin; null for any other request. */
  challengeFor(requestId: string | number, url: string): string | null {
    if (!this.origin || originOf(url) !== this.origin) return null;
    const challenge = this.random(24).toString('base64url');
    const id = String(requestId);
    this.pending.delete(id);
    this.pending.set(id, { challenge, url });
    while (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    return challenge;
  }

  /** Check a response's headers. A refused one must be cancelled. */
  check(requestId: string | number, url: string, headers: Record<string, string | string[]> | undefined): ProofVerdict {
    if (!this.origin || originOf(url) !== this.origin) return { kind: 'other' };
    const id = String(requestId);
    const sent = this.pending.get(id);
    this.pending.delete(id);
    if (!this.key) return { kind: 'refused', reason: 'no gateway was started by this shell' };
    if (!sent) return { kind: 'refused', reason: 'the request carried no challenge' };
    const proof = headerValue(headers, SHELL_PROOF_HEADER);
    if (!proof) return { kind: 'refused', reason: 'the response carries no proof' };
    const ep = endpointOf(url);
    if (!ep) return { kind: 'refused', reason: 'not an http(s) URL' };
    const want = Buffer.from(expectedProof(this.key, sent.challenge, ep.address, ep.port));
    const got = Buffer.from(proof);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { kind: 'refused', reason: 'the proof is wrong' };
    this.provenKey = this.key;
    return { kind: 'proven' };
  }

  /** The request ended without a response to check (error, cancelled). */
  forget(requestId: string | number): void {
    this.pending.delete(String(requestId));
  }
}
