// Playground: chat with a model through this gateway, as an app would, with a key the admin
// pastes (kept in this page's memory only) or, with none, a temporary key the gateway makes for
// each request in the admin's name (server/admin-playground.ts). The answer streams in; under each answer, what the
// gateway did: the endpoint and upstream model, attempts, tokens, cost and latency (from the
// usage ledger row of the request).
import { useRef, useState, type FormEvent } from 'react';
import { API, ApiError, csrfHeaders, errorMessage, get, type ModelView, type RequestRow, type RequestsPage } from '../api';
import { useResource } from '../hooks';
import { useAuth } from '../auth';
import { FormError, PageHeader, Section, SelectField, TextAreaField, TextField, fmtCost, fmtInt, fmtMs } from '../components/ui';

interface Turn {
  role: 'user' | 'assistant';
  content: string;
  /** the gateway's request id of an answer */
  id?: string;
  row?: RequestRow;
  unit?: string;
  error?: string;
}

/** The text deltas of an OpenAI chat completion stream, as they come (SSE, LF or CRLF). */
async function* deltas(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') return;
        let chunk: { choices?: { delta?: { content?: string | null } }[]; error?: { message?: string } };
        try {
          chunk = JSON.parse(data) as typeof chunk;
        } catch {
          continue;
        }
        if (chunk.error) throw new Error(chunk.error.message ?? 'The gateway ended the answer with an error.');
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) yield text;
      }
    }
  }
}

export function PlaygroundPage() {
  const { canWrite } = useAuth();
  if (!canWrite)
    return (
      <>
        <PageHeader title="Playground" intro="Chat with a model through this gateway with one of its keys, as an app would." />
        <p className="notice info">Only admins and owners can send requests from the playground.</p>
      </>
    );
  return <Playground />;
}

