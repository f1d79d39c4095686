// Interop: MCP authorization (spec 2025-06-18 / 2025-11-25) on Larder's HTTPS listener, in
// front of the real servers `larder demo` starts (larder-db and larder-compliance over mTLS):
//   - RFC 9728 protected resource metadata at /.well-known/oauth-protected-resource(/mcp),
//     raw and through the official TypeScript SDK's discoverOAuthProtectedResourceMetadata;
//   - the SDK client without a token: initialize and lists are open, tools/call is answered
//     401 with a Bearer challenge; with an OAuthClientProvider holding no token the SDK reads
//     the challenge, fetches our metadata and asks to redirect (no authorization server);
//   - the SDK client with a provider holding Erin's token: sent as Authorization: Bearer,
//     the call is served;
//   - raw POSTs: no token → 401 without error=; garbage, tampered, revoked, expired, bound to
//     another certificate or audience → 401 error="invalid_token" with a description; each
//     401 body is the JSON-RPC refusal (lock biscuit) with no row data; the seed-style
//     biscuit_token argument keeps HTTP 200; a valid bearer → 200.
// Usage: cd tests/interop && LARDER_BINARY_DIR=<build> node connect/http_auth.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Agent, fetch as undiciFetch } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  discoverOAuthProtectedResourceMetadata,
  extractWWWAuthenticateParams,
  UnauthorizedError,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { startDemo, cleanEnv, patientDatalog } from './demo_env.mjs';

const ERIN = 'Erin oRTEga';
const PROTOCOL = '2025-06-18';
const ROW_QUERY = 'SELECT "Patient Name", "Medical Condition" FROM health_records LIMIT 3';
const CHALLENGE_PATH = '/.well-known/oauth-protected-resource/mcp';

let demo;
let agent;
let mtlsFetch;
const servers = {}; // audience → {port, base, url}

let passed = 0;
async function check(name, fn) {
  await fn();
  passed++;
  console.log(`ok - ${name}`);
}

// --- helpers ---------------------------------------------------------------------------

function server(audience) {
  const port = Number(readFileSync(join(demo.dir, `${audience}.port`), 'utf8').trim());
  const base = `https://127.0.0.1:${port}`;
  return { port, base, url: `${base}/mcp` };
}

// A token from the demo's root key, bound by `larder biscuit attest` (as demo.mintToken, with
// the TTL, certificate and audiences of our choosing).
function mint(name, { ttl = '1h', cert = 'certs/client/claude-client.crt', audiences = ['larder-db', 'larder-compliance'] } = {}) {
  const opts = { cwd: demo.root, env: cleanEnv() };
  const raw = execFileSync(demo.larder, ['biscuit', 'generate', '--private-key-file', join(demo.dir, 'root.key'), '--add-ttl', ttl, '-'], {
    ...opts,
    input: patientDatalog(ERIN),
  }).toString().trim();
  const bound = execFileSync(demo.larder, [
    'biscuit', 'attest', '--token', raw,
    '--cert', join(demo.dir, cert),
    ...audiences.flatMap((a) => ['--audience', a]),
    '--public-key-file', join(demo.dir, 'root.key.pub'),
  ], opts).toString().trim();
  const file = demo.tokenFile(name);
  writeFileSync(file, `${bound}\n`, { mode: 0o600 });
  return bound;
}

// Flip one character in the middle of a base64url token to another base64url character.
function tamper(token) {
  const i = Math.floor(token.length / 2);
  const c = token[i];
  const repl = c === 'A' ? 'B' : 'A';
  const t = token.slice(0, i) + repl + token.slice(i + 1);
  assert.notEqual(t, token);
  return t;
}

