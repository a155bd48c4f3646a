-- Stores one message and publishes it, atomically: dedupe by `ref`, next
-- id, history, `ref` window, event. History and the window are trimmed
-- every TRIM_EVERY ids (reads never return more than `history`; a `ref`
-- may be remembered a few messages longer than its window).
-- ARGV: node, room, ref ('' for none), body (the message's JSON without
-- its id: '{"room":…}'), history, ref window, fresh epoch.
-- Returns {id, 1} for a new message, {id, 0} for a known `ref`.
local node, room, ref, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local history, window = tonumber(ARGV[5]), tonumber(ARGV[6])
local refs = PREFIX .. 'refs:' .. room
if ref ~= '' then
  local known = redis.call('ZSCORE', refs, ref)
  if known then
    return {tonumber(known), 0}
  end
end
local TRIM_EVERY = 32
local id = redis.call('HINCRBY', PREFIX .. 'room:' .. room, 'last', 1)
if id == 1 then
  epoch_of(room, ARGV[7])
end
local message = '{"id":' .. id .. ',' .. string.sub(body, 2)
local log = PREFIX .. 'log:' .. room
redis.call('ZADD', log, id, message)
if ref ~= '' then
  redis.call('ZADD', refs, id, ref)
end
if id % TRIM_EVERY == 0 then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', id - history)
  redis.call('ZREMRANGEBYSCORE', refs, '-inf', id - window)
end
publish('message', node, '"message":' .. message .. '}')
return {id, 1}
