-- History: the change log remembers what each change was, who made it and through what, and
-- is kept for the history's retention (`--history-days`) rather than to a count.
--
-- Who changed a user, and through which scheme and application, is written on the row by each
-- write, beside `updated_at` (the moment of the change), as JSON text the API answers as it
-- is; the trigger copies it into the log with the row before and after, in the same
-- transaction as the change itself. Neither column is in the trigger's column list: writing
-- them logs nothing.
ALTER TABLE service_user
    ADD COLUMN changed_by TEXT,
    ADD COLUMN changed_via TEXT;

-- `kind`: what a help desk's history shows (`status`, `absencePlanned`, `absenceCancelled`,
-- `userAdded`, `userRemoved`); NULL for a change only caches need to see (a password, a
-- rename's second name, a Set that stored what was there already). `from_*` and `to_*`: the
-- status before and after; `absence`: the absence planned or cancelled, as JSON.
ALTER TABLE user_change
    ADD COLUMN at BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN kind TEXT,
    ADD COLUMN from_status SMALLINT,
    ADD COLUMN from_message TEXT,
    ADD COLUMN from_until BIGINT,
    ADD COLUMN to_status SMALLINT,
    ADD COLUMN to_message TEXT,
    ADD COLUMN to_until BIGINT,
    ADD COLUMN absence TEXT,
    ADD COLUMN changed_by TEXT,
    ADD COLUMN changed_via TEXT;

-- No index by associate: it would cost every Set a write at a random place in it. A page of
-- one associate's history reads a window of the log instead (`store::history::FILTER_WINDOW`).

-- Timed statuses due to end: the timer finds them without reading every user.
CREATE INDEX service_user_until ON service_user (until) WHERE until IS NOT NULL;

-- Whether an absence's start and end have been recorded as changes by the timer. An absence
-- planned to start at once (or in the past) has its start recorded by the planning itself.
ALTER TABLE absence
    ADD COLUMN start_recorded BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN end_recorded BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE absence SET
    start_recorded = starts_at <= (extract(epoch FROM now()) * 1000)::bigint,
    end_recorded = ends_at <= (extract(epoch FROM now()) * 1000)::bigint;
CREATE INDEX absence_start_due ON absence (starts_at) WHERE NOT start_recorded;
CREATE INDEX absence_end_due ON absence (ends_at) WHERE NOT end_recorded;

CREATE OR REPLACE FUNCTION service_user_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_change (associate_id, login, at, kind, to_status, to_message, to_until,
                                 changed_by, changed_via)
        VALUES (NEW.associate_id, NEW.login, NEW.updated_at, 'userAdded', NEW.status,
                NEW.message, NEW.until, NEW.changed_by, NEW.changed_via);
    ELSIF TG_OP = 'DELETE' THEN
        -- The remover writes `changed_by` and `updated_at` on the row just before deleting it.
        INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                                 from_until, changed_by, changed_via)
        VALUES (OLD.associate_id, OLD.login, OLD.updated_at, 'userRemoved', OLD.status,
                OLD.message, OLD.until, OLD.changed_by, OLD.changed_via);
    ELSE
        INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                                 from_until, to_status, to_message, to_until, changed_by,
                                 changed_via)
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
                NEW.changed_by, NEW.changed_via);
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
