// "Where does our data go?": GET /admin/api/v1/data-flow, generated from the live configuration:
// what is stored, where, for how long and who can read it; every destination that leaves the
// machine; and who can reach the planes. Destinations are found in every section of the
// configuration (any http(s) URL field of a named item), so a capability that adds a section
// with URLs (an OTLP exporter, MCP servers over HTTP) shows up without a change here.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { DataFlowBody } from '../wire.js';
import type { Gateway } from './gateway.js';

const SENDS: Record<string, string> = {
  endpoints: 'the prompts and responses of every request routed to it, and its API key',
};

function destinations(doc: Record<string, unknown>, isLoopbackName: (host: string) => boolean): DataFlowBody['destinations'] {
  const out: DataFlowBody['destinations'] = [];
  const visit = (section: string, name: string, v: unknown, depth: number) => {
    if (!v || typeof v !== 'object' || depth > 4) return;
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x === 'string' && /url$|^endpoint$/i.test(k) && /^https?:\/\//i.test(x)) {
        let u: URL;
        try {
          u = new URL(x);
        } catch {
          continue;
        }
        out.push({ kind: section, name, url: `${u.origin}${u.pathname}`, host: u.host, leaves_machine: !isLoopbackName(u.host.toLowerCase()), sends: SENDS[section] ?? `what the ${section} setting sends` });
      } else if (x && typeof x === 'object') visit(section, name, x, depth + 1);
    }
  };
  for (const [section, v] of Object.entries(doc)) {
    if (Array.isArray(v)) for (const item of v) visit(section, typeof (item as { name?: unknown }).name === 'string' ? (item as { name: string }).name : section, item, 0);
    else visit(section, section, v, 0);
  }
  return out;
}

/** Prompts and responses: where teams[].prompt_logging keeps them, or that nothing is kept. */
function promptsStored(gw: Gateway, db: string): DataFlowBody['stored'][number] {
  const on = [...gw.snapshot.teams.values()].filter((t) => t.prompt_logging && t.prompt_logging.mode !== 'off');
  if (!on.length) return { what: 'Prompts and responses', where: 'not stored: they pass through memory only (prompt logging is off for every team)', retention: '—', readable_by: '—' };
  const modes: Record<string, string> = { metadata: 'metadata only, no text', redacted: 'redacted text: personal data and secrets replaced, encrypted', full: 'full text, encrypted' };
  return {
    what: `Prompts and responses of the teams with prompt logging on: ${on.map((t) => `${t.name} (${modes[t.prompt_logging!.mode]})`).join(', ')}`,
    where: `${db} (table prompt_log; text sealed with the install secret)`,
    retention: on.map((t) => `${t.name}: ${t.prompt_logging!.retention_days} days`).join(', '),
    readable_by: 'auditor, admin, owner (GET /admin/api/v1/prompt-log/:id); every read is an audit record',
  };
}

/** `isLoopbackName`: the admin plane's test of a Host value ("localhost:8000", "[::1]:8000", "127.0.0.1"). */
export function registerDataFlow(app: FastifyInstance, gw: Gateway, API: string, isLoopbackName: (host: string) => boolean): void {
  app.get(`${API}/data-flow`, { config: { access: 'auditor' } }, async (): Promise<DataFlowBody> => {
    const s = gw.snapshot.settings;
    const db = path.join(gw.opts.dataDir, 'airlock.db');
    const days = (n: number | undefined, none: string) => (n ? `${n} days` : none);
    const loop = (h: string) => (isLoopbackName(h.includes(':') && !h.startsWith('[') ? `[${h}]` : h) ? 'this machine only' : 'the network (any host that can reach this address)');
    return {
      generated_at: new Date().toISOString(),
      data_dir: gw.opts.dataDir,
      stored: [
        promptsStored(gw, db),
        {
          what: 'Usage ledger: per request the key, team, app, user, model, endpoint, tokens, cost, status and timings (no prompt or response text)',
          where: `${db} (table ledger)`,
          retention: days(s.ledger_retention_days, 'kept until deleted (settings.ledger_retention_days)'),
          readable_by: 'auditor, admin, owner (Usage; GET /admin/api/v1/usage*)',
        },
        {
          what: `Audit trail: admin changes (before → after, secrets redacted), sign-ins, exports${s.audit.data_plane ? ', and a summary of every data-plane request (no prompt text)' : ''}`,
          where: `${db} (table audit_log), archive segments in ${path.join(gw.opts.dataDir, 'audit-archive')}`,
          retention: days(s.audit.retention_days, 'kept in the database (settings.audit.retention_days moves old records into archive segments)'),
          readable_by: 'auditor, admin, owner (Audit; GET /admin/api/v1/audit/events); exported bundles go where an auditor writes them',
        },
        {
          what: 'Configuration: endpoints (upstream API keys encrypted), models, teams, app keys (as hashes only), routing rules, settings',
          where: `${db}`,
          retention: 'until changed',
          readable_by: 'auditor, admin, owner (secrets are never returned)',
        },
        {
          what: 'Admin accounts (password hashes), sessions, admin API tokens (as hashes)',
          where: `${db}`,
          retention: `until deleted; sessions expire after ${s.admin_session_hours} hours`,
          readable_by: 'admin, owner (the list, never the secrets)',
        },
        {
          what: 'Install secret and audit signing key (its private half encrypted with the install secret)',
          where: `${path.join(gw.opts.dataDir, 'install.key')}, ${path.join(gw.opts.dataDir, 'audit-signing.key')} (mode 0600)`,
          retention: 'for the life of the installation',
          readable_by: 'the operating-system account that runs Airlock',
        },
      ],
      destinations: destinations(gw.store.export(), isLoopbackName),
      listening: [
        { plane: 'data plane (apps)', address: gw.listening?.data ?? `${gw.opts.host}:${gw.opts.port}`, reachable_from: loop(gw.opts.host) },
        { plane: 'admin plane (admin app and API)', address: gw.listening?.admin ?? `${gw.opts.adminHost}:${gw.opts.adminPort}`, reachable_from: loop(gw.opts.adminHost) },
      ],
    };
  });
}
