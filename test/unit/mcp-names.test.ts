// Tool names the agent sees and the permission patterns over them; the config schema's rules for
// MCP servers and agents.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EXPOSED_NAME_RE, compilePattern, exposedName, permitted } from '../../gateway/engine/mcp/names.js';
import { templateMatches } from '../../gateway/engine/mcp/hub.js';
import { checkReferences, configSchema, formatIssue, fromZod, DEFAULT_SETTINGS, type FullConfig } from '../../gateway/config/schema.js';

const perms = (allow: string[], deny: string[] = []) => ({ allow: allow.map(compilePattern), deny: deny.map(compilePattern) });

describe('exposed tool names', () => {
  test('server__tool when it fits the model APIs\' rule', () => {
    assert.equal(exposedName('files', 'read_file'), 'files__read_file');
    assert.equal(exposedName('every', 'get-sum'), 'every__get-sum');
  });
  test('other characters or too long: shortened deterministically, within ^[A-Za-z0-9_-]{1,64}$, distinct for distinct tools', () => {
    const odd = ['tickets.create', 'a/b', 'ünïcode', 'x'.repeat(100), 'x'.repeat(101), 'with space', ''];
    const names = odd.map((t) => exposedName('tickets', t));
    for (const n of names) {
      assert.match(n, EXPOSED_NAME_RE, n);
      assert.ok(n.startsWith('tickets__'), n);
    }
    assert.equal(new Set(names).size, names.length, 'no two tools share a name');
    assert.deepEqual(odd.map((t) => exposedName('tickets', t)), names, 'the same name every time');
    assert.match(exposedName('s'.repeat(32), 'y'.repeat(64)), EXPOSED_NAME_RE);
  });
});

describe('permission patterns', () => {
  test('default deny; * matches any characters; deny wins; matching is exact and case-sensitive', () => {
    const p = perms(['files__read_*', 'tickets__*'], ['tickets__delete_*']);
    assert.equal(permitted(p, 'files__read_file'), true);
    assert.equal(permitted(p, 'files__read_'), true);
    assert.equal(permitted(p, 'files__write_file'), false);
    assert.equal(permitted(p, 'tickets__create'), true);
    assert.equal(permitted(p, 'tickets__delete_all'), false);
    assert.equal(permitted(p, 'Files__read_file'), false);
    assert.equal(permitted(p, 'xfiles__read_file'), false, 'anchored at the start');
    assert.equal(permitted(perms([]), 'files__read_file'), false);
    assert.equal(permitted(perms(['*'], ['*']), 'a__b'), false);
    // regex characters in a pattern are literal
    assert.equal(permitted(perms(['a.b__c']), 'aXb__c'), false);
    assert.equal(permitted(perms(['a-b__c']), 'a-b__c'), true);
  });
  test('within a virtual server: both must allow, either may deny', () => {
    const p = { ...perms(['files__*', 'every__echo'], ['files__write_*']), within: perms(['*__read_*', 'every__*']) };
    assert.equal(permitted(p, 'files__read_file'), true);
    assert.equal(permitted(p, 'every__echo'), true);
    assert.equal(permitted(p, 'files__list_directory'), false, 'the agent allows it, the virtual server does not');
    assert.equal(permitted(p, 'every__get-sum'), false, 'the virtual server offers it, the agent may not');
    assert.equal(permitted({ ...perms(['*']), within: perms(['*'], ['x__y']) }, 'x__y'), false);
  });
  test('resource templates match on their literal parts', () => {
    assert.equal(templateMatches('demo://resource/dynamic/text/{id}', 'demo://resource/dynamic/text/7'), true);
    assert.equal(templateMatches('demo://resource/dynamic/text/{id}', 'demo://other/7'), false);
    assert.equal(templateMatches('file:///{path}', 'file:///etc/x'), true);
  });
});

