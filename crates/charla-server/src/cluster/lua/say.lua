-- Stores one message and publishes it, atomically: dedupe by `ref`, next
-- id, history, `ref` window, event. History and the window are trimmed
-- every TRIM_EVERY ids (reads never return more than `history`; a `ref`
-- may be remembered a few messages longer than its window).
-- An edit or delete entry (docs/protocol.md, rule 50) names the message it
-- changes: that must be a retained message, not an entry, not deleted, and
-- (unless a moderator asks) the author's; it is changed in the same step.
-- ARGV: node, room, ref ('' for none), body (the message's JSON without
-- its id: '{"room":…}'), history, ref window, fresh epoch; for an entry
-- also the id of the message it changes and the author's id ('' for a
-- moderator).
-- Returns {id, 1} for a new message, {id, 0} for a known `ref`, {0, 2}
-- for an entry whose message is unknown, {0, 3} for one by another author.
local node, room, ref, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local history, window = tonumber(ARGV[5]), tonumber(ARGV[6])
local target, author = tonumber(ARGV[8] or ''), ARGV[9]
local refs = PREFIX .. 'refs:' .. room
if ref ~= '' then
  local known = redis.call('ZSCORE', refs, ref)
  if known then
    return {tonumber(known), 0}
  end
end
local meta = PREFIX .. 'room:' .. room
local log = PREFIX .. 'log:' .. room
local changed
if target then
  local last = tonumber(redis.call('HGET', meta, 'last') or '0')
  local found = redis.call('ZRANGEBYSCORE', log, target, target)
  if #found == 0 or target <= last - history then
    return {0, 2}
  end
  changed = cjson.decode(found[1])
  if changed.edits or changed.deletes or changed.deleted then
    return {0, 2}
  end
  if author ~= '' and changed.from.id ~= author then
    return {0, 3}
  end
end
local TRIM_EVERY = 32
local id = redis.call('HINCRBY', meta, 'last', 1)
if id == 1 then
  epoch_of(room, ARGV[7])
end
local message = '{"id":' .. id .. ',' .. string.sub(body, 2)
redis.call('ZADD', log, id, message)
if changed then
  local entry = cjson.decode(body)
  if entry.deletes then
    changed.text = ''
    changed.deleted = true
    -- The edits of a deleted message lose their texts too.
    for _, json in ipairs(redis.call('ZRANGEBYSCORE', log, '(' .. target, '(' .. id)) do
      local edit = cjson.decode(json)
      if edit.edits == target and edit.text ~= '' then
        edit.text = ''
        redis.call('ZREMRANGEBYSCORE', log, edit.id, edit.id)
        redis.call('ZADD', log, edit.id, cjson.encode(edit))
      end
    end
  else
    changed.text = entry.text
    changed.edited = entry.at
  end
  redis.call('ZREMRANGEBYSCORE', log, target, target)
  redis.call('ZADD', log, target, cjson.encode(changed))
end
if ref ~= '' then
  redis.call('ZADD', refs, id, ref)
end
if id % TRIM_EVERY == 0 then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', id - history)
  redis.call('ZREMRANGEBYSCORE', refs, '-inf', id - window)
end
publish('message', node, '"message":' .. message .. '}')
return {id, 1}
