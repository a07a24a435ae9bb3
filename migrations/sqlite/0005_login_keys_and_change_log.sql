-- Password checks are counted by a hash of the login: what counting needs, and a fixed size
-- whatever a client sends as a login. Each check is recorded before the password is verified,
-- and a successful one deletes its login's rows; rows older than the lockout window are deleted
-- by the server as it goes. The table the login itself keyed is dropped with its rows, so
-- lockouts start afresh with this version.
DROP TABLE login_failure;

CREATE TABLE login_failure (
    -- SHA-256 of the login in ASCII lower case.
    login_key BLOB    NOT NULL,
    -- Unix milliseconds.
    failed_at INTEGER NOT NULL
) STRICT;

CREATE INDEX login_failure_by_login ON login_failure (login_key, failed_at);
CREATE INDEX login_failure_by_time ON login_failure (failed_at);

-- The change log needs nothing new here: SQLite has one writer at a time, so the log's rowids
-- already number the changes in the order they are committed.
