#!/usr/bin/env bash
# Server-side key generation with key archival, against plain enrollment, on ONE ca-server
# instance in one run: (1) plain enrollment of pre-generated client P-256 CSRs, (2) the CA makes
# an EC P-256 key, (3) the CA makes an RSA-2048 key. In (2) and (3) every request also seals the
# key under the instance's storage key, writes it as a caKeyRecord with the request and the
# certificate, and answers with a PKCS#12. Prints a markdown table, this machine's
# `openssl speed` sign rates, ca-server's CPU time per certificate in each mode (a figure other
# tenants of the machine skew less than the rates), and a check that every 2xx answer left its
# record: a caKeyRecord for each server-made key, a certificate record for each plain enrollment.
#
# Everything lives in one `mktemp -d` folder; ports are picked free on 127.0.0.1; the server is
# stopped by its PID when the script exits (normally, on error or on Ctrl-C).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench_name=keygen_archival.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
lua_script="$root/bench/rotate_body.lua"
ca_bin="$root/build/bin/ca-server"
ca_bin_given=0

connections=8
duration=10
csr_count=200
keep=0
pkcs12_password="bench-pkcs12-password"

# The three loads: table label, profile, key type of the server-made key ("" = client CSR).
mode_labels=("plain enrollment (client P-256 CSR)" "server keygen + archival, ec-p256" "server keygen + archival, rsa-2048")
mode_profiles=(benchServerCert benchKeygenP256 benchKeygenRsa2048)
mode_keys=("" ec-p256 rsa-2048)
mode_results=() mode_samples=() mode_records=()

usage() {
  cat <<EOF
usage: bench/keygen_archival.sh [options]

Benchmarks server-side key generation with key archival over HTTPS against plain enrollment,
one load after the other on one ca-server instance (durability: group, the default):
  1. plain enrollment: pre-generated client P-256 CSRs, round-robin (profile benchServerCert)
  2. server keygen + archival, EC P-256 (profile benchKeygenP256)
  3. server keygen + archival, RSA-2048 (profile benchKeygenRsa2048)
Prints requests/s and latency per mode, ca-server's CPU time per certificate, and counts the
records in the directory (caKeyRecord, caCertificateRecord) against wrk's 2xx answers.

Options:
  --ca-server PATH      the ca-server binary (default build/bin/ca-server, built with
                          deploy/build.sh if missing)
  --connections N       wrk connections (default $connections; wrk uses 2 threads)
  --duration S          seconds of load per mode (default $duration; 3 modes)
  --csrs N              distinct pre-generated P-256 CSRs for plain enrollment (default $csr_count)
  --keep                keep the temporary folder (configs, logs, wrk output) and print its path
  -h, --help            show this help

Needs: wrk, openssl, curl, python3, ldapsearch. Takes about 3 x duration + 20 s.
Exit status: 0 done and every answer durable, 1 a failure or a check failed, 2 usage error.
EOF
}

die() { echo "keygen_archival.sh: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }


parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --ca-server)
        if [ $# -lt 2 ] || [ ! -f "$2" ] || [ ! -x "$2" ]; then
          echo "keygen_archival.sh: --ca-server needs an executable file" >&2
          exit 2
        fi
        ca_bin="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; ca_bin_given=1; shift 2 ;;
      --connections) connections="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --duration) duration="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --csrs) csr_count="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --keep) keep=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) echo "keygen_archival.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
}

require_tools() {
  local missing=() t
  for t in wrk openssl curl python3 ldapsearch; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (deploy/install-deps.sh installs them)"
}

# --- inputs -------------------------------------------------------------------------------------

# Plain enrollment: N distinct P-256 keys and CSRs (CN and SAN DNS names, as benchServerCert
# wants), one JSON body per line, PEM newlines as \n escapes; rotate_body.lua sends them in turn.
# Server keygen: one body per mode, the same for every request (the CA makes a new key each time).
make_bodies() {
  local i pem
  mkdir -p "$work/csr"
  say "Generating $csr_count P-256 CSRs"
  : >"$work/mode0.bodies"
  for i in $(seq "$csr_count"); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
      -subj "/CN=host$i.bench.example" -addext "subjectAltName=DNS:host$i.bench.example" \
      -out "$work/csr/$i.pem" 2>/dev/null
    pem="$(awk '{printf "%s\\n", $0}' "$work/csr/$i.pem")"
    printf '{"profile_id":"%s","csr":"%s"}\n' "${mode_profiles[0]}" "$pem" >>"$work/mode0.bodies"
  done
  for i in 1 2; do
    printf '{"profile_id":"%s","server_keygen":true,"subject":"CN=keygen%d.bench.example","dns_names":["keygen%d.bench.example"],"pkcs12_password":"%s"}\n' \
      "${mode_profiles[$i]}" "$i" "$i" "$pkcs12_password" >"$work/mode$i.bodies"
  done
}

