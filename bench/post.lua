-- wrk script: POST the requests of a file in turn; print a JSON summary at the end.
-- The file (BENCH_WRK_FILE) has one request per line: "<path>\t<body>".
local requests = {}
local count = 0
local index = 0

function init(args)
  local f = assert(io.open(os.getenv("BENCH_WRK_FILE"), "rb"))
  for line in f:lines() do
    local tab = string.find(line, "\t", 1, true)
    local path = string.sub(line, 1, tab - 1)
    local body = string.sub(line, tab + 1)
    count = count + 1
    requests[count] = wrk.format("POST", path, {["Content-Type"] = "application/json"}, body)
  end
  f:close()
end

function request()
  index = index + 1
  if index > count then index = 1 end
  return requests[index]
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
