-- Adds hits to a fixed rate-limit window's counter (0 reads it).
-- KEYS[1]  the window's counter (its name carries the window's index)
-- ARGV     1 how long to keep the counter (ms), 2 hits to add
-- Returns  the count in this window after adding
return bump(KEYS[1], ARGV[1], ARGV[2])
