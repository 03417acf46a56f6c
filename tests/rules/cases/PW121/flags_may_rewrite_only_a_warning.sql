ALTER TABLE sp_tenant_configuration ALTER COLUMN conf_value TYPE text;
ALTER TABLE sp_rollout ALTER COLUMN access_control_context TYPE text;
