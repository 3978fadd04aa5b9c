// OTLP/HTTP export against a real receiver started here (it decodes the protobuf itself): spans
// arrive with our trace ids, GenAI names and the configured header when export is on, none when
// it is off; a collector that hangs or answers 500 never fails or holds up a request, and the
// export picks up again when it recovers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import type { TracesBody } from '../../gateway/wire.js';

let gw: RunningGateway;
let up: TestUpstream;
let rx: OtlpReceiver;
let settings: Record<string, any>;

before(async () => {
  up = await startUpstream();
  rx = await startOtlpReceiver();
  gw = await startGateway({ config: basicConfig(up.url), env: { AIRLOCK_SECRET_OTLP_TOKEN: 'Bearer collector-secret' } });
  settings = (await gw.admin('GET', '/settings')).body;
});

after(async () => {
  await gw?.stop();
  await up?.close();
  await rx?.close();
});

async function setExport(on: boolean, extra: Record<string, unknown> = {}): Promise<void> {
  const telemetry = { ...settings.telemetry, ...extra };
  if (on) Object.assign(telemetry, { otlp_endpoint: `${rx.url}/v1/traces`, otlp_headers: { authorization: '${env:AIRLOCK_SECRET_OTLP_TOKEN}' } });
  else delete telemetry.otlp_endpoint;
  const r = await gw.admin('PUT', '/settings', { ...settings, telemetry });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

function chat(session: string, content = 'hello') {
  return new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 15_000, defaultHeaders: { 'x-airlock-session': session } }).chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content }],
  });
}

const ofSession = (s: string) => rx.spans.filter((x) => x.attributes['airlock.session'] === s);

test('off by default: requests export nothing; on: their spans reach the collector with the header', async () => {
  assert.equal(settings.telemetry.otlp_endpoint, undefined);
  const quiet = `quiet-${randomUUID()}`;
  for (let i = 0; i < 3; i++) await chat(quiet);

  await setExport(true);
  const loud = `loud-${randomUUID()}`;
  await chat(loud);
  await eventually(() => ofSession(loud).length >= 1, 'the spans of the request made with export on');
  assert.equal(ofSession(quiet).length, 0, 'nothing of the requests made while export was off');

  const stored = (await gw.admin<TracesBody>('GET', `/traces?session=${loud}`)).body.data[0]!;
  const root = stored.spans.find((s) => s.kind === 'model')!;
  const attempt = stored.spans.find((s) => s.kind === 'attempt')!;
  await eventually(() => rx.spans.some((s) => s.spanId === attempt.span_id), 'the attempt span');
  const got = rx.spans.find((s) => s.spanId === root.span_id)!;
  assert.equal(got.traceId, stored.trace_id);
  assert.equal(got.name, 'chat chat');
  assert.equal(got.kind, 2, 'SPAN_KIND_SERVER');
  assert.equal(got.attributes['gen_ai.operation.name'], 'chat');
  assert.equal(got.attributes['gen_ai.request.model'], 'chat');
  assert.equal(got.attributes['http.response.status_code'], 200);
  assert.equal(got.status.code, 1, 'STATUS_CODE_OK');
  assert.equal(got.resource['service.name'], 'airlock');
  assert.ok(got.endNs >= got.startNs && got.startNs > 1_600_000_000_000_000_000n, 'epoch nanoseconds');
  const a = rx.spans.find((s) => s.spanId === attempt.span_id)!;
  assert.equal(a.parentSpanId, root.span_id);
  assert.equal(a.kind, 3, 'SPAN_KIND_CLIENT');
  // the stored row (the tracer writes it without span objects) and the exported spans (span
  // objects) say the same: names, parents, times, statuses, every attribute by name and value
  // (this receiver does not decode array values)
  for (const [s, x] of [[root, got], [attempt, a]] as const) {
    assert.equal(x.name, s.name);
    assert.equal(x.parentSpanId || null, s.parent_span_id, `${s.kind} parent`);
    assert.ok(Math.abs(Number(x.startNs) / 1e6 - s.start_ms) < 0.001 && Math.abs(Number(x.endNs) / 1e6 - s.end_ms) < 0.001, `${s.kind} times`);
    assert.equal(x.status.code, s.status.code === 'ok' ? 1 : s.status.code === 'error' ? 2 : 0, `${s.kind} status`);
    assert.deepEqual(Object.keys(x.attributes).sort(), Object.keys(s.attributes).sort(), `${s.kind} attribute names`);
    for (const [k, v] of Object.entries(s.attributes)) if (!Array.isArray(v)) assert.equal(x.attributes[k], v, `${s.kind} ${k}`);
  }
  const req = rx.requests.find((r) => r.contentType === 'application/x-protobuf');
  assert.ok(req, 'protobuf');
  assert.equal(req.headers.authorization, 'Bearer collector-secret');

  // the header's secret is not in the settings the API shows
  const shown = JSON.stringify((await gw.admin('GET', '/settings')).body);
  assert.equal(shown.includes('collector-secret'), false);
});

test('a collector that hangs or answers 500 fails no request; export resumes when it recovers', async () => {
  await setExport(true, { otlp_timeout_ms: 300, otlp_max_queue: 100 });
  rx.mode = 'hang';
  const session = `dead-${randomUUID()}`;
  await chat(session, 'first');
  await eventually(() => rx.hanging >= 1, 'an export held open by the collector');
  // while an export hangs, requests keep being answered (more spans than the queue holds)
  const answers = await Promise.all(Array.from({ length: 80 }, (_, i) => chat(session, `while hanging ${i}`)));
  assert.equal(answers.length, 80);
  assert.ok(answers.every((r) => r.choices[0]?.message.content?.startsWith('echo: while hanging')));

  rx.mode = '500';
  const during500 = await Promise.all(Array.from({ length: 20 }, (_, i) => chat(session, `while failing ${i}`)));
  assert.equal(during500.length, 20);
  await eventually(async () => {
    const m = await fetch(`${gw.adminUrl}/admin/api/v1/metrics`, { headers: { authorization: 'Bearer test-admin-token-0123456789' } }).then((r) => r.text());
    const failures = /^airlock_otlp_export_failures_total (\d+)/m.exec(m);
    const dropped = /^airlock_otlp_spans_dropped_total (\d+)/m.exec(m);
    return failures && Number(failures[1]) >= 1 && dropped && Number(dropped[1]) > 0;
  }, 'failed exports and dropped spans counted in /metrics');

  // every request of the session is still in the local store
  const stored = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
  assert.equal(stored.length, 101);

  rx.mode = 'ok';
  await setExport(true); // the default timeout again: a loaded test machine may need more than 300 ms
  const back = `back-${randomUUID()}`;
  // a request per try: spans whose export failed are dropped, not sent again
  await eventually(
    async () => {
      await chat(back);
      return ofSession(back).length >= 1;
    },
    'spans exported again after the collector recovered',
    30_000,
    500,
  );
});
