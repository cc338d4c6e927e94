-- wrk script of bench/webhook.py: sends pre-signed deliveries, each once, and counts the
-- answers that are not 2xx and the records they say were ingested. Its one argument names a
-- file: the number of threads, then one delivery a line, tab-separated: path, webhook-id,
-- webhook-timestamp, webhook-signature, body. Each thread goes through its own slice of the
-- lines, so no webhook-id is sent twice; a thread that runs out starts its slice again and
-- counts those requests as "wrapped" (replays: bench/webhook.py refuses such a figure).
-- At the end it prints one line, WRK_JSON {...}, that bench/webhook.py reads.

local threads = {}

function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in string.gmatch(line, "[^\t]+") do
    table.insert(fields, field)
  end
  return fields
end

function init(args)
  local file = assert(io.open(args[1]))
  local count = tonumber(file:read("*l"))
  local lines = {}
  for line in file:lines() do
    table.insert(lines, line)
  end
  file:close()
  local per = math.floor(#lines / count)
  mine = {}
  for i = index * per + 1, (index + 1) * per do
    local f = split(lines[i])
    local headers = {
      ["Content-Type"] = "application/json",
      ["webhook-id"] = f[2],
      ["webhook-timestamp"] = f[3],
      ["webhook-signature"] = f[4],
    }
    table.insert(mine, wrk.format("POST", f[1], headers, f[5]))
  end
  turn = 0
  wrapped = 0
  non2xx = 0
  ingested = 0
  statuses = {}
end

function request()
  turn = turn + 1
  if turn > #mine then
    wrapped = wrapped + 1
  end
  return mine[(turn - 1) % #mine + 1]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
  else
    for _ in string.gmatch(body, '"verdict":"ingested"') do
      ingested = ingested + 1
    end
  end
end

function done(summary, latency, requests)
  local failed, records, replays, merged = 0, 0, 0, {}
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("non2xx")
    records = records + thread:get("ingested")
    replays = replays + thread:get("wrapped")
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
      .. '"ingested": %d, "wrapped": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
      .. '"p50_us": %f, "p99_us": %f}\n',
    summary.requests, summary.duration, failed, table.concat(parts, ", "),
    records, replays, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
