-- One page of a room's history (docs/protocol.md, rule 13).
-- ARGV: room, after ('' for none), before ('' for none), limit.
local log = PREFIX .. 'log:' .. ARGV[1]
local after, before, limit = ARGV[2], ARGV[3], tonumber(ARGV[4])
local high = '+inf'
if before ~= '' then high = '(' .. before end
if after ~= '' then
  return redis.call('ZRANGEBYSCORE', log, '(' .. after, high, 'LIMIT', 0, limit)
end
local newest = redis.call('ZREVRANGEBYSCORE', log, high, '-inf', 'LIMIT', 0, limit)
local ascending = {}
for i = #newest, 1, -1 do
  ascending[#ascending + 1] = newest[i]
end
return ascending
