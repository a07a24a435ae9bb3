-- Every change to a Service user gets the next revision number, so that a server keeping users
-- in memory can ask what changed since the revision its copy reflects: changes made by other
-- processes (the command line beside a running server) become visible on its next request.
-- Triggers, not the program, number the changes, so no writer can forget to.
CREATE TABLE user_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    -- The revision of the latest change; SQLite has one writer at a time, so revisions are
    -- handed out in commit order.
    revision INTEGER NOT NULL
) STRICT;
INSERT INTO user_revision (id, revision) VALUES (1, 0);

ALTER TABLE service_user ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE INDEX service_user_by_revision ON service_user (revision);

-- Logins that were removed or renamed, and when: what a copy kept by login must forget. One row
-- per login, so the table stays as small as the set of logins ever used.
CREATE TABLE service_user_removed (
    login        TEXT    PRIMARY KEY COLLATE NOCASE,
    associate_id INTEGER NOT NULL,
    revision     INTEGER NOT NULL
) STRICT;
CREATE INDEX service_user_removed_by_revision ON service_user_removed (revision);

CREATE TRIGGER service_user_inserted AFTER INSERT ON service_user
BEGIN
    UPDATE user_revision SET revision = revision + 1;
    UPDATE service_user SET revision = (SELECT revision FROM user_revision)
        WHERE associate_id = NEW.associate_id;
END;

-- Not on `revision` or `updated_at` alone, so the trigger's own update does not fire it again.
CREATE TRIGGER service_user_changed
AFTER UPDATE OF associate_id, login, password_hash, is_admin, status, message ON service_user
BEGIN
    UPDATE user_revision SET revision = revision + 1;
    UPDATE service_user SET revision = (SELECT revision FROM user_revision)
        WHERE associate_id = NEW.associate_id;
    -- `WHERE` before `ON CONFLICT` keeps SQLite from reading the latter as a join.
    INSERT INTO service_user_removed (login, associate_id, revision)
        SELECT OLD.login, OLD.associate_id, revision FROM user_revision
        WHERE OLD.login <> NEW.login OR OLD.associate_id <> NEW.associate_id
        ON CONFLICT (login) DO UPDATE
            SET associate_id = excluded.associate_id, revision = excluded.revision;
END;

CREATE TRIGGER service_user_deleted AFTER DELETE ON service_user
BEGIN
    UPDATE user_revision SET revision = revision + 1;
    INSERT INTO service_user_removed (login, associate_id, revision)
        SELECT OLD.login, OLD.associate_id, revision FROM user_revision WHERE true
        ON CONFLICT (login) DO UPDATE
            SET associate_id = excluded.associate_id, revision = excluded.revision;
END;
