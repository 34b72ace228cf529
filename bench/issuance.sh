#!/usr/bin/env bash
# Durable HTTPS issuance: our ca-server against `cfssl serve` (HTTPS + SQLite certdb), same load,
# same run, same keys (ECDSA P-256 CA, P-256 CSRs). Prints a markdown table, the ratio, the raw
# `openssl speed` ECDSA P-256 sign rate of this machine, and a durability check: every 2xx answer
# must have left a record in the server's store (our LDAP directory, cfssl's SQLite file).
#
# Everything lives in one `mktemp -d` folder; ports are picked free on 127.0.0.1; every server the
# script starts is stopped by its PID when the script exits (normally, on error or on Ctrl-C).
# See ../shared/BASELINES.md for figures measured on this kind of machine.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
bench_name=issuance.sh
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
lua_script="$root/bench/rotate_body.lua"
ca_bin="$root/build/bin/ca-server"

connections=8
duration=15
csr_count=200
skip_cfssl=0
extra_config=""
keep=0

usage() {
  cat <<EOF
usage: bench/issuance.sh [options]

Benchmarks durable certificate issuance over HTTPS: our ca-server (records in its embedded
LDAP directory) and \`cfssl serve\` (SQLite certdb), one after the other, with the same wrk load.

Options:
  --connections N       wrk connections (default $connections; wrk uses 2 threads)
  --duration S          seconds of load per server (default $duration)
  --csrs N              distinct pre-generated P-256 CSRs sent round-robin (default $csr_count)
  --skip-cfssl          benchmark only our ca-server
  --ca-only-config FILE YAML merged over ca-server's sample config (our server only), e.g.
                          directory: {durability: per_write}
  --keep                keep the temporary folder (configs, logs, wrk output) and print its path
  -h, --help            show this help

Needs: wrk, openssl, curl, python3, ldapsearch; cfssl and sqlite3 unless --skip-cfssl.
Builds build/bin/ca-server with deploy/build.sh if it is missing.
Exit status: 0 done and durable, 1 a failure or a durability check failed, 2 usage error.
EOF
}

die() { echo "issuance.sh: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }


parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --connections) connections="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --duration) duration="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --csrs) csr_count="$(count_arg "$1" "${2:-}" $#)"; shift 2 ;;
      --skip-cfssl) skip_cfssl=1; shift ;;
      --ca-only-config)
        if [ $# -lt 2 ] || [ ! -r "$2" ]; then
          echo "issuance.sh: --ca-only-config needs a readable file" >&2
          exit 2
        fi
        extra_config="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
      --keep) keep=1; shift ;;
      -h|--help) usage; exit 0 ;;
      *) echo "issuance.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
  done
}

require_tools() {
  local tools=(wrk openssl curl python3 ldapsearch) missing=() t
  [ "$skip_cfssl" -eq 1 ] || tools+=(cfssl sqlite3)
  for t in "${tools[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (deploy/install-deps.sh installs them)"
}

# --- inputs shared by both servers -------------------------------------------------------------

# N distinct keys and CSRs: CN and SAN are DNS names (our benchServerCert profile requires it; cfssl
# copies the SAN). Then one JSON body per line per server, PEM newlines as \n escapes.
make_csrs() {
  local i pem
  mkdir -p "$work/csr"
  say "Generating $csr_count P-256 CSRs"
  for i in $(seq "$csr_count"); do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
      -subj "/CN=host$i.bench.example" -addext "subjectAltName=DNS:host$i.bench.example" \
      -out "$work/csr/$i.pem" 2>/dev/null
  done
  : >"$work/ours.bodies"
  : >"$work/cfssl.bodies"
  for i in $(seq "$csr_count"); do
    pem="$(awk '{printf "%s\\n", $0}' "$work/csr/$i.pem")"
    printf '{"profile_id":"benchServerCert","csr":"%s"}\n' "$pem" >>"$work/ours.bodies"
    printf '{"certificate_request":"%s"}\n' "$pem" >>"$work/cfssl.bodies"
  done
}

# Raw single-process ECDSA P-256 signing rate: the ceiling of any CA signing with one core.
measure_openssl_speed() {
  say "Measuring openssl speed -seconds 3 ecdsap256 (about 6 s)"
  openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/ecdsa \(nistp256\)/ { print $(NF-1); exit }'
}

# --- load ---------------------------------------------------------------------------------------


# Sends the first body once with curl and insists on a 2xx: a benchmark whose every request is
# rejected would print a meaningless rate.
smoke_request() {
  local url="$1" cacert="$2" bodies="$3" out="$4" code
  code="$(head -n 1 "$bodies" | curl -sS --cacert "$cacert" -H 'Content-Type: application/json' \
    --data-binary @- -o "$out" -w '%{http_code}' "$url")" || die "request to $url failed"
  [[ "$code" == 2?? ]] || { cat "$out" >&2; echo >&2; die "$url answered HTTP $code to a sample request"; }
}

# --- our ca-server ------------------------------------------------------------------------------

ensure_ca_server() {
  if [ ! -x "$ca_bin" ]; then
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

# Deep-merges the --ca-only-config YAML over the sample config (mappings merge, scalars replace).
merge_config() {
  python3 - "$1" "$2" <<'EOF'
import sys, yaml
def merge(base, extra):
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base
with open(sys.argv[1]) as f: base = yaml.safe_load(f)
with open(sys.argv[2]) as f: extra = yaml.safe_load(f)
print("# sample-config merged with " + sys.argv[2])
print(yaml.safe_dump(merge(base, extra), sort_keys=False), end="")
EOF
}

ldapi_url() {
  python3 -c 'import sys, urllib.parse; print("ldapi://" + urllib.parse.quote(sys.argv[1], safe=""))' "$1"
}

# Certificate records in our directory (rootdn: no size limit; paged anyway to be safe).
count_ca_records() {
  local dir="$work/ca"
  { ldapsearch -x -LLL -H "$(ldapi_url "$dir/slapd/ldapi")" -D "cn=Directory Manager,o=pki-ca" \
      -y "$dir/secrets/directory.pass" -E pr=1000/noprompt \
      -b ou=certificateRepository,ou=ca,o=pki-ca -s one '(objectClass=caCertificateRecord)' dn \
      || die "ldapsearch on our directory failed"; } | grep -c '^dn:' || true
}

bench_ours() {
  local port dir="$work/ca" cfg="$work/ca.yaml" pid url
  ensure_ca_server
  port="$(free_port)"
  "$ca_bin" sample-config --dir "$dir" --port "$port" >"$work/ca.sample.yaml"
  # The sample puts the plain-HTTP listener (CRLs, OCSP) on port+1, which nobody checked was
  # free: give it a port of its own too.
  if grep -qE '^  http_port: *[1-9]' "$work/ca.sample.yaml"; then
    local http_port
    http_port="$(free_port)"
    [ "$http_port" != "$port" ] || http_port="$(free_port)"
    sed -i -E "s/^(  http_port:) *[0-9]+/\1 $http_port/" "$work/ca.sample.yaml"
  fi
  if [ -n "$extra_config" ]; then
    merge_config "$work/ca.sample.yaml" "$extra_config" >"$cfg"
  else
    cp "$work/ca.sample.yaml" "$cfg"
  fi
  printf 'profiles:\n  file: %s\n' "$root/bench/profiles.yaml" >>"$cfg"  # benchServerCert (auth: none)
  "$ca_bin" check-config --config "$cfg" >/dev/null || die "ca-server rejected $cfg"
  say "Initialising our CA (ECDSA P-256) in $dir"
  local rc=0
  "$ca_bin" init --config "$cfg" >"$work/ca-init.log" 2>&1 || rc=$?
  # Known ca-server bug at the time of writing: `init` can die of SIGPIPE (status 141) while it
  # closes its directory connection after finishing. Accept that only when it reported "done".
  if [ "$rc" -eq 141 ] && grep -q 'init: \[[0-9]*/[0-9]*\] done' "$work/ca-init.log"; then
    echo "issuance.sh: warning: 'ca-server init' died of SIGPIPE after finishing (ca-server bug); continuing" >&2
  elif [ "$rc" -ne 0 ]; then
    cat "$work/ca-init.log" >&2
    die "ca-server init failed (status $rc)"
  fi
  say "Starting ca-server on https://127.0.0.1:$port"
  bench_start "$work/ca-server.log" "$ca_bin" run --config "$cfg"
  pid=$last_pid
  cacert="$dir/certs/ca_signing.pem"
  wait_ready "$pid" "$work/ca-server.log" "ca-server" \
    curl -sf -o /dev/null --cacert "$cacert" "https://127.0.0.1:$port/ca/rest/info"
  url="https://127.0.0.1:$port/ca/rest/certrequests"
  smoke_request "$url" "$cacert" "$work/ours.bodies" "$work/ours.smoke.json"
  ours_records_before="$(count_ca_records)"

  say "Loading ca-server: wrk -t2 -c$connections -d${duration}s"
  run_wrk "$url" "$work/ours.bodies" "$work/wrk-ours.txt"
  ours=("$r_ok" "$r_secs" "$r_p50_ms" "$r_p99_ms" "$r_non2xx" "$r_socket_errors" "$r_wrk_non2xx")
  ours_sample="$r_sample"
  # The server logs its directory's crashes and restarts; they explain non-2xx answers.
  ours_slapd_restarts="$(grep -c 'slapd exited unexpectedly' "$work/ca-server.log" || true)"
  ours_records_after="$(count_ca_records)"

  stop_pid "$pid"; bench_forget "$pid"
}

# --- cfssl serve ---------------------------------------------------------------------------------

# CA key and cert, a TLS cert for 127.0.0.1, a signing config and an SQLite certdb with the two
# tables cfssl expects to exist (BASELINES.md, "Peer: cfssl serve").
prepare_cfssl() {
  local d="$work/cfssl"
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -keyout "$d/ca-key.pem" -out "$d/ca.pem" -subj "/CN=cfssl Bench CA/O=Example" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -keyout "$d/tls-key.pem" -out "$d/tls.pem" -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
  cat >"$d/signing.json" <<'EOF'
{"signing": {"default": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth"]}}}
EOF
  sqlite3 "$d/certs.db" <<'EOF'
CREATE TABLE certificates (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  ca_label                 blob,
  status                   blob NOT NULL,
  reason                   int,
  expiry                   timestamp,
  revoked_at               timestamp,
  pem                      blob NOT NULL,
  PRIMARY KEY (serial_number, authority_key_identifier)
);
CREATE TABLE ocsp_responses (
  serial_number            blob NOT NULL,
  authority_key_identifier blob NOT NULL,
  body                     blob NOT NULL,
  expiry                   timestamp,
  PRIMARY KEY (serial_number, authority_key_identifier)
);
EOF
  printf '{"driver":"sqlite3","data_source":"%s"}\n' "$d/certs.db" >"$d/db.json"
}

count_cfssl_records() {
  sqlite3 "$work/cfssl/certs.db" 'SELECT count(*) FROM certificates;'
}

bench_cfssl() {
  local d="$work/cfssl" port pid url
  prepare_cfssl
  port="$(free_port)"
  say "Starting cfssl serve on https://127.0.0.1:$port"
  bench_start "$work/cfssl.log" cfssl serve -address 127.0.0.1 -port "$port" \
    -ca "$d/ca.pem" -ca-key "$d/ca-key.pem" -config "$d/signing.json" -db-config "$d/db.json" \
    -tls-cert "$d/tls.pem" -tls-key "$d/tls-key.pem" -loglevel 3
  pid=$last_pid
  wait_ready "$pid" "$work/cfssl.log" "cfssl serve" \
    curl -sf -o /dev/null --cacert "$d/tls.pem" -d '{}' "https://127.0.0.1:$port/api/v1/cfssl/info"
  url="https://127.0.0.1:$port/api/v1/cfssl/sign"
  smoke_request "$url" "$d/tls.pem" "$work/cfssl.bodies" "$work/cfssl.smoke.json"
  grep -q '"success":true' "$work/cfssl.smoke.json" || { cat "$work/cfssl.smoke.json" >&2; die "cfssl did not sign the sample CSR"; }
  cfssl_records_before="$(count_cfssl_records)"

  say "Loading cfssl serve: wrk -t2 -c$connections -d${duration}s"
  run_wrk "$url" "$work/cfssl.bodies" "$work/wrk-cfssl.txt"
  theirs=("$r_ok" "$r_secs" "$r_p50_ms" "$r_p99_ms" "$r_non2xx" "$r_socket_errors" "$r_wrk_non2xx")
  theirs_sample="$r_sample"
  cfssl_records_after="$(count_cfssl_records)"

  stop_pid "$pid"; bench_forget "$pid"
}

# --- report -------------------------------------------------------------------------------------


table_row() {  # name ok secs p50 p99 non2xx
  printf '| %s | %s | %s | %s | %s |\n' "$1" "$(rate "$2" "$3")" "$4" "$5" "$6"
}

# Prints "name: N records after the load (+D during it) for K 2xx answers: durable|NOT DURABLE".
durability_line() {
  local name="$1" store="$2" before="$3" after="$4" ok="$5" verdict="durable"
  if [ $((after - before)) -lt "$ok" ] || [ "$after" -lt "$ok" ]; then verdict="NOT DURABLE"; durable=0; fi
  printf -- '- %s: %s holds %d certificate records after the load (+%d during it) for %d 2xx answers: %s\n' \
    "$name" "$store" "$after" $((after - before)) "$ok" "$verdict"
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
  local ours_rate cfssl_rate
  ours_rate="$(rate "${ours[0]}" "${ours[1]}")"
  echo
  echo "Durable HTTPS issuance, ECDSA P-256 CA and CSRs, wrk -t2 -c$connections -d${duration}s, $csr_count distinct CSRs, $(nproc) cores"
  # Other work on the machine skews both servers; the 1-minute load before the run tells.
  echo "(load average before the run: $load_before)"
  echo
  echo "| server | certs/s | p50 ms | p99 ms | non-2xx |"
  echo "|---|---|---|---|---|"
  table_row "ca-server (LDAP directory)" "${ours[@]:0:5}"
  if [ "$skip_cfssl" -eq 0 ]; then
    cfssl_rate="$(rate "${theirs[0]}" "${theirs[1]}")"
    table_row "cfssl serve (SQLite certdb)" "${theirs[@]:0:5}"
    echo
    awk -v a="$ours_rate" -v b="$cfssl_rate" 'BEGIN {
      if (b > 0) printf "ours/cfssl: %.2fx\n", a / b; else print "ours/cfssl: n/a (cfssl issued nothing)" }'
  fi
  awk -v r="$ours_rate" -v s="$speed" 'BEGIN {
    if (s > 0) printf "openssl speed -seconds 3 ecdsap256 (1 process): %.0f signs/s; ca-server reaches %.2f%% of it (%.2f%% below)\n", s, 100 * r / s, 100 - 100 * r / s
    else print "openssl speed: no figure" }'
  echo
  durable=1
  durability_line "ca-server" "the directory (ou=certificateRepository)" "$ours_records_before" "$ours_records_after" "${ours[0]}"
  load_notes "ca-server" "$ours_sample" "${ours[@]}"
  [ "$ours_slapd_restarts" -eq 0 ] || echo "- ca-server: its log reports $ours_slapd_restarts unexpected exit(s) of the embedded slapd"
  if [ "$skip_cfssl" -eq 0 ]; then
    durability_line "cfssl" "the SQLite certdb" "$cfssl_records_before" "$cfssl_records_after" "${theirs[0]}"
    load_notes "cfssl" "$theirs_sample" "${theirs[@]}"
  fi
  [ "$durable" -eq 1 ]
}

main() {
  parse_args "$@"
  require_tools
  [ -r "$lua_script" ] || die "missing $lua_script"
  work="$(mktemp -d "${TMPDIR:-/tmp}/issuance-bench.XXXXXX")"
  bench_traps

  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  make_csrs
  speed="$(measure_openssl_speed)"
  bench_ours
  [ "$skip_cfssl" -eq 1 ] || bench_cfssl
  report || { echo "issuance.sh: durability check failed" >&2; exit 1; }
}

main "$@"
