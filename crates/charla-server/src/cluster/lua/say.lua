-- Stores one message and publishes it, atomically: dedupe by `ref`, next
-- id, history (trimmed), `ref` window (trimmed), event.
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
epoch_of(room, ARGV[7])
local id = redis.call('HINCRBY', PREFIX .. 'room:' .. room, 'last', 1)
local message = '{"id":' .. id .. ',' .. string.sub(body, 2)
local log = PREFIX .. 'log:' .. room
redis.call('ZADD', log, id, message)
redis.call('ZREMRANGEBYSCORE', log, '-inf', id - history)
if ref ~= '' then
  redis.call('ZADD', refs, id, ref)
  redis.call('ZREMRANGEBYSCORE', refs, '-inf', id - window)
end
publish('message', node, '"message":' .. message .. '}')
return {id, 1}
