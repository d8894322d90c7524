-- Adds one hit to each fixed rate-limit window's counter in turn, as hit.lua
-- does, and stops after the first whose count passes its limit. Only on a
-- single node: the counters' keys are in slots of their own.
-- KEYS     the windows' counters, in order (each name carries its window's index)
-- ARGV     for each counter: 2i-1 how long to keep it (ms), 2i its limit
-- Returns  the counts of the counters hit, in order
return (hit_in_order(1, 1, #KEYS))
