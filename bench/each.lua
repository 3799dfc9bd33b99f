-- wrk script: verifies every key of a file exactly once (the lines split between wrk's threads),
-- then stops; prints how many answers were VALID and how many were not.
-- Usage: wrk -t2 -s each.lua URL -- KEYS_FILE THREADS [FIRST LAST]
-- With FIRST and LAST, only the lines FIRST..LAST of the file (counted from 1) are used.
-- A thread stops once every one of its keys was answered; until then a connection with no key
-- left asks GET /healthz, whose answer is not counted. wrk calls request() once per thread
-- before any connection and drops that request: the first call returns GET /healthz too.
local counter = 1
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  keys = {}
  local n = tonumber(args[2])
  local first = tonumber(args[3] or 1)
  local last = tonumber(args[4] or math.huge)
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no + 1 > last then
      break
    end
    if line_no + 1 >= first and line_no % n == id - 1 then
      keys[#keys + 1] = line
    end
    line_no = line_no + 1
  end
  next_key = 1
  valid = 0
  invalid = 0
  filler = wrk.format("GET", "/healthz")
  primed = false
end

function request()
  if not primed or next_key > #keys then
    primed = true
    return filler
  end
  local key = keys[next_key]
  next_key = next_key + 1
  local body = '{"key":"' .. key .. '","api":"bench","scopes":["bench:read"]}'
  return wrk.format("POST", "/v1/keys/verify", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"valid":true', 1, true) then
    valid = valid + 1
  elseif string.find(body, '"code"', 1, true) then
    invalid = invalid + 1
  end
  if valid + invalid >= #keys then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local v, i = 0, 0
  for _, thread in ipairs(threads) do
    v = v + thread:get("valid")
    i = i + thread:get("invalid")
  end
  io.write(string.format("each: %d valid, %d not valid\n", v, i))
end
