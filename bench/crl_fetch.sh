#!/usr/bin/env bash
# CRL downloads from a running ca-server: what relying parties do most. wrk fetches the cached
# full CRL, GET /crl/MasterCRL.crl, unconditionally (200 + the DER) and conditionally
# (If-None-Match with the current ETag -> 304, no body), over the plain-HTTP listener
# (server.http_port) and over HTTPS. Prints a markdown table.
#
# Before the load it enrolls --revoke certificates and revokes them through the agent endpoint
# (mTLS) so that the CRL is not empty, waits until the served CRL lists them all, and measures
# how long one more revocation takes to show in the served CRL (debounce + build + store).
# With --crl-entries N it serves a big CRL instead: N synthetic revocations signed by the
# instance's CA key with `openssl ca -gencrl`, written into the directory entry of MasterCRL, and
# ca-server restarted with crl.generate: false, so that it serves that stored CRL.
#
# Everything lives in one `mktemp -d` folder; ports are picked free on 127.0.0.1; the server is
# stopped by the PID this script started when it exits (normally, on error or on Ctrl-C).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench_name=crl_fetch.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
ca_bin="$root/build/bin/ca-server"
build_if_missing=1

connections=8
duration=10
threads=2
revoke_count=1000
crl_entries=0
keep=0

usage() {
  cat <<EOF
usage: bench/crl_fetch.sh [options]

Benchmarks CRL downloads from ca-server's in-memory CRL with wrk: GET /crl/MasterCRL.crl,
unconditional (200) and conditional (If-None-Match: current ETag -> 304), over plain HTTP and
HTTPS. Sets up its own instance (sample-config, init, run) in a temporary folder.

Options:
  --duration S      seconds of load per row (default $duration)
  --connections N   wrk connections (default $connections; wrk uses $threads threads)
  --revoke N        certificates enrolled and revoked before the load, so that the CRL has N
                    entries (default $revoke_count; 0 = empty CRL)
  --crl-entries N   instead: serve a CRL of N synthetic entries (made with openssl ca -gencrl
                    from the instance's CA key, stored in the directory, ca-server restarted
                    with crl.generate: false); 1,000,000 entries make a 47 MB CRL, well inside
                    the 256 MiB request limit of the embedded slapd
  --ca-server PATH  the ca-server binary (default build/bin/ca-server, built if missing)
  --keep            keep the temporary folder (config, logs, CRLs, wrk output) and print its path
  -h, --help        show this help

Needs: wrk, openssl, curl, python3 (and ldapmodify for --crl-entries).
Exit status: 0 done, 1 a failure (a wrong status, an error during the load), 2 usage error.
EOF
}

die() { echo "crl_fetch.sh: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }

count_arg() {  # option value args-left [allow-zero]
  local pattern='^[1-9][0-9]*$'
  [ "${4:-}" = zero ] && pattern='^(0|[1-9][0-9]*)$'
  if [ "$3" -lt 2 ] || ! [[ "$2" =~ $pattern ]]; then
    if [ "${4:-}" = zero ]; then
      echo "crl_fetch.sh: $1 needs a non-negative integer" >&2
    else
      echo "crl_fetch.sh: $1 needs a positive integer" >&2
    fi
    exit 2
  fi
  printf '%s' "$2"
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --duration) duration="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --connections) connections="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --revoke) revoke_count="$(count_arg "$1" "${2:-}" $# zero)"; shift 2 ;;
      --crl-entries) crl_entries="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --ca-server)
        if [ $# -lt 2 ] || [ ! -x "$2" ]; then
          echo "crl_fetch.sh: --ca-server needs an executable file" >&2
          exit 2
        fi
        ca_bin="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; build_if_missing=0; shift 2 ;;
      --keep) keep=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) echo "crl_fetch.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
}

require_tools() {
  local t missing=()
  local tools=(wrk openssl curl python3)
  [ "$crl_entries" -eq 0 ] || tools+=(ldapmodify)
  for t in "${tools[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (deploy/install-deps.sh installs them)"
}

