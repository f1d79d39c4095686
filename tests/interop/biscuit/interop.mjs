// Interoperability of Larder's libbiscuit (through `larder biscuit`) with the reference
// implementation (@biscuit-auth/biscuit-wasm 0.6.0 = biscuit-auth 6.0), both directions:
//  A. tokens minted/attenuated/sealed/third-partied by wasm verify and authorize identically
//     in ours (same result JSON, same printed blocks, same revocation ids);
//  B. tokens minted/attenuated/sealed/third-partied by ours do the same in wasm.
// Run: node --experimental-wasm-modules tests/interop/biscuit/interop.mjs
// Needs LARDER_BINARY_DIR (the build dir holding `larder`). Exit 1 on any mismatch.
import * as wasm from '@biscuit-auth/biscuit-wasm';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LARDER = join(process.env.LARDER_BINARY_DIR || 'build', 'larder');
const dir = mkdtempSync(join(tmpdir(), 'larder-biscuit-interop-'));
const LIMITS = { max_facts: 10000, max_iterations: 1000, max_time_micro: 2_000_000 };
const ALGS = [['ed25519', wasm.SignatureAlgorithm.Ed25519], ['secp256r1', wasm.SignatureAlgorithm.Secp256r1]];
let fileNo = 0;
const counts = { a: [0, 0], b: [0, 0] };
const failures = [];

