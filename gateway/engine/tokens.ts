// Token estimation for when an upstream reports no usage. About four characters a token for
// English text with common tokenizers; rows that use it are marked estimated in the ledger.
export function estimateTokensFromText(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(textOf).join(' ');
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.text === 'string') return o.text;
    if (typeof o.content === 'string' || Array.isArray(o.content)) return textOf(o.content);
  }
  return '';
}

/** Prompt tokens of a chat, completion or embeddings request body, estimated. */
export function estimatePromptTokens(body: Record<string, unknown>): number {
  let chars = 0;
  const messages = body.messages;
  if (Array.isArray(messages)) {
    for (const m of messages) {
      chars += textOf(m).length + 16; // role and framing
      const calls = (m as Record<string, unknown>)?.tool_calls;
      if (calls) chars += JSON.stringify(calls).length;
    }
  }
  if (body.prompt !== undefined) chars += textOf(body.prompt).length;
  if (body.input !== undefined) chars += textOf(body.input).length;
  if (body.tools) chars += JSON.stringify(body.tools).length;
  return Math.ceil(chars / 4);
}