server_pid=""

# --- the instance ----------------------------------------------------------------------------

start_ca_server() {
  local dir="$work/ca" cfg="$work/ca.yaml" rc=0
  if [ ! -x "$ca_bin" ] && [ "$build_if_missing" -eq 1 ]; then
    say "Building ca-server (deploy/build.sh)"
    "$root/deploy/build.sh" >&2
  fi
  [ -x "$ca_bin" ] || die "$ca_bin was not built"
  https_port="$(free_port)"
  http_port="$(free_port)"
  [ "$http_port" != "$https_port" ] || http_port="$(free_port)"
  "$ca_bin" sample-config --dir "$dir" --port "$https_port" >"$cfg"
  grep -qE '^  http_port: *[0-9]+' "$cfg" || die "the sample config has no server.http_port"
  sed -i -E "s/^(  http_port:) *[0-9]+/\1 $http_port/" "$cfg"
  # One load generator on one address measures the server's ceiling (10,000+ requests/s): the
  # per-client request rate limit would measure the limit instead.
  sed -i -E "s/^(  client_requests_per_second:) *[0-9]+/\1 0/" "$cfg"
  printf 'profiles:\n  file: %s\n' "$root/bench/profiles.yaml" >>"$cfg"  # benchServerCert (auth: none)
  "$ca_bin" check-config --config "$cfg" >/dev/null || die "ca-server rejected $cfg"
  debounce_ms="$(sed -n -E 's/^  debounce_ms: *([0-9]+).*/\1/p' "$cfg")"
  say "Initialising a CA (ECDSA P-256) in $dir"
  "$ca_bin" init --config "$cfg" >"$work/ca-init.log" 2>&1 || rc=$?
  # Known ca-server bug (see bench/issuance.sh): init can die of SIGPIPE after finishing.
  if [ "$rc" -eq 141 ] && grep -q 'init: \[[0-9]*/[0-9]*\] done' "$work/ca-init.log"; then
    echo "crl_fetch.sh: warning: 'ca-server init' died of SIGPIPE after finishing (ca-server bug); continuing" >&2
  elif [ "$rc" -ne 0 ]; then
    cat "$work/ca-init.log" >&2
    die "ca-server init failed (status $rc)"
  fi
  cacert="$dir/certs/ca_signing.pem"
  agent_cert="$dir/certs/agent.pem"
  agent_key="$dir/private/agent.key"
  [ -r "$agent_cert" ] && [ -r "$agent_key" ] || die "init wrote no agent certificate/key under $dir"
  launch_ca_server
}

launch_ca_server() {
  local cfg="$work/ca.yaml"
  say "Starting ca-server: https://127.0.0.1:$https_port, http://127.0.0.1:$http_port"
  bench_start "$work/ca-server.log" "$ca_bin" run --config "$cfg"
  server_pid=$last_pid
  wait_ready "$server_pid" "$work/ca-server.log" "ca-server" \
    curl -sf -o /dev/null "http://127.0.0.1:$http_port/crl/MasterCRL.crl"
  wait_ready "$server_pid" "$work/ca-server.log" "ca-server" \
    curl -sf -o /dev/null --cacert "$cacert" "https://127.0.0.1:$https_port/ca/rest/info"
  http_url="http://127.0.0.1:$http_port"
  https_url="https://127.0.0.1:$https_port"
}

# --- revocations ---------------------------------------------------------------------------------

