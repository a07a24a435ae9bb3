-- Who made a change and through what, in four short columns rather than as JSON text: every
-- Set writes them twice, on the row and into the log, and the JSON (about 70 bytes) was most
-- of both rows. `by_kind`: `user`, `commandLine` or `timer`; `by_associate`: the user's
-- associate, for a user; `via_scheme` and `via_application`: the scheme the request was
-- authenticated by and the registered application it named, NULL where no request was made.
-- The history's API answers the same JSON as before (`store::history::ChangeColumns`).
-- None of the four is in a trigger's column list: writing them alone logs nothing.
ALTER TABLE service_user
    ADD COLUMN by_kind TEXT,
    ADD COLUMN by_associate INTEGER,
    ADD COLUMN via_scheme TEXT,
    ADD COLUMN via_application TEXT;
ALTER TABLE user_change
    ADD COLUMN by_kind TEXT,
    ADD COLUMN by_associate INTEGER,
    ADD COLUMN via_scheme TEXT,
    ADD COLUMN via_application TEXT;

UPDATE service_user
SET by_kind = changed_by::json ->> 'kind',
    by_associate = (changed_by::json ->> 'associateId')::INTEGER,
    via_scheme = changed_via::json ->> 'scheme',
    via_application = changed_via::json ->> 'application'
WHERE changed_by IS NOT NULL;
UPDATE user_change
SET by_kind = changed_by::json ->> 'kind',
    by_associate = (changed_by::json ->> 'associateId')::INTEGER,
    via_scheme = changed_via::json ->> 'scheme',
    via_application = changed_via::json ->> 'application'
WHERE changed_by IS NOT NULL;

-- As in 0007, with the new columns.
CREATE OR REPLACE FUNCTION service_user_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_change (associate_id, login, at, kind, to_status, to_message, to_until,
                                 by_kind, by_associate, via_scheme, via_application)
        VALUES (NEW.associate_id, NEW.login, NEW.updated_at, 'userAdded', NEW.status,
                NEW.message, NEW.until, NEW.by_kind, NEW.by_associate, NEW.via_scheme,
                NEW.via_application);
    ELSIF TG_OP = 'DELETE' THEN
        -- The remover writes `by_*`, `via_*` and `updated_at` on the row just before deleting it.
        INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                                 from_until, by_kind, by_associate, via_scheme, via_application)
        VALUES (OLD.associate_id, OLD.login, OLD.updated_at, 'userRemoved', OLD.status,
                OLD.message, OLD.until, OLD.by_kind, OLD.by_associate, OLD.via_scheme,
                OLD.via_application);
    ELSE
        INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                                 from_until, to_status, to_message, to_until, by_kind,
                                 by_associate, via_scheme, via_application)
        VALUES (OLD.associate_id, OLD.login,
                -- A change outside the history (a password, say) is logged as made now: the
                -- row's `updated_at` is its last status change, which may be older than the
                -- retention.
                CASE WHEN NEW.status IS DISTINCT FROM OLD.status
                          OR NEW.message IS DISTINCT FROM OLD.message
                          OR NEW.until IS DISTINCT FROM OLD.until
                     THEN NEW.updated_at
                     ELSE (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT END,
                CASE WHEN NEW.status IS DISTINCT FROM OLD.status
                          OR NEW.message IS DISTINCT FROM OLD.message
                          OR NEW.until IS DISTINCT FROM OLD.until
                     THEN 'status' END,
                OLD.status, OLD.message, OLD.until, NEW.status, NEW.message, NEW.until,
                NEW.by_kind, NEW.by_associate, NEW.via_scheme, NEW.via_application);
        -- A renamed user is logged under the new name too.
        IF NEW.associate_id <> OLD.associate_id OR NEW.login_folded <> OLD.login_folded THEN
            INSERT INTO user_change (associate_id, login, at)
            VALUES (NEW.associate_id, NEW.login,
                    (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

ALTER TABLE service_user DROP COLUMN changed_by, DROP COLUMN changed_via;
ALTER TABLE user_change DROP COLUMN changed_by, DROP COLUMN changed_via;
