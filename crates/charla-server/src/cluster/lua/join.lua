-- Seats a member in a room (or renames it there) and tells every node.
-- ARGV: node, room, member id, member JSON, kind ('join' or 'rename').
local node, room, id, member, kind = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local members = PREFIX .. 'members:' .. room
if kind == 'rename' and redis.call('HEXISTS', members, id) == 0 then
  return 0
end
redis.call('HSET', members, id, member)
redis.call('SADD', PREFIX .. 'seats:' .. node, room .. ' ' .. id)
local count = count_members(room)
publish(kind, node, '"room":"' .. room .. '","member":' .. member .. ',"count":' .. count .. '}')
return 1
