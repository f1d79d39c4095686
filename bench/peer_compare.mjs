// The load side of bench/peer_compare.sh: Larder and the PostgreSQL MCP servers users would pick
// instead, on the same table and the same SQL, in interleaved rounds, each driven through the
// official MCP TypeScript SDK client the way its users drive it:
//   - Larder: Streamable HTTP over HTTPS with mutual TLS and a Biscuit token bound to the
//     client certificate (Authorization: Bearer), one session per client;
//   - server-postgres: stdio, one server process per client (as each MCP host spawns its own);
//   - dbhub: Streamable HTTP (plain HTTP with its bearer token), one process for every client;
//     also over stdio, one process per client, when the config lists it.
//
//   node bench/peer_compare.mjs <config.json>     (peer_compare.sh writes the config)
//
// Per round, for each (clients, query), each server in turn (the order rotates each round):
// open the clients, warm up, read CPU, run a closed loop for `seconds`, read CPU again, read the
// server's peak RSS, close. CPU per call = (server processes' utime+stime + the PostgreSQL
// cluster's: the postmaster with its reaped children plus every live child) / calls. Prints the
// medians over rounds with their range, and the ratios Larder/peer (median of the rounds' ratios:
// each round's runs are back to back, so the machine's drift cancels).
// Exit status: 0, or 1 when a server fails to start or answer (say which, on stderr).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// The packages pinned in tests/interop (peer_compare.sh runs us from there).
const load = (p) => import(pathToFileURL(join(process.cwd(), 'node_modules', p)).href);
const undici = await load('undici/index.js');
const { Agent } = undici, undiciFetch = undici.fetch;
const { Client } = await load('@modelcontextprotocol/sdk/dist/esm/client/index.js');
const { StreamableHTTPClientTransport } = await load('@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js');
const { StdioClientTransport } = await load('@modelcontextprotocol/sdk/dist/esm/client/stdio.js');

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const TICK = 1 / (cfg.clk_tck || 100);
const CALL_TIMEOUT_MS = 15000;

// ---- /proc readings -------------------------------------------------------------------------
function statFields(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
  } catch {
    return null;
  }
}
// utime + stime (+ cutime + cstime when `children`), seconds.
function cpuOf(pid, children = false) {
  const f = statFields(pid);
  if (!f) return 0;
  let t = Number(f[11]) + Number(f[12]); // fields 14, 15
  if (children) t += Number(f[13]) + Number(f[14]); // 16, 17: reaped children
  return t * TICK;
}
// The whole cluster: the postmaster, every backend it reaped, every live child.
function postgresCpu() {
  let t = cpuOf(cfg.postmaster_pid, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(d);
    if (f && Number(f[1]) === cfg.postmaster_pid) t += (Number(f[11]) + Number(f[12])) * TICK;
  }
  return t;
}
function peakRssKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// ---- clients --------------------------------------------------------------------------------
function mtlsFetch(s) {
  const agent = new Agent({
    connect: { ca: readFileSync(s.ca), cert: readFileSync(s.cert), key: readFileSync(s.key), servername: s.servername },
  });
  const f = (url, init) => undiciFetch(url, { ...init, dispatcher: agent });
  f.close = () => agent.close();
  return f;
}

// One MCP client session on server `s`; returns { client, pids, close }.
async function openClient(s) {
  const client = new Client({ name: 'peer-compare', version: '1.0.0' }, { capabilities: {} });
  if (s.transport === 'stdio') {
    const transport = new StdioClientTransport({ command: s.command, args: s.args, env: s.env ?? {}, stderr: 'ignore' });
    await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
    return { client, pids: [transport.pid], close: () => client.close() };
  }
  const headers = { Authorization: `Bearer ${s.token}` };
  const fetch = s.transport === 'https-mtls' ? mtlsFetch(s) : undefined;
  const transport = new StreamableHTTPClientTransport(new URL(s.url), { fetch, requestInit: { headers } });
  await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
  return {
    client,
    pids: [s.pid],
    close: async () => {
      await transport.terminateSession().catch(() => {});
      await client.close();
      if (fetch) await fetch.close();
    },
  };
}

