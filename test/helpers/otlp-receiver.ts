// A minimal OTLP/HTTP traces receiver for tests: POST /v1/traces with an
// application/x-protobuf ExportTraceServiceRequest, decoded here by a small protobuf reader
// written from the OTLP .proto files (independent of the exporter under test). It can
// misbehave: hang (never answer), or answer 500.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message: string };
  /** resource attributes of the batch it came in */
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  url: string;
  spans: ReceivedSpan[];
  /** requests received (any outcome), with their headers */
  requests: { headers: http.IncomingHttpHeaders; contentType: string | undefined }[];
  /** requests being held open by 'hang' */
  hanging: number;
  mode: 'ok' | 'hang' | '500';
  close(): Promise<void>;
}

type Field = { no: number; wire: number; v: bigint | Buffer };

function* fields(b: Buffer): Generator<Field> {
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      const c = b[i++]!;
      r |= BigInt(c & 0x7f) << shift;
      if (!(c & 0x80)) return r;
      shift += 7n;
    }
  };
  while (i < b.length) {
    const key = Number(varint());
    const no = key >> 3;
    const wire = key & 7;
    if (wire === 0) yield { no, wire, v: varint() };
    else if (wire === 1) {
      yield { no, wire, v: b.readBigUInt64LE(i) };
      i += 8;
    } else if (wire === 2) {
      const len = Number(varint());
      yield { no, wire, v: b.subarray(i, i + len) };
      i += len;
    } else if (wire === 5) {
      yield { no, wire, v: BigInt(b.readUInt32LE(i)) };
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

function anyValue(b: Buffer): string | number | boolean {
  for (const f of fields(b)) {
    if (f.no === 1) return (f.v as Buffer).toString('utf8');
    if (f.no === 2) return f.v === 1n;
    if (f.no === 3) return Number(BigInt.asIntN(64, f.v as bigint));
    if (f.no === 4) {
      const d = Buffer.alloc(8);
      d.writeBigUInt64LE(f.v as bigint);
      return d.readDoubleLE(0);
    }
  }
  return '';
}

function keyValue(b: Buffer, into: Record<string, string | number | boolean>): void {
  let k = '';
  let v: string | number | boolean = '';
  for (const f of fields(b)) {
    if (f.no === 1) k = (f.v as Buffer).toString('utf8');
    if (f.no === 2) v = anyValue(f.v as Buffer);
  }
  into[k] = v;
}

function span(b: Buffer, resource: ReceivedSpan['resource']): ReceivedSpan {
  const s: ReceivedSpan = { traceId: '', spanId: '', parentSpanId: '', name: '', kind: 0, startNs: 0n, endNs: 0n, attributes: {}, status: { code: 0, message: '' }, resource };
  for (const f of fields(b)) {
    const buf = f.v as Buffer;
    if (f.no === 1) s.traceId = buf.toString('hex');
    else if (f.no === 2) s.spanId = buf.toString('hex');
    else if (f.no === 4) s.parentSpanId = buf.toString('hex');
    else if (f.no === 5) s.name = buf.toString('utf8');
    else if (f.no === 6) s.kind = Number(f.v);
    else if (f.no === 7) s.startNs = f.v as bigint;
    else if (f.no === 8) s.endNs = f.v as bigint;
    else if (f.no === 9) keyValue(buf, s.attributes);
    else if (f.no === 15)
      for (const g of fields(buf)) {
        if (g.no === 2) s.status.message = (g.v as Buffer).toString('utf8');
        if (g.no === 3) s.status.code = Number(g.v);
      }
  }
  return s;
}

/** ExportTraceServiceRequest → spans */
export function decodeTraces(body: Buffer): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of fields(body)) {
    if (rs.no !== 1) continue;
    const resource: ReceivedSpan['resource'] = {};
    const scopes: Buffer[] = [];
    for (const f of fields(rs.v as Buffer)) {
      if (f.no === 1) for (const a of fields(f.v as Buffer)) if (a.no === 1) keyValue(a.v as Buffer, resource);
      if (f.no === 2) scopes.push(f.v as Buffer);
    }
    for (const sc of scopes) for (const f of fields(sc)) if (f.no === 2) out.push(span(f.v as Buffer, resource));
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const held = new Set<http.ServerResponse>();
  const r: OtlpReceiver = {
    url: '',
    spans: [],
    requests: [],
    hanging: 0,
    mode: 'ok',
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.requests.push({ headers: req.headers, contentType: req.headers['content-type'] });
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      if (r.mode === 'hang') {
        r.hanging++;
        held.add(res);
        res.on('close', () => {
          r.hanging--;
          held.delete(res);
        });
        return;
      }
      if (r.mode === '500') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collector broke');
        return;
      }
      r.spans.push(...decodeTraces(Buffer.concat(chunks)));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return r;
}
