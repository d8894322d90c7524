-- A start's gate in one step (window.lua's `gate`), without the start.
-- Only on a single node: the keys are in slots of their own.
-- KEYS, ARGV  the gate's, from KEYS[1] and ARGV[1]
-- Returns     {lockout count, day count, 1 when the flag is raised, the
--             counts of the counters hit...}
return (gate(1, 1))
