-- A node's heartbeat: records it alive (by Redis's clock) and, when asked,
-- removes the nodes silent for longer than the timeout with their members.
-- ARGV: node, timeout in ms, '1' to reap.
-- Returns {1 if the node was known before, nodes alive, nodes reaped}.
local node, timeout = ARGV[1], tonumber(ARGV[2])
local nodes = PREFIX .. 'nodes'
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local known = redis.call('ZSCORE', nodes, node) and 1 or 0
redis.call('ZADD', nodes, now, node)
local reaped = 0
if ARGV[3] == '1' then
  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now - timeout)) do
    remove_node(gone)
    reaped = reaped + 1
  end
end
return {known, redis.call('ZCARD', nodes), reaped}
