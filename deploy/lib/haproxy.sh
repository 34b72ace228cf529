# shellcheck shell=bash
# haproxy in front of the instances of a cluster, in the style of deploy/haproxy/haproxy.cfg: TCP
# mode (TLS passes through to the instances), round robin, health checks on GET /readyz (over
# HTTPS for the REST port, plain HTTP for the CRL/OCSP port), and a stats socket for `status`.
# Sourced by deploy/cluster.sh.

# haproxy_write_config FILE HTTPS_PORT HTTP_PORT STATS_SOCKET CA_FILE SERVER...
# where each SERVER is "name address https_port http_port".
haproxy_write_config() {
  local file="$1" https="$2" http="$3" socket="$4" ca_file="$5" name address s_https s_http entry
  shift 5
  {
    cat <<EOF
# Written by deploy/cluster.sh (deploy/haproxy/haproxy.cfg is the commented example).
# TCP mode: TLS goes through to the CA instances, so their client-certificate checks still work.
global
    maxconn 512
    # Server state changes (and failed connections) go to stderr, the log file of this haproxy.
    log stderr format iso local0 info
    stats socket $socket mode 600 level admin
defaults
    mode tcp
    log global
    option dontlog-normal
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A connection refused by a dead instance is retried on another one.
    option redispatch
    retries 2
frontend ca_https
    bind 127.0.0.1:$https
    default_backend ca_https_instances
frontend ca_http
    bind 127.0.0.1:$http
    default_backend ca_http_instances
backend ca_https_instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # Checked every second; two failures take an instance out, one success puts it back.
    # send-proxy-v2: each connection starts with a PROXY v2 header naming the client, so the
    # instances' per-client limits, access logs and audit see the client, not haproxy
    # (server.proxy_protocol and proxy_protocol_trusted on every instance, deploy/cluster.sh).
    default-server check check-ssl verify required ca-file $ca_file inter 500ms fall 2 rise 2 send-proxy-v2 check-send-proxy
EOF
    for entry in "$@"; do
      read -r name address s_https s_http <<< "$entry"
      echo "    server $name $address:$s_https"
    done
    cat <<EOF
backend ca_http_instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 500ms fall 2 rise 2 send-proxy-v2 check-send-proxy
EOF
    for entry in "$@"; do
      read -r name address s_https s_http <<< "$entry"
      echo "    server $name $address:$s_http"
    done
  } > "$file"
}

# haproxy_command SOCKET COMMAND: COMMAND's answer on the stats socket (5 s bound).
haproxy_command() {
  python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.sendall(sys.argv[2].encode() + b"\n")
    out = b""
    while chunk := s.recv(65536):
        out += chunk
except OSError as e:
    sys.exit(f"haproxy stats socket {sys.argv[1]}: {e}")
sys.stdout.write(out.decode(errors="replace"))
EOF
}

# haproxy_servers SOCKET: one line per server of both backends: "backend server status check".
haproxy_servers() {
  haproxy_command "$1" "show stat" | python3 -c '
import csv, sys
rows = list(csv.reader(line for line in sys.stdin if line.strip()))
if not rows:
    sys.exit("empty answer to show stat")
head = [h.lstrip("# ") for h in rows[0]]
for r in rows[1:]:
    row = dict(zip(head, r))
    if row.get("svname") in ("FRONTEND", "BACKEND"):
        continue
    # "* L7OK": a check is running right now.
    check = (row.get("check_status", "") or "-").lstrip("* ").replace(" ", "_")
    if row.get("check_code"):
        check += "/" + row["check_code"]
    print(row["pxname"], row["svname"], row.get("status", "?"), check, row.get("lastchg", "") or "-",
          row.get("stot", "0") or "0")
'
}
