-- wrk script of bench/http.py: POSTs a note on a case with each request and counts the
-- answers that are not 2xx. Its one argument names a file: the mode ("shared": a case at
-- random; "distinct": each thread goes round its own slice of the cases), the number of
-- threads, the body, the Authorization header ("-" for none), then one case id a line.
-- At the end it prints one line, WRK_JSON {...}, that bench/http.py reads.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1]))
  mode = file:read("*l")
  local count = tonumber(file:read("*l"))
  body = file:read("*l")
  local authorization = file:read("*l")
  local cases = {}
  for line in file:lines() do
    table.insert(cases, line)
  end
  file:close()
  headers = { ["Content-Type"] = "application/json" }
  if authorization ~= "-" then
    headers["Authorization"] = authorization
  end
  mine = {}
  if mode == "shared" then
    mine = cases
  else
    local per = math.floor(#cases / count)
    for i = index * per + 1, (index + 1) * per do
      table.insert(mine, cases[i])
    end
  end
  math.randomseed(os.time() + index)
  turn = 0
  non2xx = 0
  statuses = {}
end

function request()
  local case
  if mode == "shared" then
    case = mine[math.random(#mine)]
  else
    case = mine[turn % #mine + 1]
    turn = turn + 1
  end
  return wrk.format("POST", "/cases/" .. case .. "/notes", headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  end
end

function done(summary, latency, requests)
  local failed, merged = 0, {}
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "statuses": {%s}, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"p50_us": %f, "p99_us": %f}\n',
    summary.requests, summary.duration, failed, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
