-- its objects were handed over first: only its privileges go
REASSIGN OWNED BY legacy_app TO app_owner;
DROP OWNED BY legacy_app;
