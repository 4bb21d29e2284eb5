-- apply-quota-changes-4.lua: one AlterQuotas, all or nothing, on the configs every sidecar shares.
--
-- KEYS[1]  configs  hash: stored id -> StoredQuota JSON
-- KEYS[2]  version  integer, bumped once per applied request
-- KEYS[3]  changes  stream: one entry per version (id "<version>-0", field c = the QuotaChange[] JSON)
-- KEYS[4]  audit    stream of audit records (field r = one AuditRecord JSON), capped
-- ARGV[1]  deadline, ms of Redis server time: past it nothing is applied. The client stops waiting at this
--          deadline and reports STORAGE_ERROR; a script that runs later (a hung server, a queued command)
--          must then not apply, or "failed" would not mean "not applied".
-- ARGV[2]  the hash operations, JSON: [[id, StoredQuota JSON or false to delete], ...]
-- ARGV[3]  the changes, JSON, for the changes stream
-- ARGV[4]  length cap of the changes stream (approximate)
-- ARGV[5]  length cap of the audit stream (approximate)
-- ARGV[6]  the channel told of each new version
-- ARGV[7..] audit records, JSON, one per argument
-- Returns the new version, -1 when past the deadline, or -2 - i when KEYS[i + 1] holds a value of another type
-- (or a version that is not a whole number, or a changes stream ahead of the version). Either way nothing was applied: a script that errors half-way is
-- not rolled back, so every key is checked before the first write.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[1]) then
  return -1
end
local want = { 'hash', 'string', 'stream', 'stream' }
for i = 1, 4 do
  local ty = redis.call('TYPE', KEYS[i])['ok']
  if ty ~= 'none' and ty ~= want[i] then
    return -2 - (i - 1)
  end
end
local v = redis.call('GET', KEYS[2])
if v and not string.match(v, '^%d+$') then
  return -3
end
-- XADD refuses an id at or below the stream's last one: a stream ahead of the version would fail half-way.
if redis.call('EXISTS', KEYS[3]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[3])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      local last = tonumber(string.match(info[i + 1], '^(%d+)-'))
      if last == nil or last >= (tonumber(v) or 0) + 1 then
        return -4
      end
    end
  end
end
local ops = cjson.decode(ARGV[2])
for _, op in ipairs(ops) do
  if op[2] == false then
    redis.call('HDEL', KEYS[1], op[1])
  else
    redis.call('HSET', KEYS[1], op[1], op[2])
  end
end
local version = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], version .. '-0', 'c', ARGV[3])
for i = 7, #ARGV do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', 'r', ARGV[i])
end
redis.call('PUBLISH', ARGV[6], version)
return version
