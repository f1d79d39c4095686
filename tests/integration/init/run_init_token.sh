#!/usr/bin/env bash
# `larder init` lays out a deployment; `larder token issue` mints from its profiles; each
# mistake a user can make is refused with a status and words that say what to do.
set -uo pipefail
larder=$1
dir=$(mktemp -d /tmp/larder-init-test.XXXXXX)
chmod 711 "$dir"
cleanup() {
  for f in "$dir"/.larder/*.pid "$dir"/other/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir"
fail=0
check() {  # check <description> <expected status> <expected text> -- command...
  local what=$1 want=$2 text=$3
  shift 4
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [[ $status -ne $want ]]; then
    echo "FAIL $what: exit $status, expected $want"; echo "$out" | sed 's/^/    /'; fail=1; return
  fi
  if [[ -n $text ]] && ! grep -q -- "$text" <<<"$out"; then
    echo "FAIL $what: output lacks '$text'"; echo "$out" | sed 's/^/    /'; fail=1; return
  fi
  echo "ok   $what"
}
mode() { stat -c %a "$1"; }

check "init lays out a deployment" 0 "larder init: a new deployment" -- "$larder" init --port 0
for f in .larder/root.key .larder/tokens/claude-client.b64 .larder/mcp.json .larder/certs/client/claude-client.key; do
  [[ $(mode "$f") == 600 ]] && echo "ok   $f is 0600" || { echo "FAIL $f has mode $(mode "$f")"; fail=1; }
done
cp larder.toml before.toml
check "init never overwrites a configuration" 2 "already exists" -- "$larder" init
cmp -s larder.toml before.toml && echo "ok   larder.toml unchanged" || { echo "FAIL larder.toml changed"; fail=1; }
check "the generated configuration offers three profiles" 0 "agent-readonly" -- "$larder" token profiles
check "profiles name the parameters they need" 0 "--param patient_name=<value>" -- "$larder" token profiles

cert=.larder/certs/client/claude-client.crt
check "a patient token" 0 "token issued: profile patient, expires" -- \
  "$larder" token issue --profile patient --param patient_name="Erin oRTEga" --cert $cert -o erin.b64
[[ $(mode erin.b64) == 600 ]] && echo "ok   erin.b64 is 0600" || { echo "FAIL erin.b64 mode"; fail=1; }
pub=$(grep -o "ed25519/[0-9a-f]*" larder.toml)
check "the token names root key id 1" 0 "Root key identifier: 1" -- "$larder" biscuit inspect erin.b64 --public-key "$pub"
check "the token expires" 0 'check if time($time), $time <=' -- "$larder" biscuit inspect erin.b64 --public-key "$pub"
check "the token is bound to the certificate" 0 "client_cert_sha256" -- "$larder" biscuit inspect erin.b64 --public-key "$pub"

check "an unknown profile lists the known ones" 2 'defines no profile "doctor" (it defines: agent-readonly, clinician, patient)' -- \
  "$larder" token issue --profile doctor --cert $cert
check "a missing parameter is named" 2 "needs --param patient_name=<value>" -- \
  "$larder" token issue --profile patient --cert $cert
check "a misspelt parameter is refused" 2 "takes no parameter patient_nme" -- \
  "$larder" token issue --profile patient --param patient_name=x --param patient_nme=y --cert $cert
check "a TTL above the profile's maximum is refused" 2 "above the profile's max_ttl" -- \
  "$larder" token issue --profile patient --param patient_name=x --cert $cert --ttl 400d
check "a bad TTL is refused" 2 "invalid duration" -- \
  "$larder" token issue --profile patient --param patient_name=x --cert $cert --ttl soon
"$larder" biscuit keypair --only-private-key > stranger.key
check "a key the server does not trust is refused" 1 "is not among \[biscuit\] root_keys" -- \
  "$larder" token issue --profile agent-readonly --cert $cert --root-key stranger.key
check "a missing root key says where it is expected" 3 "cannot read the root private key nowhere.key" -- \
  "$larder" token issue --profile agent-readonly --cert $cert --root-key nowhere.key
check "a certificate is required" 3 "cannot read the client certificate nowhere.crt" -- \
  "$larder" token issue --profile agent-readonly --cert nowhere.crt
check "a file that is no certificate is refused" 4 "certificate" -- \
  "$larder" token issue --profile agent-readonly --cert larder.toml

# What `larder biscuit keypair` prints is a key file (the README's first step once failed).
"$larder" biscuit keypair > pair.key
check "keypair output works as --private-key-file" 0 "" -- \
  bash -c "echo 'right(\"pg_query\");' | '$larder' biscuit generate --private-key-file pair.key -"

# serve --background: detaches once listening; a second one on the same port says why not.
"$larder" db init --rows 100 >/dev/null 2>&1 || { echo "FAIL db init"; fail=1; }
check "serve --background reports its address" 0 "listening on https://127.0.0.1:" -- "$larder" serve --background
pid=$(cat .larder/larder-db.pid)
kill -0 "$pid" 2>/dev/null && echo "ok   the server runs detached (pid $pid)" || { echo "FAIL no server"; fail=1; }
port=$(grep -o "listening on 127.0.0.1:[0-9]*" .larder/larder-db.log | head -1 | sed 's/.*://')
sed "s/^port = 0$/port = $port/" larder.toml > taken.toml
check "serve --background says why it cannot start" 5 "cannot listen" -- \
  "$larder" serve --background --config taken.toml --pid-file other.pid --log-file other.log
kill "$pid"
"$larder" db stop >/dev/null 2>&1
exit $fail
