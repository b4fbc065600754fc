-- Every holder name the store knows (for suggestions when a name is mistyped).
-- Parameters: none.
SELECT DISTINCT holder_name AS name FROM events
UNION
SELECT DISTINCT recipient_name FROM events WHERE recipient_name IS NOT NULL
ORDER BY name
