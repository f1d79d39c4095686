// A reference MCP server on the official TypeScript SDK (McpServer + StreamableHTTPServerTransport)
// over HTTPS with required client certificates, for the interop tests (our mcp::Client against
// it) and the load benchmark (bench_mcp_load --ts). Tools: echo, add, noop.
//   node bench/mcp_ts_server.mjs --ca ca.crt --cert server.crt --key server.key [--port N]
// Prints "READY <port>". Run from tests/interop (or with NODE_PATH set) so the SDK resolves.
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, v, i, a) => (v.startsWith('--') ? [...acc, [v.slice(2), a[i + 1]]] : acc), []));
const modules = args.modules ?? join(process.cwd(), 'node_modules');
const load = (p) => import(pathToFileURL(join(modules, p)).href);
const { McpServer } = await load('@modelcontextprotocol/sdk/dist/esm/server/mcp.js');
const { StreamableHTTPServerTransport } = await load('@modelcontextprotocol/sdk/dist/esm/server/streamableHttp.js');
const { isInitializeRequest } = await load('@modelcontextprotocol/sdk/dist/esm/types.js');
const { z } = await load('zod/index.js');
void createRequire;

function makeServer() {
  const server = new McpServer({ name: 'ts-reference', version: '1.0.0' });
  server.registerTool('echo', { description: 'Returns its text argument', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  server.registerTool('add', {
    description: 'Adds two integers',
    inputSchema: { a: z.number().int(), b: z.number().int() },
    outputSchema: { sum: z.number().int() },
  }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }], structuredContent: { sum: a + b } }));
  server.registerTool('noop', { description: 'Does nothing' }, async () => ({ content: [{ type: 'text', text: 'ok' }] }));
  return server;
}

const transports = new Map();
const httpsServer = https.createServer({
  ca: readFileSync(args.ca), cert: readFileSync(args.cert), key: readFileSync(args.key),
  requestCert: true, rejectUnauthorized: true,
}, async (req, res) => {
  if (!req.url.startsWith('/mcp')) { res.writeHead(404).end(); return; }
  let body;
  if (req.method === 'POST') {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { res.writeHead(400).end(); return; }
  }
  const sid = req.headers['mcp-session-id'];
  let transport = sid ? transports.get(sid) : undefined;
  if (!transport) {
    if (req.method !== 'POST' || !isInitializeRequest(body)) {
      res.writeHead(sid ? 404 : 400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad session' }, id: null }));
      return;
    }
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => transports.set(id, transport),
    });
    transport.onclose = () => { if (transport.sessionId) transports.delete(transport.sessionId); };
    await makeServer().connect(transport);
  }
  await transport.handleRequest(req, res, body);
});
httpsServer.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  console.log(`READY ${httpsServer.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
