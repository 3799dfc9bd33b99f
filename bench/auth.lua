-- wrk script: GET /v1/auth with a random key as the bearer token.
-- Usage: wrk -s auth.lua URL -- KEYS_FILE
local keys = {}

function init(args)
  for line in io.lines(args[1]) do
    keys[#keys + 1] = line
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function request()
  local key = keys[math.random(#keys)]
  return wrk.format("GET", "/v1/auth", {
    ["Authorization"] = "Bearer " .. key,
    ["X-Keyport-Api"] = "bench",
    ["X-Keyport-Scopes"] = "bench:read",
  })
end