function larder(args, input) {
  const r = spawnSync(LARDER, ['biscuit', ...args], { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout, err: r.stderr };
}
function writeTmp(content) {
  const p = join(dir, `f${fileNo++}`);
  writeFileSync(p, content);
  return p;
}
function keyPath(j) {
  const parts = [];
  while (j && typeof j === 'object' && !Array.isArray(j) && Object.keys(j).length === 1) {
    const k = Object.keys(j)[0];
    parts.push(k);
    j = j[k];
  }
  return parts.join('/');
}
// Result comparison: Format errors by kind, everything else exactly.
function sameResult(x, y) {
  if (x.Err && x.Err.Format) return y.Err !== undefined && keyPath(x.Err) === keyPath(y.Err);
  return JSON.stringify(x) === JSON.stringify(y);
}
function wasmAuthorize(token, code) {
  const ab = new wasm.AuthorizerBuilder();
  ab.addCode(code);
  try {
    const a = ab.buildAuthenticated(token);
    return { Ok: a.authorizeWithLimits(LIMITS) };
  } catch (e) {
    return { Err: e };
  }
}
function oursInspect(b64, rootPub, code) {
  const f = writeTmp(b64);
  const args = ['inspect', f, '--public-key', rootPub, '--json', '--max-facts', '10000', '--max-iterations', '1000', '--max-time', '2s'];
  if (code !== undefined) args.push('--authorize-with', code);
  const r = larder(args);
  try {
    return JSON.parse(r.out);
  } catch {
    return { parseError: r.err || r.out };
  }
}
function record(dirKey, name, ok, detail) {
  counts[dirKey][1]++;
  if (ok) counts[dirKey][0]++;
  else failures.push(`${dirKey === 'a' ? 'wasm→larder' : 'larder→wasm'} ${name}: ${detail}`);
}
function compareToken(dirKey, name, wasmToken, b64, rootPub, code) {
  const ours = oursInspect(b64, rootPub, code);
  if (ours.parseError) return record(dirKey, name, false, `larder inspect failed: ${ours.parseError}`);
  const problems = [];
  const ids = wasmToken.getRevocationIdentifiers().map(String);
  if (JSON.stringify(ids) !== JSON.stringify(ours.revocation_ids)) problems.push('revocation ids differ');
  const n = wasmToken.countBlocks();
  if (n !== ours.blocks.length) problems.push(`block count ${ours.blocks.length} != ${n}`);
  for (let i = 0; i < Math.min(n, ours.blocks.length); i++) {
    const src = wasmToken.getBlockSource(i);
    if (src !== ours.blocks[i].code) problems.push(`block ${i} source:\n${ours.blocks[i].code}\n!= wasm:\n${src}`);
  }
  if (code !== undefined) {
    const expected = wasmAuthorize(wasmToken, code);
    if (!sameResult(expected, ours.result)) {
      problems.push(`result ${JSON.stringify(ours.result)} != wasm ${JSON.stringify(expected)}`);
    }
  }
  record(dirKey, name, problems.length === 0, problems.join('; '));
}

// Every term type and operator, in checks that all hold.
const EVERYTHING = `
int(1); str("hello"); date(2024-01-01T00:00:00Z); bytes(hex:00ff); flag(true);
set({1, 2, 3}); strset({"a", "b"}); nothing(null); arr([1, "two", [3]]); map({"k": 1, 2: "v"});
check if int($i), $i + 2 * 3 - 4 / 2 == 5, $i < 2, $i <= 1, $i > 0, $i >= 1;
check if int($i), ($i | 6) === 7, ($i & 3) === 1, ($i ^ 3) === 2, $i !== 2;
check if str($s), $s.starts_with("he"), $s.ends_with("lo"), $s.contains("ell"), $s.length() == 5;
check if str($s), $s.matches("^h[a-z]+o$"), $s + " world" == "hello world";
check if date($d), $d > 2023-12-31T23:59:59Z, $d <= 2024-01-01T00:00:00Z;
check if bytes($b), $b == hex:00ff, $b.length() == 2, $b.type() == "bytes";
check if flag($f), $f && true, $f || false, !false, $f === true;
check if set($s), $s.contains(2), $s.contains({1, 3}), $s.intersection({2, 9}) == {2}, $s.union({4}).length() == 4;
check if strset($s), $s.contains("a"), !$s.contains("z");
check if nothing($n), $n == null, $n.type() == "null";
check if arr($a), $a.get(1) == "two", $a.length() == 3, $a.contains(1), $a.starts_with([1]), $a.ends_with([[3]]);
check if map($m), $m.get("k") == 1, $m.get(2) == "v", $m.contains("k"), $m.length() == 2;
check if set($s), $s.all($x -> $x > 0), $s.any($x -> $x == 3);
check if map($m), $m.any($kv -> $kv.get(0) == "k");
check if (1 === "a").try_or(true);
check if 1 == "a" || true;
check if 1 != "a";
check all set($s), $s.contains(1);
reject if int($i), $i > 100;
check if int($i), $i.type() == "integer", "x".type() == "string", [1].type() == "array", {"a": 1}.type() == "map";
`;

const AUTH_READ = 'resource("file1"); operation("read"); allow if right("file1", "read");';

// ------------------------------------------------------------------ A: wasm → larder
for (const [algName, alg] of ALGS) {
  const root = new wasm.KeyPair(alg);
  const rootPub = root.getPublicKey().toString();
  const mint = (code, params) => {
    const b = new wasm.BiscuitBuilder();
    if (params) b.addCodeWithParameters(code, params, {});
    else b.addCode(code);
    return b.build(root.getPrivateKey());
  };
  const t1 = mint('right("file1", "read"); user({u});', { u: 'alice' });
  compareToken('a', `${algName} authority`, t1, t1.toBase64(), rootPub, AUTH_READ);
  compareToken('a', `${algName} no matching policy`, t1, t1.toBase64(), rootPub, 'allow if user("bob");');
  compareToken('a', `${algName} deny policy`, t1, t1.toBase64(), rootPub, 'deny if user("alice"); allow if true;');

  const blk = new wasm.BlockBuilder();
  blk.addCode('check if operation("write");');
  const t2 = t1.appendBlock(blk);
  compareToken('a', `${algName} attenuated (failing check)`, t2, t2.toBase64(), rootPub, AUTH_READ);
  const blk2 = new wasm.BlockBuilder();
  blk2.addCode('check if resource($r), $r.starts_with("file");');
  const t3 = t1.appendBlock(blk2);
  compareToken('a', `${algName} attenuated (passing check)`, t3, t3.toBase64(), rootPub, AUTH_READ);
  const sealed = t3.sealToken();
  compareToken('a', `${algName} sealed`, sealed, sealed.toBase64(), rootPub, AUTH_READ);

  for (const [tpName, tpAlg] of ALGS) {
    const third = new wasm.KeyPair(tpAlg);
    const b = new wasm.BiscuitBuilder();
    b.addCodeWithParameters('right("read"); check if group("admin") trusting {issuer};', {}, { issuer: third.getPublicKey().toString() });
    const base = b.build(root.getPrivateKey());
    const req = base.getThirdPartyRequest();
    const tpb = new wasm.BlockBuilder();
    tpb.addCode('group("admin"); check if right("read");');
    const block = req.createBlock(third.getPrivateKey(), tpb);
    const t4 = base.appendThirdPartyBlock(third.getPublicKey(), block);
    compareToken('a', `${algName} third-party by ${tpName}`, t4, t4.toBase64(), rootPub, 'allow if true;');
  }

  const t5 = mint(EVERYTHING);
  compareToken('a', `${algName} every term and operator`, t5, t5.toBase64(), rootPub, 'allow if true;');
  const t6 = mint('check if 9223372036854775807 + 1 > 0;');
  compareToken('a', `${algName} execution error`, t6, t6.toBase64(), rootPub, 'allow if true;');
  const b7 = new wasm.BiscuitBuilder();
  b7.addCode('user("carol");');
  b7.setRootKeyId(7);
  const t7 = b7.build(root.getPrivateKey());
  compareToken('a', `${algName} root key id`, t7, t7.toBase64(), rootPub, 'allow if user("carol");');
  // Wrong root key: both refuse, with the same error kind.
  const other = new wasm.KeyPair(alg).getPublicKey().toString();
  const ours = oursInspect(t1.toBase64(), other);
  record('a', `${algName} wrong root key`, ours.signatures && ours.signatures.Err && keyPath(ours.signatures.Err).startsWith('Format/Signature'),
    JSON.stringify(ours.signatures || ours));
}

// ------------------------------------------------------------------ B: larder → wasm
function ourKeypair(algName) {
  const sk = larder(['keypair', '--key-algorithm', algName, '--only-private-key']).out.trim();
  const pk = larder(['keypair', '--from-private-key', sk, '--only-public-key']).out.trim();
  return { sk, pk };
}
function wasmPub(pk) {
  const [name, hex] = pk.split('/');
  return wasm.PublicKey.fromString(hex, name === 'secp256r1' ? wasm.SignatureAlgorithm.Secp256r1 : wasm.SignatureAlgorithm.Ed25519);
}
function ourGenerate(sk, code, extra = []) {
  const r = larder(['generate', '-', '--private-key', sk, ...extra], code);
  if (r.status !== 0) throw new Error(`larder generate failed: ${r.err}`);
  return r.out.trim();
}
function ourAttenuate(b64, code) {
  const r = larder(['attenuate', writeTmp(b64), '--block', code]);
  if (r.status !== 0) throw new Error(`larder attenuate failed: ${r.err}`);
  return r.out.trim();
}
function checkInWasm(name, b64, pk, code) {
  let token;
  try {
    token = wasm.Biscuit.fromBase64(b64, wasmPub(pk));
  } catch (e) {
    return record('b', name, false, `wasm refused the token: ${JSON.stringify(e)}`);
  }
  compareToken('b', name, token, b64, pk, code);
}

for (const [algName] of ALGS) {
  const root = ourKeypair(algName);
  const t1 = ourGenerate(root.sk, 'right("file1", "read"); user({u});', ['--param', 'u=alice']);
  checkInWasm(`${algName} authority`, t1, root.pk, AUTH_READ);
  checkInWasm(`${algName} deny policy`, t1, root.pk, 'deny if user("alice"); allow if true;');
  const t2 = ourAttenuate(t1, 'check if operation("write");');
  checkInWasm(`${algName} attenuated (failing check)`, t2, root.pk, AUTH_READ);
  const t3 = ourAttenuate(t1, 'check if resource($r), $r.starts_with("file");');
  checkInWasm(`${algName} attenuated (passing check)`, t3, root.pk, AUTH_READ);
  const sealed = larder(['seal', writeTmp(t3)]).out.trim();
  checkInWasm(`${algName} sealed`, sealed, root.pk, AUTH_READ);
  const t5 = ourGenerate(root.sk, EVERYTHING);
  checkInWasm(`${algName} every term and operator`, t5, root.pk, 'allow if true;');
  const t6 = ourGenerate(root.sk, 'check if 1.extern::f() == 1; check if 9223372036854775807 + 1 > 0;');
  checkInWasm(`${algName} v6 block / execution error`, t6, root.pk, 'allow if true;');
  const t7 = ourGenerate(root.sk, 'user("carol");', ['--root-key-id', '7']);
  checkInWasm(`${algName} root key id`, t7, root.pk, 'allow if user("carol");');

  for (const [tpName] of ALGS) {
    // Third-party block made by us.
    const third = ourKeypair(tpName);
    const base = ourGenerate(root.sk, 'right("read"); check if group("admin") trusting {issuer};', ['--param', `issuer=${third.pk}::pubkey`]);
    const req = larder(['generate-request', writeTmp(base)]).out.trim();
    const block = larder(['generate-third-party-block', writeTmp(req), '--private-key', third.sk, '--block', 'group("admin"); check if right("read");']).out.trim();
    const full = larder(['append-third-party-block', writeTmp(base), '--block-contents', block]).out.trim();
    checkInWasm(`${algName} third-party by ${tpName} (ours)`, full, root.pk, 'allow if true;');
    // Third-party block made by wasm for our token, appended by us.
    const wthird = new wasm.KeyPair(tpName === 'secp256r1' ? wasm.SignatureAlgorithm.Secp256r1 : wasm.SignatureAlgorithm.Ed25519);
    const base2 = ourGenerate(root.sk, 'right("read"); check if group("admin") trusting {issuer};', ['--param', `issuer=${wthird.getPublicKey().toString()}::pubkey`]);
    const wreq = wasm.ThirdPartyRequest.fromBase64(larder(['generate-request', writeTmp(base2)]).out.trim());
    const tpb = new wasm.BlockBuilder();
    tpb.addCode('group("admin");');
    const wblock = wreq.createBlock(wthird.getPrivateKey(), tpb);
    const full2 = larder(['append-third-party-block', writeTmp(base2), '--block-contents', wblock.toBase64()]).out.trim();
    checkInWasm(`${algName} third-party by ${tpName} (wasm block, our append)`, full2, root.pk, 'allow if true;');
  }
  // wasm attenuates a token we minted, we read it back.
  const wtok = wasm.Biscuit.fromBase64(t1, wasmPub(root.pk));
  const wb = new wasm.BlockBuilder();
  wb.addCode('check if operation("read");');
  const mixed = wtok.appendBlock(wb);
  compareToken('a', `${algName} our token attenuated by wasm`, mixed, mixed.toBase64(), root.pk, AUTH_READ);
}

rmSync(dir, { recursive: true, force: true });
for (const f of failures) console.log(`FAIL ${f}`);
console.log(`biscuit interop: wasm→larder ${counts.a[0]}/${counts.a[1]}, larder→wasm ${counts.b[0]}/${counts.b[1]}`);
process.exit(failures.length === 0 ? 0 : 1);
