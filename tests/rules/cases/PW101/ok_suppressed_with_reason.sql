-- pgwarden: ignore PW101 settings holds a handful of rows
CREATE INDEX settings_value_idx ON settings (value);
