-- A consistent snapshot of one room, as of event number `seq`: last id,
-- epoch, the newest messages and every member.
-- ARGV: room, how many messages, fresh epoch.
-- Returns {seq, last id, epoch, {message JSON…}, {member JSON…}}.
local room, limit = ARGV[1], tonumber(ARGV[2])
local seq = tonumber(redis.call('GET', PREFIX .. 'seq') or '0')
local epoch = epoch_of(room, ARGV[3])
local last = tonumber(redis.call('HGET', PREFIX .. 'room:' .. room, 'last') or '0')
local messages = redis.call('ZRANGE', PREFIX .. 'log:' .. room, -limit, -1)
local members = redis.call('HVALS', PREFIX .. 'members:' .. room)
return {seq, last, epoch, messages, members}
