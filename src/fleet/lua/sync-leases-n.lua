-- sync-leases-n.lua: one sidecar's in-flight leases per group, and the count every other live sidecar holds
-- (docs/operations.md, fleet: leases).
--
-- KEYS[i]  the lease hash of group i: node_id -> "<count>:<Redis time of the count>" (n keys, one per group:
--          the caller passes n before them)
-- ARGV[1]  this sidecar's node_id
-- ARGV[2]  a count older than this many ms is a stopped sidecar's: ignored and removed
-- ARGV[3]  the highest count one sidecar can hold (its max_leases): a bigger one is not a count
-- ARGV[4..] this sidecar's count for group i (0 removes its entry)
-- Returns {count held by the others in group 1, group 2, ..., then how many entries were invalid}. An entry
-- that does not parse, is too big or is stamped ahead of Redis time is removed (it would hold leases for ever);
-- a key of another type is replaced. Judged by Redis time only.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stale = tonumber(ARGV[2])
local most = tonumber(ARGV[3])
local out = {}
local bad = 0
for i, key in ipairs(KEYS) do
  local mine = tonumber(ARGV[i + 3])
  local w
  if mine > 0 then
    w = redis.pcall('HSET', key, ARGV[1], mine .. ':' .. now)
  else
    w = redis.pcall('HDEL', key, ARGV[1])
  end
  if type(w) == 'table' and w.err then
    redis.call('DEL', key)
    bad = bad + 1
    if mine > 0 then redis.call('HSET', key, ARGV[1], mine .. ':' .. now) end
  end
  local all = redis.call('HGETALL', key)
  local others = 0
  for j = 1, #all, 2 do
    local count, at = string.match(all[j + 1], '^(%d+):(%d+)$')
    count, at = tonumber(count), tonumber(at)
    if count == nil or at == nil or count > most or at > now + stale then
      redis.call('HDEL', key, all[j])
      bad = bad + 1
    elseif at < now - stale then
      redis.call('HDEL', key, all[j])
    elseif all[j] ~= ARGV[1] then
      others = others + count
    end
  end
  if #all > 0 then
    redis.call('PEXPIRE', key, stale * 2)
  end
  out[i] = others
end
out[#out + 1] = bad
return out
