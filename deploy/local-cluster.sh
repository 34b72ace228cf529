#!/usr/bin/env bash
# A whole topology on this machine, on loopback, for demos: a master CA, N clones (each a
# ca-server with its own slapd, replicating multi-provider) and haproxy in TCP passthrough in
# front of them; enrolls one certificate through haproxy and prints `ca-clone status`. Then stays
# in the foreground until Ctrl-C / SIGTERM, and stops exactly the processes it started (by PID).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/local-cluster.sh [--work DIR] [--clones N]

Starts on 127.0.0.1 (free ports picked at random): a master CA, N clones made with
`ca-clone prepare` + `ca-clone spawn`, and haproxy (TCP mode, TLS passes through) in front of
all of them; enrolls one certificate through haproxy; prints `ca-clone status`; then serves
until Ctrl-C / SIGTERM, which stop every process it started.

Options:
  --work DIR   working folder (default: var/cluster in the repository). A folder left by an
               earlier run is wiped (its processes, if any still run, are stopped first).
  --clones N   number of clones (default 2)
  -h, --help   show this help

Environment: CA_BIN_DIR (default build/bin) holds ca-server and ca-clone.
EOF
}

root="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="${CA_BIN_DIR:-$root/build/bin}"
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
if ! [[ "$clones" =~ ^[0-9]+$ ]] || [ "$clones" -gt 20 ]; then
  echo "--clones takes a number from 0 to 20" >&2
  exit 2
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "local-cluster: $*" >&2; exit 1; }

ca_server="$bin_dir/ca-server"
ca_clone="$bin_dir/ca-clone"
for f in "$ca_server" "$ca_clone"; do [ -x "$f" ] || die "$f is missing (build first: deploy/build.sh)"; done
for c in python3 openssl curl haproxy slapd; do
  command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || die "$c is not installed (deploy/install-deps.sh)"
done
PATH="$PATH:/usr/sbin"
python3 -c 'import yaml' 2>/dev/null || die "python3 cannot import yaml (apt-get install python3-yaml)"

work="$(python3 -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$work")"
marker="$work/.local-cluster"

# --- What this script starts, and how it stops it ------------------------------------------------

# Role and PID of every process started here, in start order ($work/pids: "PID role" lines).
roles=()
pids=()

# True when PID runs and its command line names the work folder: never signal a PID that was
# reused by an unrelated process.
ours() {
  local pid="$1" cmdline
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  cmdline="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$work"* ]]
}