// The rows a result carries, per server's answer shape; throws when it is an error.
function rowsOf(s, r) {
  if (r.isError) throw new Error(`${s.name}: isError: ${JSON.stringify(r.content).slice(0, 300)}`);
  if (r.structuredContent && typeof r.structuredContent.row_count === 'number') return r.structuredContent.row_count;
  const j = JSON.parse(r.content[0].text);
  if (Array.isArray(j)) return j.length; // server-postgres: the rows
  if (j?.data?.statements?.length === 1) return j.data.statements[0].rows.length; // dbhub 1.4
  if (j?.data?.rows) return j.data.rows.length; // dbhub before 1.4: {success, data: {rows, count}}
  if (j?.success === false) throw new Error(`${s.name}: ${JSON.stringify(j.error).slice(0, 300)}`);
  throw new Error(`${s.name}: unexpected answer ${r.content[0].text.slice(0, 300)}`);
}

async function call(s, c, q) {
  return c.client.callTool({ name: s.tool, arguments: { [s.arg]: q.sql } }, undefined, { timeout: CALL_TIMEOUT_MS });
}

function median(v) {
  const a = [...v].sort((x, y) => x - y);
  if (!a.length) return NaN;
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
}
const pct = (v, p) => {
  const a = [...v].sort((x, y) => x - y);
  return a.length ? a[Math.min(a.length - 1, Math.floor(p * a.length))] : NaN;
};

