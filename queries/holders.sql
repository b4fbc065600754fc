-- Every holder name the store knows (for suggestions when a name is mistyped): from the events, and
-- from the holdings (a holder seen only in events that store retention has retired is still known).
-- Parameters: none.
SELECT DISTINCT holder_name AS name FROM events
UNION
SELECT DISTINCT recipient_name FROM events WHERE recipient_name IS NOT NULL
UNION
SELECT DISTINCT holder FROM holding_runs
ORDER BY name
