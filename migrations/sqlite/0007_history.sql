-- History: the change log remembers what each change was, who made it and through what, and
-- is kept for the history's retention (`--history-days`) rather than to a count.
--
-- Who changed a user, and through which scheme and application, is written on the row by each
-- write, beside `updated_at` (the moment of the change), as JSON text the API answers as it
-- is; the triggers copy it into the log with the row before and after, in the same statement
-- as the change itself. Neither column is in a trigger's column list: writing them logs nothing.
ALTER TABLE service_user ADD COLUMN changed_by TEXT;
ALTER TABLE service_user ADD COLUMN changed_via TEXT;

-- `kind`: what a help desk's history shows (`status`, `absencePlanned`, `absenceCancelled`,
-- `userAdded`, `userRemoved`); NULL for a change only caches need to see (a password, a
-- rename's second name, a Set that stored what was there already). `from_*` and `to_*`: the
-- status before and after; `absence`: the absence planned or cancelled, as JSON.
ALTER TABLE user_change ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_change ADD COLUMN kind TEXT;
ALTER TABLE user_change ADD COLUMN from_status INTEGER;
ALTER TABLE user_change ADD COLUMN from_message TEXT;
ALTER TABLE user_change ADD COLUMN from_until INTEGER;
ALTER TABLE user_change ADD COLUMN to_status INTEGER;
ALTER TABLE user_change ADD COLUMN to_message TEXT;
ALTER TABLE user_change ADD COLUMN to_until INTEGER;
ALTER TABLE user_change ADD COLUMN absence TEXT;
ALTER TABLE user_change ADD COLUMN changed_by TEXT;
ALTER TABLE user_change ADD COLUMN changed_via TEXT;

-- No index by associate: it would cost every Set a write at a random place in it. A page of
-- one associate's history reads a window of the log instead (`store::history::FILTER_WINDOW`).

-- Timed statuses due to end: the timer finds them without reading every user.
CREATE INDEX service_user_until ON service_user (until) WHERE until IS NOT NULL;

-- Whether an absence's start and end have been recorded as changes by the timer. An absence
-- planned to start at once (or in the past) has its start recorded by the planning itself.
ALTER TABLE absence ADD COLUMN start_recorded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE absence ADD COLUMN end_recorded INTEGER NOT NULL DEFAULT 0;
UPDATE absence SET start_recorded = (starts_at <= unixepoch() * 1000),
                   end_recorded = (ends_at <= unixepoch() * 1000);
CREATE INDEX absence_start_due ON absence (starts_at) WHERE start_recorded = 0;
CREATE INDEX absence_end_due ON absence (ends_at) WHERE end_recorded = 0;

DROP TRIGGER service_user_inserted;
DROP TRIGGER service_user_changed;
DROP TRIGGER service_user_renamed;
DROP TRIGGER service_user_deleted;

CREATE TRIGGER service_user_inserted AFTER INSERT ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login, at, kind, to_status, to_message, to_until,
                             changed_by, changed_via)
    VALUES (NEW.associate_id, NEW.login, NEW.updated_at, 'userAdded', NEW.status, NEW.message,
            NEW.until, NEW.changed_by, NEW.changed_via);
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

CREATE TRIGGER service_user_changed
AFTER UPDATE OF associate_id, login, password_hash, is_admin, status, message, until
ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                             from_until, to_status, to_message, to_until, changed_by,
                             changed_via)
    VALUES (OLD.associate_id, OLD.login,
            -- A change outside the history (a password, say) is logged as made now: the row's
            -- `updated_at` is its last status change, which may be older than the retention.
            CASE WHEN NEW.status IS NOT OLD.status OR NEW.message IS NOT OLD.message
                      OR NEW.until IS NOT OLD.until
                 THEN NEW.updated_at ELSE CAST(unixepoch('subsec') * 1000 AS INTEGER) END,
            CASE WHEN NEW.status IS NOT OLD.status OR NEW.message IS NOT OLD.message
                      OR NEW.until IS NOT OLD.until
                 THEN 'status' END,
            OLD.status, OLD.message, OLD.until, NEW.status, NEW.message, NEW.until,
            NEW.changed_by, NEW.changed_via);
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

CREATE TRIGGER service_user_renamed
AFTER UPDATE OF associate_id, login ON service_user
WHEN NEW.associate_id <> OLD.associate_id OR NEW.login <> OLD.login
BEGIN
    INSERT INTO user_change (associate_id, login, at)
    VALUES (NEW.associate_id, NEW.login, CAST(unixepoch('subsec') * 1000 AS INTEGER));
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

-- The remover writes `changed_by` and `updated_at` on the row just before deleting it.
CREATE TRIGGER service_user_deleted AFTER DELETE ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                             from_until, changed_by, changed_via)
    VALUES (OLD.associate_id, OLD.login, OLD.updated_at, 'userRemoved', OLD.status, OLD.message,
            OLD.until, OLD.changed_by, OLD.changed_via);
END;
