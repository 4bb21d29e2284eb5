-- heartbeat.lua: one sidecar says it is alive and reads who else is (fleet status, the fallback divisor).
--
-- KEYS[1]  sidecars hash: node_id -> status JSON; each status ends with the Redis time it was written
-- ARGV[1]  this sidecar's node_id
-- ARGV[2]  its status JSON without the closing brace: the script appends ,"seen":<Redis time>}
-- ARGV[3]  entries older than this many ms are removed (sidecars that stopped)
-- Returns {now, previous, status 1, status 2, ...}: Redis time, what this node_id's entry held before (false if
-- nothing: a sidecar compares it with its own last write to notice another sidecar using its node_id), and
-- every sidecar's status JSON, this one's included.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ',"seen":' .. now .. '}')
local all = redis.call('HGETALL', KEYS[1])
local out = { now, previous }
local oldest = now - tonumber(ARGV[3])
for i = 1, #all, 2 do
  local seen = tonumber(string.match(all[i + 1], '"seen":(%d+)}$'))
  if seen == nil or seen < oldest then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i + 1]
  end
end
return out
