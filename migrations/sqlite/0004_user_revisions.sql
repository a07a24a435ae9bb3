-- Every change to a Service user is logged, numbered in commit order (SQLite has one writer at
-- a time), so that a server keeping users in memory can ask what changed since the revision
-- its copy reflects: changes made by other processes (the command line beside a running
-- server) become visible on its next request. Triggers, not the program, log the changes, so
-- no writer can forget to.
--
-- A log rather than a revision column on `service_user`: a batch of Sets then appends to one
-- page instead of rewriting an index page per user. The server trims the log's old end; the
-- newest row always stays, so revisions are never handed out twice.
-- The status check as a range rather than `IN (...)`: SQLite builds a temporary table for an
-- IN list every time it checks a row, which was a fifth of the work of a Set. A CHECK cannot
-- be changed in place, so the table is copied (migrations run with foreign keys off, and are
-- checked for dangling references before they commit).
CREATE TABLE service_user_copy (
    associate_id  INTEGER PRIMARY KEY,
    -- SuperOffice logins are case-insensitive.
    login         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    -- Argon2id PHC string; NULL for a user who cannot sign in with a password.
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    -- EjUserStatus number: 0 to 5, or 127.
    status        INTEGER NOT NULL CHECK (status BETWEEN 0 AND 5 OR status = 127),
    message       TEXT CHECK (message IS NULL OR length(message) <= 255),
    -- Unix milliseconds of the last change of status or message.
    updated_at    INTEGER NOT NULL
) STRICT;
INSERT INTO service_user_copy
    SELECT associate_id, login, password_hash, is_admin, status, message, updated_at
    FROM service_user;
DROP TABLE service_user;
ALTER TABLE service_user_copy RENAME TO service_user;

CREATE TABLE user_change (
    revision     INTEGER PRIMARY KEY,
    -- The associate and login the change was to: as they were before it, for a change that
    -- renamed or removed them.
    associate_id INTEGER NOT NULL,
    login        TEXT    NOT NULL COLLATE NOCASE
) STRICT;

CREATE TRIGGER service_user_inserted AFTER INSERT ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (NEW.associate_id, NEW.login);
END;

-- Not on `updated_at` alone: that is no change a reader needs to see.
CREATE TRIGGER service_user_changed
AFTER UPDATE OF associate_id, login, password_hash, is_admin, status, message ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (OLD.associate_id, OLD.login);
END;

-- A renamed user is logged under both names. A trigger of its own rather than an
-- INSERT ... SELECT ... WHERE in the one above, which would cost every Set a temporary table.
CREATE TRIGGER service_user_renamed
AFTER UPDATE OF associate_id, login ON service_user
WHEN NEW.associate_id <> OLD.associate_id OR NEW.login <> OLD.login
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (NEW.associate_id, NEW.login);
END;

CREATE TRIGGER service_user_deleted AFTER DELETE ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (OLD.associate_id, OLD.login);
END;
