#!/usr/bin/env bash
# A replicated CA on this machine for failover drills and end-to-end tests: a master and clones,
# each instance (ca-server + its slapd) on a test host of its own (a network namespace on a
# bridge), haproxy in front. Unlike deploy/local-cluster.sh it does not stay in the foreground:
# `up` starts everything detached and returns; later commands act on single instances by the
# PIDs recorded in the work folder; `down` removes it all.
set -euo pipefail

script_name=cluster.sh
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=deploy/lib/processes.sh
source "$root/deploy/lib/processes.sh"
# shellcheck source=deploy/lib/netns.sh
source "$root/deploy/lib/netns.sh"
# shellcheck source=deploy/lib/haproxy.sh
source "$root/deploy/lib/haproxy.sh"

usage() {
  cat <<'EOF'
usage: deploy/cluster.sh COMMAND [ARGS] [--work DIR]

Commands:
  up N [--no-netns] [--test-profiles]
        Starts a master and N-1 clones (N from 1 to 20) and haproxy in front of them, detached
        from this script, and prints where everything is. Each instance runs in a network
        namespace of its own (<tag>-I, address <subnet>.(10+I), ports 8443 HTTPS, 8080 HTTP,
        3890 LDAPS), all joined by a bridge (<tag>-br, <subnet>.1) in the host namespace; without
        the rights for that (or with --no-netns) every instance runs on 127.0.0.1 with free
        ports. haproxy listens on 127.0.0.1 (two free ports): HTTPS (TLS passes through) and
        plain HTTP (CRL, OCSP), and checks GET /readyz on every instance each second.
        --test-profiles adds the open profile testServerCert (auth: none: anyone may enroll)
        for load tests; never for a CA that matters.
  status [--quick]
        Each instance: its ca-server and slapd (by recorded PID), its /readyz answer; haproxy's
        view of every server (stats socket); then `ca-clone status` on the master (not with
        --quick; it waits up to 30 s for a hung directory). Exit status 1 when anything is not
        running or not ready.
  kill I [--signal SIG] [--with-directory]
        Sends SIG (default KILL) to instance I's ca-server; with --with-directory to its slapd
        as well (first). A slapd whose ca-server is killed gets SIGTERM from the kernel and stops.
  freeze I | thaw I
        SIGSTOP / SIGCONT to instance I's slapd: a directory that hangs without closing
        connections.
  start I [--no-wait]
        Starts instance I's ca-server again (same namespace, same folder and configuration) and
        waits until it answers GET /ca/rest/info.
  add [--from I]
        Adds a clone to the running cluster: the next instance number (clone<N>), a network
        namespace of its own in netns mode (free ports on 127.0.0.1 otherwise), prepared with
        `ca-clone prepare` on the registrar and spawned against it with `ca-clone spawn`, then
        added to haproxy (reloaded: new connections go to the new process, the old one finishes
        its own) and waited for until haproxy sees it UP. The registrar is the master until a
        `ca-clone promote`; after a master loss, promote a clone first (docs/cloning.md), and
        `add` finds it (caRegistrar, read from a running instance's directory). --from I names
        the instance to register with instead.
  down [--keep-work]
        Stops every process the cluster runs (by PID: SIGTERM, SIGKILL after 30 s), removes its
        namespaces, veths and bridge, and deletes the work folder (--keep-work: keeps it, with
        the logs; the next `up` wipes it). Idempotent.

Instance I: 1 is the master, 2.. are the clones (clone1, clone2, ...).

Options:
  --work DIR   the cluster's folder (default: var/cluster-ns in the repository). Namespace and
               link names carry a tag made from its path, so clusters in two folders coexist.
  -h, --help   this help

Exit status: 0 done; 1 failed (details on stderr); 2 usage error; 3 not possible in the current
state (no cluster in the folder, already up, instance not running or already running).

Files in the work folder: cluster.json (everything a program needs: addresses, ports, files),
pids/*.pid, logs/*.log (ca-server, haproxy), <instance>/slapd/slapd.log, haproxy.cfg.
Environment: CA_BIN_DIR (default build/bin) holds ca-server and ca-clone.
EOF
}

# --- Arguments -----------------------------------------------------------------------------------

usage_error() {
  echo "$script_name: $1" >&2
  echo "usage: deploy/cluster.sh up N | status | kill I | freeze I | thaw I | start I | add | down   (--help)" >&2
  exit 2
}

command="" operand="" work="$root/var/cluster-ns" signal="KILL" with_directory=0 no_netns=0
test_profiles=0 no_wait=0 keep_work=0 signal_given=0 quick=0 from=
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --work) [ $# -ge 2 ] || usage_error "--work needs a folder"; work="$2"; shift 2 ;;
    --work=*) work="${1#--work=}"; shift ;;
    --signal) [ $# -ge 2 ] || usage_error "--signal needs a signal"; signal="$2"; signal_given=1; shift 2 ;;
    --signal=*) signal="${1#--signal=}"; signal_given=1; shift ;;
    --with-directory) with_directory=1; shift ;;
    --no-netns) no_netns=1; shift ;;
    --test-profiles) test_profiles=1; shift ;;
    --no-wait) no_wait=1; shift ;;
    --keep-work) keep_work=1; shift ;;
    --quick) quick=1; shift ;;
    --from) [ $# -ge 2 ] || usage_error "--from needs an instance number"; from="$2"; shift 2 ;;
    --from=*) from="${1#--from=}"; shift ;;
    -*) usage_error "unknown option: $1" ;;
    *)
      if [ -z "$command" ]; then command="$1"
      elif [ -z "$operand" ]; then operand="$1"
      else usage_error "unexpected argument: $1"
      fi
      shift
      ;;
  esac
done
[ -n "$command" ] || usage_error "no command"
case "$command" in
  up|kill|start|freeze|thaw) [ -n "$operand" ] || usage_error "$command needs a number" ;;
  status|down|add) [ -z "$operand" ] || usage_error "$command takes no number" ;;
  *) usage_error "unknown command: $command" ;;
esac
if [ "$command" != kill ] && { [ "$signal_given" = 1 ] || [ "$with_directory" = 1 ]; }; then
  usage_error "--signal and --with-directory go with kill"
fi
[ "$command" = up ] || [ "$no_netns$test_profiles" = 00 ] || usage_error "--no-netns and --test-profiles go with up"
[ "$command" = start ] || [ "$no_wait" = 0 ] || usage_error "--no-wait goes with start"
[ "$command" = down ] || [ "$keep_work" = 0 ] || usage_error "--keep-work goes with down"
[ "$command" = status ] || [ "$quick" = 0 ] || usage_error "--quick goes with status"
[ "$command" = add ] || [ -z "$from" ] || usage_error "--from goes with add"

command -v python3 >/dev/null 2>&1 || die "python3 is not installed (deploy/install-deps.sh)"
PATH="$PATH:/usr/sbin:/sbin"
work="$(abs_path "$work")"
bin_dir="${CA_BIN_DIR:-$root/build/bin}"
ca_server="$bin_dir/ca-server"
ca_clone="$bin_dir/ca-clone"

# --- State of a cluster (in its work folder) -----------------------------------------------------

marker="$work/.cluster-sh"
state_file="$work/cluster.env"
cacert="$work/master/certs/ca_signing.pem"
haproxy_cfg="$work/haproxy.cfg"
haproxy_socket="$work/haproxy.sock"
haproxy_pid_file="$work/pids/haproxy.pid"

# Arrays indexed by instance number (1 = master; element 0 unused).
mode="" tag="" prefix="" count=0 lb_https=0 lb_http=0
names=() addrs=() namespaces=() https_ports=() http_ports=() ldap_ports=() configs=() dirs=()

save_state() {
  local a
  {
    echo "# Written by deploy/cluster.sh; read by its later commands."
    printf 'mode=%q tag=%q prefix=%q count=%q lb_https=%q lb_http=%q\n' "$mode" "$tag" "$prefix" "$count" \
      "$lb_https" "$lb_http"
    for a in names addrs namespaces https_ports http_ports ldap_ports configs dirs; do
      local -n ref="$a"
      printf '%s=(' "$a"
      printf '%q ' "${ref[@]}"
      printf ')\n'
      unset -n ref
    done
  } > "$state_file.tmp"
  mv "$state_file.tmp" "$state_file"
}

# Loads the state of the cluster in $work; exits 3 when there is none.
load_state() {
  [ -f "$marker" ] && [ -f "$state_file" ] || die "no cluster in $work (deploy/cluster.sh up N --work $work)" 3
  # shellcheck disable=SC1090
  source "$state_file"
}

# instance_number TEXT: validates TEXT as an instance number of the loaded cluster.
instance_number() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$count" ] ||
    usage_error "no instance '$1': this cluster has instances 1 to $count (1 = master)"
  echo "$1"
}

server_pid_file() { echo "$work/pids/${names[$1]}.pid"; }
server_log() { echo "$work/logs/${names[$1]}.log"; }
slapd_pid_file() { echo "${dirs[$1]}/slapd/slapd.pid"; }
slapd_needle() { echo "${dirs[$1]}/slapd/slapd.d"; }
https_url() { echo "https://${addrs[$1]}:${https_ports[$1]}"; }

# The recorded PID of instance I's ca-server if it runs, else "".
server_pid() {
  local pid
  pid="$(read_pid_file "$(server_pid_file "$1")")"
  pid_matches "$pid" "${configs[$1]}" && echo "$pid" || true
}
slapd_pid() {
  local pid
  pid="$(read_pid_file "$(slapd_pid_file "$1")")"
  pid_matches "$pid" "$(slapd_needle "$1")" && echo "$pid" || true
}
haproxy_pid() {
  local pid
  pid="$(read_pid_file "$haproxy_pid_file")"
  pid_matches "$pid" "$haproxy_cfg" && echo "$pid" || true
}

# in_instance I COMMAND...: runs COMMAND on instance I's test host (its namespace, if any).
in_instance() {
  local ns="${namespaces[$1]}"
  shift
  if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

any_process_running() {
  local i
  [ -n "$(haproxy_pid)" ] && return 0
  for ((i = 1; i <= count; i++)); do
    [ -n "$(server_pid "$i")" ] || [ -n "$(slapd_pid "$i")" ] && return 0
  done
  return 1
}

# --- Starting an instance ------------------------------------------------------------------------

# wait_for_info I SECONDS: waits until instance I answers GET /ca/rest/info while its ca-server
# runs; on failure prints the end of its log and exits 1.
wait_for_info() {
  local i="$1" limit="$2" pid started=$SECONDS next=10 url
  url="$(https_url "$i")/ca/rest/info"
  while true; do
    if curl -sf --max-time 2 --cacert "$cacert" -o /dev/null "$url" 2>/dev/null; then
      note "${names[$i]} answers $url after $((SECONDS - started)) s"
      return 0
    fi
    pid="$(server_pid "$i")"
    if [ -z "$pid" ]; then
      echo "${names[$i]}'s ca-server exited during start-up; the end of $(server_log "$i"):" >&2
      tail -n 30 "$(server_log "$i")" >&2
      exit 1
    fi
    if [ $((SECONDS - started)) -ge "$limit" ]; then
      echo "${names[$i]} did not answer $url within $limit s; the end of $(server_log "$i"):" >&2
      tail -n 30 "$(server_log "$i")" >&2
      exit 1
    fi
    if [ $((SECONDS - started)) -ge "$next" ]; then
      note "still waiting for ${names[$i]} ($((SECONDS - started)) s)"
      next=$((next + 10))
    fi
    sleep 0.25
  done
}

# launch_server I: starts instance I's `ca-server run` detached on its test host; prints the PID.
launch_server() {
  local i="$1" pid
  pid="$(start_detached "$(server_pid_file "$i")" "$(server_log "$i")" "${namespaces[$i]}" \
    "$ca_server" run --config "${configs[$i]}")" || exit 1
  note "started ${names[$i]}'s ca-server (pid $pid, log $(server_log "$i"))"
}

# --- up ------------------------------------------------------------------------------------------

up_complete=0
# shellcheck disable=SC2317  # called by the EXIT trap of `up`
on_up_exit() {
  local status=$?
  trap - EXIT
  # The trap may run inside a function whose output goes to a log: back to the script's own.
  exec 1>&8 2>&9
  if [ "$up_complete" != 1 ]; then
    echo >&2
    echo "$script_name: up failed; stopping what it started (logs stay in $work)" >&2
    teardown >&2 || true
    echo "$script_name: \`deploy/cluster.sh down --work $work\` deletes the folder" >&2
    [ "$status" = 0 ] && status=1
  fi
  exit "$status"
}

write_master_config() {
  local file="$1" profiles=""
  if [ "$test_profiles" = 1 ]; then
    profiles="$work/test-profiles.yaml"
    cat > "$profiles" <<'EOF'
# Written by deploy/cluster.sh --test-profiles: added to the built-in profiles at the master's
# init; replicated to every clone. No authentication: for load tests on throw-away clusters.
testServerCert:
  name: Test server certificate (no authentication)
  description: Load tests and drills on a throw-away cluster only.
  auth: none
  validity_days: 30
  key: {rsa_min_bits: 2048, rsa_max_bits: 8192, ec_curves: [P-256, P-384], ed25519: true}
  subject: {require_cn: true, allowed_attributes: [C, ST, L, O, OU, CN]}
  san: {dns: true, ip: true, email: false, max: 10, copy_cn_to_dns: true}
  key_usage: [digitalSignature, keyEncipherment]
  extended_key_usage: [serverAuth]
EOF
  fi
  "$ca_server" sample-config --dir "${dirs[1]}" --port "${https_ports[1]}" > "$file"
  python3 - "$file" "${dirs[1]}" "${addrs[1]}" "${https_ports[1]}" "${http_ports[1]}" "${ldap_ports[1]}" \
    "$lb_http" "$profiles" "$(balancer_sources)" <<'EOF'
import sys, yaml
path, inst_dir, address, https, http, ldap, lb_http, profiles, balancers = sys.argv[1:]
with open(path) as f:
    c = yaml.safe_load(f)
c["instance"].update(id="master", dir=inst_dir)
c["server"].update(address=address, port=int(https), http_port=int(http))
# haproxy sends a PROXY v2 header naming the client (deploy/lib/haproxy.sh).
c["server"].update(proxy_protocol=True, http_proxy_protocol=True, proxy_protocol_trusted=balancers.split(","))
# The clones' directories replicate with this one over TCP (ldaps://).
c["directory"].update(port=int(ldap), listen_address=address)
c["crl"]["lease_seconds"] = 10
# CRL and OCSP URLs in certificates point at haproxy's plain-HTTP front.
c["ca"]["public_url"] = f"http://127.0.0.1:{lb_http}"
if profiles:
    c["profiles"] = {"file": profiles}
with open(path, "w") as f:
    f.write("# Written by deploy/cluster.sh from `ca-server sample-config`.\n")
    yaml.safe_dump(c, f, sort_keys=False)
EOF
}

# The addresses haproxy connects to the instances from (it runs in the host namespace): loopback,
# and with namespaces the bridge's address. The instances honour a PROXY header from these only.
balancer_sources() {
  if [ -n "$prefix" ]; then echo "127.0.0.1/32,$prefix.1/32"; else echo "127.0.0.1/32"; fi
}

# write_clone_spawn_config I FILE BUNDLE REGISTRAR: the input of `ca-clone spawn` for instance I,
# registering with instance REGISTRAR.
write_clone_spawn_config() {
  local i="$1" file="$2" bundle="$3" registrar="$4"
  python3 - "$file" "${names[$i]}" "${dirs[$i]}" "$(https_url "$registrar")" "$bundle" "$work/bundle.pass" \
    "${addrs[$i]}" "${https_ports[$i]}" "${http_ports[$i]}" "${ldap_ports[$i]}" "$lb_http" "$(balancer_sources)" <<'EOF'
import sys, yaml
path, inst_id, inst_dir, master_url, p12, p12_pass, address, https, http, ldap, lb_http, balancers = sys.argv[1:]
c = {
    "clone": {
        "master_url": master_url,
        "pkcs12_file": p12,
        "pkcs12_password_file": p12_pass,
        "sync_timeout_seconds": 120,
    },
    "instance": {"id": inst_id, "dir": inst_dir},
    "ca": {"public_url": f"http://127.0.0.1:{lb_http}"},
    "server": {"address": address, "port": int(https), "http_port": int(http),
               "proxy_protocol": True, "http_proxy_protocol": True,
               "proxy_protocol_trusted": balancers.split(",")},
    "directory": {"port": int(ldap), "listen_address": address},
    "crl": {"lease_seconds": 10},
}
with open(path, "w") as f:
    f.write("# Written by deploy/cluster.sh: input of `ca-clone spawn`.\n")
    yaml.safe_dump(c, f, sort_keys=False)
EOF
}

# Everything a program (tests/e2e) needs to know about the cluster, as JSON.
write_cluster_json() {
  local i args=()
  for ((i = 1; i <= count; i++)); do
    args+=("${names[$i]}|${addrs[$i]}|${namespaces[$i]}|${https_ports[$i]}|${http_ports[$i]}|${ldap_ports[$i]}|${configs[$i]}|${dirs[$i]}|$(server_pid_file "$i")|$(server_log "$i")")
  done
  python3 - "$work" "$mode" "$tag" "$prefix" "$lb_https" "$lb_http" "$cacert" "$haproxy_socket" "${args[@]}" \
    > "$work/cluster.json" <<'EOF'
import json, os, sys
work, mode, tag, prefix, lb_https, lb_http, cacert, socket, *instances = sys.argv[1:]
out = {
    "work": work, "mode": mode, "tag": tag,
    "subnet": f"{prefix}.0/24" if prefix else None,
    "bridge": {"name": f"{tag}-br", "address": f"{prefix}.1"} if prefix else None,
    "haproxy": {"https_url": f"https://127.0.0.1:{lb_https}", "http_url": f"http://127.0.0.1:{lb_http}",
                "stats_socket": socket, "config": os.path.join(work, "haproxy.cfg"),
                "log": os.path.join(work, "logs", "haproxy.log")},
    "ca_certificate": cacert,
    "instances": [],
}
for n, line in enumerate(instances, start=1):
    name, address, ns, https, http, ldap, config, inst_dir, pid_file, log = line.split("|")
    out["instances"].append({
        "index": n, "name": name, "role": "master" if n == 1 else "clone", "namespace": ns or None,
        "address": address, "https_port": int(https), "http_port": int(http), "ldap_port": int(ldap),
        "https_url": f"https://{address}:{https}", "http_url": f"http://{address}:{http}",
        "config": config, "dir": inst_dir, "pid_file": pid_file, "log": log,
        "slapd_pid_file": os.path.join(inst_dir, "slapd", "slapd.pid"),
        "slapd_log": os.path.join(inst_dir, "slapd", "slapd.log"),
        # The local directory, as ca-server itself reaches it (unix socket, works from any namespace).
        "ldapi_socket": os.path.join(inst_dir, "slapd", "ldapi"),
        "directory_password_file": os.path.join(inst_dir, "secrets", "directory.pass"),
        "agent_certificate": os.path.join(inst_dir, "certs", "agent.pem"),
        "agent_key": os.path.join(inst_dir, "private", "agent.key"),
        "admin_certificate": os.path.join(inst_dir, "certs", "admin.pem"),
        "admin_key": os.path.join(inst_dir, "private", "admin.key"),
    })
json.dump(out, sys.stdout, indent=2)
print()
EOF
}

# Waits until haproxy reports every server of both backends UP after a passed check (haproxy
# starts with every server UP, before any check).
wait_for_haproxy() {
  local started=$SECONDS next=10 up total
  while true; do
    if [ -z "$(haproxy_pid)" ]; then
      echo "haproxy exited; the end of $work/logs/haproxy.log:" >&2
      tail -n 30 "$work/logs/haproxy.log" >&2
      exit 1
    fi
    total=$((2 * count))
    up="$(haproxy_servers "$haproxy_socket" 2>/dev/null | awk '$3 == "UP" && $4 ~ /^L7OK/' | wc -l)" || up=0
    if [ "$up" -eq "$total" ]; then
      note "haproxy sees all $total servers UP after $((SECONDS - started)) s"
      return 0
    fi
    if [ $((SECONDS - started)) -ge 60 ]; then
      echo "haproxy sees $up of $total servers UP after 60 s:" >&2
      haproxy_servers "$haproxy_socket" >&2 || true
      exit 1
    fi
    if [ $((SECONDS - started)) -ge "$next" ]; then
      note "haproxy: $up of $total servers UP ($((SECONDS - started)) s)"
      next=$((next + 10))
    fi
    sleep 0.25
  done
}

print_summary() {
  local i pid spid
  echo
  if [ "$mode" = netns ]; then
    say "Cluster in $work: $count instance(s) in network namespaces, subnet $prefix.0/24, bridge $tag-br ($prefix.1)"
  else
    say "Cluster in $work: $count instance(s) on 127.0.0.1 (no network namespaces)"
  fi
  echo "  haproxy (pid $(haproxy_pid), log $work/logs/haproxy.log, stats socket $haproxy_socket)"
  echo "    https://127.0.0.1:$lb_https   REST API, TLS passes through to the instances"
  echo "    http://127.0.0.1:$lb_http    CRL (/crl/MasterCRL.crl) and OCSP (/ocsp)"
  echo "  CA certificate: $cacert"
  echo "  agent: ${dirs[1]}/certs/agent.pem, ${dirs[1]}/private/agent.key"
  echo
  printf '  %-2s %-8s %-10s %-15s %-6s %-5s %-6s %-10s %-9s %s\n' \
    I name namespace address https http ldaps ca-server slapd "log (slapd: <instance>/slapd/slapd.log)"
  for ((i = 1; i <= count; i++)); do
    pid="$(server_pid "$i")"
    spid="$(slapd_pid "$i")"
    printf '  %-2s %-8s %-10s %-15s %-6s %-5s %-6s %-10s %-9s %s\n' "$i" "${names[$i]}" "${namespaces[$i]:--}" \
      "${addrs[$i]}" "${https_ports[$i]}" "${http_ports[$i]}" "${ldap_ports[$i]}" "${pid:--}" "${spid:--}" \
      "$(server_log "$i")"
  done
  echo
  echo "  deploy/cluster.sh status --work $work     # how it is doing"
  echo "  deploy/cluster.sh down --work $work       # stop and remove everything"
}

# spawn_clone I REGISTRAR: prepares a bundle for instance I on instance REGISTRAR, spawns I against
# it in I's namespace and starts its ca-server; returns once it answers.
spawn_clone() {
  local i="$1" registrar="$2" bundle="$work/bundle-${names[$1]}.p12"
  # One bundle per clone: its join token registers that clone once (and only that clone).
  in_instance "$registrar" "$ca_clone" prepare --config "${configs[$registrar]}" --pkcs12-file "$bundle" \
    --pkcs12-password-file "$work/bundle.pass" --clone-id "${names[$i]}" --join-token-lifetime 3600 \
    > "$work/logs/${names[$i]}-prepare.log" 2>&1 || {
    cat "$work/logs/${names[$i]}-prepare.log" >&2
    die "ca-clone prepare for ${names[$i]} on ${names[$registrar]} failed"
  }
  note "bundle and join token (from ${names[$registrar]}): $bundle(.join-token)"
  write_clone_spawn_config "$i" "$work/${names[$i]}.yaml" "$bundle" "$registrar"
  note "ca-clone spawn --config $work/${names[$i]}.yaml --no-start (log $work/logs/${names[$i]}-spawn.log)"
  in_instance "$i" "$ca_clone" spawn --config "$work/${names[$i]}.yaml" --no-start \
    > "$work/logs/${names[$i]}-spawn.log" 2>&1 || {
    tail -n 40 "$work/logs/${names[$i]}-spawn.log" >&2
    die "ca-clone spawn of ${names[$i]} failed"
  }
  launch_server "$i"
  wait_for_info "$i" 120
}

# haproxy.cfg with every instance of the cluster as a server of both backends.
write_haproxy_config() {
  local i
  local -a servers=()
  for ((i = 1; i <= count; i++)); do
    servers+=("${names[$i]} ${addrs[$i]} ${https_ports[$i]} ${http_ports[$i]}")
  done
  haproxy_write_config "$haproxy_cfg" "$lb_https" "$lb_http" "$haproxy_socket" "$cacert" "${servers[@]}"
  haproxy -c -q -f "$haproxy_cfg" || die "haproxy refuses $haproxy_cfg"
}

cmd_up() {
  local n="$operand" i bundle pid
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 20 ] || usage_error "up takes a number of instances from 1 to 20"
  for f in "$ca_server" "$ca_clone"; do [ -x "$f" ] || die "$f is missing (build first: deploy/build.sh)"; done
  for c in openssl curl haproxy slapd sha256sum setsid; do
    command -v "$c" >/dev/null 2>&1 || die "$c is not installed (deploy/install-deps.sh)"
  done
  python3 -c 'import yaml' 2>/dev/null || die "python3 cannot import yaml (apt-get install python3-yaml)"

  tag="$(net_tag "$work")"
  if [ -e "$work" ]; then
    if [ -f "$marker" ]; then
      if [ -f "$state_file" ]; then
        # shellcheck disable=SC1090
        source "$state_file"
        any_process_running && die "the cluster in $work is up: deploy/cluster.sh down --work $work first" 3
      fi
      say "Removing what an earlier cluster left in $work"
      net_destroy "$tag"
      rm -rf "$work"
    elif [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
      die "$work exists and was not made by cluster.sh: choose another --work" 3
    fi
  fi
  [ -z "$(net_leftovers "$tag")" ] || net_destroy "$tag"
  # Unix socket paths (haproxy's stats socket, slapd's ldapi) must fit in 108 bytes.
  [ ${#work} -le 80 ] || die "the work folder's path is too long for unix sockets (at most 80 characters): $work" 2
  mkdir -p "$work/pids" "$work/logs"
  touch "$marker"
  exec 8>&1 9>&2
  trap on_up_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  count="$n"
  if [ "$no_netns" = 1 ]; then
    mode=loopback
  elif [ "$(id -u)" = 0 ] && net_available "$tag"; then
    mode=netns
  else
    mode=loopback
    note "network namespaces cannot be made here (root and ip(8) are needed): every instance on 127.0.0.1"
  fi
  read -r lb_https lb_http < <(free_ports 2)
  names=("") addrs=("") namespaces=("") https_ports=("") http_ports=("") ldap_ports=("") configs=("") dirs=("")
  local -a ports=()
  [ "$mode" = loopback ] && read -r -a ports < <(free_ports $((3 * count)))
  [ "$mode" = netns ] && prefix="$(net_pick_subnet "$tag")"
  for ((i = 1; i <= count; i++)); do
    if [ "$i" = 1 ]; then names+=(master); else names+=("clone$((i - 1))"); fi
    dirs+=("$work/${names[$i]}")
    if [ "$i" = 1 ]; then configs+=("$work/master.yaml"); else configs+=("${dirs[$i]}/instance.yaml"); fi
    if [ "$mode" = netns ]; then
      namespaces+=("$(net_namespace "$tag" "$i")")
      addrs+=("$(net_address "$prefix" "$i")")
      https_ports+=(8443) http_ports+=(8080) ldap_ports+=(3890)
    else
      namespaces+=("")
      addrs+=(127.0.0.1)
      https_ports+=("${ports[$((3 * (i - 1)))]}")
      http_ports+=("${ports[$((3 * (i - 1) + 1))]}")
      ldap_ports+=("${ports[$((3 * (i - 1) + 2))]}")
    fi
  done
  # Saved before anything starts: `down` finds whatever an interrupted `up` left.
  save_state

  if [ "$mode" = netns ]; then
    say "Test hosts: $count network namespace(s) on bridge $tag-br ($prefix.1/24)"
    net_create "$tag" "$prefix" "$count"
    for ((i = 1; i <= count; i++)); do note "${namespaces[$i]}: ${addrs[$i]}"; done
  fi

  say "Instance 1, master: ${dirs[1]} ($(https_url 1), LDAPS port ${ldap_ports[1]})"
  write_master_config "${configs[1]}"
  in_instance 1 "$ca_server" init --config "${configs[1]}" > "$work/logs/master-init.log" 2>&1 || {
    tail -n 30 "$work/logs/master-init.log" >&2
    die "ca-server init of the master failed (log: $work/logs/master-init.log)"
  }
  note "ca-server init done (log $work/logs/master-init.log)"
  launch_server 1
  wait_for_info 1 120

  (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' > "$work/bundle.pass")

  # One clone at a time: registrations go through the master in turn (docs/cloning.md).
  for ((i = 2; i <= count; i++)); do
    say "Instance $i, ${names[$i]}: ${dirs[$i]} ($(https_url "$i"), LDAPS port ${ldap_ports[$i]})"
    spawn_clone "$i" 1
  done

  say "haproxy: https://127.0.0.1:$lb_https and http://127.0.0.1:$lb_http (TCP mode, TLS passes through)"
  write_haproxy_config
  # -db: no daemon of its own: the PID recorded is haproxy's.
  pid="$(start_detached "$haproxy_pid_file" "$work/logs/haproxy.log" "" haproxy -db -f "$haproxy_cfg")" || exit 1
  note "started haproxy (pid $pid)"
  wait_for_haproxy

  write_cluster_json
  up_complete=1
  print_summary
}

# --- status --------------------------------------------------------------------------------------

# readyz_line I: "HTTP-code ready|not-ready [failing checks]" of instance I's /readyz.
readyz_line() {
  local i="$1" body code
  body="$(mktemp)"
  code="$(curl -s --max-time 3 --cacert "$cacert" -o "$body" -w '%{http_code}' "$(https_url "$i")/readyz" 2>/dev/null)" ||
    true
  python3 - "$code" "$body" <<'EOF'
import json, sys
code, path = sys.argv[1:]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    print(f"{code if code != '000' else 'no answer'}")
    sys.exit(0)
failing = [f"{c.get('name')}: {c.get('detail')}" for c in r.get("checks", []) if not c.get("ok")]
print(code, "ready" if r.get("ready") else "NOT READY", ("(" + "; ".join(failing) + ")") if failing else "")
EOF
  rm -f "$body"
}

cmd_status() {
  load_state
  local i pid spid state ready healthy=1 hpid
  if [ "$mode" = netns ]; then
    say "Cluster in $work: network namespaces, subnet $prefix.0/24, bridge $tag-br"
  else
    say "Cluster in $work: 127.0.0.1 (no network namespaces)"
  fi
  printf '  %-2s %-8s %-22s %-18s %-22s %s\n' I name https ca-server slapd /readyz
  for ((i = 1; i <= count; i++)); do
    pid="$(server_pid "$i")"
    spid="$(slapd_pid "$i")"
    state="not running"
    if [ -n "$spid" ]; then
      case "$(proc_state "$spid")" in
        T|t) state="$spid FROZEN (SIGSTOP)" ;;
        *) state="$spid running" ;;
      esac
    fi
    if [ -n "$pid" ]; then
      ready="$(readyz_line "$i")"
      pid="$pid running"
    else
      ready="-"
      pid="not running"
    fi
    [[ "$ready" == "200 ready"* ]] || healthy=0
    printf '  %-2s %-8s %-22s %-18s %-22s %s\n' "$i" "${names[$i]}" "${addrs[$i]}:${https_ports[$i]}" "$pid" \
      "$state" "$ready"
  done
  echo
  hpid="$(haproxy_pid)"
  if [ -z "$hpid" ]; then
    echo "  haproxy: not running"
    healthy=0
  else
    echo "  haproxy (pid $hpid): https://127.0.0.1:$lb_https, http://127.0.0.1:$lb_http"
    printf '    %-20s %-8s %-6s %-14s %-12s %s\n' backend server status "last check" "changed (s)" connections
    while read -r backend server status check changed total; do
      printf '    %-20s %-8s %-6s %-14s %-12s %s\n' "$backend" "$server" "$status" "$check" "$changed" "$total"
      [ "$status" = UP ] || healthy=0
    done < <(haproxy_servers "$haproxy_socket" 2>&1 || echo "? ? stats-socket-unreadable - - -")
  fi
  if [ "$quick" = 1 ]; then return $((1 - healthy)); fi
  echo
  say "ca-clone status --config ${configs[1]}"
  if [ -n "$(server_pid 1)" ]; then
    in_instance 1 timeout 30 "$ca_clone" status --config "${configs[1]}" || {
      echo "(ca-clone status exited with $?)"
      healthy=0
    }
  else
    echo "(not run: the master's ca-server is not running)"
    healthy=0
  fi
  [ "$healthy" = 1 ]
}

# --- kill, freeze, thaw, start -------------------------------------------------------------------

cmd_kill() {
  load_state
  local i pid spid
  i="$(instance_number "$operand")"
  signal="${signal#SIG}"
  kill -l "$signal" >/dev/null 2>&1 || usage_error "unknown signal: $signal"
  pid="$(server_pid "$i")"
  spid="$(slapd_pid "$i")"
  if [ -z "$pid" ] && { [ "$with_directory" = 0 ] || [ -z "$spid" ]; }; then
    die "instance $i (${names[$i]}) is not running" 3
  fi
  # The directory first: killed after its ca-server, it would get the kernel's SIGTERM first.
  if [ "$with_directory" = 1 ]; then
    if [ -n "$spid" ]; then
      kill -s "$signal" "$spid"
      note "SIG$signal sent to ${names[$i]}'s slapd (pid $spid)"
    else
      note "${names[$i]}'s slapd is not running"
    fi
  fi
  if [ -n "$pid" ]; then
    kill -s "$signal" "$pid"
    note "SIG$signal sent to ${names[$i]}'s ca-server (pid $pid)"
    if [ "$signal" = KILL ] || [ "$signal" = 9 ]; then
      wait_gone "$pid" "${configs[$i]}" 5 || die "${names[$i]}'s ca-server (pid $pid) is still there"
    fi
  else
    note "${names[$i]}'s ca-server is not running"
  fi
}

cmd_freeze_thaw() {
  load_state
  local i spid sig
  i="$(instance_number "$operand")"
  spid="$(slapd_pid "$i")"
  [ -n "$spid" ] || die "instance $i (${names[$i]}): its slapd is not running" 3
  if [ "$command" = freeze ]; then sig=STOP; else sig=CONT; fi
  kill -s "$sig" "$spid"
  note "SIG$sig sent to ${names[$i]}'s slapd (pid $spid)"
}

cmd_start() {
  load_state
  local i pid
  i="$(instance_number "$operand")"
  pid="$(server_pid "$i")"
  [ -z "$pid" ] || die "instance $i (${names[$i]}) is running (pid $pid)" 3
  [ "$mode" = loopback ] || [ -e "/run/netns/${namespaces[$i]}" ] ||
    die "namespace ${namespaces[$i]} is gone: the cluster was partly removed; down, then up" 3
  say "Starting instance $i (${names[$i]}) with ${configs[$i]}"
  launch_server "$i"
  [ "$no_wait" = 1 ] || wait_for_info "$i" 120
}

# --- add -----------------------------------------------------------------------------------------

# registrar_name I: the instance named registrar (caRegistrar, replicated) in instance I's
# directory, read as its ca-server reads it (unix socket); empty when none is named (the master
# registers). Fails when the directory cannot be read within 10 s.
registrar_name() {
  local i="$1" suffix bind_dn password_file socket out
  { IFS= read -r suffix && IFS= read -r bind_dn && IFS= read -r password_file && IFS= read -r socket; } < <(
    python3 - "${configs[$i]}" "${dirs[$i]}" <<'EOF'
import os, sys, urllib.parse, yaml
config, inst_dir = sys.argv[1:]
d = (yaml.safe_load(open(config)) or {}).get("directory") or {}
suffix = d.get("suffix") or "o=pki-ca"
password = d.get("bind_password_file") or os.path.join(inst_dir, "secrets", "directory.pass")
print(suffix)
print(d.get("bind_dn") or f"cn=Directory Manager,{suffix}")
print(password if os.path.isabs(password) else os.path.join(os.path.dirname(config), password))
print(urllib.parse.quote(os.path.join(inst_dir, "slapd", "ldapi"), safe=""))
EOF
  )
  out="$(timeout 10 ldapsearch -LLL -o ldif-wrap=no -o nettimeout=5 -x -H "ldapi://$socket" -D "$bind_dn" \
    -y "$password_file" -b "ou=replica,$suffix" -s base '(objectClass=*)' caRegistrar 2>&1)" || return 1
  sed -n 's/^caRegistrar: //p' <<< "$out"
}

# Waits until haproxy reports instance NAME's server UP in both backends after a passed check.
wait_for_haproxy_server() {
  local name="$1" started=$SECONDS up
  while true; do
    up="$(haproxy_servers "$haproxy_socket" 2>/dev/null | awk -v n="$name" '$2 == n && $3 == "UP" && $4 ~ /^L7OK/' |
      wc -l)" || up=0
    if [ "$up" -eq 2 ]; then
      note "haproxy sees $name UP after $((SECONDS - started)) s"
      return 0
    fi
    if [ $((SECONDS - started)) -ge 60 ]; then
      echo "haproxy does not see $name UP in both backends after 60 s:" >&2
      haproxy_servers "$haproxy_socket" >&2 || true
      exit 1
    fi
    sleep 0.25
  done
}

cmd_add() {
  load_state
  local i k f registrar named="" old pid
  for f in "$ca_server" "$ca_clone"; do [ -x "$f" ] || die "$f is missing (build first: deploy/build.sh)"; done
  command -v ldapsearch >/dev/null 2>&1 || die "ldapsearch is not installed (deploy/install-deps.sh)"
  old="$(haproxy_pid)"
  [ -n "$old" ] || die "haproxy is not running: is the cluster up? (deploy/cluster.sh status --work $work)" 3
  if [ -n "$from" ]; then
    registrar="$(instance_number "$from")"
  else
    # The registrar as the directories know it: any running instance's will do (it replicates).
    registrar=1
    for ((k = 1; k <= count; k++)); do
      [ -n "$(server_pid "$k")" ] || continue
      if named="$(registrar_name "$k")"; then break; fi
      named=""
    done
    if [ -n "$named" ]; then
      registrar=""
      for ((k = 1; k <= count; k++)); do [ "${names[$k]}" = "$named" ] && registrar="$k"; done
      [ -n "$registrar" ] || die "the registrar '$named' is not an instance of this cluster: say --from I" 3
    fi
  fi
  [ -n "$(server_pid "$registrar")" ] ||
    die "instance $registrar (${names[$registrar]}) registers clones, but its ca-server is not running; after losing the master for good, promote a clone first (ca-clone promote, docs/cloning.md), or start it again" 3
  [ "$mode" = loopback ] || [ -e "/run/netns/${namespaces[$registrar]}" ] ||
    die "namespace ${namespaces[$registrar]} is gone: the cluster was partly removed; down, then up" 3

  i=$((count + 1))
  names+=("clone$((i - 1))")
  dirs+=("$work/${names[$i]}")
  configs+=("${dirs[$i]}/instance.yaml")
  if [ "$mode" = netns ]; then
    namespaces+=("$(net_namespace "$tag" "$i")")
    addrs+=("$(net_address "$prefix" "$i")")
    https_ports+=(8443) http_ports+=(8080) ldap_ports+=(3890)
  else
    local -a ports=()
    read -r -a ports < <(free_ports 3)
    namespaces+=("") addrs+=(127.0.0.1)
    https_ports+=("${ports[0]}") http_ports+=("${ports[1]}") ldap_ports+=("${ports[2]}")
  fi
  count="$i"
  # Saved before anything starts: `down` finds whatever a failed add left.
  save_state
  if [ "$mode" = netns ]; then
    net_add_host "$tag" "$prefix" "$i"
    note "${namespaces[$i]}: ${addrs[$i]}"
  fi
  say "Instance $i, ${names[$i]}: ${dirs[$i]} ($(https_url "$i")), registered with ${names[$registrar]}"
  spawn_clone "$i" "$registrar"
  write_cluster_json

  say "haproxy: adding ${names[$i]} (reload)"
  write_haproxy_config
  # The new process takes the listeners over; -sf tells the old one to stop listening and to end
  # once its connections have.
  pid="$(start_detached "$haproxy_pid_file" "$work/logs/haproxy.log" "" haproxy -db -f "$haproxy_cfg" -sf "$old")" ||
    exit 1
  note "started haproxy (pid $pid; the old one, pid $old, finishes its connections)"
  wait_for_haproxy_server "${names[$i]}"
  # A connection kept open for long would keep the old process (and `down` knows only the new one).
  wait_gone "$old" "$haproxy_cfg" 10 || stop_pid "the old haproxy" "$old" "$haproxy_cfg" 5
  say "${names[$i]} added: instance $i of $count"
}

# --- down ----------------------------------------------------------------------------------------

# Stops every process of the cluster (haproxy, the clones, the master, leftover slapds) and removes
# its network. Expects the state loaded (or nothing to stop).
teardown() {
  local i pid left
  # A frozen directory cannot act on its ca-server's SIGTERM: thaw it first.
  for ((i = 1; i <= count; i++)); do
    pid="$(slapd_pid "$i")"
    [ -z "$pid" ] || kill -CONT "$pid" 2>/dev/null || true
  done
  stop_pid haproxy "$(read_pid_file "$haproxy_pid_file")" "$haproxy_cfg"
  # The clones first, the master last: it releases the CRL lease and is the replication hub.
  for ((i = count; i >= 1; i--)); do
    stop_pid "${names[$i]}'s ca-server" "$(read_pid_file "$(server_pid_file "$i")")" "${configs[$i]}"
  done
  # A slapd left without its ca-server (killed, or `up` interrupted during init or spawn).
  for ((i = 1; i <= count; i++)); do
    stop_pid "${names[$i]}'s slapd" "$(read_pid_file "$(slapd_pid_file "$i")")" "$(slapd_needle "$i")"
  done
  if [ -n "$tag" ]; then
    for ((i = 1; i <= count; i++)); do
      [ -n "${namespaces[$i]}" ] && [ -e "/run/netns/${namespaces[$i]}" ] || continue
      left="$(ip netns pids "${namespaces[$i]}" 2>/dev/null | tr '\n' ' ')"
      [ -z "$left" ] || warn "processes not started by cluster.sh still run in ${namespaces[$i]}: $left(not stopped)"
    done
    net_destroy "$tag"
    left="$(net_leftovers "$tag")"
    [ -z "$left" ] || warn "still present: $left"
  fi
}

cmd_down() {
  tag="$(net_tag "$work")"
  if [ ! -e "$work" ]; then
    if [ -n "$(net_leftovers "$tag")" ]; then
      say "Removing the network left by a cluster in $work"
      net_destroy "$tag"
    else
      note "no cluster in $work: nothing to do"
    fi
    return 0
  fi
  [ -f "$marker" ] || die "$work was not made by cluster.sh: not touching it" 3
  say "Stopping the cluster in $work"
  if [ -f "$state_file" ]; then
    # shellcheck disable=SC1090
    source "$state_file"
  fi
  teardown
  if [ "$keep_work" = 1 ]; then
    rm -f "$state_file" "$work/cluster.json" "$haproxy_socket"
    note "kept $work (logs in $work/logs)"
  else
    rm -rf "$work"
    note "removed $work"
  fi
}

case "$command" in
  up) cmd_up ;;
  status) cmd_status ;;
  kill) cmd_kill ;;
  freeze|thaw) cmd_freeze_thaw ;;
  start) cmd_start ;;
  add) cmd_add ;;
  down) cmd_down ;;
esac
