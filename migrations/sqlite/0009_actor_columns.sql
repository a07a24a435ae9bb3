-- Who made a change and through what, in four short columns rather than as JSON text: every
-- Set writes them twice, on the row and into the log, and the JSON (about 70 bytes) was most
-- of both rows. `by_kind`: `user`, `commandLine` or `timer`; `by_associate`: the user's
-- associate, for a user; `via_scheme` and `via_application`: the scheme the request was
-- authenticated by and the registered application it named, NULL where no request was made.
-- The history's API answers the same JSON as before (`store::history::ChangeColumns`).
-- None of the four is in a trigger's column list: writing them alone logs nothing.
DROP TRIGGER service_user_inserted;
DROP TRIGGER service_user_changed;
DROP TRIGGER service_user_deleted;

ALTER TABLE service_user ADD COLUMN by_kind TEXT;
ALTER TABLE service_user ADD COLUMN by_associate INTEGER;
ALTER TABLE service_user ADD COLUMN via_scheme TEXT;
ALTER TABLE service_user ADD COLUMN via_application TEXT;
ALTER TABLE user_change ADD COLUMN by_kind TEXT;
ALTER TABLE user_change ADD COLUMN by_associate INTEGER;
ALTER TABLE user_change ADD COLUMN via_scheme TEXT;
ALTER TABLE user_change ADD COLUMN via_application TEXT;

UPDATE service_user
SET by_kind = changed_by ->> '$.kind', by_associate = changed_by ->> '$.associateId',
    via_scheme = changed_via ->> '$.scheme', via_application = changed_via ->> '$.application'
WHERE changed_by IS NOT NULL;
UPDATE user_change
SET by_kind = changed_by ->> '$.kind', by_associate = changed_by ->> '$.associateId',
    via_scheme = changed_via ->> '$.scheme', via_application = changed_via ->> '$.application'
WHERE changed_by IS NOT NULL;

ALTER TABLE service_user DROP COLUMN changed_by;
ALTER TABLE service_user DROP COLUMN changed_via;
ALTER TABLE user_change DROP COLUMN changed_by;
ALTER TABLE user_change DROP COLUMN changed_via;

-- As in 0007, with the new columns.
CREATE TRIGGER service_user_inserted AFTER INSERT ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login, at, kind, to_status, to_message, to_until,
                             by_kind, by_associate, via_scheme, via_application)
    VALUES (NEW.associate_id, NEW.login, NEW.updated_at, 'userAdded', NEW.status, NEW.message,
            NEW.until, NEW.by_kind, NEW.by_associate, NEW.via_scheme, NEW.via_application);
    UPDATE service_user SET revision = (SELECT max(revision) FROM user_change)
    WHERE associate_id = NEW.associate_id;
END;

CREATE TRIGGER service_user_changed
AFTER UPDATE OF associate_id, login, password_hash, is_admin, status, message, until
ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                             from_until, to_status, to_message, to_until, by_kind,
                             by_associate, via_scheme, via_application)
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
            NEW.by_kind, NEW.by_associate, NEW.via_scheme, NEW.via_application);
    -- The log row just inserted is the trigger's last insert. A Set writes the revision its
    -- change is about to get itself (`sqlite::writer`), which spares the row a second write;
    -- any other write leaves it to this.
    UPDATE service_user SET revision = last_insert_rowid()
    WHERE associate_id = NEW.associate_id AND revision IS NOT last_insert_rowid();
END;

-- The remover writes `by_*`, `via_*` and `updated_at` on the row just before deleting it.
CREATE TRIGGER service_user_deleted AFTER DELETE ON service_user
BEGIN
    INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                             from_until, by_kind, by_associate, via_scheme, via_application)
    VALUES (OLD.associate_id, OLD.login, OLD.updated_at, 'userRemoved', OLD.status, OLD.message,
            OLD.until, OLD.by_kind, OLD.by_associate, OLD.via_scheme, OLD.via_application);
END;
