-- Every change to a Service user is logged, numbered in commit order (SQLite has one writer at
-- a time), so that a server keeping users in memory can ask what changed since the revision
-- its copy reflects: changes made by other processes (the command line beside a running
-- server) become visible on its next request. Triggers, not the program, log the changes, so
-- no writer can forget to.
--
-- A log rather than a revision column on `service_user`: a batch of Sets then appends to one
-- page instead of rewriting an index page per user. The server trims the log's old end; the
-- newest row always stays, so revisions are never handed out twice.
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
    INSERT INTO user_change (associate_id, login)
        SELECT NEW.associate_id, NEW.login
        WHERE NEW.associate_id <> OLD.associate_id OR NEW.login <> OLD.login;
END;

CREATE TRIGGER service_user_deleted AFTER DELETE ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (OLD.associate_id, OLD.login);
END;
