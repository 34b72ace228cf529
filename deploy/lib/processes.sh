# shellcheck shell=bash
# Messages, and the processes the deploy scripts start: detached from the script, recorded by PID
# in a file, and signalled by that PID only, after checking that the PID still runs what we
# started (a PID can be reused by an unrelated process once ours has gone).
# Sourced by deploy/cluster.sh; the caller sets `set -euo pipefail`.

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "${script_name:-deploy}" "$*" >&2; }
# die MESSAGE [EXIT_CODE]: 1 by default (see the exit codes in cluster.sh --help).
die() {
  printf '%s: %s\n' "${script_name:-deploy}" "$1" >&2
  exit "${2:-1}"
}

abs_path() { python3 -c 'import os, sys; print(os.path.abspath(sys.argv[1]))' "$1"; }

# The state letter of /proc/PID/stat (R, S, D, T stopped, Z zombie, ...), or "" if there is none.
# The command name in field 2 may hold spaces and parentheses: cut after its closing one.
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
  stat="${stat##*) }"
  printf '%s' "${stat%% *}"
}

# pid_matches PID NEEDLE: true when PID runs (a zombie does not) and its command line contains
# NEEDLE, a path only our process has on its command line.
pid_matches() {
  local pid="$1" needle="$2" cmdline state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(proc_state "$pid")"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
  cmdline="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$needle"* ]]
}

read_pid_file() { [ -f "$1" ] && tr -dc '0-9' < "$1" || true; }

# wait_gone PID NEEDLE SECONDS: true once the process has gone (or become a zombie: processes
# started detached are not our children, so someone else reaps them).
wait_gone() {
  local pid="$1" needle="$2" tenths=$(($3 * 10)) i
  for ((i = 0; i < tenths; i++)); do
    pid_matches "$pid" "$needle" || return 0
    sleep 0.1
  done
  ! pid_matches "$pid" "$needle"
}

# stop_pid ROLE PID NEEDLE [GRACE_SECONDS]: SIGTERM, then SIGKILL once the grace period is over.
# A stopped (SIGSTOP) process gets SIGCONT as well, or it could not act on the SIGTERM.
stop_pid() {
  local role="$1" pid="$2" needle="$3" grace="${4:-30}"
  pid_matches "$pid" "$needle" || return 0
  note "stopping $role (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || return 0
  kill -CONT "$pid" 2>/dev/null || true
  wait_gone "$pid" "$needle" "$grace" && return 0
  warn "$role (pid $pid) did not stop within $grace s after SIGTERM: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" "$needle" 10 || warn "$role (pid $pid) is still there after SIGKILL"
}

# start_detached PID_FILE LOG_FILE NETNS COMMAND...: starts COMMAND in a session of its own
# (no terminal, not in the caller's process group: it outlives the script and a Ctrl-C in the
# script's terminal does not reach it), in network namespace NETNS unless that is empty, with
# stdout and stderr appended to LOG_FILE and no other file descriptor of the script (a pipe the
# script writes to must not stay open for as long as COMMAND runs). The shell that execs COMMAND
# writes its own PID (which COMMAND keeps) to PID_FILE; this waits for that file and prints the PID.
start_detached() {
  local pid_file="$1" log="$2" netns="$3" i pid
  shift 3
  local -a in_netns=()
  [ -n "$netns" ] && in_netns=(ip netns exec "$netns")
  rm -f "$pid_file"
  (
    for fd in /proc/"$BASHPID"/fd/*; do
      fd="${fd##*/}"
      [ "$fd" -le 2 ] 2>/dev/null || eval "exec $fd>&-" 2>/dev/null || true
    done
    # shellcheck disable=SC2016  # $$ and $@ belong to the inner shell
    exec "${in_netns[@]}" setsid sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pid_file" "$@"
  ) >> "$log" 2>&1 < /dev/null &
  for i in $(seq 100); do
    pid="$(read_pid_file "$pid_file")"
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    sleep 0.05
  done
  echo "no PID was written to $pid_file within 5 s; see $log" >&2
  return 1
}

# Free TCP ports on 127.0.0.1, all held open at once while they are chosen so that none is handed
# out twice (another program may still take one before we bind it: rare, and then start-up fails
# with a clear "cannot bind").
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}