// Larder's admin /metrics: the sums and counts of every histogram we break a call down with.
async function scrape(s) {
  if (!s.admin) return null;
  const text = await (await fetch(`${s.admin}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^(larder_stage_duration_seconds|mcp_server_operation_duration_seconds|[a-z_]*request[a-z_]*duration_seconds)_(sum|count)(\{[^}]*\})? ([0-9.eE+-]+)$/);
    if (!m) continue;
    const key = `${m[1]}${m[3] ?? ''}`;
    out[key] = out[key] ?? { sum: 0, count: 0 };
    out[key][m[2]] += Number(m[4]);
  }
  return out;
}
function scrapeDelta(a, b) {
  const out = {};
  for (const [k, v] of Object.entries(b ?? {})) {
    const n = v.count - (a?.[k]?.count ?? 0);
    if (n > 0) out[k] = (1e6 * (v.sum - (a?.[k]?.sum ?? 0))) / n; // mean µs
  }
  return out;
}

// One run: `n` clients on server `s`, query `q`, for cfg.seconds.
async function run(s, n, q) {
  const clients = [];
  try {
    for (let i = 0; i < n; i++) clients.push(await openClient(s));
    let sample;
    for (const c of clients) for (let k = 0; k < 3; k++) {
      sample = await call(s, c, q);
      const rows = rowsOf(s, sample);
      if (rows !== q.rows) throw new Error(`${s.name}: ${rows} rows, expected ${q.rows}`);
    }
    const pids = [...new Set(clients.flatMap((c) => c.pids))];
    const m0 = await scrape(s);
    const pg0 = postgresCpu();
    const sv0 = pids.reduce((t, p) => t + cpuOf(p), 0);
    const me0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + cfg.seconds * 1000;
    const lat = [];
    let calls = 0;
    await Promise.all(
      clients.map(async (c) => {
        let k = 0;
        while (performance.now() < deadline) {
          const a = performance.now();
          const r = await call(s, c, q);
          lat.push(performance.now() - a);
          // Every answer is checked for an error; every 16th is parsed and its rows counted.
          if (r.isError || ++k % 16 === 0) {
            const rows = rowsOf(s, r);
            if (rows !== q.rows) throw new Error(`${s.name}: ${rows} rows, expected ${q.rows}`);
          }
          calls++;
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const pg = postgresCpu() - pg0;
    const sv = pids.reduce((t, p) => t + cpuOf(p), 0) - sv0;
    const me = process.cpuUsage(me0);
    const m1 = await scrape(s);
    const rss = pids.reduce((t, p) => t + peakRssKb(p), 0);
    return {
      rps: calls / wall,
      calls,
      p50: pct(lat, 0.5),
      mean: lat.reduce((a, b) => a + b, 0) / lat.length,
      p99: pct(lat, 0.99),
      server_us: (1e6 * sv) / calls,
      pg_us: (1e6 * pg) / calls,
      cpu_us: (1e6 * (sv + pg)) / calls,
      driver_us: (me.user + me.system) / calls,
      rss_kb: rss,
      processes: pids.length,
      stages: scrapeDelta(m0, m1),
      // One answer as the load saw it (Larder: with the tainted token): the tool result's bytes.
      bytes: {
        result: Buffer.byteLength(JSON.stringify(sample)),
        text: Buffer.byteLength(sample.content?.[0]?.text ?? ''),
        structured: sample.structuredContent ? Buffer.byteLength(JSON.stringify(sample.structuredContent)) : 0,
        meta: sample._meta ? Buffer.byteLength(JSON.stringify(sample._meta)) : 0,
      },
    };
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
}

// ---- setup: Larder's token after its first read, and one answer of each server ---------------
const servers = cfg.servers;
const queries = cfg.queries;
const larder = servers.find((s) => s.name === 'larder');
let failed = false;
for (const s of servers) {
  try {
    const c = await openClient(s);
    try {
      for (const [qn, q] of Object.entries(queries)) {
        const r = await call(s, c, q);
        const rows = rowsOf(s, r);
        if (rows !== q.rows) throw new Error(`${rows} rows for ${qn}, expected ${q.rows}`);
        // Larder: the first sensitive read taints the lineage and hands back the attenuated
        // token, which an agent uses from then on (as bench_e2e's sessions do).
        if (s === larder && r._meta?.['larder/biscuit_token']) s.token = r._meta['larder/biscuit_token'];
        if (s === larder && cfg.capture_dir) writeFileSync(`${cfg.capture_dir}/larder-${qn}.json`, JSON.stringify(r.structuredContent));
      }
    } finally {
      await c.close();
    }
  } catch (e) {
    console.error(`peer_compare: ${s.name} (${s.transport}) does not answer: ${e.message}`);
    failed = true;
  }
}
if (failed) process.exit(1);

// ---- interleaved rounds ---------------------------------------------------------------------
const results = {}; // `${n}|${q}|${server}` -> [run...]
const key = (n, q, s) => `${n}|${q}|${s}`;
for (let round = 0; round < cfg.rounds; round++) {
  for (const n of cfg.clients) {
    for (const qn of Object.keys(queries)) {
      const order = servers.map((_, i) => servers[(i + round) % servers.length]);
      const line = [];
      for (const s of order) {
        let r;
        try {
          r = await run(s, n, queries[qn]);
        } catch (e) {
          console.error(`peer_compare: ${s.name}, ${n} client(s), ${qn}: ${e.message}`);
          process.exit(1);
        }
        (results[key(n, qn, s.name)] ??= []).push(r);
        line.push(`${s.name} ${r.rps.toFixed(0)}/s ${r.cpu_us.toFixed(0)}µs`);
      }
      console.error(`round ${round + 1}/${cfg.rounds} N=${n} ${qn}: ${line.join(', ')}`);
    }
  }
}

// ---- report ---------------------------------------------------------------------------------
const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const spread = (v, fmt) => `${fmt(Math.min(...v))}–${fmt(Math.max(...v))}`;
console.log(`\n=== Peers: the same SQL on the same table, ${cfg.rounds} interleaved rounds of ${cfg.seconds} s`);
for (const s of servers) console.log(`  ${s.name.padEnd(16)} ${s.describe}`);
for (const [qn, q] of Object.entries(queries)) console.log(`  ${qn.padEnd(16)} ${q.sql}  (${q.rows} row${q.rows === 1 ? '' : 's'})`);
console.log('\nMedians over rounds (range). CPU per call in µs: server process(es) + PostgreSQL; RSS: peak (VmHWM), summed over the server processes');
console.log(
  `${'clients'.padEnd(8)}${'query'.padEnd(7)}${'server'.padEnd(18)}${'calls/s'.padStart(18)}${'p50 ms'.padStart(8)}${'p99 ms'.padStart(8)}` +
    `${'CPU µs/call'.padStart(18)}${'server'.padStart(8)}${'pg'.padStart(6)}${'driver'.padStart(8)}${'peak RSS MB'.padStart(13)}`,
);
const med = (rs, f) => median(rs.map(f));
for (const n of cfg.clients)
  for (const qn of Object.keys(queries))
    for (const s of servers) {
      const rs = results[key(n, qn, s.name)];
      const rps = rs.map((r) => r.rps), cpu = rs.map((r) => r.cpu_us);
      console.log(
        `${String(n).padEnd(8)}${qn.padEnd(7)}${s.name.padEnd(18)}${`${f0(median(rps))} (${spread(rps, f0)})`.padStart(18)}` +
          `${f2(med(rs, (r) => r.p50)).padStart(8)}${f2(med(rs, (r) => r.p99)).padStart(8)}` +
          `${`${f0(median(cpu))} (${spread(cpu, f0)})`.padStart(18)}${f0(med(rs, (r) => r.server_us)).padStart(8)}` +
          `${f0(med(rs, (r) => r.pg_us)).padStart(6)}${f0(med(rs, (r) => r.driver_us)).padStart(8)}` +
          `${`${(Math.max(...rs.map((r) => r.rss_kb)) / 1024).toFixed(0)}${rs[0].processes > 1 ? ` (${rs[0].processes} proc)` : ''}`.padStart(13)}`,
      );
    }

console.log('\nRatios Larder / peer: median of the rounds\' ratios (range). calls/s above 1: Larder faster; CPU per call above 1: Larder costlier');
console.log(`${'clients'.padEnd(8)}${'query'.padEnd(7)}${'peer'.padEnd(18)}${'calls/s'.padStart(20)}${'CPU per call'.padStart(20)}${'peak RSS'.padStart(10)}`);
const ratios = {};
for (const n of cfg.clients)
  for (const qn of Object.keys(queries))
    for (const s of servers) {
      if (s === larder) continue;
      const L = results[key(n, qn, 'larder')], P = results[key(n, qn, s.name)];
      const rr = L.map((r, i) => r.rps / P[i].rps), cr = L.map((r, i) => r.cpu_us / P[i].cpu_us);
      const mr = Math.max(...L.map((r) => r.rss_kb)) / Math.max(...P.map((r) => r.rss_kb));
      ratios[key(n, qn, s.name)] = { rps: median(rr), cpu: median(cr), rss: mr };
      console.log(
        `${String(n).padEnd(8)}${qn.padEnd(7)}${s.name.padEnd(18)}${`${f2(median(rr))} (${spread(rr, f2)})`.padStart(20)}` +
          `${`${f2(median(cr))} (${spread(cr, f2)})`.padStart(20)}${f2(mr).padStart(10)}`,
      );
    }

// Where Larder's single-client time goes: the server's own histograms over the 1-client rounds
// (means), against the mean latency the client saw.
if (larder?.admin && cfg.clients.includes(1)) {
  for (const qn of Object.keys(queries)) {
    const rs = results[key(1, qn, 'larder')];
    const names = [...new Set(rs.flatMap((r) => Object.keys(r.stages)))].sort();
    const m = (k) => median(rs.map((r) => r.stages[k]).filter(Number.isFinite));
    // Differences are taken within each round, then the median over rounds.
    const stagesOf = (r) => Object.entries(r.stages).reduce((t, [k, v]) => t + (k.startsWith('larder_stage') ? v : 0), 0);
    const opOf = (r) => Object.entries(r.stages).find(([k]) => k.includes('tools/call'))?.[1] ?? NaN;
    console.log(`\nLarder, 1 client, ${qn}: mean µs per call (median over rounds)`);
    for (const k of names)
      console.log(`  ${k.replace(/,?(error_type|mcp_protocol_version)="[^"]*"/g, '').padEnd(80)} ${f0(m(k)).padStart(6)}`);
    const row = (label, f) => console.log(`  ${label.padEnd(80)} ${f0(median(rs.map(f))).padStart(6)}`);
    row('sum of the stages', stagesOf);
    row('in the MCP handler, outside the stages (dispatch, schema checks, the result tree and its text)', (r) => opOf(r) - stagesOf(r));
    row('the client-observed call (mean)', (r) => 1000 * r.mean);
    row('outside the handler: HTTP, TLS, JSON parse and dump, the pool hand-off, the SDK client', (r) => 1000 * r.mean - opOf(r));
  }
}
console.log('\nAnswer sizes during the load, bytes of the tool result as JSON (Larder sends the rows twice: text and structuredContent)');
for (const qn of Object.keys(queries))
  for (const s of servers) {
    const b = results[key(cfg.clients[0], qn, s.name)].at(-1).bytes;
    console.log(`  ${`${s.name} ${qn}`.padEnd(24)} result ${String(b.result).padStart(6)}  text ${String(b.text).padStart(6)}` +
      `  structuredContent ${String(b.structured).padStart(6)}  _meta ${String(b.meta).padStart(6)}`);
  }
if (cfg.json_out) writeFileSync(cfg.json_out, JSON.stringify({ results, ratios }, null, 1));
process.exit(0);
