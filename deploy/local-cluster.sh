#!/usr/bin/env bash
# A whole topology on this machine, on loopback, for demos: deploy/cluster.sh (a master CA, N
# clones, haproxy in TCP passthrough in front of them) with --no-netns; enrolls one certificate
# through haproxy and prints the cluster's status. Then stays in the foreground until Ctrl-C /
# SIGTERM, which stop what cluster.sh started (by PID). An instance that exits meanwhile stops
# nothing else: `deploy/cluster.sh status|start I --work DIR` from another terminal.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/local-cluster.sh [--work DIR] [--clones N]

Starts on 127.0.0.1 (free ports picked at random), with deploy/cluster.sh: a master CA, N clones
made with `ca-clone prepare` + `ca-clone spawn`, and haproxy (TCP mode, TLS passes through) in
front of all of them; enrolls one certificate through haproxy; prints `cluster.sh status`; then
serves until Ctrl-C / SIGTERM, which stop every process (`cluster.sh down --keep-work`: the
folder and its logs stay until the next run).

Options:
  --work DIR   working folder (default: var/cluster in the repository). A folder left by an
               earlier run is wiped (its processes, if any still run, are stopped first).
  --clones N   number of clones (default 2)
  -h, --help   show this help

Meanwhile, from another terminal: deploy/cluster.sh status|kill I|start I|freeze I|thaw I --work DIR
(instance 1 is the master). For instances on test hosts of their own (network namespaces) and a
cluster that outlives the terminal, use deploy/cluster.sh directly (docs/deployment.md).

Environment: CA_BIN_DIR (default build/bin) holds ca-server and ca-clone.
EOF
}

root="$(cd "$(dirname "$0")/.." && pwd)"
cluster="$root/deploy/cluster.sh"
work="$root/var/cluster"
clones=2
while [ $# -gt 0 ]; do
  case "$1" in
    --work) [ $# -ge 2 ] || { usage >&2; exit 2; }; work="$2"; shift 2 ;;
    --work=*) work="${1#--work=}"; shift ;;
    --clones) [ $# -ge 2 ] || { usage >&2; exit 2; }; clones="$2"; shift 2 ;;
    --clones=*) clones="${1#--clones=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if ! [[ "$clones" =~ ^[0-9]+$ ]] || [ "$clones" -gt 19 ]; then
  echo "--clones takes a number from 0 to 19" >&2
  exit 2
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "local-cluster: $*" >&2; exit 1; }

# What an earlier run left (processes, the folder): cluster.sh stops and wipes it.
[ -f "$work/.cluster-sh" ] && "$cluster" down --work "$work"

sleeper=""
# shellcheck disable=SC2317  # called by the traps
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  "$cluster" down --keep-work --work "$work" || status=1
  exit "$status"
}
trap 'exit 130' INT
trap 'exit 143' TERM

"$cluster" up $((clones + 1)) --no-netns --work "$work"
trap cleanup EXIT

# --- One enrollment through haproxy --------------------------------------------------------------

read -r lb_https cacert < <(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
print(c["haproxy"]["https_url"], c["ca_certificate"])' "$work/cluster.json")

say "Enrolling CN=demo.example.com through haproxy (profile caServerCert, a one-time enrollment code)"
enroll="$work/enroll"
mkdir -p "$enroll"
# As the CA agent (the master's init made its certificate): a code bound to the profile and name.
curl -sS --cacert "$cacert" --cert "$work/master/certs/agent.pem" --key "$work/master/private/agent.key" \
  -H 'Content-Type: application/json' -o "$enroll/code.json" \
  -d '{"profile_id":"caServerCert","dns_names":["demo.example.com"],"expires_in_seconds":600}' \
  "$lb_https/ca/rest/agent/enrollment-codes"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$enroll/demo.key" \
  -subj "/CN=demo.example.com/O=Example" -addext "subjectAltName=DNS:demo.example.com" \
  -out "$enroll/demo.csr" 2>/dev/null
python3 - "$enroll/demo.csr" "$enroll/code.json" > "$enroll/request.json" <<'EOF'
import json, sys
code = json.load(open(sys.argv[2]))
if "enrollment_code" not in code:
    sys.exit(f"no enrollment code: {code}")
print(json.dumps({"profile_id": "caServerCert", "enrollment_code": code["enrollment_code"],
                  "csr": open(sys.argv[1]).read()}))
EOF
code="$(curl -sS --cacert "$cacert" -H 'Content-Type: application/json' --data-binary "@$enroll/request.json" \
  -o "$enroll/response.json" -w '%{http_code}' "$lb_https/ca/rest/certrequests")"
echo "HTTP $code"
python3 - "$enroll/response.json" "$enroll/demo.pem" <<'EOF' || die "enrollment failed: $(cat "$enroll/response.json")"
import json, sys
r = json.load(open(sys.argv[1]))
if "certificate" not in r:
    sys.exit(1)
open(sys.argv[2], "w").write(r["certificate"])
serial = r["serial"]
# Bits 64..79 of a serial are the replica ID of the instance that issued it (docs/ranges.md).
print(f"request {r['request_id']}, status {r['status']}, serial {serial}, "
      f"issued by replica {(int(serial, 16) >> 64) & 0xffff}")
EOF
openssl x509 -in "$enroll/demo.pem" -noout -subject -issuer -enddate
openssl verify -CAfile "$cacert" "$enroll/demo.pem"

# --- Status, then serve --------------------------------------------------------------------------

"$cluster" status --work "$work" || echo "(cluster.sh status exited with $?: see above)"

say "Running: Ctrl-C (or SIGTERM to pid $$) stops everything"
# Until a signal: the traps stop the cluster.
while true; do
  sleep 3600 &
  sleeper=$!
  wait "$sleeper" || true
done
