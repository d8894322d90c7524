-- Resolves a voice call's reference to its verification, with the sealed code
-- while the verification can still be read out.
-- KEYS[1]  the call reference key
-- ARGV     1 record key prefix
-- Returns  what prelude.lua's resolve returns, or {} when unknown
return resolve(KEYS[1], ARGV[1]) or {}