# SIGTERM, then SIGKILL after a grace period; works for children and for processes of an earlier run.
stop_pid() {
  local role="$1" pid="$2" i
  ours "$pid" || return 0
  echo "stopping $role (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    # A child of ours stays a zombie until reaped: reap it as soon as it is gone.
    [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" = "Z" ] && break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != "Z" ]; then
    echo "$role (pid $pid) did not stop in 30 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# The slapd of each instance is a child of its ca-server, which stops it; a slapd left behind
# (its ca-server was killed) is found through its pid file and stopped here.
stop_slapds() {
  local f pid
  for f in "$work"/*/slapd/slapd.pid; do
    [ -f "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    stop_pid "slapd of $(basename "$(dirname "$(dirname "$f")")")" "$pid"
  done
}

# shellcheck disable=SC2317  # called by the traps
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ ${#pids[@]} -gt 0 ]; then
    say "Stopping what this script started"
    # haproxy first (no new connections), then the clones, the master last: it releases the CRL
    # lease and its directory is the hub of the replication star.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop_pid "${roles[$i]}" "${pids[$i]}"; done
    rm -f "$work/pids"
  fi
  # Interrupted during `ca-server init` or `ca-clone spawn`: their slapd, if one is left.
  [ -f "$marker" ] && stop_slapds
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started() {
  roles+=("$1")
  pids+=("$2")
  echo "$2 $1" >> "$work/pids"
  echo "started $1 (pid $2)"
}

# --- A fresh work folder -------------------------------------------------------------------------

if [ -e "$work" ]; then
  if [ -f "$marker" ]; then
    if [ -f "$work/pids" ]; then
      say "Stopping what an earlier run left in $work"
      while read -r pid role; do stop_pid "$role" "$pid"; done < <(tac "$work/pids")
    fi
    stop_slapds
    rm -rf "$work"
  elif [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
    die "$work exists and was not made by this script: choose another --work"
  fi
fi
mkdir -p "$work"
touch "$marker"

# --- Ports ---------------------------------------------------------------------------------------

# Three ports per instance (HTTPS, HTTP, LDAP) and two for haproxy, all held open at once while
# they are chosen so that none is handed out twice.
read -r -a ports < <(python3 - $((3 * (clones + 1) + 2)) <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
)
lb_https="${ports[0]}"
lb_http="${ports[1]}"
# instance i (0 = master): HTTPS ports[2+3i], HTTP ports[3+3i], LDAP ports[4+3i]
https_port() { echo "${ports[$((2 + 3 * $1))]}"; }
http_port() { echo "${ports[$((3 + 3 * $1))]}"; }
ldap_port() { echo "${ports[$((4 + 3 * $1))]}"; }

# --- Helpers -------------------------------------------------------------------------------------

cacert="$work/master/certs/ca_signing.pem"

# Waits for GET /ca/rest/info to answer 200 at URL while PID (0: none) runs.
wait_for_info() {
  local name="$1" url="$2" pid="$3" log="$4" i
  for i in $(seq 300); do
    if curl -sf --cacert "$cacert" "$url/ca/rest/info" >/dev/null 2>&1; then return 0; fi
    if [ "$pid" != 0 ] && ! kill -0 "$pid" 2>/dev/null; then
      echo "$name exited; the end of $log:" >&2
      tail -n 30 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "$name did not answer $url/ca/rest/info within 60 s; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
}

slapd_pid() { cat "$work/$1/slapd/slapd.pid" 2>/dev/null || echo "?"; }

# --- The master ----------------------------------------------------------------------------------

say "Master: $work/master (https://127.0.0.1:$(https_port 0), LDAP port $(ldap_port 0))"
"$ca_server" sample-config --dir "$work/master" --port "$(https_port 0)" > "$work/master.yaml"
python3 - "$work/master.yaml" "$work/master" "$(https_port 0)" "$(http_port 0)" "$(ldap_port 0)" "$lb_http" <<'EOF'
import sys, yaml
path, inst_dir, https, http, ldap, lb_http = sys.argv[1:]
with open(path) as f:
    c = yaml.safe_load(f)
c["instance"].update(id="master", dir=inst_dir)
c["server"].update(address="127.0.0.1", port=int(https), http_port=int(http))
# The clones' directories replicate with this one over TCP.
c["directory"].update(port=int(ldap), listen_address="127.0.0.1")
c["crl"]["lease_seconds"] = 10
# CRL and OCSP URLs in certificates point at haproxy's plain-HTTP frontend.
c["ca"]["public_url"] = f"http://127.0.0.1:{lb_http}"
with open(path, "w") as f:
    f.write("# Written by deploy/local-cluster.sh from `ca-server sample-config`.\n")
    yaml.safe_dump(c, f, sort_keys=False)
EOF
"$ca_server" init --config "$work/master.yaml"
"$ca_server" run --config "$work/master.yaml" > "$work/master.log" 2>&1 &
started "master ca-server" $!
wait_for_info master "https://127.0.0.1:$(https_port 0)" "${pids[-1]}" "$work/master.log"
echo "master answers; its slapd is pid $(slapd_pid master)"

(umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$work/bundle.pass")
chmod 600 "$work/bundle.pass"

# --- The clones (one at a time: registrations go through the master in turn) ---------------------

for n in $(seq "$clones"); do
  # One bundle per clone: its join token registers that clone once (and only that clone).
  say "Clone bundle and join token for clone$n: $work/bundle$n.p12(.join-token)"
  "$ca_clone" prepare --config "$work/master.yaml" --pkcs12-file "$work/bundle$n.p12" \
    --pkcs12-password-file "$work/bundle.pass" --clone-id "clone$n" --join-token-lifetime 3600
  say "Clone $n: $work/clone$n (https://127.0.0.1:$(https_port "$n"), LDAPS port $(ldap_port "$n"))"
  python3 - "$work/clone$n.yaml" "clone$n" "$work/clone$n" "https://127.0.0.1:$(https_port 0)" \
    "$work/bundle$n.p12" "$work/bundle.pass" "$(https_port "$n")" "$(http_port "$n")" "$(ldap_port "$n")" \
    "$lb_http" <<'EOF'
import sys, yaml
path, inst_id, inst_dir, master_url, p12, p12_pass, https, http, ldap, lb_http = sys.argv[1:]
c = {
    "clone": {
        "master_url": master_url,
        "pkcs12_file": p12,
        "pkcs12_password_file": p12_pass,
        "sync_timeout_seconds": 120,
    },
    "instance": {"id": inst_id, "dir": inst_dir},
    "ca": {"public_url": f"http://127.0.0.1:{lb_http}"},
    "server": {"address": "127.0.0.1", "port": int(https), "http_port": int(http)},
    "directory": {"port": int(ldap), "listen_address": "127.0.0.1"},
    "crl": {"lease_seconds": 10},
}
with open(path, "w") as f:
    f.write("# Written by deploy/local-cluster.sh: input of `ca-clone spawn`.\n")
    yaml.safe_dump(c, f, sort_keys=False)
EOF
  "$ca_clone" spawn --config "$work/clone$n.yaml" --no-start
  "$ca_server" run --config "$work/clone$n/instance.yaml" > "$work/clone$n.log" 2>&1 &
  started "clone$n ca-server" $!
  wait_for_info "clone$n" "https://127.0.0.1:$(https_port "$n")" "${pids[-1]}" "$work/clone$n.log"
  echo "clone$n answers; its slapd is pid $(slapd_pid "clone$n")"
done

# --- haproxy -------------------------------------------------------------------------------------

say "haproxy: https://127.0.0.1:$lb_https and http://127.0.0.1:$lb_http (TCP mode, TLS passes through)"
{
  cat <<EOF
# Written by deploy/local-cluster.sh (see deploy/haproxy/haproxy.cfg for a commented example).
# TCP mode: TLS goes through to the CA instances, so their client-certificate checks still work.
global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option redispatch
    retries 2
frontend ca_https
    bind 127.0.0.1:$lb_https
    default_backend ca_https_instances
frontend ca_http
    bind 127.0.0.1:$lb_http
    default_backend ca_http_instances
backend ca_https_instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check check-ssl verify required ca-file $cacert inter 1s fall 2 rise 1
EOF
  for i in $(seq 0 "$clones"); do
    name=master; [ "$i" -gt 0 ] && name="clone$i"
    echo "    server $name 127.0.0.1:$(https_port "$i")"
  done
  cat <<EOF
backend ca_http_instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
EOF
  for i in $(seq 0 "$clones"); do
    name=master; [ "$i" -gt 0 ] && name="clone$i"
    echo "    server $name 127.0.0.1:$(http_port "$i")"
  done
} > "$work/haproxy.cfg"
haproxy -c -q -f "$work/haproxy.cfg"
# -db: stays in the foreground (no daemon), so its PID is the one we stop.
haproxy -db -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 &
started haproxy $!
wait_for_info haproxy "https://127.0.0.1:$lb_https" "${pids[-1]}" "$work/haproxy.log"

# --- One enrollment through haproxy --------------------------------------------------------------

say "Enrolling CN=demo.example.com through haproxy (profile caServerCert, a one-time enrollment code)"
enroll="$work/enroll"
mkdir -p "$enroll"
# As the CA agent (the master's init made its certificate): a code bound to the profile and name.
curl -sS --cacert "$cacert" --cert "$work/master/certs/agent.pem" --key "$work/master/private/agent.key" \
  -H 'Content-Type: application/json' -o "$enroll/code.json" \
  -d '{"profile_id":"caServerCert","dns_names":["demo.example.com"],"expires_in_seconds":600}' \
  "https://127.0.0.1:$lb_https/ca/rest/agent/enrollment-codes"
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
  -o "$enroll/response.json" -w '%{http_code}' "https://127.0.0.1:$lb_https/ca/rest/certrequests")"
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

# --- Status --------------------------------------------------------------------------------------

say "ca-clone status --config $work/master.yaml"
"$ca_clone" status --config "$work/master.yaml" || echo "(ca-clone status exited with $?: see above)"

say "Running"
echo "  https://127.0.0.1:$lb_https  (haproxy, REST API; CA certificate: $cacert)"
echo "  http://127.0.0.1:$lb_http   (haproxy, CRL and OCSP)"
echo "  processes (also in $work/pids):"
for i in "${!pids[@]}"; do echo "    ${roles[$i]}: ${pids[$i]}"; done
for i in $(seq 0 "$clones"); do
  name=master; [ "$i" -gt 0 ] && name="clone$i"
  echo "    $name slapd: $(slapd_pid "$name") (child of its ca-server)"
done
echo "  logs: $work/*.log, $work/*/slapd/slapd.log"
echo "Ctrl-C (or SIGTERM to pid $$) stops them all."

# Until a signal (the traps run) or until one of the processes exits on its own.
set +e
wait -n "${pids[@]}"
set -e
for i in "${!pids[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/${pids[$i]}/stat")" != Z ] ||
    echo "${roles[$i]} (pid ${pids[$i]}) exited on its own; see $work" >&2
done
exit 1
