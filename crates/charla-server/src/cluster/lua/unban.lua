-- Lifts a ban and tells every node.
-- ARGV: node, ban id, now (Unix ms).
-- Returns 1 when the ban was in force, 0 when it was unknown or had ended.
local bans = PREFIX .. 'bans'
local json = redis.call('HGET', bans, ARGV[2])
if not json then
  return 0
end
redis.call('HDEL', bans, ARGV[2])
publish('unban', ARGV[1], '"id":' .. cjson.encode(ARGV[2]) .. '}')
if tonumber(cjson.decode(json)['until']) <= tonumber(ARGV[3]) then
  return 0
end
return 1