const full = (doc: unknown): { parse: string[]; refs: string[] } => {
  const r = configSchema.safeParse(doc);
  if (!r.success) return { parse: fromZod(r.error).map(formatIssue), refs: [] };
  const c: FullConfig = { endpoints: [], models: [], teams: [], keys: [], routing_rules: [], settings: DEFAULT_SETTINGS, mcp_servers: [], agents: [], mcp_virtual_servers: [], ...r.data, guardrails: r.data.guardrails ?? [] };
  return { parse: [], refs: checkReferences(c).map(formatIssue) };
};

describe('mcp_servers and agents in the config schema', () => {
  test('server names: no "__", no trailing "_", within 32 characters; case-insensitive duplicates refused', () => {
    for (const bad of ['a__b', 'files_', '_x', 'x'.repeat(33), 'with space', 'dots.no', ''])
      assert.notDeepEqual(full({ mcp_servers: [{ name: bad, transport: 'http', url: 'http://h/mcp' }] }).parse, [], bad);
    for (const good of ['files', 'a_b', 'A-1', 'x'.repeat(32)]) assert.deepEqual(full({ mcp_servers: [{ name: good, transport: 'http', url: 'http://h/mcp' }] }), { parse: [], refs: [] }, good);
    assert.deepEqual(full({ mcp_servers: [{ name: 'Files', transport: 'http', url: 'http://h/mcp' }, { name: 'files', transport: 'http', url: 'http://h/mcp' }] }).refs, ['mcp_servers[1].name: duplicate name "files"']);
  });
  test('each transport needs its own fields and refuses the others\' (named by path)', () => {
    assert.deepEqual(full({ mcp_servers: [{ name: 's', transport: 'stdio' }] }).refs, ['mcp_servers[0].command: is required for transport "stdio"']);
    assert.deepEqual(full({ mcp_servers: [{ name: 's', transport: 'stdio', command: 'x', url: 'http://h/' }] }).refs, ['mcp_servers[0].url: is for transport "http" or "sse", not "stdio"']);
    assert.deepEqual(full({ mcp_servers: [{ name: 's', transport: 'sse' }] }).refs, ['mcp_servers[0].url: is required for transport "sse"']);
    assert.deepEqual(full({ mcp_servers: [{ name: 's', transport: 'http', url: 'http://h/', command: 'x', env: { A: 'b' } }] }).refs, [
      'mcp_servers[0].command: is for transport "stdio", not "http"',
      'mcp_servers[0].env: is for transport "stdio", not "http"',
    ]);
    assert.match(full({ mcp_servers: [{ name: 's', transport: 'ftp', url: 'http://h/' }] }).parse.join(), /transport/);
    assert.match(full({ mcp_servers: [{ name: 's', transport: 'http', url: 'file:///etc/passwd' }] }).parse.join(), /url: must be an http/);
    assert.match(full({ mcp_servers: [{ name: 's', transport: 'stdio', command: 'x', env: { 'BAD-NAME': 'v' } }] }).parse.join(), /env\.BAD-NAME: must be an environment variable name/);
    assert.match(full({ mcp_servers: [{ name: 's', transport: 'http', url: 'http://h/', headers: { 'bad header': 'v' } }] }).parse.join(), /must be an HTTP header name/);
    assert.match(full({ mcp_servers: [{ name: 's', transport: 'http', url: 'http://h/', unknown: 1 }] }).parse.join(), /unknown/);
  });
  test('agents: tool patterns, unknown team, a key given twice (also as an app key)', () => {
    assert.match(full({ agents: [{ name: 'a', tools: ['files__read file'] }] }).parse.join(), /agents\[0\]\.tools\[0\]: must be a tool name/);
    assert.deepEqual(full({ agents: [{ name: 'a', team: 'nope' }] }).refs, ['agents[0].team: unknown team "nope"']);
    const key = 'sk-airlock-' + 'k'.repeat(30);
    assert.deepEqual(full({ keys: [{ name: 'app', key }], agents: [{ name: 'a', key }] }).refs, ['agents[0].key: the same key is given twice (to an app key or another agent)']);
    assert.deepEqual(full({ agents: [{ name: 'a' }, { name: 'a' }] }).refs, ['agents[1].name: duplicate name "a"']);
  });
});
