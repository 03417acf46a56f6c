-- The join partner is a CTE that picks some rows of the target itself (one node type,
-- one configuration version), not a table every row has its match in: how many rows
-- the UPDATE touches is unknown here, not "nearly every row".
WITH rpc_node AS (
    SELECT id, configuration::jsonb AS config
    FROM rule_node
    WHERE type = 'rpc' AND configuration_version = 0
)
UPDATE rule_node SET configuration_version = 1
FROM rpc_node
WHERE rule_node.id = rpc_node.id;
DELETE FROM sessions s USING (SELECT id FROM sessions WHERE revoked) r WHERE s.id = r.id;
