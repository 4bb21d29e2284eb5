-- sync-buckets-n.lua: one sidecar's fleet sync for the buckets of one Redis Cluster slot (docs/algorithm.md,
-- fleet buckets). Each bucket is a string "<fill in milli-units>:<Redis time of the fill, ms>", which drains at
-- the bucket's own rate, followed by one "|<instance>=<series>:<pushed>" per sidecar process that pushed to it lately:
-- how much of that process's current push series the bucket has applied. A missing key is an empty bucket. (A
-- string, not a hash: GET + SET PX is two commands per bucket where HMGET + HSET + PEXPIRE is three, and Redis's
-- time per sync is the fleet's capacity; and a sidecar that knows no series still reads its fill.)
--
-- Idempotent push: a sidecar whose call timed out does not know whether it was applied. It keeps the amount and
-- sends it again, with the usage recorded since added, under the same series; the script applies only what the
-- series has not applied yet (pushed - applied). A reply that comes late, or a retry, never counts usage twice.
--
-- Nothing read here is trusted (DESIGN.md section 15): a key of another type, or a value that does not parse,
-- is replaced (the bucket starts empty; an unparsable series part is dropped) and reported; every command that can fail on one key runs under pcall,
-- so one bad key affects only its own bucket. (A script that errors is not rolled back: the buckets before the
-- error would keep their push, and the retry would count it again.)
--
-- KEYS[i]  the bucket of bucket i (n keys, one per bucket: the caller passes n before them)
-- ARGV[1]  deadline, ms of Redis server time: past it nothing is pushed (the sidecar has stopped waiting)
-- ARGV[2]  this sidecar process's instance id (its series field)
-- ARGV[3]  another process's series older than this many ms is dropped (no sidecar resends a series that old)
-- ARGV[4]  other processes' series a bucket keeps at most
-- ARGV[5..] five per bucket i, from ARGV[5 + 5(i-1)]:
--          pushed   usage of this series so far (milli-units, integer >= 0)
--          series   the series (Redis-time-like ms, increasing per sidecar process)
--          rate     the bucket's rate: milli-units per ms drained (= units per second; fractional for 0.17/s or
--                   10/min, sent with every digit JS prints, so tonumber reads back the sidecar's own double)
--          ceiling  the bucket's highest fill: its capacity (A for a rate A per min, h or d) + max_debt_ms x rate
--          reset    1: empty the fill first (ResetUsage), else 0
-- Returns {now, fill 1, ..., fill n, then (i, code) pairs}: a fill is an integer, or a string when it has a
-- fraction (a fractional rate drains by fractions; Redis would truncate a number reply). Codes: 1 a key of another type (replaced), 2 fill
-- unparsable or stamped far ahead (replaced), 3 series part unparsable or stamped far ahead (dropped), 4 the write failed (nothing applied),
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
-- A fill as stored and returned: a whole number as %.0f writes it (tostring would round past 14 digits),
-- a fraction with 17 digits, which tonumber and JS read back as the same double. Rounding it to a whole
-- milli-unit at every write would drain a 10/min bucket synced every 100 ms (16.67 milli-units a sync) 2% off.
local function fmt(l)
  if l == math.floor(l) then return string.format('%.0f', l) end
  return string.format('%.17g', l)
end

for i, key in ipairs(KEYS) do
  local base = 5 + 5 * (i - 1)
  local pushed = tonumber(ARGV[base])
  local series = tonumber(ARGV[base + 1])
  local rate = tonumber(ARGV[base + 2])
  local ceiling = tonumber(ARGV[base + 3])
  local reset = ARGV[base + 4] == '1'
  local code = 0
  local fill, at = 0, now
  local rest = ''
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then
    code = 1 -- another type: SET below replaces it
  elseif v then
    local l, a, r = string.match(v, '^([%d%.eE%+%-]+):(%d+)(.*)$')
    l, a = num(l), num(a)
    if l == nil or a == nil or l < 0 then
      code = 2
    else
      fill, at, rest = math.min(l, ceiling), a, r
      -- A time far ahead would stop the bucket draining; a failover's small clock step back is normal.
      if at > now + 60000 then
        at = now
        code = 2
      end
    end
  end
  -- The series fields: "|<instance>=<series>:<pushed>" each. Ours is read; the others are kept unless long gone.
  local apply, written = pushed, pushed
  local others = {}
  local parsed = 0
  local parts = rest == '' and function() return nil end or string.gmatch(rest, '(|([%w]+)=(%d+):(%d+))')
  for whole, who, s0, c0 in parts do
    parsed = parsed + #whole
    s0, c0 = num(s0), num(c0)
    -- A series is stamped near Redis time when made: one far ahead was planted (it would read as a later series,
    -- so every push of that process would be taken for a late one and applied nothing, for as long as it stays).
    if s0 == nil or c0 == nil or s0 > now + 60000 then
      code = 3
    elseif who == inst then
      if s0 == series then
        apply = math.max(0, pushed - c0)
        written = math.max(c0, pushed)
      elseif s0 > series then
        apply = 0 -- an older series arriving late: its usage was in a later one
        written = -1
        others[#others + 1] = whole
      end
    elseif s0 >= now - keep and #others < maxFields then
      others[#others + 1] = whole
    end
  end
  if parsed ~= #rest then code = 3 end
  if reset then
    fill, at = 0, now
  end
  -- After a failover the new primary's clock may be behind: never drain backwards.
  if now > at then
    fill = math.max(0, fill - (now - at) * rate)
  end
  if pushed > 0 and apply == 0 and code == 0 then code = 5 end
  if apply > 0 then fill = math.min(fill + apply, ceiling) end
  if apply > 0 or reset or code == 1 or code == 2 or code == 3 then
    local value = fmt(fill) .. ':' .. now .. table.concat(others)
    if written >= 0 and pushed > 0 then
      value = value .. '|' .. inst .. '=' .. string.format('%.0f', series) .. ':' .. string.format('%.0f', written)
    end
    -- Once drained the bucket equals a missing key; a minute more keeps it (and its series) for the next sync.
    local w = redis.pcall('SET', key, value, 'PX', math.ceil(fill / rate) + 60000)
    if type(w) == 'table' and w.err then code = 4 end
  end
  out[i + 1] = fill == math.floor(fill) and fill or fmt(fill)
  if code ~= 0 then
    problems[#problems + 1] = i
    problems[#problems + 1] = code
  end
end
for _, v in ipairs(problems) do
  out[#out + 1] = v
end
return out
