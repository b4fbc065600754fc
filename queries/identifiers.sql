-- Every identifier of the subject known as $identifier, following declared links up to $as_of.
SELECT list(id ORDER BY id) AS ids FROM identifiers($identifier, $as_of)
