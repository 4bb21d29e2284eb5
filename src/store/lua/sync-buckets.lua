-- sync-buckets.lua: one sidecar's fleet sync for the buckets of one Redis Cluster slot (docs/algorithm.md,
-- fleet buckets). Each bucket is a string "<level in milli-units>:<Redis time of the level, ms>" that drains at
-- the bucket's quota; a missing key is an empty bucket. (A string, not a hash: GET + SET PX is two commands
-- per bucket where HMGET + HSET + PEXPIRE is three, and Redis's time per sync is the fleet's capacity.)
--
-- KEYS[i]  the bucket of bucket i
-- ARGV[1]  deadline, ms of Redis server time: past it nothing is pushed. The sidecar stops waiting at this
--          deadline and keeps the usage to push again; a script that ran later would count it twice.
-- ARGV[2..] four per bucket i, from ARGV[2 + 4(i-1)]:
--          push     usage recorded by this sidecar since its last sync (milli-units, >= 0)
--          rate     the quota: milli-units per ms drained (= units per second)
--          ceiling  the highest level: capacity + max_debt_ms x quota
--          reset    1: empty the level first (ResetUsage), else 0
-- Returns {now, level 1, level 2, ...}: Redis time and each bucket's level after the push, or {-1} when past
-- the deadline (nothing pushed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[1]) then
  return { -1 }
end
local out = { now }
for i, key in ipairs(KEYS) do
  local base = 2 + 4 * (i - 1)
  local push = tonumber(ARGV[base])
  local rate = tonumber(ARGV[base + 1])
  local ceiling = tonumber(ARGV[base + 2])
  local level = 0
  local at = now
  if ARGV[base + 3] == '1' then
    redis.call('DEL', key)
  else
    local v = redis.call('GET', key)
    if v then
      local l, t2 = string.match(v, '^(%d+):(%d+)$')
      level = tonumber(l) or 0
      at = tonumber(t2) or now
    end
  end
  -- After a failover the new primary's clock may be behind: never drain backwards.
  if now > at then
    level = math.max(0, level - (now - at) * rate)
  end
  if push > 0 then
    level = math.min(level + push, ceiling)
    -- %.0f: tostring would round a level past 14 digits. Once drained the bucket equals a missing key; a
    -- minute more keeps it for the next sync.
    redis.call('SET', key, string.format('%.0f', level) .. ':' .. now, 'PX', math.ceil(level / rate) + 60000)
  end
  out[i + 1] = level
end
return out
