-- wrk script: POST /v1/keys/verify (or the baseline) with a key picked at random from a file.
-- Usage: wrk -s verify.lua URL -- KEYS_FILE PATH
local keys = {}
local path = "/v1/keys/verify"

function init(args)
  local file = args[1]
  path = args[2] or path
  for line in io.lines(file) do
    keys[#keys + 1] = line
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local key = keys[math.random(#keys)]
  local body = '{"key":"' .. key .. '","api":"bench","scopes":["bench:read"],"ip":"203.0.113.7"}'
  return wrk.format("POST", path, { ["Content-Type"] = "application/json" }, body)
end
