# shellcheck shell=bash
# Shared by the benchmark scripts (sourced): ports, readiness, and stopping what a script started,
# by PID only. The sourcing script sets `bench_name` (for messages) and defines `die`.

# Stops one server we started: SIGTERM lets ca-server stop its embedded slapd and flush; SIGKILL
# only if it hangs, so a stuck server cannot keep the script (and the ports) alive.
stop_pid() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "${bench_name:-bench}: pid $pid ignored SIGTERM for 20 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ca-server ties its slapd to itself (PR_SET_PDEATHSIG), but if ca-server had to be SIGKILLed
# the slapd it started could linger: stop it by the PID it recorded in SLAPD_DIR/slapd.pid, after
# checking that this PID is a slapd of that folder.
stop_orphan_slapd() {
  local dir="$1" pid
  [ -f "$dir/slapd.pid" ] || return 0
  pid="$(cat "$dir/slapd.pid" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "slapd" ] && grep -qF "$dir" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
}

# The kernel picks a free port; a bound-then-closed port is free for the server a moment later.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls CHECK-COMMAND until it succeeds; fails early if PID died (its LOG explains why).
wait_ready() {
  local pid="$1" log="$2" what="$3"; shift 3
  for _ in $(seq 150); do
    if "$@"; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$log" >&2 || true
      die "$what exited during start-up (log above)"
    fi
    sleep 0.2
  done
  tail -n 30 "$log" >&2 || true
  die "$what was not ready after 30 s (log above)"
}

# --- process and folder lifetime ---------------------------------------------------------------
# The sourcing script sets `work` (its temporary folder, once made) and `keep` (1: keep it).

work=""
bench_pids=()

# Starts "$@" in the background with output appended to LOG and records its PID (also in
# last_pid) so bench_cleanup stops it.
bench_start() {
  local log="$1"; shift
  "$@" >>"$log" 2>&1 &
  bench_pids+=("$!")
  last_pid=$!
}

# After stop_pid: cleanup need not stop PID again.
bench_forget() {
  local pid="$1" p kept=()
  for p in "${bench_pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  bench_pids=("${kept[@]}")
}

# The EXIT trap: stops every server started with bench_start (by PID), the slapd a killed
# ca-server may have left in $work/ca/slapd, and removes $work unless keep=1.
bench_cleanup() {
  local status=$? pid
  trap - EXIT INT TERM
  for pid in "${bench_pids[@]}"; do stop_pid "$pid"; done
  if [ -n "$work" ] && [ -d "$work" ]; then
    stop_orphan_slapd "$work/ca/slapd"
    if [ "${keep:-0}" -eq 1 ]; then
      echo "${bench_name:-bench}: kept $work" >&2
    else
      rm -rf "$work"
    fi
  fi
  exit "$status"
}

bench_traps() {
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
