-- Stores a ban (docs/protocol.md, rule 52) and tells every node; forgets
-- the bans that have ended.
-- ARGV: node, ban id, ban JSON, now (Unix ms).
local bans = PREFIX .. 'bans'
local now = tonumber(ARGV[4])
local all = redis.call('HGETALL', bans)
for i = 1, #all, 2 do
  if tonumber(cjson.decode(all[i + 1])['until']) <= now then
    redis.call('HDEL', bans, all[i])
  end
end
redis.call('HSET', bans, ARGV[2], ARGV[3])
publish('ban', ARGV[1], '"ban":' .. ARGV[3] .. '}')
return 1
