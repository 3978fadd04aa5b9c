// Stored responses of the Responses API (store: true, OpenAI's default): the Response object and
// the conversation it ends (as chat messages), so previous_response_id can continue it and
// GET/DELETE /v1/responses/{id} can answer. Each belongs to the key that made it: another key
// sees none of them (404, as for an id that never existed). Rows older than
// settings.responses_retention_days are deleted hourly, and never served after their expiry.
//
// A read only when a request names previous_response_id, one insert when a stored response
// completes: the only SQLite work of this API, never on the chat path.
import type { DB } from '../../store/db.js';

export const DEFAULT_RESPONSES_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;

export interface StoredResponse {
  response: Record<string, unknown>;
  /** the chat messages of the conversation, this response's answer included (instructions excluded) */
  conversation: Record<string, unknown>[];
}

export class ResponseStore {
  private readonly insert;
  private readonly select;
  private readonly remove;
  private readonly expire;

  constructor(db: DB, private readonly retentionDays: () => number | undefined) {
    this.insert = db.prepare(`INSERT OR REPLACE INTO stored_responses (id, key_name, created_at, expires_at, response, conversation) VALUES (?, ?, ?, ?, ?, ?)`);
    this.select = db.prepare(`SELECT response, conversation FROM stored_responses WHERE id = ? AND key_name = ? AND expires_at > ?`);
    this.remove = db.prepare(`DELETE FROM stored_responses WHERE id = ? AND key_name = ? AND expires_at > ?`);
    this.expire = db.prepare(`DELETE FROM stored_responses WHERE expires_at <= ?`);
  }

  save(id: string, keyName: string, s: StoredResponse, now = Date.now()): void {
    const days = this.retentionDays() ?? DEFAULT_RESPONSES_RETENTION_DAYS;
    this.insert.run(id, keyName, now, now + days * DAY_MS, JSON.stringify(s.response), JSON.stringify(s.conversation));
  }

  get(id: string, keyName: string, now = Date.now()): StoredResponse | undefined {
    const row = this.select.get(id, keyName, now) as { response: string; conversation: string } | undefined;
    if (!row) return undefined;
    return { response: JSON.parse(row.response) as Record<string, unknown>, conversation: JSON.parse(row.conversation) as Record<string, unknown>[] };
  }

  delete(id: string, keyName: string, now = Date.now()): boolean {
    return this.remove.run(id, keyName, now).changes > 0;
  }

  /** Delete expired responses; returns how many. */
  prune(now = Date.now()): number {
    return this.expire.run(now).changes;
  }
}
