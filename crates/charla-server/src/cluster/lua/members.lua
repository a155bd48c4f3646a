-- A room's members, cluster-wide. ARGV: room.
return redis.call('HVALS', PREFIX .. 'members:' .. ARGV[1])
