-- wrk script for bench/issuance.sh: POSTs pre-built JSON bodies round-robin.
--
--   wrk -t2 -c8 -d15s --latency -s bench/rotate_body.lua URL -- BODIES_FILE
--
-- BODIES_FILE holds one complete JSON request body per line. Every request is pre-formatted in
-- init() so the load generator spends its time on I/O, not on string building. Each wrk thread
-- starts at a different offset so two threads do not send the same CSR at the same moment.
--
-- response() counts 2xx answers per thread (wrk's own "Non-2xx or 3xx responses" counts only
-- status > 399 and only prints when non-zero); done() sums them and prints one machine-readable
-- line, "BENCH key=value ...", that issuance.sh parses instead of wrk's human summary, and
-- "BENCH_SAMPLE <status> <body start>" for the first non-2xx answer, if any, to say why.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local requests = {}
local next_index = 1
ok_2xx = 0
other = 0
first_other = ""  -- status and start of the body of this thread's first non-2xx answer

function init(args)
  local path = args[1]
  if path == nil then
    io.stderr:write("rotate_body.lua: pass the bodies file after --\n")
    os.exit(2)
  end
  local file = io.open(path, "r")
  if file == nil then
    io.stderr:write("rotate_body.lua: cannot open " .. path .. "\n")
    os.exit(2)
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in file:lines() do
    if #line > 0 then
      table.insert(requests, wrk.format("POST", nil, headers, line))
    end
  end
  file:close()
  if #requests == 0 then
    io.stderr:write("rotate_body.lua: no bodies in " .. path .. "\n")
    os.exit(2)
  end
  -- Spread the threads' starting points over the bodies (golden-ratio stride: the thread count
  -- is not known inside a thread, and any count gets well-separated offsets).
  local index = tonumber(thread_index) or 0
  next_index = (math.floor(index * #requests * 0.618) % #requests) + 1
end

function request()
  local r = requests[next_index]
  next_index = next_index % #requests + 1
  return r
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    ok_2xx = ok_2xx + 1
  else
    other = other + 1
    if other == 1 then
      first_other = status .. " " .. string.gsub(string.sub(body or "", 1, 160), "%s+", " ")
    end
  end
end

function done(summary, latency, requests_stats)
  local ok, non, sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    ok = ok + (tonumber(thread:get("ok_2xx")) or 0)
    non = non + (tonumber(thread:get("other")) or 0)
    if sample == "" then sample = thread:get("first_other") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d ok_2xx=%d non_2xx=%d p50_us=%d p99_us=%d " ..
    "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, ok, non,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout))
  if sample ~= "" then
    io.write("BENCH_SAMPLE " .. sample .. "\n")
  end
end