// Reads a JSON-RPC answer from a JSON or SSE body.
async function rpcBody(res) {
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  if (type.includes('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).filter(Boolean);
    const msgs = data.map((d) => JSON.parse(d));
    return { text, json: msgs.find((m) => m.id !== undefined) ?? msgs[0] };
  }
  return { text, json: text ? JSON.parse(text) : undefined };
}

// A raw MCP session: initialize (no token), initialized, then requests by hand.
async function rawSession(url) {
  const base = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
  const init = await mtlsFetch(url, {
    method: 'POST',
    headers: base,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 0, method: 'initialize',
      params: { protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'larder-http-auth-raw', version: '1.0.0' } },
    }),
  });
  const initBody = await rpcBody(init);
  assert.equal(init.status, 200, `initialize: ${init.status} ${initBody.text}`);
  assert.ok(initBody.json.result?.serverInfo, initBody.text);
  const session = init.headers.get('mcp-session-id');
  assert.ok(session, 'initialize gave an Mcp-Session-Id');
  const headers = { ...base, 'MCP-Protocol-Version': PROTOCOL, 'Mcp-Session-Id': session };
  const note = await mtlsFetch(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) });
  await note.text();
  assert.ok(note.status === 202 || note.status === 200, `initialized: ${note.status}`);
  let id = 100;
  return {
    session,
    // → {status, headers, text, json, id}
    async request(method, params, extraHeaders = {}) {
      const mine = ++id;
      const res = await mtlsFetch(url, {
        method: 'POST',
        headers: { ...headers, ...extraHeaders },
        body: JSON.stringify({ jsonrpc: '2.0', id: mine, method, params }),
      });
      const body = await rpcBody(res);
      return { status: res.status, headers: res.headers, res, ...body, id: mine };
    },
  };
}

const show = (r) => `HTTP ${r.status}\nWWW-Authenticate: ${r.headers.get('www-authenticate')}\n${r.text.slice(0, 600)}`;

// The challenge of a 401: resource_metadata pointing at this listener, error as expected.
function assertChallenge(r, srv, { error }) {
  assert.equal(r.status, 401, show(r));
  const h = r.headers.get('www-authenticate');
  assert.ok(h, `401 without WWW-Authenticate\n${show(r)}`);
  assert.match(h, /^Bearer /, h);
  assert.ok(h.includes(`resource_metadata="${srv.base}${CHALLENGE_PATH}"`), `resource_metadata in ${h}`);
  if (error) {
    assert.ok(h.includes(`error="${error}"`), `error="${error}" in ${h}`);
    const desc = h.match(/error_description="([^"]*)"/);
    assert.ok(desc && desc[1].length > 0, `error_description in ${h}`);
    return { header: h, description: desc[1] };
  }
  assert.ok(!/\berror=/.test(h), `no error= expected without a token: ${h}`);
  assert.ok(!/error_description=/.test(h), h);
  return { header: h };
}

// The 401 body: the tool refusal it always was (lock biscuit), no row data.
function assertRefusalBody(r, { lockText } = {}) {
  assert.ok(r.json, `no JSON-RPC body: ${show(r)}`);
  assert.equal(r.json.jsonrpc, '2.0');
  assert.equal(r.json.id, r.id, 'the answer carries the request id');
  assert.equal(r.json.result?.isError, true, show(r));
  const d = r.json.result._meta?.['larder/decision'];
  assert.ok(d, `no larder/decision: ${show(r)}`);
  assert.equal(d.lock, 'biscuit', show(r));
  assert.equal(r.json.result.structuredContent, undefined, 'no structured content in a refusal');
  assert.ok(!r.text.includes(ERIN) && !r.text.includes('Medical Condition"') && !/"rows"/.test(r.text), `row data in a refusal: ${r.text}`);
  if (lockText) assert.match(JSON.stringify(r.json.result), lockText);
  return d;
}

function assertRows(r) {
  assert.equal(r.status, 200, show(r));
  assert.equal(r.headers.get('www-authenticate'), null, 'no challenge on success');
  const res = r.json.result;
  assert.notEqual(res?.isError, true, show(r));
  assert.ok(res.structuredContent?.rows?.length > 0, show(r));
  for (const row of res.structuredContent.rows) assert.equal(row['Patient Name'], ERIN);
}

// A minimal OAuthClientProvider: a pre-registered client, tokens as given, every redirect
// recorded instead of followed.
function provider(tokens) {
  const p = {
    redirects: [],
    saved: [],
    get redirectUrl() {
      return 'http://127.0.0.1:1/callback';
    },
    get clientMetadata() {
      return { client_name: 'larder-http-auth-test', redirect_uris: ['http://127.0.0.1:1/callback'] };
    },
    clientInformation: () => ({ client_id: 'larder-http-auth-test' }),
    saveClientInformation: () => {},
    tokens: () => tokens,
    saveTokens: (t) => p.saved.push(t),
    redirectToAuthorization: (u) => p.redirects.push(String(u)),
    saveCodeVerifier: () => {},
    codeVerifier: () => 'verifier',
  };
  return p;
}

function recordingFetch() {
  const seen = [];
  const f = (url, init) => {
    const headers = new Headers(init?.headers);
    const entry = { url: String(url), method: init?.method ?? 'GET', authorization: headers.get('authorization') };
    seen.push(entry);
    return mtlsFetch(url, init).then((res) => {
      entry.status = res.status;
      return res;
    });
  };
  return { fetch: f, seen };
}

