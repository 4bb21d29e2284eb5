-- sync-buckets.lua: one sidecar's fleet sync for the buckets of one Redis Cluster slot (docs/algorithm.md,
-- fleet buckets). Each bucket is a hash: field l = "<level in milli-units>:<Redis time of the level, ms>", which
-- drains at the bucket's quota, and one field per sidecar process (its instance id) = "<series>:<pushed>": how
-- much of that process's current push series this bucket has applied. A missing key is an empty bucket.
--
-- Idempotent push: a sidecar whose call timed out does not know whether it was applied. It keeps the amount and
-- sends it again, with the usage recorded since added, under the same series; the script applies only what the
-- series has not applied yet (pushed - applied). A reply that comes late, or a retry, never counts usage twice.
--
-- Nothing read here is trusted (DESIGN.md section 15): a key of another type, or a field that does not parse,
-- is replaced (the bucket starts empty) and reported; every command that can fail on one key runs under pcall,
-- so one bad key affects only its own bucket. (A script that errors is not rolled back: the buckets before the
-- error would keep their push, and the retry would count it again.)
--
-- KEYS[i]  the bucket of bucket i
-- ARGV[1]  deadline, ms of Redis server time: past it nothing is pushed (the sidecar has stopped waiting)
-- ARGV[2]  this sidecar process's instance id (its series field)
-- ARGV[3]  a series field older than this many ms may be removed (no sidecar resends a series that old)
-- ARGV[4]  series fields a bucket may hold before the old ones are removed
-- ARGV[5..] five per bucket i, from ARGV[5 + 5(i-1)]:
--          pushed   usage of this series so far (milli-units, integer >= 0)
--          series   the series (Redis-time-like ms, increasing per sidecar process)
--          rate     the quota: milli-units per ms drained (= units per second)
--          ceiling  the highest level: capacity + max_debt_ms x quota
--          reset    1: empty the level first (ResetUsage), else 0
-- Returns {now, level 1, ..., level n, then (i, code) pairs}, codes: 1 not a bucket hash (replaced), 2 level
-- field unparsable (replaced), 3 series field unparsable (replaced), 4 the write failed (nothing applied),
-- 5 the push was applied already (a retry): nothing added. Or {-1} past the deadline (nothing pushed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[1]) then
  return { -1 }
end
local inst = ARGV[2]
local keep = tonumber(ARGV[3])
local maxFields = tonumber(ARGV[4])
local out = { now }
local problems = {}
local function num(s)
  local v = tonumber(s)
  if v == nil or v ~= v or v == math.huge then return nil end
  return v
end
-- "<a>:<b>", two integers, or nil
local function pair(s)
  if type(s) ~= 'string' then return nil end
  local a, b = string.match(s, '^(%d+):(%d+)$')
  a, b = num(a), num(b)
  if a == nil or b == nil then return nil end
  return a, b
end

for i, key in ipairs(KEYS) do
  local base = 5 + 5 * (i - 1)
  local pushed = tonumber(ARGV[base])
  local series = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2])
  local ceiling = tonumber(ARGV[base + 3])
  local reset = ARGV[base + 4] == '1'
  local code = 0
  local replace = false
  local levelField, seqField = false, false
  local got = redis.pcall('HMGET', key, 'l', inst)
  if type(got) == 'table' and got.err == nil then
    levelField, seqField = got[1], got[2]
  else
    -- Not a hash: a bucket as versions before series wrote it (a string "<level>:<time>"), read once and
    -- rewritten as a hash; anything else is replaced.
    local v = redis.pcall('GET', key)
    if pair(v) ~= nil then levelField = v else code = 1 end
    replace = true
  end
  local level, at = 0, now
  if levelField then
    local l, a = pair(levelField)
    if l == nil then
      code = 2
      replace = true
    else
      level, at = math.min(l, ceiling), a
      -- A time far ahead would stop the bucket draining; a failover's small clock step back is normal.
      if at > now + 60000 then
        at = now
        code = 2
        replace = true
      end
    end
  end
  local apply, written = pushed, pushed
  local fresh = not seqField
  if seqField then
    local s0, c0 = pair(seqField)
    if s0 == nil then
      code = 3
    elseif s0 == series then
      apply = math.max(0, pushed - c0)
      written = math.max(c0, pushed)
    elseif s0 > series then
      apply = 0 -- an older series arriving late: its usage was in a later one
      written = -1
    end
  end
  if reset then
    level, at = 0, now
  end
  -- After a failover the new primary's clock may be behind: never drain backwards.
  if now > at then
    level = math.max(0, level - (now - at) * rate)
  end
  if pushed > 0 and apply == 0 and code == 0 then code = 5 end
  if apply > 0 then level = math.min(level + apply, ceiling) end
  if code == 3 and pushed == 0 then redis.pcall('HDEL', key, inst) end
  if apply > 0 or reset or replace or (code == 3 and pushed > 0) then
    if replace then redis.call('DEL', key) end
    -- %.0f: tostring would round a level past 14 digits.
    local lv = string.format('%.0f', level) .. ':' .. now
    local w
    if written >= 0 and pushed > 0 then
      w = redis.pcall('HSET', key, 'l', lv, inst, string.format('%.0f', series) .. ':' .. string.format('%.0f', written))
    else
      w = redis.pcall('HSET', key, 'l', lv)
    end
    if type(w) == 'table' and w.err then
      code = 4
    else
      -- Once drained the bucket equals a missing key; a minute more keeps it (and its series) for the next sync.
      redis.pcall('PEXPIRE', key, math.ceil(level / rate) + 60000)
      -- A new series field: drop those of sidecar processes long gone, once there are many.
      if fresh and redis.call('HLEN', key) > maxFields then
        local all = redis.call('HGETALL', key)
        for j = 1, #all, 2 do
          local s0 = pair(all[j + 1])
          if all[j] ~= 'l' and (s0 == nil or s0 < now - keep) then redis.call('HDEL', key, all[j]) end
        end
      end
    end
  end
  out[i + 1] = level
  if code ~= 0 then
    problems[#problems + 1] = i
    problems[#problems + 1] = code
  end
end
for _, v in ipairs(problems) do
  out[#out + 1] = v
end
return out