# Enrolls COUNT+1 certificates (benchServerCert, one P-256 key, distinct names) over HTTPS and revokes
# the first COUNT through the agent endpoint (mTLS), 8 requests in flight, reasons mixed. Writes
# the serial kept for the latency probe to $work/probe.serial.
revoke_many() {
  local count="$1" i
  mkdir -p "$work/csr"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/csr/key.pem" 2>/dev/null
  say "Writing $((count + 1)) CSRs"
  for i in $(seq 0 "$count"); do
    openssl req -new -key "$work/csr/key.pem" -subj "/CN=host$i.crl.bench.example" \
      -addext "subjectAltName=DNS:host$i.crl.bench.example" -out "$work/csr/$i.pem" 2>/dev/null
  done
  say "Enrolling $((count + 1)) certificates and revoking $count of them"
  python3 - "$https_url" "$cacert" "$agent_cert" "$agent_key" "$work/csr" "$count" "$work/probe.serial" <<'EOF'
import concurrent.futures, http.client, json, ssl, sys, threading
url, cacert, agent_cert, agent_key, csr_dir, count, probe_file = sys.argv[1:]
count = int(count)
host, port = url.removeprefix("https://").split(":")
plain = ssl.create_default_context(cafile=cacert)
agent = ssl.create_default_context(cafile=cacert)
agent.load_cert_chain(agent_cert, agent_key)
local = threading.local()

def call(ctx_name, method, path, body):
    conns = local.__dict__.setdefault("conns", {})
    for attempt in (1, 2):
        conn = conns.get(ctx_name)
        if conn is None:
            conn = http.client.HTTPSConnection(host, int(port), timeout=30,
                                               context=plain if ctx_name == "plain" else agent)
            conns[ctx_name] = conn
        try:
            conn.request(method, path, body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        except (http.client.HTTPException, OSError):
            conn.close()
            conns.pop(ctx_name, None)
            if attempt == 2:
                raise

def enroll(i):
    with open(f"{csr_dir}/{i}.pem") as f:
        status, body = call("plain", "POST", "/ca/rest/certrequests", {"profile_id": "benchServerCert", "csr": f.read()})
    if status != 201:
        raise SystemExit(f"enrollment {i}: HTTP {status}: {body[:300]}")
    return json.loads(body)["serial"]

reasons = ["keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged", "unspecified"]
def revoke(item):
    i, serial = item
    status, body = call("agent", "POST", f"/ca/rest/agent/certs/{serial}/revoke", {"reason": reasons[i % len(reasons)]})
    if status != 200:
        raise SystemExit(f"revoking {serial}: HTTP {status}: {body[:300]}")

with concurrent.futures.ThreadPoolExecutor(8) as pool:
    serials = list(pool.map(enroll, range(count + 1)))
    list(pool.map(revoke, enumerate(serials[:count])))
with open(probe_file, "w") as f:
    f.write(serials[count] + "\n")
EOF
}

# The served CRL (plain HTTP) -> FILE; prints its number of entries.
crl_entries() {
  curl -sf -o "$1" "$http_url/crl/MasterCRL.crl" || die "GET /crl/MasterCRL.crl failed"
  { openssl crl -inform DER -in "$1" -noout -text || die "the served CRL does not parse"; } | grep -c 'Serial Number' || true
}

wait_for_entries() {
  local want="$1" got=0
  for _ in $(seq 300); do
    got="$(crl_entries "$work/crl.der")"
    [ "$got" -ge "$want" ] && return 0
    sleep 0.2
  done
  die "the served CRL lists $got entries after 60 s, expected $want"
}

etag_of() {
  curl -sf -D - -o /dev/null "$http_url/crl/MasterCRL.crl" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p'
}

# One more revocation, timed from the agent's 200 to the first GET that serves a new CRL (new
# ETag) listing the serial. Sets probe_ms.
probe_latency() {
  local serial hex before
  serial="$(cat "$work/probe.serial")"
  before="$(etag_of)"
  say "Timing one more revocation ($serial) until the served CRL lists it"
  probe_ms="$(python3 - "$https_url" "$http_url" "$cacert" "$agent_cert" "$agent_key" "$serial" "$before" <<'EOF'
import http.client, json, ssl, sys, time
https_url, http_url, cacert, cert, key, serial, before = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cacert)
ctx.load_cert_chain(cert, key)
host, port = https_url.removeprefix("https://").split(":")
c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
c.request("POST", f"/ca/rest/agent/certs/{serial}/revoke", body=json.dumps({"reason": "keyCompromise"}),
          headers={"Content-Type": "application/json"})
r = c.getresponse(); body = r.read()
if r.status != 200:
    raise SystemExit(f"revoke {serial}: HTTP {r.status} {body[:200]}")
answered = time.monotonic()
host, port = http_url.removeprefix("http://").split(":")
p = http.client.HTTPConnection(host, int(port), timeout=30)
while time.monotonic() - answered < 60:
    p.request("GET", "/crl/MasterCRL.crl", headers={"If-None-Match": before})
    r = p.getresponse(); r.read()
    if r.status == 200:
        print(f"{(time.monotonic() - answered) * 1000:.0f}")
        sys.exit(0)
    time.sleep(0.01)
raise SystemExit("no new CRL within 60 s")
EOF
)" || die "latency probe failed"
  # The new CRL must list the serial.
  hex="$(python3 -c 'import sys; v = int(sys.argv[1], 0); h = "%X" % v; print(("0" + h) if len(h) % 2 else h)' "$serial")"
  curl -sf -o "$work/crl.der" "$http_url/crl/MasterCRL.crl" || die "GET /crl/MasterCRL.crl failed"
  openssl crl -inform DER -in "$work/crl.der" -noout -text | grep -q "Serial Number: $hex\$" \
    || die "the new CRL does not list $serial"
}

