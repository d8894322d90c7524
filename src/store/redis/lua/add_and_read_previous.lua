-- Adds hits to fixed windows' counters and reads each one's previous
-- window, unchanged (the pumping detector's sliding estimate). Only on a
-- single node: the counters' keys are in slots of their own.
-- KEYS     for each counter: 2i-1 its window at now, 2i the window before
-- ARGV     1 how long to keep a counter (ms), then each counter's hits to add
-- Returns  for each counter: its count after adding, the previous window's
return add_and_read_previous(1, 1, #KEYS / 2)