async function sdkClient(url, opts = {}) {
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: mtlsFetch, ...opts });
  const client = new Client({ name: 'larder-http-auth-ts', version: '1.0.0' });
  const errors = [];
  client.onerror = (e) => errors.push(e);
  await client.connect(transport);
  return { client, transport, errors };
}

// --- checks ------------------------------------------------------------------------------

let failed = false;
const started = Date.now();
try {
  demo = await startDemo({ rows: 500 });
  const file = (p) => readFileSync(join(demo.dir, p));
  agent = new Agent({
    connect: { ca: file('certs/ca.crt'), cert: file('certs/client/claude-client.crt'), key: file('certs/client/claude-client.key'), servername: 'localhost' },
  });
  mtlsFetch = (url, init) => undiciFetch(url, { ...init, dispatcher: agent });
  for (const a of ['larder-db', 'larder-compliance']) servers[a] = server(a);
  const db = servers['larder-db'];
  const erin = demo.token('erin');

  await check('RFC 9728 metadata: both well-known URLs on both listeners (raw GET over mTLS)', async () => {
    for (const [audience, srv] of Object.entries(servers)) {
      for (const path of ['/.well-known/oauth-protected-resource', CHALLENGE_PATH]) {
        const res = await mtlsFetch(`${srv.base}${path}`);
        const text = await res.text();
        assert.equal(res.status, 200, `${srv.base}${path}: ${res.status} ${text}`);
        assert.match(res.headers.get('content-type') ?? '', /application\/json/);
        const m = JSON.parse(text);
        assert.equal(m.resource, srv.url);
        assert.equal(typeof m.resource_name, 'string');
        assert.ok(m.resource_name.length > 0);
        assert.deepEqual(m.bearer_methods_supported, ['header']);
        assert.equal(m.tls_client_certificate_bound_access_tokens, true);
        assert.equal(m.larder_audience, audience);
        assert.equal(m.larder_token_format, 'biscuit-v3');
      }
    }
  });

  await check('RFC 9728 metadata: the SDK\'s discoverOAuthProtectedResourceMetadata reads it', async () => {
    for (const [audience, srv] of Object.entries(servers)) {
      // Path-aware discovery from the server URL alone.
      const rec = recordingFetch();
      const m = await discoverOAuthProtectedResourceMetadata(srv.url, {}, rec.fetch);
      assert.equal(m.resource, srv.url);
      assert.equal(m.tls_client_certificate_bound_access_tokens, true);
      assert.equal(m.larder_audience, audience, 'the SDK keeps our extension fields');
      assert.deepEqual(rec.seen.map((s) => s.url), [`${srv.base}${CHALLENGE_PATH}`]);
      // And at the URL a challenge names.
      const m2 = await discoverOAuthProtectedResourceMetadata(srv.url, { resourceMetadataUrl: `${srv.base}/.well-known/oauth-protected-resource` }, mtlsFetch);
      assert.equal(m2.resource, srv.url);
      assert.equal(m2.tls_client_certificate_bound_access_tokens, true);
    }
  });

  await check('SDK client, no token: initialize and tools/list open, pg_query → 401 (StreamableHTTPError)', async () => {
    const { client, transport } = await sdkClient(db.url);
    try {
      assert.ok(transport.sessionId, 'initialize gave a session');
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'pg_query'), tools.map((t) => t.name).join());
      await client.ping();
      await assert.rejects(client.callTool({ name: 'pg_query', arguments: { query: ROW_QUERY } }), (e) => {
        assert.ok(e instanceof StreamableHTTPError, `${e?.constructor?.name}: ${e}`);
        assert.equal(e.code, 401, String(e));
        assert.ok(!String(e.message).includes(ERIN), 'no row data in the error');
        return true;
      });
      // Still usable after the refusal.
      const again = await client.listTools();
      assert.equal(again.tools.length, tools.length);
    } finally {
      await client.close();
    }
  });

  await check('SDK client, authProvider without tokens: the SDK follows the challenge to our metadata', async () => {
    const rec = recordingFetch();
    const p = provider(undefined);
    const { client } = await sdkClient(db.url, { fetch: rec.fetch, authProvider: p });
    try {
      await client.listTools();
      const before = rec.seen.length;
      await assert.rejects(client.callTool({ name: 'pg_query', arguments: { query: ROW_QUERY } }), (e) => {
        assert.ok(e instanceof UnauthorizedError, `${e?.constructor?.name}: ${e}`);
        return true;
      });
      const after = rec.seen.slice(before);
      const urls = after.map((s) => `${s.method} ${s.url}`);
      assert.ok(urls.includes(`GET ${db.base}${CHALLENGE_PATH}`), `the SDK did not read the resource metadata: ${urls.join('\n')}`);
      assert.ok(after.every((s) => s.authorization === null), 'no Authorization sent without a token');
      // No authorization server in our metadata: the SDK falls back to the server's origin and,
      // with a pre-registered client, asks to redirect the user there. Nothing was saved.
      assert.equal(p.redirects.length, 1, `redirects: ${p.redirects}`);
      assert.ok(p.redirects[0].startsWith(`${db.base}/authorize?`), p.redirects[0]);
      assert.equal(new URL(p.redirects[0]).searchParams.get('resource'), db.url, 'the resource indicator is ours');
      assert.deepEqual(p.saved, []);
      console.log(`#   fetched after the 401: ${after.map((s) => `${s.method} ${new URL(s.url).pathname} → ${s.status}`).join(', ')}`);
    } finally {
      await client.close();
    }
  });

  await check('extractWWWAuthenticateParams parses our challenges', async () => {
    const s = await rawSession(db.url);
    const none = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } });
    assertChallenge(none, db, { error: null });
    const p = extractWWWAuthenticateParams(none.res);
    assert.equal(p.resourceMetadataUrl?.href, `${db.base}${CHALLENGE_PATH}`);
    assert.equal(p.error, undefined);
    const bad = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } }, { Authorization: 'Bearer garbage' });
    const q = extractWWWAuthenticateParams(bad.res);
    assert.equal(q.resourceMetadataUrl?.href, `${db.base}${CHALLENGE_PATH}`);
    assert.equal(q.error, 'invalid_token');
  });

  await check("SDK client, authProvider with Erin's token: sent as Authorization: Bearer, pg_query served", async () => {
    const rec = recordingFetch();
    const p = provider({ access_token: erin, token_type: 'Bearer' });
    const { client } = await sdkClient(db.url, { fetch: rec.fetch, authProvider: p });
    try {
      const r = await client.callTool({ name: 'pg_query', arguments: { query: 'SELECT count(*) AS n FROM health_records' } });
      assert.notEqual(r.isError, true, JSON.stringify(r).slice(0, 500));
      assert.ok(Number(r.structuredContent.rows[0].n) > 0, JSON.stringify(r.structuredContent));
      assert.equal(r._meta?.['larder/decision']?.decision, 'allow');
      const rows = await client.callTool({ name: 'pg_query', arguments: { query: ROW_QUERY } });
      assert.notEqual(rows.isError, true);
      for (const row of rows.structuredContent.rows) assert.equal(row['Patient Name'], ERIN, 'row-level security as Erin');
      const posts = rec.seen.filter((s) => s.method === 'POST');
      assert.ok(posts.length >= 3);
      assert.ok(posts.every((s) => s.authorization === `Bearer ${erin}`), 'every POST carried the bearer token');
      assert.ok(!rec.seen.some((s) => s.url.includes('/.well-known/')), 'no discovery: no 401 happened');
      assert.deepEqual(p.redirects, []);
    } finally {
      await client.close();
    }
  });

  await check('raw: no token → 401 challenge without error=, JSON-RPC refusal (lock biscuit), no rows', async () => {
    const s = await rawSession(db.url);
    // Lists and ping stay open.
    const list = await s.request('tools/list', {});
    assert.equal(list.status, 200, show(list));
    assert.ok(list.json.result.tools.length > 0);
    const ping = await s.request('ping', {});
    assert.equal(ping.status, 200, show(ping));
    const r = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } });
    assertChallenge(r, db, { error: null });
    assertRefusalBody(r);
    // The compliance listener: its own resource_metadata.
    const c = await rawSession(servers['larder-compliance'].url);
    const rc = await c.request('tools/call', { name: 'hipaa_compliance_check', arguments: { text: 'x' } });
    assertChallenge(rc, servers['larder-compliance'], { error: null });
    assertRefusalBody(rc);
  });

  await check('raw: resources/read and prompts/get without a token → 401 challenge', async () => {
    const s = await rawSession(db.url);
    for (const [method, params] of [
      ['resources/read', { uri: 'pgmcp://healthcare/schemas/public/tables/health_records/sample' }],
      ['prompts/get', { name: 'generate_sql', arguments: { nl_query: 'How many?' } }],
    ]) {
      const r = await s.request(method, params);
      assertChallenge(r, db, { error: null });
      assert.equal(r.json?.id, r.id, `${method}: ${show(r)}`);
      assert.ok(r.json.error, `${method}: a JSON-RPC error expected: ${show(r)}`);
      assert.ok(!r.text.includes(ERIN), `${method}: row data in the refusal`);
      console.log(`#   ${method} without a token: 401, error ${r.json.error.code} ${JSON.stringify(r.json.error.message)}`);
    }
  });

  const descriptions = {};
  const invalid = async (label, token, { srv = db, reason } = {}) => {
    const s = await rawSession(srv.url);
    const r = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } }, { Authorization: `Bearer ${token}` });
    const { description } = assertChallenge(r, srv, { error: 'invalid_token' });
    const d = assertRefusalBody(r);
    if (reason) assert.match(description, reason, `${label}: ${description}`);
    const probe = token.length > 60 ? token.slice(20, 60) : token;
    assert.ok(!description.includes(probe) && !r.text.includes(probe), 'the token is not echoed');
    descriptions[label] = description;
    return { r, d, description };
  };

  await check('raw: garbage bearer → 401 error="invalid_token" with a description', async () => {
    await invalid('garbage', 'garbage-not-a-biscuit');
  });

  await check("raw: tampered bearer (one character of Erin's token flipped) → 401 invalid_token", async () => {
    await invalid('tampered', tamper(erin));
  });

  await check('raw: revoked bearer (`larder biscuit revoke @file`) → 401 invalid_token', async () => {
    const doomed = mint('http-auth-revoked');
    // Valid before the revocation.
    const s = await rawSession(db.url);
    assertRows(await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } }, { Authorization: `Bearer ${doomed}` }));
    const out = execFileSync(demo.larder, ['biscuit', 'revoke', '--state-dir', demo.dir, '--reason', 'http_auth.mjs', `@${demo.tokenFile('http-auth-revoked')}`], {
      cwd: demo.root,
      env: cleanEnv(),
    }).toString();
    assert.match(out, /^revoked [0-9a-f]+/);
    await invalid('revoked', doomed, { reason: /revoked/i });
  });

  await check('raw: expired bearer (TTL in the past) → 401 invalid_token', async () => {
    await invalid('expired', mint('http-auth-expired', { ttl: '2020-01-01T00:00:00Z' }));
  });

  await check('raw: bearer bound to another certificate, or to another audience → 401 invalid_token', async () => {
    await invalid('other certificate', mint('http-auth-other-cert', { cert: 'certs/ca.crt' }));
    await invalid('other audience', mint('http-auth-other-aud', { audiences: ['larder-compliance'] }));
  });

  await check('raw: seed-style biscuit_token argument, garbage, no header → HTTP 200 and the refusal', async () => {
    const s = await rawSession(db.url);
    const r = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY, biscuit_token: 'garbage-not-a-biscuit' } });
    assert.equal(r.status, 200, show(r));
    assert.equal(r.headers.get('www-authenticate'), null, 'no challenge for an argument token');
    assertRefusalBody(r);
    // A tampered token the same way, and a valid one as an argument is served.
    const t = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY, biscuit_token: tamper(erin) } });
    assert.equal(t.status, 200, show(t));
    assertRefusalBody(t);
    assertRows(await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY, biscuit_token: erin } }));
  });

  await check('raw: a valid bearer → 200 with Erin\'s rows', async () => {
    const s = await rawSession(db.url);
    assertRows(await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } }, { Authorization: `Bearer ${erin}` }));
    // And case-insensitive scheme per RFC 6750? Only report what happens.
    const lower = await s.request('tools/call', { name: 'pg_query', arguments: { query: ROW_QUERY } }, { Authorization: `bearer ${erin}` });
    console.log(`#   lower-case "bearer" scheme: HTTP ${lower.status}${lower.json?.result?.isError ? ' (refused)' : ''}`);
  });

  for (const [k, v] of Object.entries(descriptions)) console.log(`#   error_description (${k}): ${v}`);
  console.log(`${passed} HTTP authorization checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
} catch (e) {
  failed = true;
  console.log(`not ok - ${e.stack ?? e}`);
} finally {
  await agent?.close().catch(() => {});
  demo?.stop();
}
process.exit(failed ? 1 : 0);
