#!/usr/bin/env bash
# The main job: installs what is missing, builds, creates (or reuses) a demo CA under ./var/demo
# with an embedded directory, serves https://127.0.0.1:8443, enrolls one sample certificate and
# prints it, then keeps serving until Ctrl-C / SIGTERM (which stop the server and its slapd).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${CA_DEMO_PORT:-8443}"
inst="$root/var/demo"
bin="$root/build/bin/ca-server"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "Checking dependencies"
"$root/deploy/install-deps.sh"
say "Building"
"$root/deploy/build.sh" ca-server ca-clone

mkdir -p "$inst"
cfg="$inst/instance.yaml"
if [ ! -f "$cfg" ]; then
  say "Writing $cfg"
  "$bin" sample-config --dir . --port "$port" > "$cfg"
fi

# A server left over from an earlier run of this script (we recorded its PID) is stopped first.
if [ -f "$inst/ca-server.pid" ]; then
  old="$(cat "$inst/ca-server.pid")"
  if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null)" = "ca-server" ]; then
    say "Stopping the earlier demo server (pid $old)"
    kill -TERM "$old" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$inst/ca-server.pid"
fi

say "Initialising the instance (idempotent)"
"$bin" init --config "$cfg"

say "Starting ca-server on https://127.0.0.1:$port"
"$bin" run --config "$cfg" &
server=$!
echo "$server" > "$inst/ca-server.pid"
stop() {
  trap - INT TERM EXIT
  if kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -f "$inst/ca-server.pid"
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

cacert="$inst/certs/ca_signing.pem"
for _ in $(seq 100); do
  if curl -sf --cacert "$cacert" "https://127.0.0.1:$port/ca/rest/info" >/dev/null 2>&1; then break; fi
  kill -0 "$server" 2>/dev/null || { echo "ca-server exited; see the messages above" >&2; exit 1; }
  sleep 0.2
done

# Enrollment needs an authenticator. The quickstart acts as the CA agent (init made its
# certificate: certs/agent.pem + private/agent.key) and creates a one-time enrollment code bound
# to the profile and the names; the requester then enrolls with that code. The code is shown
# once and stored only as a salted hash; a second use is refused.
agent=(--cert "$inst/certs/agent.pem" --key "$inst/private/agent.key")
work="$(mktemp -d)"
say "As the CA agent: a one-time enrollment code for caServerCert, CN=demo.example.com"
curl -sS --cacert "$cacert" "${agent[@]}" -H 'Content-Type: application/json' -o "$work/code.json" \
  -w 'HTTP %{http_code}\n' \
  -d '{"profile_id":"caServerCert","subject":"CN=demo.example.com,O=Example","dns_names":["demo.example.com","www.demo.example.com"],"expires_in_seconds":600}' \
  "https://127.0.0.1:$port/ca/rest/agent/enrollment-codes"
enrollment_code="$(sed -n 's/.*"enrollment_code":"\([^"]*\)".*/\1/p' "$work/code.json")"
if [ -z "$enrollment_code" ]; then
  echo "could not create an enrollment code:" >&2; cat "$work/code.json" >&2; echo >&2; exit 1
fi
echo "enrollment code: $enrollment_code (one use, 10 minutes)"

say "As the requester: enrolling with the code (profile caServerCert, CN=demo.example.com)"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/demo.key" \
  -subj "/CN=demo.example.com/O=Example" -addext "subjectAltName=DNS:demo.example.com,DNS:www.demo.example.com" \
  -out "$work/demo.csr" 2>/dev/null
csr_json="$(awk '{printf "%s\\n", $0}' "$work/demo.csr")"
curl -sS --cacert "$cacert" -H 'Content-Type: application/json' -o "$work/response.json" -w '%{http_code}\n' \
  -d "{\"profile_id\":\"caServerCert\",\"enrollment_code\":\"$enrollment_code\",\"csr\":\"$csr_json\"}" \
  "https://127.0.0.1:$port/ca/rest/certrequests" > "$work/status"
echo "HTTP $(cat "$work/status")"
# The certificate is a JSON string with \n escapes: unescape it for openssl.
sed -n 's/.*"certificate":"\([^"]*\)".*/\1/p' "$work/response.json" | sed 's/\\n/\n/g' > "$work/demo.pem"
if [ ! -s "$work/demo.pem" ]; then
  echo "enrollment failed:" >&2; cat "$work/response.json" >&2; echo >&2; exit 1
fi
openssl x509 -in "$work/demo.pem" -noout -text
openssl verify -CAfile "$cacert" "$work/demo.pem"
rm -rf "$work"

say "Serving on https://127.0.0.1:$port (CA certificate: $cacert). Ctrl-C stops the server and its directory."
wait "$server"
