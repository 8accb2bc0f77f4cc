"""Lua scripts that settle a message in one atomic step.

Redis runs a script without interleaving other commands and a crash can only happen before or
after it, so "copy somewhere + XACK + XDEL" either happens entirely or not at all. Each script
first checks that the entry is still pending in the group (XPENDING): an entry that is no longer
pending was already settled, so running a script twice (a retry after a lost reply) does nothing
the second time - no duplicate copy, no duplicate reply.

Writes happen only after every check, and XADD (the only command that can fail on bad input)
comes before XACK/XDEL, so a failing script leaves the message untouched and pending.
"""

from __future__ import annotations

__all__ = ["ADD_BATCH", "FETCH", "MOVE", "PRUNE", "REPLAY", "REPLY"]

# Copy entries to KEYS[2] (the same stream for reject/release, the dead-letter stream for nack),
# then XACK + XDEL them in KEYS[1].
# ARGV: group, consumer ('' = any owner), extra deliveries to count (0 or 1), dead reason
# ('' = not a dead letter), MAXLEN for the copy's XADD ('' = none), '1' to drop the entries
# instead of copying them (a nack without a dead-letter stream), then the entry ids.
# The copy keeps (or gets) `origin_id`, the id of the first entry of this message.
# The copy's delivery_count = earlier copies' count + times this entry was delivered - 1 + extra:
# a reject or nack counts the current delivery (extra 1); a release does not (extra 0), because
# the message never reached an actor. A dead letter gets `dead_reason` and repid 2.x's
# `original_stream` / `original_id` (where it was).
MOVE = """
local moved = 0
for i = 7, #ARGV do
  local id = ARGV[i]
  local pending
  if ARGV[2] == '' then
    pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  else
    pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2])
  end
  if #pending == 1 then
    local entry = ARGV[6] == '1' and {} or redis.call('XRANGE', KEYS[1], id, id)
    if #entry == 1 then
      local src = entry[1][2]
      local out = {}
      local count = 0
      local origin = id
      for j = 1, #src, 2 do
        local f = src[j]
        if f == 'delivery_count' then
          count = tonumber(src[j + 1]) or 0
        elseif f == 'origin_id' then
          origin = src[j + 1]
        elseif f ~= 'dead_reason' and f ~= 'original_stream' and f ~= 'original_id' then
          out[#out + 1] = f
          out[#out + 1] = src[j + 1]
        end
      end
      out[#out + 1] = 'origin_id'
      out[#out + 1] = origin
      count = count + tonumber(pending[1][4]) - 1 + tonumber(ARGV[3])
      if count > 0 then
        out[#out + 1] = 'delivery_count'
        out[#out + 1] = string.format('%d', count)
      end
      if ARGV[4] ~= '' then
        out[#out + 1] = 'dead_reason'
        out[#out + 1] = ARGV[4]
        out[#out + 1] = 'original_stream'
        out[#out + 1] = KEYS[1]
        out[#out + 1] = 'original_id'
        out[#out + 1] = id
      end
      if ARGV[5] == '' then
        redis.call('XADD', KEYS[2], '*', unpack(out))
      else
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', unpack(out))
      end
      moved = moved + 1
    end
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
  end
end
return moved
"""

# Publish a reply to KEYS[2] and XACK + XDEL the request in KEYS[1].
# ARGV: group, entry id, then the XADD arguments after the key ([NOMKSTREAM] [MAXLEN ~ n] id
# field value ...). Returns 1 (done), 0 (request no longer pending: nothing sent) or -1 (NOMKSTREAM
# and the reply stream does not exist: nothing changed).
REPLY = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 then
  return 0
end
local added = redis.call('XADD', KEYS[2], unpack(ARGV, 3))
if not added then
  return -1
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

# Move up to ARGV[1] dead letters from KEYS[1] back to the channel KEYS[2], oldest first, with a
# fresh delivery count (origin_id stays: it is the same message; a dead letter written by
# repid 2.x gets its `original_id` as origin_id). Returns how many were moved.
REPLAY = """
local entries = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[1]))
for i = 1, #entries do
  local src = entries[i][2]
  local out = {}
  local origin = nil
  local original = nil
  for j = 1, #src, 2 do
    local f = src[j]
    if f == 'origin_id' then
      origin = src[j + 1]
    elseif f == 'original_id' then
      original = src[j + 1]
    elseif f ~= 'dead_reason' and f ~= 'original_stream' and f ~= 'delivery_count' then
      out[#out + 1] = f
      out[#out + 1] = src[j + 1]
    end
  end
  origin = origin or original
  if #out > 0 and origin then
    out[#out + 1] = 'origin_id'
    out[#out + 1] = origin
  end
  if #out > 0 then
    redis.call('XADD', KEYS[2], '*', unpack(out))
  end
  redis.call('XDEL', KEYS[1], entries[i][1])
end
return #entries
"""

