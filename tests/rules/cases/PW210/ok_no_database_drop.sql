DROP TABLE IF EXISTS analytics_tmp;  -- pgwarden: ignore PW201 scratch table rebuilt nightly
