// Interop: the official MCP TypeScript SDK client against Larder's libmcp server over mTLS.
// Starts <build>/tests/integration/mcp/mcp_interop_server (which writes a throwaway PKI),
// then, with an undici Agent carrying the client certificate:
//   - StreamableHTTPClientTransport: initialize, list/call tools (structured output, _meta),
//     read a resource, get a prompt, answer a sampling request;
//   - SSEClientTransport (legacy HTTP+SSE): initialize, list and call tools;
// and checks that without a client certificate, or with one from another CA, the TLS
// handshake refuses the connection.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Agent, fetch as undiciFetch } from 'undici';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const bin = process.env.LARDER_BINARY_DIR;
if (!bin) throw new Error('LARDER_BINARY_DIR is not set');
const dir = mkdtempSync(join(tmpdir(), 'larder-mcp-interop-'));
const server = spawn(join(bin, 'tests/integration/mcp/mcp_interop_server'), ['--pki', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/READY (\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (code) => reject(new Error(`interop server exited with ${code}`)));
  setTimeout(() => reject(new Error('interop server did not start')), 20000);
});
const base = `https://127.0.0.1:${port}`;
const file = (n) => readFileSync(join(dir, n));

function fetchWith(connect) {
  const agent = new Agent({ connect: { ca: file('ca.crt'), servername: 'localhost', ...connect } });
  return (url, init) => undiciFetch(url, { ...init, dispatcher: agent });
}
const mtlsFetch = fetchWith({ cert: file('client.crt'), key: file('client.key') });

let passed = 0;
async function check(name, fn) {
  await fn();
  passed++;
  console.log(`ok - ${name}`);
}

try {
  await check('Streamable HTTP over mTLS with the TypeScript SDK client', async () => {
    const client = new Client({ name: 'ts-interop', version: '1.0.0' }, { capabilities: { sampling: {} } });
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => ({
      role: 'assistant',
      model: 'stub-model',
      content: { type: 'text', text: `echo:${req.params.messages[0].content.text}` },
    }));
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { fetch: mtlsFetch });
    await client.connect(transport);
    assert.equal(client.getServerVersion().name, 'larder-interop');
    assert.ok(transport.sessionId && transport.sessionId.length >= 32, 'session id has at least 128 bits');
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['add', 'ask_llm', 'echo', 'noop']);
    const echo = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
    assert.equal(echo.content[0].text, 'hi');
    assert.equal(echo._meta['larder/peer_cn'], 'interop-client');
    const add = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    assert.equal(add.structuredContent.sum, 42);
    const bad = await client.callTool({ name: 'add', arguments: { a: 'x', b: 1 } });
    assert.equal(bad.isError, true, 'schema-invalid arguments are refused before the handler runs');
    const res = await client.readResource({ uri: 'larder://readme' });
    assert.equal(res.contents[0].text, 'hello from libmcp');
    const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
    assert.equal(prompt.messages[0].content.text, 'Hello, Ada');
    const sampled = await client.callTool({ name: 'ask_llm', arguments: { prompt: 'ping' } });
    assert.equal(sampled.content[0].text, 'model said: echo:ping');
    await transport.terminateSession();
    await client.close();
  });

  await check('legacy HTTP+SSE over mTLS with SSEClientTransport', async () => {
    const client = new Client({ name: 'ts-interop-sse', version: '1.0.0' });
    const transport = new SSEClientTransport(new URL(`${base}/sse`), { fetch: mtlsFetch });
    await client.connect(transport);
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo'));
    const r = await client.callTool({ name: 'echo', arguments: { text: 'over sse' } });
    assert.equal(r.content[0].text, 'over sse');
    await client.close();
  });

  async function refused(name, f) {
    await check(name, async () => {
      const client = new Client({ name: 'ts-interop-refused', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { fetch: f });
      let error = null;
      try {
        await client.connect(transport);
      } catch (e) {
        error = e;
      }
      assert.ok(error, 'the connection must fail');
      const text = `${error} ${error.cause ?? ''} ${error.cause?.code ?? ''}`;
      assert.match(text, /fetch failed|certificate|alert|ECONNRESET|socket|handshake|EPIPE/i, text);
      await client.close().catch(() => {});
    });
  }
  await refused('no client certificate: refused at the TLS handshake', fetchWith({}));
  await refused("another CA's client certificate: refused at the TLS handshake",
    fetchWith({ cert: file('rogue.crt'), key: file('rogue.key') }));
  console.log(`${passed} interop checks passed`);
} finally {
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
