// Shared by the `larder connect` interop scripts: starts `larder demo` (embedded PostgreSQL,
// a CA, larder-db and larder-compliance over mTLS, the stand-in compliance API, tokens) in a
// throwaway directory, and stops everything it started. Cleanup as tests/e2e/demo/run_demo.sh:
// kill every <state>/*.pid, `larder db --state-dir <state> stop`, remove the directory.
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const API_KEYS = ['ANTHROPIC_API_KEY', 'OPENAI_API_KEY', 'LARDER_PROVIDER', 'LARDER_BASE_URL', 'LARDER_MODEL', 'BISCUIT_TOKEN'];

export function larderBinary() {
  const bin = process.env.LARDER_BINARY_DIR;
  if (!bin) throw new Error('LARDER_BINARY_DIR is not set');
  const larder = join(bin, 'larder');
  if (!existsSync(larder)) throw new Error(`${larder} does not exist`);
  return larder;
}

// An environment without LLM keys or a token (the demo must see none; the bridge gets --token).
export function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  for (const k of API_KEYS) delete env[k];
  return env;
}

// Starts the demo and resolves to {root, dir, larder, out, stop(), tokenFile(name),
// token(name), mintToken(name, datalog)}. `dir` is the demo's state directory, `root` the
// temporary directory holding it (and anything else the caller wants to put there).
export async function startDemo({ rows = 2000, timeoutMs = 150_000, prefix = 'larder-connect-interop-' } = {}) {
  const larder = larderBinary();
  const root = mkdtempSync(join(tmpdir(), prefix));
  // PostgreSQL runs as `postgres` when we are root: with the directory traversable its data
  // directory stays inside the state directory (and goes when it is removed).
  chmodSync(root, 0o711);
  const dir = join(root, 'state');
  const outPath = join(root, 'demo-output.txt');
  let stopped = false;

  function stop() {
    if (stopped) return;
    stopped = true;
    if (existsSync(dir)) {
      for (const f of readdirSync(dir)) {
        if (!f.endsWith('.pid')) continue;
        const pid = Number(readFileSync(join(dir, f), 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 1) continue;
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
      try {
        execFileSync(larder, ['db', '--state-dir', dir, 'stop'], { stdio: 'ignore', cwd: root, env: cleanEnv(), timeout: 60_000 });
      } catch {
        /* not started, or already stopped */
      }
    }
    if (!process.env.LARDER_KEEP_DEMO) rmSync(root, { recursive: true, force: true });
    else console.log(`# kept ${root}`);
  }
  const onSignal = (sig) => {
    stop();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', stop);

  // Output to a file, not a pipe: the servers the demo leaves running inherit its descriptors.
  const outFd = openSync(outPath, 'w');
  const started = Date.now();
  const child = spawn(larder, ['demo', '--dir', dir, '--rows', String(rows), '--no-color'], {
    cwd: root, // no .env from the checkout
    env: cleanEnv(),
    stdio: ['ignore', outFd, outFd],
  });
  closeSync(outFd);
  let code;
  try {
    code = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGTERM');
        reject(new Error(`larder demo did not finish within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on('exit', (c, sig) => {
        clearTimeout(timer);
        resolve(c ?? sig);
      });
    });
  } catch (e) {
    const out = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
    stop();
    throw new Error(`${e.message}\n${out}`);
  }
  const out = readFileSync(outPath, 'utf8');
  if (code !== 0 || !/scenarios: \d+ passed, 0 failed/.test(out)) {
    stop();
    throw new Error(`larder demo exited with ${code}:\n${out}`);
  }
  console.log(`# larder demo ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${dir})`);

  const tokenFile = (name) => join(dir, 'tokens', `${name}.b64`);
  const token = (name) => readFileSync(tokenFile(name), 'utf8').trim();

  // A new token (a new lineage, never tainted) from the root key, bound like the demo's to
  // claude-client's certificate and both audiences: <dir>/tokens/<name>.b64.
  function mintToken(name, datalog) {
    const raw = execFileSync(larder, ['biscuit', 'generate', '--private-key-file', join(dir, 'root.key'), '--add-ttl', '1h', '-'], {
      input: datalog,
      cwd: root,
      env: cleanEnv(),
    }).toString().trim();
    const bound = execFileSync(larder, [
      'biscuit', 'attest', '--token', raw,
      '--cert', join(dir, 'certs/client/claude-client.crt'),
      '--audience', 'larder-db', '--audience', 'larder-compliance',
      '--public-key-file', join(dir, 'root.key.pub'),
    ], { cwd: root, env: cleanEnv() }).toString().trim();
    writeFileSync(tokenFile(name), `${bound}\n`, { mode: 0o600 });
    return tokenFile(name);
  }

  return { root, dir, larder, out, stop, tokenFile, token, mintToken };
}

// The authority block of the demo's tokens for a patient (see `larder biscuit inspect`).
export function patientDatalog(patient) {
  return [
    `patient_name(${JSON.stringify(patient)});`,
    ...['pg_query', 'pg_explain', 'pg_metadata', 'resources/read', 'prompts/get', 'hipaa_compliance_check'].map((r) => `right("${r}");`),
    '',
  ].join('\n');
}