# Single-process sign rates of this machine, "RSA ECDSA" (signatures/s); empty if unparsable.
measure_openssl_speed() {
  say "Measuring openssl speed -seconds 1 rsa2048 ecdsap256 (about 4 s)"
  openssl speed -seconds 1 rsa2048 ecdsap256 2>/dev/null | awk '
    /^rsa 2048 bits/ { rsa = $(NF-1) }
    /ecdsa \(nistp256\)/ { ec = $(NF-1) }
    END { if (rsa != "" && ec != "") print rsa, ec }'
}

# --- load ---------------------------------------------------------------------------------------


# Sends the first body once with curl and insists on a 2xx: a load whose every request is
# rejected would print a meaningless rate.
smoke_request() {
  local bodies="$1" out="$2" code
  code="$(head -n 1 "$bodies" | curl -sS --cacert "$cacert" -H 'Content-Type: application/json' \
    --data-binary @- -o "$out" -w '%{http_code}' "$url")" || die "request to $url failed"
  [[ "$code" == 2?? ]] || { cat "$out" >&2; echo >&2; die "$url answered HTTP $code to a sample request"; }
}

# A server-keygen answer must carry the certificate, the key id and a PKCS#12 that opens with
# the password and holds a key of the profile's type: otherwise the load measures something else.
check_keygen_answer() {
  local answer="$1" key_type="$2" text want
  python3 - "$answer" "$work/smoke.p12" <<'EOF' || die "the server-keygen answer in $answer lacks certificate, archived_key_id or pkcs12"
import base64, json, sys
with open(sys.argv[1]) as f: a = json.load(f)
assert "BEGIN CERTIFICATE" in a["certificate"] and a["archived_key_id"]
with open(sys.argv[2], "wb") as f: f.write(base64.b64decode(a["pkcs12"]))
EOF
  text="$(openssl pkcs12 -in "$work/smoke.p12" -passin "pass:$pkcs12_password" -nocerts -nodes 2>/dev/null \
    | openssl pkey -noout -text 2>/dev/null | head -n 1)" || true
  case "$key_type" in
    ec-p256) want="Private-Key: (256 bit)" ;;
    rsa-2048) want="Private-Key: (2048 bit, 2 primes)" ;;
  esac
  [ "$text" = "$want" ] || die "the PKCS#12 of the $key_type sample answer holds '$text', expected '$want'"
}

# --- our ca-server ------------------------------------------------------------------------------

ensure_ca_server() {
  if [ ! -x "$ca_bin" ] && [ "$ca_bin_given" -eq 0 ]; then
    say "Building ca-server (deploy/build.sh)"
    "$root/deploy/build.sh" >&2
  fi
  [ -x "$ca_bin" ] || die "$ca_bin was not built"
  local help
  help="$("$ca_bin" --help 2>&1 || true)"
  for cmd in init run sample-config; do
    grep -qw -- "$cmd" <<<"$help" || die "$ca_bin --help lists no '$cmd' command"
  done
}

