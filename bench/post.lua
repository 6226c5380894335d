-- wrk script: POST the body from $BENCH_BODY with the keys from $BENCH_KEYS
-- (comma-separated; BENCH_KEY, one key, also works; none: no Authorization header).
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local keys = {}
for key in string.gmatch(os.getenv("BENCH_KEYS") or os.getenv("BENCH_KEY") or "", "[^,]+") do
  keys[#keys + 1] = key
end
if #keys == 1 then
  wrk.headers["Authorization"] = "Bearer " .. keys[1]
elseif #keys > 1 then
  -- Several customers, a key per request in turn, so that their wallets spread over
  -- the queue's partitions (one key keeps every charge in one partition, one writer).
  local turn = 0
  request = function()
    turn = turn % #keys + 1
    wrk.headers["Authorization"] = "Bearer " .. keys[turn]
    return wrk.format()
  end
end
