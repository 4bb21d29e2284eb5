-- heartbeat-1.lua: one sidecar says it is alive and reads who else is (fleet status, the fallback divisor).
--
-- KEYS[1]  sidecars hash: node_id -> status JSON; each status ends with the Redis time it was written
-- ARGV[1]  this sidecar's node_id
-- ARGV[2]  its status JSON without the closing brace: the script appends ,"seen":<Redis time>}
-- ARGV[3]  entries older than this many ms are removed (sidecars that stopped)
-- ARGV[4]  entries "seen" more than this many ms ahead of Redis time are removed: no sidecar wrote them (every
--          entry is stamped with Redis time), and one that never aged would count as live for ever
-- Returns {now, previous, bad, status 1, status 2, ...}: Redis time, what this node_id's entry held before (false
-- if nothing: a sidecar compares it with its own last write to notice another sidecar using its node_id, or a
-- Redis that lost its keys), how many entries were removed as invalid (a key of another type counts 1), and every
-- sidecar's status JSON, this one's included. Judged by Redis time only.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bad = 0
local previous = redis.pcall('HGET', KEYS[1], ARGV[1])
if type(previous) == 'table' and previous.err then
  -- Not a hash: replaced, or every heartbeat (the breaker's probe) would fail for ever.
  redis.call('DEL', KEYS[1])
  previous = false
  bad = 1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ',"seen":' .. now .. '}')
local all = redis.call('HGETALL', KEYS[1])
local out = { now, previous, 0 }
local oldest = now - tonumber(ARGV[3])
local newest = now + tonumber(ARGV[4])
for i = 1, #all, 2 do
  local seen = tonumber(string.match(all[i + 1], '"seen":(%d+)}$'))
  if seen == nil or seen > newest then
    redis.call('HDEL', KEYS[1], all[i])
    bad = bad + 1
  elseif seen < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i + 1]
  end
end
out[3] = bad
return out