function Playground() {
  const models = useResource((s) => get<{ data: ModelView[] }>('/models', s), []);
  const names = (models.data?.data ?? []).map((m) => m.name);
  const [key, setKey] = useState('');
  const [model, setModel] = useState('');
  const [system, setSystem] = useState('');
  const [message, setMessage] = useState('');
  const [turns, setTurns] = useState<Turn[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [status, setStatus] = useState('');
  const stop = useRef<AbortController | null>(null);
  const chosen = model || names[0] || '';

  const details = async (id: string, index: number) => {
    // the ledger row is written by a worker thread: ask a few times
    for (let i = 0; i < 20; i++) {
      const p = await get<RequestsPage>(`/usage/requests?request_id=${encodeURIComponent(id)}`).catch(() => undefined);
      const row = p?.data[0];
      if (row) {
        setTurns((t) => t.map((x, j) => (j === index ? { ...x, row, unit: p.cost_unit } : x)));
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const send = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    if (!message.trim()) {
      setError('Write a message first.');
      return;
    }
    const history = [...turns.filter((t) => !t.error).map(({ role, content }) => ({ role, content })), { role: 'user' as const, content: message }];
    const messages = [...(system.trim() ? [{ role: 'system' as const, content: system }] : []), ...history];
    const index = turns.length + 1;
    setTurns((t) => [...t, { role: 'user', content: message }, { role: 'assistant', content: '' }]);
    setMessage('');
    setBusy(true);
    setStatus('Waiting for the answer…');
    const ac = new AbortController();
    stop.current = ac;
    let id: string | undefined;
    try {
      const res = await fetch(`${API}/playground/chat`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream, application/json', ...csrfHeaders() },
        // no key: the gateway uses a temporary key in this admin's name for this one request
        body: JSON.stringify({ ...(key.trim() ? { key: key.trim() } : {}), model: chosen, messages }),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: ac.signal,
      });
      id = res.headers.get('x-airlock-request-id') ?? undefined;
      if (!res.ok || !res.body) {
        const j = (await res.json().catch(() => undefined)) as { error?: { message?: string; code?: string; issues?: { path: string; message: string }[] } } | undefined;
        throw new ApiError(res.status, j?.error?.code ?? `http_${res.status}`, j?.error?.message ?? `The gateway answered ${res.status}.`, j?.error?.issues ?? []);
      }
      for await (const text of deltas(res.body)) setTurns((t) => t.map((x, j) => (j === index ? { ...x, content: x.content + text } : x)));
      setStatus('Answer complete.');
    } catch (err) {
      const msg = (err as Error).name === 'AbortError' ? 'Stopped.' : errorMessage(err);
      setTurns((t) => t.map((x, j) => (j === index ? { ...x, error: msg } : j === index - 1 ? { ...x, error: msg } : x)));
      setStatus(msg === 'Stopped.' ? 'Stopped.' : 'The request failed.');
      if (msg !== 'Stopped.') setError(err);
    } finally {
      stop.current = null;
      setBusy(false);
    }
    if (id) {
      setTurns((t) => t.map((x, j) => (j === index ? { ...x, id } : x)));
      void details(id, index);
    }
  };

  return (
    <>
      <PageHeader
        title="Playground"
        intro="Chat with a model through this gateway with one of its keys, as an app would: budgets, limits, guardrails, routing and fallback all apply, and the request shows in usage (tagged source=playground)."
      />
      <Section title="Request">
        <form onSubmit={send} noValidate aria-label="Playground request">
          <div className="grid-2">
            <TextField
              id="pg-key"
              type="password"
              label="Key (optional)"
              value={key}
              onChange={setKey}
              autoComplete="off"
              placeholder="empty: a temporary key in your name"
              hint="Empty: each request uses a temporary key made for it in your name, for the chosen model only; it is never shown or stored, ends with the request, and the request shows in usage as playground:YOUR NAME. Or paste a key of this gateway to test as its app would (kept in this page only)."
            />
            <SelectField id="pg-model" label="Model" value={chosen} onChange={setModel} options={names.length ? names : [{ value: '', label: 'No models yet' }]} />
          </div>
          <TextAreaField id="pg-system" label="System prompt (optional)" value={system} onChange={setSystem} rows={2} />
          <TextAreaField id="pg-message" label="Message" value={message} onChange={setMessage} rows={3} />
          <FormError error={error} />
          <div className="actions">
            {turns.length ? (
              <button type="button" onClick={() => setTurns([])} disabled={busy}>
                Clear the conversation
              </button>
            ) : null}
            {busy ? (
              <button type="button" onClick={() => stop.current?.abort()}>
                Stop
              </button>
            ) : null}
            <button type="submit" className="primary" disabled={busy}>
              {busy ? 'Answering…' : 'Send'}
            </button>
          </div>
        </form>
      </Section>
      <Section title="Conversation">
        <p className="sr-only" role="status" aria-live="polite">
          {status}
        </p>
        {turns.length === 0 ? <p className="muted">Nothing yet: send a message.</p> : null}
        <ol className="chat" aria-busy={busy} data-testid="playground-conversation">
          {turns.map((t, i) => (
            <li key={i} className={`chat-turn ${t.role}`}>
              <div className="chat-role">{t.role === 'user' ? 'You' : 'Model'}</div>
              <div className="chat-text">{t.content || (t.role === 'assistant' && !t.error ? '…' : '')}</div>
              {t.error && t.role === 'assistant' ? <p className="field-error">{t.error}</p> : null}
              {t.row ? <AnswerFacts row={t.row} unit={t.unit ?? 'USD'} /> : null}
            </li>
          ))}
        </ol>
      </Section>
    </>
  );
}

function AnswerFacts({ row, unit }: { row: RequestRow; unit: string }) {
  return (
    <dl className="chat-facts" aria-label="What the gateway did">
      <div>
        <dt>Endpoint</dt>
        <dd>
          {row.endpoint ?? '—'}
          {row.upstream_model ? ` (${row.upstream_model})` : ''}
        </dd>
      </div>
      <div>
        <dt>Attempts</dt>
        <dd>{row.attempts}</dd>
      </div>
      <div>
        <dt>Tokens</dt>
        <dd>
          {fmtInt(row.prompt_tokens)} in, {fmtInt(row.completion_tokens)} out{row.estimated ? ' (estimated)' : ''}
        </dd>
      </div>
      <div>
        <dt>Cost</dt>
        <dd>
          {fmtCost(row.cost)} {unit}
        </dd>
      </div>
      <div>
        <dt>Latency</dt>
        <dd>
          {fmtMs(row.latency_ms)}
          {row.ttfb_ms !== null ? `, first token ${fmtMs(row.ttfb_ms)}` : ''}
        </dd>
      </div>
      <div>
        <dt>Status</dt>
        <dd>
          {row.status}
          {row.downgraded_from ? `, downgraded from ${row.downgraded_from}` : ''}
        </dd>
      </div>
    </dl>
  );
}
