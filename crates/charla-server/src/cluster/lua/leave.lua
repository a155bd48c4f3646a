-- Takes a member out of a room and tells every node.
-- ARGV: node, room, member id.
if unseat(ARGV[1], ARGV[2], ARGV[3]) then
  return 1
end
return 0
