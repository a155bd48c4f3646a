-- One page of a room's history (docs/protocol.md, rule 13).
-- ARGV: room, after ('' for none), before ('' for none), limit, history.
-- Only the room's last `history` ids are read (say.lua trims in steps).
local log = PREFIX .. 'log:' .. ARGV[1]
local after, before, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local last = tonumber(redis.call('HGET', PREFIX .. 'room:' .. ARGV[1], 'last') or '0')
local oldest = last - tonumber(ARGV[5])
if after ~= '' and tonumber(after) > oldest then oldest = tonumber(after) end
local high = '+inf'
if before ~= '' then high = '(' .. before end
if after ~= '' then
  return redis.call('ZRANGEBYSCORE', log, '(' .. oldest, high, 'LIMIT', 0, limit)
end
local newest = redis.call('ZREVRANGEBYSCORE', log, high, '(' .. oldest, 'LIMIT', 0, limit)
local ascending = {}
for i = #newest, 1, -1 do
  ascending[#ascending + 1] = newest[i]
end
return ascending
