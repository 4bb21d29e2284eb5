-- sync-leases.lua: one sidecar's in-flight leases per group, and the count every other live sidecar holds
-- (docs/operations.md, fleet: leases).
--
-- KEYS[i]  the lease hash of group i: node_id -> "<count>:<Redis time of the count>"
-- ARGV[1]  this sidecar's node_id
-- ARGV[2]  a count older than this many ms is a stopped sidecar's: ignored and removed
-- ARGV[3..] this sidecar's count for group i (0 removes its entry)
-- Returns {count held by the others in group 1, group 2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local mine = tonumber(ARGV[i + 2])
  if mine > 0 then
    redis.call('HSET', key, ARGV[1], mine .. ':' .. now)
  else
    redis.call('HDEL', key, ARGV[1])
  end
  local all = redis.call('HGETALL', key)
  local others = 0
  for j = 1, #all, 2 do
    local count, at = string.match(all[j + 1], '^(%d+):(%d+)$')
    if count == nil or tonumber(at) < now - stale then
      redis.call('HDEL', key, all[j])
    elseif all[j] ~= ARGV[1] then
      others = others + tonumber(count)
    end
  end
  if #all > 0 then
    redis.call('PEXPIRE', key, stale * 2)
  end
  out[i] = others
end
return out
