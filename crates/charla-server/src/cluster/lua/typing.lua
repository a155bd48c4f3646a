-- Tells every node that a member is typing in a room (not stored).
-- ARGV: node, room, member JSON.
publish('typing', ARGV[1], '"room":"' .. ARGV[2] .. '","member":' .. ARGV[3] .. '}')
return 1
