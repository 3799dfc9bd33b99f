-- wrk script: POST /v1/keys/verify where 90% of requests use the first 10% of the keys (hot)
-- and the rest any of the others (cold).
-- Usage: wrk -s hotcold.lua URL -- KEYS_FILE
local keys = {}

function init(args)
  for line in io.lines(args[1]) do
    keys[#keys + 1] = line
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local hot = math.max(1, math.floor(#keys / 10))
  local key
  if math.random() < 0.9 then
    key = keys[math.random(hot)]
  else
    key = keys[math.random(hot + 1, #keys)]
  end
  local body = '{"key":"' .. key .. '","api":"bench","scopes":["bench:read"],"ip":"203.0.113.7"}'
  return wrk.format("POST", "/v1/keys/verify", { ["Content-Type"] = "application/json" }, body)
end