# Read new entries of all KEYS, each through its own consumer group (a non-blocking XREADGROUP
# ... COUNT ARGV[2] per stream), and return them packed in one bulk string instead of nested
# arrays: the client then parses one string in memory (`_codec.parse_packed`) instead of several
# protocol elements per entry, which is most of the cost of consuming with redis-py's
# pure-Python parser.
# ARGV: consumer, count, want_ids ('1' or '0'), then the group of each key, in KEYS order.
# Format: per entry the tokens stream, id, field count, then the field names and values; each
# token is `<length>:<bytes>`. With nothing to read and want_ids = '1', the reply is instead
# '!' followed by each stream's last generated id, comma-separated: the caller then blocks in
# XREAD until any stream grows past them (channels read through different groups cannot share
# one blocking XREADGROUP).
FETCH = """
local n = #KEYS
local out = {}
for i = 1, n do
  local res = redis.call(
    'XREADGROUP', 'GROUP', ARGV[3 + i], ARGV[1], 'COUNT', ARGV[2], 'STREAMS', KEYS[i], '>')
  if res then
    local key = res[1][1]
    local head = #key .. ':' .. key
    local entries = res[1][2]
    for j = 1, #entries do
      local id = entries[j][1]
      local fields = entries[j][2]
      local count = tostring(#fields)
      out[#out + 1] = head
      out[#out + 1] = #id .. ':' .. id
      out[#out + 1] = #count .. ':' .. count
      for k = 1, #fields do
        out[#out + 1] = #fields[k] .. ':' .. fields[k]
      end
    end
  end
end
if #out == 0 and ARGV[3] == '1' then
  local ids = {}
  for i = 1, n do
    local info = redis.call('XINFO', 'STREAM', KEYS[i])
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then
        ids[i] = info[j + 1]
      end
    end
  end
  return '!' .. table.concat(ids, ',')
end
return table.concat(out)
"""

# XADD many messages to KEYS[1] in one command (publish_batch). ARGV[1] = k, ARGV[2 .. k+1] =
# the XADD options (ending with the id `*`), then per message: the number m of field arguments
# followed by the m arguments. Returns the new ids joined by ',' or nil when NOMKSTREAM found no
# stream (then nothing was added: the first XADD is the one that fails).
ADD_BATCH = """
local k = tonumber(ARGV[1])
local cmd = {'XADD', KEYS[1]}
for i = 2, k + 1 do
  cmd[#cmd + 1] = ARGV[i]
end
local nbase = #cmd
local ids = {}
local pos = k + 2
local last = #ARGV
while pos <= last do
  local m = tonumber(ARGV[pos])
  for i = 1, m do
    cmd[nbase + i] = ARGV[pos + i]
  end
  local id = redis.call(unpack(cmd, 1, nbase + m))
  if not id then
    return false
  end
  ids[#ids + 1] = id
  pos = pos + m + 1
end
return table.concat(ids, ',')
"""

# Remove consumers of group ARGV[1] on stream KEYS[1] that hold nothing and were idle longer
# than ARGV[2] ms (workers that died or moved on), except ARGV[3] (the caller). Checking and
# deleting in one script matters: XGROUP DELCONSUMER drops the consumer's pending entries, so a
# consumer that read something between a check and a separate delete would lose it.
PRUNE = """
local removed = 0
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for i = 1, #consumers do
  local info = consumers[i]
  local name, pending, idle
  for j = 1, #info, 2 do
    if info[j] == 'name' then
      name = info[j + 1]
    elseif info[j] == 'pending' then
      pending = info[j + 1]
    elseif info[j] == 'idle' then
      idle = info[j + 1]
    end
  end
  if name ~= ARGV[3] and pending == 0 and idle > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed = removed + 1
  end
end
return removed
"""
