-- Every room with members, and every ban (rule 52), as of event number
-- `seq`.
-- Returns {seq, {room, members, last id, room, members, last id, …},
-- {ban JSON…}}.
local seq = tonumber(redis.call('GET', PREFIX .. 'seq') or '0')
local rooms = {}
local listed = redis.call('ZRANGE', PREFIX .. 'rooms', 0, -1, 'WITHSCORES')
for i = 1, #listed, 2 do
  local room = listed[i]
  rooms[#rooms + 1] = room
  rooms[#rooms + 1] = tonumber(listed[i + 1])
  rooms[#rooms + 1] = tonumber(redis.call('HGET', PREFIX .. 'room:' .. room, 'last') or '0')
end
return {seq, rooms, redis.call('HVALS', PREFIX .. 'bans')}
