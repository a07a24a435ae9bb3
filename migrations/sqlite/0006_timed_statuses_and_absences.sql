-- Statuses that end by themselves, planned absences, and each user's revision.
--
-- `until`: when a timed StatusNotAvailable (status 2) ends, in Unix milliseconds. Reads answer
-- StatusNormal from then on; the row is not rewritten when the time comes.
ALTER TABLE service_user ADD COLUMN until INTEGER CHECK (until IS NULL OR status = 2);

-- The revision of the user's last change: its `ETag`. Kept on the row by the triggers below,
-- so that it is read with the row and outlives the change log's trimming.
ALTER TABLE service_user ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
UPDATE service_user
SET revision = coalesce(
    (SELECT max(c.revision) FROM user_change c WHERE c.associate_id = service_user.associate_id),
    0);

-- The triggers of migration 0005, now also numbering the row and watching `until`. The row's
-- revision is written after the log's: `revision` is in no trigger's column list, so writing it
-- logs nothing.
DROP TRIGGER service_user_inserted;
DROP TRIGGER service_user_changed;
DROP TRIGGER service_user_renamed;

CREATE TRIGGER service_user_inserted AFTER INSERT ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (NEW.associate_id, NEW.login);
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

CREATE TRIGGER service_user_changed
AFTER UPDATE OF associate_id, login, password_hash, is_admin, status, message, until
ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (OLD.associate_id, OLD.login);
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

CREATE TRIGGER service_user_renamed
AFTER UPDATE OF associate_id, login ON service_user
WHEN NEW.associate_id <> OLD.associate_id OR NEW.login <> OLD.login
BEGIN
    INSERT INTO user_change (associate_id, login) VALUES (NEW.associate_id, NEW.login);
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

-- Planned absences: the user is not present from `starts_at` up to `ends_at` (Unix
-- milliseconds). Planning and cancelling one is a change of its user, logged by the program in
-- the same transaction. Absences that ended a while ago are deleted by the server.
CREATE TABLE absence (
    id           INTEGER PRIMARY KEY,
    associate_id INTEGER NOT NULL REFERENCES service_user (associate_id) ON DELETE CASCADE,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    message      TEXT CHECK (message IS NULL OR length(message) <= 255),
    created_at   INTEGER NOT NULL,
    CHECK (starts_at < ends_at)
) STRICT;

CREATE INDEX absence_by_associate ON absence (associate_id, starts_at);
CREATE INDEX absence_by_end ON absence (ends_at);
