// Times @biscuit-auth/biscuit-wasm (the reference implementation compiled to WebAssembly)
// on the exact tokens and authorizer code of bench_biscuit (`bench_biscuit --export DIR`):
// parse + verify + authorize per iteration. Prints one JSON line per case:
//   {"name":"ParseVerifyAuthorize_2Block","ns_per_iter":...,"cpu_ns_per_iter":...,"iterations":...}
// (CPU time is what the comparison uses: the build machines are shared.)
// Usage: node --experimental-wasm-modules bench/biscuit_wasm_bench.mjs DIR [2|3]
// Run one case per process (biscuit_compare.sh does): in one process the second case was
// measured up to 4x slower than alone, as the wasm heap had grown during the first.
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wasmPath = join(here, '..', 'tests', 'interop', 'node_modules', '@biscuit-auth', 'biscuit-wasm', 'module', 'biscuit.js');
const wasm = await import(pathToFileURL(wasmPath).href);

const dir = process.argv[2];
if (!dir) {
  console.error('usage: biscuit_wasm_bench.mjs DIR');
  process.exit(2);
}
const read = (f) => readFileSync(join(dir, f), 'utf8').trim();
const [alg, hex] = read('root.pub').split('/');
const root = wasm.PublicKey.fromString(hex, alg === 'secp256r1' ? wasm.SignatureAlgorithm.Secp256r1 : wasm.SignatureAlgorithm.Ed25519);
const LIMITS = { max_facts: 1000, max_iterations: 100, max_time_micro: 1_000_000 };

function run(name, tokenFile, authorizerFile) {
  const bytes = Buffer.from(read(tokenFile), 'base64url');
  const code = read(authorizerFile);
  // buildAuthenticated consumes its builder, so the authorizer code is parsed every
  // iteration (bench_biscuit does the same).
  const once = () => {
    const token = wasm.Biscuit.fromBytes(bytes, root);
    const ab = new wasm.AuthorizerBuilder();
    ab.addCode(code);
    const a = ab.buildAuthenticated(token);
    const r = a.authorizeWithLimits(LIMITS);
    a.free();
    token.free();
    return r;
  };
  once();  // must authorize (throws otherwise)
  const warmEnd = process.hrtime.bigint() + 1_500_000_000n;  // warm-up (wasm tiers up)
  while (process.hrtime.bigint() < warmEnd) once();
  let iterations = 0;
  const start = process.hrtime.bigint();
  const cpuStart = process.cpuUsage();
  let elapsed = 0n;
  while (elapsed < 2_000_000_000n) {
    for (let i = 0; i < 50; i++) once();
    iterations += 50;
    elapsed = process.hrtime.bigint() - start;
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuNs = (cpu.user + cpu.system) * 1000;
  console.log(JSON.stringify({ name, ns_per_iter: Number(elapsed) / iterations, cpu_ns_per_iter: cpuNs / iterations, iterations }));
}

const only = process.argv[3];
if (!only || only === '2') run('ParseVerifyAuthorize_2Block', 'token2.b64', 'authorizer2.dl');
if (!only || only === '3') run('ParseVerifyAuthorize_3Block', 'token3.b64', 'authorizer3.dl');
