-- Statuses that end by themselves, planned absences, and each user's revision.
--
-- `until`: when a timed StatusNotAvailable (status 2) ends, in Unix milliseconds. Reads answer
-- StatusNormal from then on; the row is not rewritten when the time comes.
ALTER TABLE service_user
    ADD COLUMN until BIGINT,
    ADD CONSTRAINT service_user_until_only_when_not_available CHECK (until IS NULL OR status = 2);

-- The trigger of migration 0005, now watching `until` too.
DROP TRIGGER service_user_changed ON service_user;
CREATE TRIGGER service_user_changed
AFTER INSERT OR DELETE
    OR UPDATE OF associate_id, login, login_folded, password_hash, is_admin, status, message, until
ON service_user
FOR EACH ROW EXECUTE FUNCTION service_user_log_change();

-- The revision of each user's last change: its `ETag`. Changes are numbered after commit (see
-- `number_user_changes`), so the writer cannot put it on the row; the numbering keeps it here
-- instead. Only the numbering writes this table, one numbering at a time, so it waits for no
-- writer's row lock.
CREATE TABLE user_revision (
    associate_id INTEGER PRIMARY KEY,
    revision     BIGINT  NOT NULL
);
INSERT INTO user_revision (associate_id, revision)
    SELECT associate_id, max(revision) FROM user_change
    WHERE revision IS NOT NULL AND associate_id <> 0
    GROUP BY associate_id;

-- Whether a user has a change committed and not yet numbered: its row is then newer than its
-- revision says.
CREATE INDEX user_change_unnumbered_by_associate ON user_change (associate_id)
    WHERE revision IS NULL;

-- Numbering now also keeps `user_revision`, and goes by steps of at most `max_rows` changes,
-- oldest first, each step a statement of its own: a bulk import's hundred thousand changes are
-- numbered in steps that each end well within the statement timeout, where one numbering of
-- them all could not. A caller that needs every change committed before it began to be
-- numbered calls again until a step numbers fewer than `max_rows`.
DROP FUNCTION number_user_changes();
CREATE FUNCTION number_user_changes(
    max_rows INTEGER, OUT latest BIGINT, OUT oldest BIGINT, OUT numbered INTEGER)
LANGUAGE plpgsql AS $$
BEGIN
    -- Each statement below sees every change committed before it began, the previous
    -- numbering's included: that numbering's numbers are visible before its lock is let go.
    PERFORM pg_advisory_xact_lock(2, 0);
    WITH step AS (
        SELECT id FROM user_change WHERE revision IS NULL ORDER BY id LIMIT max_rows
    ), renumbered AS (
        UPDATE user_change AS c SET revision = n.revision
        FROM (SELECT id,
                     (SELECT coalesce(max(revision), 0) FROM user_change)
                         + row_number() OVER (ORDER BY id) AS revision
              FROM step) AS n
        WHERE c.id = n.id
        RETURNING c.associate_id, c.revision
    ), kept AS (
        INSERT INTO user_revision (associate_id, revision)
            SELECT associate_id, max(revision) FROM renumbered GROUP BY associate_id
        ON CONFLICT (associate_id) DO UPDATE SET revision = excluded.revision
        RETURNING 1
    )
    SELECT count(*) INTO numbered FROM renumbered;
    SELECT coalesce(max(revision), 0), coalesce(min(revision), 0) INTO latest, oldest
    FROM user_change;
END
$$;

-- Planned absences: the user is not present from `starts_at` up to `ends_at` (Unix
-- milliseconds). Planning and cancelling one is a change of its user, logged by the program in
-- the same transaction, which first locks the user's row so that two nodes cannot plan
-- overlapping absences at once. Absences that ended a while ago are deleted by the servers.
CREATE TABLE absence (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    associate_id INTEGER NOT NULL REFERENCES service_user (associate_id) ON DELETE CASCADE,
    starts_at    BIGINT  NOT NULL,
    ends_at      BIGINT  NOT NULL,
    message      TEXT CHECK (message IS NULL OR char_length(message) <= 255),
    created_at   BIGINT  NOT NULL,
    CHECK (starts_at < ends_at)
);

CREATE INDEX absence_by_associate ON absence (associate_id, starts_at);
CREATE INDEX absence_by_end ON absence (ends_at);
