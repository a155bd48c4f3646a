-- Tells every node to take a member's connections out of a room (docs/
-- protocol.md, rule 51); each node removes its own. Returns how many
-- connections, on every node, the member has there.
-- ARGV: node, room, member id, reason as JSON (a string, or null).
local room, member = ARGV[2], ARGV[3]
local count = 0
for _, json in ipairs(redis.call('HVALS', PREFIX .. 'members:' .. room)) do
  if cjson.decode(json).id == member then
    count = count + 1
  end
end
publish('kick', ARGV[1],
  '"room":"' .. room .. '","member":' .. cjson.encode(member) .. ',"reason":' .. ARGV[4] .. '}')
return count