# --- a big synthetic CRL ----------------------------------------------------------------------

ldapi_url() {
  python3 -c 'import sys, urllib.parse; print("ldapi://" + urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# N revocations like a real CA's (127-bit random serials, mixed reasons) in an openssl ca
# database, a CRL signed with the instance's CA key (number 1000, above anything ca-server
# published), written into cn=MasterCRL; then ca-server restarted with crl.generate: false.
serve_synthetic_crl() {
  local n="$1" d="$work/synthetic" dir="$work/ca" suffix this_update next_update rc=0
  mkdir -p "$d"
  say "Writing an openssl ca database of $n revocations"
  read -r this_update next_update < <(python3 - "$n" "$d/index.txt" <<'EOF'
import random, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(20260101)
now = int(time.time())
reasons = ["", ",keyCompromise", ",superseded", ",superseded", ",cessationOfOperation", ",affiliationChanged"]
fmt = lambda t, f: time.strftime(f, time.gmtime(t))
with open(path, "w") as out:
    for i in range(n):
        revoked = now - rnd.randrange(365 * 86400)
        out.write("R\t%s\t%s%s\t%032X\tunknown\t/CN=revoked-%d.bench.example\n" % (
            fmt(revoked + 400 * 86400, "%y%m%d%H%M%SZ"), fmt(revoked, "%y%m%d%H%M%SZ"),
            reasons[rnd.randrange(len(reasons))], rnd.getrandbits(127), i))
print(fmt(now, "%Y%m%d%H%M%SZ"), fmt(now + 86400, "%Y%m%d%H%M%SZ"))
EOF
)
  [ -n "$next_update" ] || die "writing the synthetic database failed"
  printf 'unique_subject = no\n' >"$d/index.txt.attr"
  printf '03E8\n' >"$d/crlnumber"
  cat >"$d/openssl.cnf" <<EOF
[ ca ]
default_ca = synthetic
[ synthetic ]
database = $d/index.txt
crlnumber = $d/crlnumber
certificate = $dir/certs/ca_signing.pem
private_key = $dir/private/ca_signing.key
default_md = sha256
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
EOF
  say "Signing it with the instance's CA key (openssl ca -gencrl)"
  openssl ca -gencrl -config "$d/openssl.cnf" -crl_lastupdate "$this_update" -crl_nextupdate "$next_update" \
    -out "$d/crl.pem" 2>"$d/openssl.log" || { cat "$d/openssl.log" >&2; die "openssl ca -gencrl failed"; }
  openssl crl -in "$d/crl.pem" -outform DER -out "$d/crl.der" || die "openssl crl -outform DER failed"
  openssl crl -inform DER -in "$d/crl.der" -CAfile "$cacert" -noout -verify 2>&1 | grep -q 'verify OK' \
    || die "the synthetic CRL does not verify with the instance's CA"
  rm -f "$d/crl.pem" "$d/index.txt"
  suffix="$(sed -n -E 's/^  suffix: *"?([^"#]*[^"# ])"? *(#.*)?$/\1/p' "$work/ca.yaml")"
  suffix="${suffix:-o=pki-ca}"
  cat >"$d/modify.ldif" <<EOF
dn: cn=MasterCRL,ou=crlIssuingPoints,ou=ca,$suffix
changetype: modify
replace: caCrlNumber
caCrlNumber: 1000
-
replace: caDeltaCrlNumber
-
replace: deltaRevocationList;binary
-
replace: caThisUpdate
caThisUpdate: $this_update
-
replace: caNextUpdate
caNextUpdate: $next_update
-
replace: certificateRevocationList;binary
certificateRevocationList;binary:< file://$d/crl.der
EOF
  say "Storing the CRL ($(stat -c %s "$d/crl.der") bytes) in the directory entry of MasterCRL"
  ldapmodify -x -H "$(ldapi_url "$dir/slapd/ldapi")" -D "cn=Directory Manager,$suffix" \
    -y "$dir/secrets/directory.pass" -f "$d/modify.ldif" >"$d/ldapmodify.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    cat "$d/ldapmodify.log" >&2
    [ "$rc" -ne 255 ] || echo "crl_fetch.sh: slapd dropped the connection: it refuses requests above its incoming PDU limit (olcSockbufMaxIncomingAuth, 16 MiB by default), and ca-server's own save_crl of a CRL this big fails the same way" >&2
    die "ldapmodify failed (status $rc)"
  fi
  say "Restarting ca-server with crl.generate: false (it serves the stored CRL)"
  stop_pid "$server_pid"; bench_forget "$server_pid"; server_pid=""
  sed -i -E 's/^(  generate:) *true/\1 false/' "$work/ca.yaml"
  launch_ca_server
  curl -sf -o "$work/crl.der" "$http_url/crl/MasterCRL.crl" || die "GET /crl/MasterCRL.crl failed"
  cmp -s "$work/crl.der" "$d/crl.der" || die "ca-server does not serve the stored synthetic CRL"
}

server_kb() {  # VmRSS or VmHWM of ca-server, in kB
  local kb
  kb="$(sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$server_pid/status" 2>/dev/null || true)"
  echo "${kb:-0}"
}

# --- load ------------------------------------------------------------------------------------------

write_lua() {
  cat >"$work/report.lua" <<'EOF'
-- One machine-readable line at the end: BENCH requests= duration_us= bytes= p50_us= p99_us= errors=
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d errors=%d status_errors=%d\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF
}

field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $line"; }

# Checks with curl that URL (+ optional header) answers EXPECTED, then loads it with wrk and
# prints one table row. bytes/response is curl's count of one answer (headers + body): wrk's
# total would also count the bodies still in flight when the time is up.
run_row() {
  local name="$1" url="$2" expected="$3" header="${4:-}" out code size_header size_body requests
  local curl_args=(-s -o /dev/null -w '%{http_code} %{size_header} %{size_download}\n' --cacert "$cacert")
  [ -z "$header" ] || curl_args+=(-H "$header")
  read -r code size_header size_body < <(curl "${curl_args[@]}" "$url") || die "$name: curl failed"
  [ "$code" = "$expected" ] || die "$name: HTTP $code, expected $expected"
  out="$work/wrk-$(tr -c 'a-zA-Z0-9' '_' <<<"$name").txt"
  say "wrk -t$threads -c$connections -d${duration}s: $name"
  local wrk_args=(-t"$threads" -c"$connections" -d"${duration}s" --timeout 10s --latency -s "$work/report.lua")
  [ -z "$header" ] || wrk_args+=(-H "$header")
  wrk "${wrk_args[@]}" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  line="$(grep '^BENCH ' "$out" | tail -n 1 || true)"
  [ -n "$line" ] || { cat "$out" >&2; die "wrk printed no BENCH line"; }
  requests="$(field requests)"
  [ "$(field errors)" -eq 0 ] || notes+=("- $name: $(field errors) socket errors/timeouts")
  [ "$(field status_errors)" -eq 0 ] || { notes+=("- $name: $(field status_errors) answers with status >= 400"); failed=1; }
  [ "$requests" -gt 0 ] || die "$name: no request completed"
  rows+=("$(awk -v n="$requests" -v us="$(field duration_us)" -v b=$((size_header + size_body)) \
    -v p50="$(field p50_us)" -v p99="$(field p99_us)" -v name="$name" 'BEGIN {
      printf "| %s | %.0f | %.2f | %.2f | %d |", name, n / (us / 1e6), p50 / 1e3, p99 / 1e3, b }')")
}

main() {
  parse_args "$@"
  require_tools
  work="$(mktemp -d "${TMPDIR:-/tmp}/crl-fetch-bench.XXXXXX")"
  bench_traps
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

  start_ca_server
  probe_ms="n/a"
  if [ "$crl_entries" -gt 0 ]; then
    serve_synthetic_crl "$crl_entries"
  elif [ "$revoke_count" -gt 0 ]; then
    revoke_many "$revoke_count"
    say "Waiting for the served CRL to list $revoke_count entries"
    wait_for_entries "$revoke_count"
    probe_latency
  fi
  local entries etag der_bytes
  if [ "$crl_entries" -gt 0 ]; then
    entries="$crl_entries (synthetic)"
  else
    entries="$(crl_entries "$work/crl.der")"
  fi
  der_bytes="$(stat -c %s "$work/crl.der")"
  etag="$(etag_of)"
  [ -n "$etag" ] || die "the CRL has no ETag"

  write_lua
  rows=()
  notes=()
  failed=0
  local path="/crl/MasterCRL.crl" rss_before
  rss_before="$(server_kb VmRSS)"
  run_row "GET $path, HTTP (200)" "$http_url$path" 200
  run_row "GET $path, HTTP, If-None-Match (304)" "$http_url$path" 304 "If-None-Match: $etag"
  run_row "GET $path, HTTPS (200)" "$https_url$path" 200
  run_row "GET $path, HTTPS, If-None-Match (304)" "$https_url$path" 304 "If-None-Match: $etag"
  # The CRL must not have changed under the load (the conditional rows would then be 200s).
  [ "$(etag_of)" = "$etag" ] || notes+=("- the CRL changed during the load (ETag $etag -> $(etag_of))")

  echo
  echo "CRL fetch, ca-server cached CRL: $entries entries, $der_bytes bytes DER, ETag $etag"
  echo "wrk -t$threads -c$connections -d${duration}s per row, keep-alive connections (TLS handshakes only at connect); $(nproc) cores shared by wrk and ca-server"
  echo "(load average before the run: $load_before)"
  echo
  echo "| request | requests/s | p50 ms | p99 ms | bytes/response |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "bytes/response = one answer as curl counts it (status line, headers and body; TLS framing not included)."
  awk -v a="$rss_before" -v b="$(server_kb VmHWM)" 'BEGIN {
    printf "ca-server resident memory: %.1f MB before the load, peak %.1f MB since it started (MB = 10^6 bytes)\n", a * 1024 / 1e6, b * 1024 / 1e6 }'
  if [ "$probe_ms" != "n/a" ]; then
    echo "One more revocation -> served in a new CRL: $probe_ms ms after the agent's 200 (crl.debounce_ms = ${debounce_ms:-?})."
  fi
  [ ${#notes[@]} -eq 0 ] || printf '%s\n' "${notes[@]}"
  [ "$failed" -eq 0 ]
}

main "$@"
