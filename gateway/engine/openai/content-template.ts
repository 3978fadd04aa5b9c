// The commonest event of a streamed chat answer, read without parsing it: a chunk that says only
// some content for one choice. Upstreams write every such chunk of a stream the same way but for
// the content (same id, model, created, field order and spacing), so once one has been parsed and
// seen to hold nothing else (learn()), the text around its content string is a template: an event
// that starts and ends with exactly that text, with a string between them that holds no quote, is
// the same chunk with other content (match()). Anything else does not match and is parsed. Used
// by the output guard (guardrails/engine.ts) and by the translations to Messages and Responses
// (readChatEvent, translate.ts).

/** A content string the template may be learnt from: no quote, backslash or control character
 * (so that it appears in the event's text exactly as it is). */
function plain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/** The role chunk's delta in its two compact orders: [its text, the template's head end, its tail start]. */
const ROLE_FORMS: readonly (readonly [string, string, string])[] = [
  ['"delta":{"role":"assistant","content":""}', '"delta":{"content":"', '"}'],
  ['"delta":{"content":"","role":"assistant"}', '"delta":{"content":"', '"}'],
];

export class ContentTemplate {
  private head = '';
  private tail = '';
  /** the choice the template's chunks are about (-1: nothing learnt yet) */
  index = -1;

  /** After an event was parsed: when it is a chunk with only plain content for one choice (the
   * content appearing once in its text), its text around the content becomes the template. */
  learn(s: string, j: unknown): void {
    if (this.index !== -1 || !j || typeof j !== 'object') return;
    const o = j as { choices?: unknown; usage?: unknown };
    if (!Array.isArray(o.choices) || o.choices.length !== 1 || (o.usage !== undefined && o.usage !== null)) return;
    const c = o.choices[0] as Record<string, unknown> | null;
    if (!c || typeof c !== 'object' || typeof c.index !== 'number') return;
    for (const k of Object.keys(c)) if (k !== 'index' && k !== 'delta' && !((k === 'finish_reason' || k === 'logprobs') && c[k] === null)) return;
    const d = c.delta as Record<string, unknown> | null;
    if (!d || typeof d !== 'object') return;
    const content = d.content;
    const keys = Object.keys(d);
    if (keys.length === 2 && d.role === 'assistant' && content === '') {
      this.learnRole(s, c.index);
      return;
    }
    if (keys.length !== 1 || typeof content !== 'string' || !content || !plain(content)) return;
    const lit = `"content":"${content}"`;
    const at = s.indexOf(lit);
    if (at === -1 || s.indexOf(lit, at + 1) !== -1) return;
    const v = at + lit.length - 1 - content.length;
    this.head = s.slice(0, v);
    this.tail = s.slice(v + content.length);
    this.index = c.index;
  }

  /**
   * The chunk that starts most streams — the role and an empty content, `"delta":{"role":"assistant",
   * "content":""}` — written compactly in either order: the same text without the role is the
   * template (its content chunks then need no parse at all, the first one included); the event must
   * have no other "delta" key, so that the text found is the choice's delta. An upstream
   * whose content chunks are not written so simply does not match it; the first of them that is
   * parsed and holds only content teaches the template then (learn() again: nothing was learnt).
   */
  private learnRole(s: string, index: number): void {
    // one "delta" key in the event (a string value cannot hold a bare quote): the one found is the choice's
    const d = s.indexOf('"delta"');
    if (d === -1 || s.indexOf('"delta"', d + 1) !== -1) return;
    for (const [lit, head, tail] of ROLE_FORMS) {
      // (each form begins with "delta": if it is there, it is at that key)
      if (!s.startsWith(lit, d)) continue;
      this.head = s.slice(0, d) + head;
      this.tail = tail + s.slice(d + lit.length);
      this.index = index;
      return;
    }
  }

  /** The content of an event that is the template's chunk with other content; undefined when it is
   * not (then it is to be parsed). */
  match(s: string): string | undefined {
    if (this.index === -1) return undefined;
    const head = this.head;
    const tail = this.tail;
    const hl = head.length;
    const tl = tail.length;
    // compared as slices: startsWith/endsWith with a pattern that is not a constant cost 4-5x more
    // (~0.5 vs ~0.12 µs for the bench's chunk, measured in isolation)
    if (s.length < hl + tl || s.slice(0, hl) !== head || s.slice(s.length - tl) !== tail) return undefined;
    const raw = s.slice(hl, s.length - tl);
    if (raw.includes('"')) return undefined; // an escaped quote, or another structure
    if (!raw.includes('\\')) return raw;
    try {
      return JSON.parse(`"${raw}"`) as string;
    } catch {
      return undefined;
    }
  }

  /** The template's chunk with `content`. */
  with(content: string): string {
    return this.head + JSON.stringify(content).slice(1, -1) + this.tail;
  }
}
