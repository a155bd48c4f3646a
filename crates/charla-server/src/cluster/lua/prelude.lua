-- Shared by every Charla script (prepended by scripts.rs). Keys are built
-- here from the room and node names, so the scripts target one Redis (or a
-- primary with replicas), not a Redis Cluster.
local PREFIX = 'charla:'
local EVENTS = PREFIX .. 'events'

-- Publishes one event with the next number of the global event sequence;
-- `body` is the event's JSON without its opening brace.
local function publish(kind, node, body)
  local seq = redis.call('INCR', PREFIX .. 'seq')
  redis.call('PUBLISH', EVENTS,
    '{"kind":"' .. kind .. '","seq":' .. seq .. ',"node":"' .. node .. '",' .. body)
  return seq
end

-- Records a room's member count in the directory (rooms with members only).
local function count_members(room)
  local count = redis.call('HLEN', PREFIX .. 'members:' .. room)
  if count > 0 then
    redis.call('ZADD', PREFIX .. 'rooms', count, room)
  else
    redis.call('ZREM', PREFIX .. 'rooms', room)
  end
  return count
end

-- Takes one member out of a room and tells every node; false when it was
-- not there.
local function unseat(node, room, id)
  local members = PREFIX .. 'members:' .. room
  local member = redis.call('HGET', members, id)
  redis.call('SREM', PREFIX .. 'seats:' .. node, room .. ' ' .. id)
  if not member then
    return false
  end
  redis.call('HDEL', members, id)
  local count = count_members(room)
  publish('leave', node, '"room":"' .. room .. '","member":' .. member .. ',"count":' .. count .. '}')
  return true
end

-- Takes every member a node holds out of their rooms and forgets the node.
local function remove_node(node)
  local seats = PREFIX .. 'seats:' .. node
  for _, seat in ipairs(redis.call('SMEMBERS', seats)) do
    local space = string.find(seat, ' ', 1, true)
    unseat(node, string.sub(seat, 1, space - 1), string.sub(seat, space + 1))
  end
  redis.call('DEL', seats)
  redis.call('ZREM', PREFIX .. 'nodes', node)
end

-- The room's epoch, created with `fresh` the first time the room is used.
local function epoch_of(room, fresh)
  local meta = PREFIX .. 'room:' .. room
  redis.call('HSETNX', meta, 'epoch', fresh)
  return redis.call('HGET', meta, 'epoch')
end
