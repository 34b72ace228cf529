# shellcheck shell=bash
# Shared by the benchmark scripts (sourced): ports, readiness, stopping what a script started (by
# PID only), and wrk loads. The sourcing script sets `bench_name` (for messages), `connections`,
# `duration` and `lua_script` (for run_wrk), defines `die`, and reads the r_* results.
# shellcheck disable=SC2034,SC2154

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

# --- wrk loads (rotate_body.lua) ------------------------------------------------------------------

# Value of option $1 given as $2 ($3 = arguments left): a positive integer, or a usage error.
count_arg() {
  if [ "$3" -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
    echo "${bench_name:-bench}: $1 needs a positive integer" >&2
    exit 2
  fi
  printf '%s' "$2"
}

# The number after " KEY=" in the BENCH line (rotate_body.lua's done()); the variable
# is line, set by run_wrk.
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $line"; }

# Runs wrk (2 threads, $connections connections, $duration seconds, $lua_script) against URL with
# BODIES; writes the full output to OUT and sets the globals
# r_secs r_ok r_non2xx r_p50_ms r_p99_ms r_socket_errors r_wrk_non2xx r_sample.
# --timeout 10s: wrk's default (2 s) would drop slow answers from the latency histogram.
run_wrk() {
  local url="$1" bodies="$2" out="$3"
  line=""
  wrk -t2 -c"$connections" -d"${duration}s" --timeout 10s --latency -s "$lua_script" "$url" -- "$bodies" >"$out" 2>&1 \
    || { cat "$out" >&2; die "wrk failed"; }
  line="$(grep '^BENCH ' "$out" | tail -n 1 || true)"
  [ -n "$line" ] || { cat "$out" >&2; die "wrk printed no BENCH line"; }
  r_ok="$(field ok_2xx)"
  r_non2xx="$(field non_2xx)"
  r_secs="$(awk -v us="$(field duration_us)" 'BEGIN { printf "%.3f", us / 1e6 }')"
  r_p50_ms="$(awk -v us="$(field p50_us)" 'BEGIN { printf "%.2f", us / 1e3 }')"
  r_p99_ms="$(awk -v us="$(field p99_us)" 'BEGIN { printf "%.2f", us / 1e3 }')"
  r_socket_errors=$(( $(field connect_errors) + $(field read_errors) + $(field write_errors) + $(field timeouts) ))
  # wrk's own figure (status > 399 only), shown as a cross-check of the Lua count.
  r_wrk_non2xx="$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$out")"
  r_wrk_non2xx="${r_wrk_non2xx:-0}"
  r_sample="$(sed -n 's/^BENCH_SAMPLE //p' "$out" | head -n 1)"
}

# Requests per second, one decimal.
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }'; }
