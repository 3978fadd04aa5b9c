// The prompt log's admin routes (gateway/audit/prompt-log.ts): the list (who, which model, when,
// sizes; never text) and one request's prompt and response. Both need the auditor role or
// higher; every read of a row's text is itself an audit record (prompt_log.read), and when
// settings.audit.fail_closed is on and that record cannot be written, the text is not shown.
import type { FastifyInstance } from 'fastify';
import { promptLogHash } from '../audit/prompt-log.js';
import type { ListBody, PromptLogEntryView } from '../wire.js';
import type { RouteDeps } from './route-deps.js';
import type { Gateway } from './gateway.js';

type Query = { team?: string; key?: string; request_id?: string; from?: string; until?: string; before?: string; limit?: string };

export function registerPromptLogRoutes(app: FastifyInstance, gw: Gateway, { API, principalOf, error, actorOf }: RouteDeps): void {
  const bad = (field: string, message: string) => error(400, 'validation_failed', `${field}: ${message}`, [{ path: [field], message }]);
  const time = (v: string | undefined, field: string): number | undefined => {
    if (v === undefined || v === '') return undefined;
    const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(n)) throw bad(field, 'must be an ISO 8601 date-time or milliseconds since the epoch');
    return n;
  };
  const text = (v: string | undefined, field: string): string | undefined => {
    if (v === undefined || v.trim() === '') return undefined;
    if (v.length > 200) throw bad(field, 'is too long');
    return v.trim();
  };

  app.get<{ Querystring: Query }>(`${API}/prompt-log`, { config: { access: 'auditor' } }, async (req): Promise<ListBody<PromptLogEntryView>> => {
    const q = req.query;
    const limit = q.limit === undefined || q.limit === '' ? 100 : /^\d+$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit', 'must be an integer from 1 to 1000');
    const from = time(q.from, 'from');
    const until = time(q.until, 'until');
    if (from !== undefined && until !== undefined && until < from) throw bad('until', 'must not be earlier than from');
    return {
      data: gw.promptLog.list({ team: text(q.team, 'team'), key: text(q.key, 'key'), request_id: text(q.request_id, 'request_id'), from, until, before: time(q.before, 'before'), limit }),
    };
  });

  app.get<{ Params: { id: string } }>(`${API}/prompt-log/:id`, { config: { access: 'auditor' } }, async (req): Promise<PromptLogEntryView> => {
    const id = req.params.id;
    const row = id.length <= 200 ? gw.promptLog.get(id) : undefined;
    if (!row) throw error(404, 'not_found', `No logged prompt for request "${id.slice(0, 200)}" (prompt logging may be off for its team, or the row expired).`);
    try {
      gw.audit.append({
        kind: 'prompt_log.read',
        actor: actorOf(req),
        source: req.socket.remoteAddress ?? 'unknown',
        data: { action: 'read logged prompt and response', request_id: row.request_id, mode: row.mode, team: row.team, role: principalOf(req)?.role, sha256: row.sha256 },
      });
    } catch (e) {
      if (gw.snapshot.settings.audit.fail_closed !== 'off')
        throw error(503, 'audit_unavailable', `The audit log cannot be written (${(e as Error).message}), and this gateway is set to refuse what it cannot record (settings.audit.fail_closed): the logged prompt is not shown.`);
      gw.log(`audit: could not record prompt_log.read ${row.request_id}: ${(e as Error).message}`);
    }
    return { ...row, intact: promptLogHash(row) === row.sha256 };
  });
}
