// GET /v1/responses/{id}/input_items: the items a stored response answered — its whole
// conversation as the model saw it (earlier turns of a previous_response_id chain included, the
// instructions not, as OpenAI lists them), rebuilt from the stored chat messages as Responses
// items with stable ids, and paged as OpenAI pages them (order, after, limit ≤ 100).
import { badRequest } from '../errors.js';
import { isObject, partsText, type Json } from '../translate.js';

export const MAX_INPUT_ITEMS_PAGE = 100;
const DEFAULT_PAGE = 20;

function contentOf(role: string, content: unknown): Json[] {
  const textType = role === 'assistant' ? 'output_text' : 'input_text';
  const text = (t: string): Json => (role === 'assistant' ? { type: textType, text: t, annotations: [] } : { type: textType, text: t });
  if (typeof content === 'string') return [text(content)];
  if (!Array.isArray(content)) return [];
  const out: Json[] = [];
  for (const p of content) {
    if (!isObject(p)) continue;
    if (p.type === 'image_url' && isObject(p.image_url)) out.push({ type: 'input_image', image_url: p.image_url.url, detail: p.image_url.detail ?? 'auto' });
    else if (typeof p.text === 'string') out.push(text(p.text));
  }
  return out;
}

/** The stored chat messages of a conversation (its answer last, left out) as Responses items. */
export function inputItemsOf(responseId: string, conversation: Json[]): Json[] {
  const hex = responseId.replace(/^resp_/, '');
  const items: Json[] = [];
  const id = (prefix: string) => `${prefix}_${hex}_${items.length}`;
  for (const m of conversation.slice(0, -1)) {
    const role = typeof m.role === 'string' ? m.role : 'user';
    if (role === 'tool') {
      items.push({ id: id('fco'), type: 'function_call_output', call_id: m.tool_call_id, output: partsText(m.content), status: 'completed' });
      continue;
    }
    const content = m.content === null || m.content === undefined ? [] : contentOf(role, m.content);
    if (content.length) items.push({ id: id('msg'), type: 'message', role, status: 'completed', content });
    if (Array.isArray(m.tool_calls))
      for (const tc of m.tool_calls) {
        if (!isObject(tc)) continue;
        const f = isObject(tc.function) ? tc.function : {};
        items.push({ id: id('fc'), type: 'function_call', call_id: tc.id, name: f.name, arguments: f.arguments, status: 'completed' });
      }
  }
  return items;
}

export interface InputItemsQuery {
  after?: unknown;
  before?: unknown;
  limit?: unknown;
  order?: unknown;
}

/** One page of the items, as OpenAI's cursor pages are: `order` (desc by default), `after` an
 * item id (the items past it), `limit` 1-100 (20 by default). Bad paging is a 400 naming it. */
export function pageOf(items: Json[], q: InputItemsQuery): Json {
  const order = q.order ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw badRequest('"order" must be "asc" or "desc".', 'order');
  let limit = DEFAULT_PAGE;
  if (q.limit !== undefined) {
    const n = typeof q.limit === 'string' && /^\d{1,4}$/.test(q.limit) ? Number(q.limit) : NaN;
    if (!(n >= 1 && n <= MAX_INPUT_ITEMS_PAGE)) throw badRequest(`"limit" must be an integer from 1 to ${MAX_INPUT_ITEMS_PAGE}.`, 'limit');
    limit = n;
  }
  const list = order === 'asc' ? items : [...items].reverse();
  const cursor = (name: 'after' | 'before', v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    const i = typeof v === 'string' ? list.findIndex((it) => it.id === v) : -1;
    if (i < 0) throw badRequest(`"${name}": no input item ${JSON.stringify(v)} in this response.`, name);
    return i;
  };
  const after = cursor('after', q.after);
  const before = cursor('before', q.before);
  let start = after === undefined ? 0 : after + 1;
  let end = before === undefined ? list.length : before;
  if (before !== undefined && after === undefined) start = Math.max(0, end - limit);
  end = Math.min(end, start + limit);
  const data = start < end ? list.slice(start, end) : [];
  return {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    // (paging backwards from `before`: more lie before the first)
    has_more: before !== undefined && after === undefined ? start > 0 : end < (before ?? list.length),
  };
}