ldapi_url() {
  python3 -c 'import sys, urllib.parse; print("ldapi://" + urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# Entries of one kind under BASE in our directory (rootdn: no size limit; paged anyway to be safe).
count_entries() {
  local base="$1" filter="$2" dir="$work/ca"
  { ldapsearch -x -LLL -H "$(ldapi_url "$dir/slapd/ldapi")" -D "cn=Directory Manager,o=pki-ca" \
      -y "$dir/secrets/directory.pass" -E pr=1000/noprompt -b "$base" -s one "$filter" dn \
      || die "ldapsearch on our directory failed"; } | grep -c '^dn:' || true
}

# "certificates keys": the certificate records and the archived key records.
count_records() {
  printf '%s %s' \
    "$(count_entries ou=certificateRepository,ou=ca,o=pki-ca '(objectClass=caCertificateRecord)')" \
    "$(count_entries ou=keyRepository,ou=kra,o=pki-ca '(objectClass=caKeyRecord)')"
}

# When wrk stops it drops the requests in flight without counting them, but the server still
# finishes them: wait (at most 30 s) until the counts stop moving.
settled_records() {
  local before now
  now="$(count_records)"
  for _ in $(seq 60); do
    sleep 0.5
    before="$now"
    now="$(count_records)"
    [ "$now" != "$before" ] || break
  done
  printf '%s' "$now"
}

# CPU time ca-server has used so far (all its threads; slapd is a process of its own), in ms.
server_cpu_ms() {
  sed 's/.*) //' "/proc/$ca_pid/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($12 + $13) * 1000 / hz }'
}

# Sample config (default durability: group), the plain-HTTP port moved to a free one, and the
# bench profiles; init; run; wait until it answers.
start_ca_server() {
  local port dir="$work/ca" cfg="$work/ca.yaml" rc=0
  port="$(free_port)"
  "$ca_bin" sample-config --dir "$dir" --port "$port" >"$cfg"
  if grep -qE '^  http_port: *[1-9]' "$cfg"; then
    local http_port
    http_port="$(free_port)"
    [ "$http_port" != "$port" ] || http_port="$(free_port)"
    sed -i -E "s/^(  http_port:) *[0-9]+/\1 $http_port/" "$cfg"
  fi
  durability="$(sed -n -E 's/^  durability: *([a-z_]+).*/\1/p' "$cfg")"
  printf 'profiles:\n  file: %s\n' "$root/bench/profiles.yaml" >>"$cfg"
  "$ca_bin" check-config --config "$cfg" >/dev/null || die "ca-server rejected $cfg"
  say "Initialising the CA (ECDSA P-256, RSA-3072 storage key) in $dir"
  "$ca_bin" init --config "$cfg" >"$work/ca-init.log" 2>&1 || rc=$?
  # `init` could die of SIGPIPE (141) after finishing (issuance.sh): accept that only after "done".
  if [ "$rc" -eq 141 ] && grep -q 'init: \[[0-9]*/[0-9]*\] done' "$work/ca-init.log"; then
    echo "keygen_archival.sh: warning: 'ca-server init' died of SIGPIPE after finishing; continuing" >&2
  elif [ "$rc" -ne 0 ]; then
    cat "$work/ca-init.log" >&2
    die "ca-server init failed (status $rc)"
  fi
  say "Starting ca-server on https://127.0.0.1:$port"
  bench_start "$work/ca-server.log" "$ca_bin" run --config "$cfg"
  ca_pid=$last_pid
  cacert="$dir/certs/ca_signing.pem"
  wait_ready "$ca_pid" "$work/ca-server.log" "ca-server" \
    curl -sf -o /dev/null --cacert "$cacert" "https://127.0.0.1:$port/ca/rest/info"
  url="https://127.0.0.1:$port/ca/rest/certrequests"
}

# Mode I: smoke request, records before, load, records once the server has finished what was in
# flight. Sets mode_results[I] = "ok secs p50 p99 non2xx socket_errors wrk_non2xx",
# mode_samples[I], and mode_records[I] = "certificates_added keys_added cpu_ms" (ca-server CPU
# from the start of the load until the records settled).
bench_mode() {
  local i="$1" key_type="${mode_keys[$1]}" before after cpu_before
  smoke_request "$work/mode$i.bodies" "$work/mode$i.smoke.json"
  [ -z "$key_type" ] || check_keygen_answer "$work/mode$i.smoke.json" "$key_type"
  read -r -a before <<<"$(settled_records)"
  cpu_before="$(server_cpu_ms)"

  say "Loading ca-server, ${mode_labels[$i]}: wrk -t2 -c$connections -d${duration}s"
  run_wrk "$url" "$work/mode$i.bodies" "$work/wrk-mode$i.txt"
  mode_results[i]="$r_ok $r_secs $r_p50_ms $r_p99_ms $r_non2xx $r_socket_errors $r_wrk_non2xx"
  mode_samples[i]="$r_sample"
  read -r -a after <<<"$(settled_records)"
  mode_records[i]="$((after[0] - before[0])) $((after[1] - before[1])) $(( $(server_cpu_ms) - cpu_before ))"
}

# --- report -------------------------------------------------------------------------------------


table_row() {  # name ok secs p50 p99 non2xx
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$(rate "$2" "$3")" "$4" "$5" "$6"
}

# Every 2xx must have left its record (WHAT: certificate or key). The directory may hold up to one
# more per connection: requests in flight when wrk stopped, finished by the server but not
# counted by wrk.
record_line() {
  local name="$1" what="$2" added="$3" ok="$4" verdict
  if [ "$added" -eq "$ok" ]; then
    verdict="equal"
  elif [ "$added" -gt "$ok" ] && [ "$added" -le $((ok + connections)) ]; then
    verdict="durable; +$((added - ok)) answered after wrk stopped counting (at most one per connection)"
  elif [ "$added" -lt "$ok" ]; then
    verdict="NOT DURABLE: $((ok - added)) answers without a record"; checks_ok=0
  else
    verdict="UNEXPLAINED: $((added - ok - connections)) more records than answers and requests in flight"; checks_ok=0
  fi
  printf -- '- %s: +%d %s during the load for %d 2xx answers (wrk): %s\n' "$name" "$added" "$what" "$ok" "$verdict"
}

# A server-made key has exactly one archived key record beside its certificate; a client key none.
key_pairing_line() {
  local name="$1" certs="$2" keys="$3" want="$2"
  [ -n "${mode_keys[$4]}" ] || want=0
  if [ "$keys" -ne "$want" ]; then
    checks_ok=0
    printf -- '- %s: %d caKeyRecord entries for %d certificates, expected %d: MISMATCH\n' "$name" "$keys" "$certs" "$want"
  fi
}

# Socket errors/timeouts are not HTTP answers, so they are outside the table; a mismatch with
# wrk's own "Non-2xx or 3xx" count would mean a 3xx or a Lua counting problem.
load_notes() {  # name sample ok secs p50 p99 non2xx socket_errors wrk_non2xx
  local name="$1" sample="$2"; shift 2
  [ "$6" -eq 0 ] || echo "- $name: $6 wrk socket errors/timeouts"
  [ "$7" -eq "$5" ] || echo "- $name: wrk itself counted $7 non-2xx/3xx responses"
  [ -z "$sample" ] || echo "- $name: first non-2xx answer: $sample"
}

report() {
  local i results records plain_rate
  echo
  echo "Server-side key generation with archival over HTTPS, one ca-server (ECDSA P-256 CA, directory durability: $durability), wrk -t2 -c$connections -d${duration}s per mode, $(nproc) cores"
  # Other work on the machine skews the rates (keygen is CPU-bound): the load averages tell.
  echo "(load average before the run: $load_before; after it: $load_after)"
  echo
  echo "| mode | requests/s | p50 ms | p99 ms | non-2xx |"
  echo "|---|---|---|---|---|"
  for i in 0 1 2; do
    read -r -a results <<<"${mode_results[i]}"
    table_row "${mode_labels[$i]}" "${results[@]:0:5}"
  done
  echo
  read -r -a results <<<"${mode_results[0]}"
  plain_rate="$(rate "${results[0]}" "${results[1]}")"
  for i in 1 2; do
    read -r -a results <<<"${mode_results[i]}"
    awk -v p="$plain_rate" -v k="$(rate "${results[0]}" "${results[1]}")" -v n="${mode_keys[$i]}" 'BEGIN {
      if (k > 0) printf "plain/keygen %s: %.1fx\n", n, p / k; else printf "plain/keygen %s: n/a (nothing issued)\n", n }'
  done
  if [ -n "$speed" ]; then
    # shellcheck disable=SC2086
    set -- $speed
    printf 'openssl speed -seconds 1 rsa2048 ecdsap256 (1 process): RSA-2048 %.0f signs/s, ECDSA P-256 %.0f signs/s\n' "$1" "$2"
  else
    echo "openssl speed: no figure"
  fi
  echo
  printf 'ca-server CPU per certificate, from the start of each load until its records settled:'
  for i in 0 1 2; do
    read -r -a records <<<"${mode_records[i]}"
    awk -v ms="${records[2]}" -v n="${records[0]}" -v name="${mode_keys[$i]:-plain}" -v sep="$([ "$i" -eq 2 ] || echo ,)" \
      'BEGIN { if (n > 0) printf " %s %.1f ms%s", name, ms / n, sep; else printf " %s n/a%s", name, sep }'
  done
  echo
  echo
  checks_ok=1
  for i in 0 1 2; do
    read -r -a results <<<"${mode_results[i]}"
    read -r -a records <<<"${mode_records[i]}"
    if [ -z "${mode_keys[$i]}" ]; then
      record_line "${mode_labels[$i]}" "caCertificateRecord entries" "${records[0]}" "${results[0]}"
    else
      record_line "${mode_labels[$i]}" "caKeyRecord entries" "${records[1]}" "${results[0]}"
    fi
    key_pairing_line "${mode_labels[$i]}" "${records[0]}" "${records[1]}" "$i"
  done
  for i in 0 1 2; do
    read -r -a results <<<"${mode_results[i]}"
    load_notes "${mode_labels[$i]}" "${mode_samples[i]}" "${results[@]}"
  done
  [ "$slapd_restarts" -eq 0 ] || echo "- ca-server: its log reports $slapd_restarts unexpected exit(s) of the embedded slapd"
  [ "$checks_ok" -eq 1 ]
}

main() {
  parse_args "$@"
  require_tools
  [ -r "$lua_script" ] || die "missing $lua_script"
  ensure_ca_server
  work="$(mktemp -d "${TMPDIR:-/tmp}/keygen-bench.XXXXXX")"
  bench_traps

  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  make_bodies
  speed="$(measure_openssl_speed)"
  start_ca_server
  local i
  for i in 0 1 2; do bench_mode "$i"; done
  # The server logs its directory's crashes and restarts; they explain non-2xx answers.
  slapd_restarts="$(grep -c 'slapd exited unexpectedly' "$work/ca-server.log" || true)"
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
  stop_pid "$ca_pid"; bench_forget "$ca_pid"
  report || { echo "keygen_archival.sh: record check failed" >&2; exit 1; }
}

main "$@"
