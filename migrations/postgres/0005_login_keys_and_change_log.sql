-- Password checks are counted by a hash of the login: what counting needs, and a fixed size
-- whatever a client sends as a login. Each check is recorded before the password is verified,
-- and a successful one deletes its login's rows; rows older than the lockout window are deleted
-- by the servers as they go. The table the login itself keyed is dropped with its rows, so
-- lockouts start afresh with this version.
DROP TABLE login_failure;

CREATE TABLE login_failure (
    -- SHA-256 of the login in ASCII lower case.
    login_key BYTEA  NOT NULL,
    -- Unix milliseconds.
    failed_at BIGINT NOT NULL
);

CREATE INDEX login_failure_by_login ON login_failure (login_key, failed_at);
CREATE INDEX login_failure_by_time ON login_failure (failed_at);

-- Records one password check of a login, unless `max_failures` were recorded since `since`;
-- says whether it did. Checks of one login take turns across every node (a lock on the login's
-- key, held to commit), so the count and the insert are one step and guesses sent at once
-- cannot all pass the count.
CREATE FUNCTION reserve_login_attempt(key BYTEA, at BIGINT, since BIGINT, max_failures INTEGER)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    -- The two-key form of advisory locks, whose keys never meet the one-key form's.
    PERFORM pg_advisory_xact_lock(1, ('x' || encode(substring(key FROM 1 FOR 4), 'hex'))::bit(32)::integer);
    IF (SELECT count(*) FROM login_failure WHERE login_key = key AND failed_at > since) >= max_failures THEN
        RETURN FALSE;
    END IF;
    INSERT INTO login_failure (login_key, failed_at) VALUES (key, at);
    RETURN TRUE;
END
$$;

-- Changes to Service users, numbered without a lock that every writer holds to its commit.
--
-- Before this version a trigger numbered each change from a one-row counter, whose row lock
-- every writer on every node held until it committed: Sets went one commit at a time across
-- all nodes. Now a writer only appends the change to this log, unnumbered; numbers are given
-- after commit, by `number_user_changes`, to every change committed and not yet numbered,
-- one numbering at a time. So numbers follow the order in which changes became visible, and
-- a reader that has seen revision r never later finds a change below r appear, also when
-- transactions on several nodes commit out of order; and they have no gaps, as a change that
-- rolled back was never numbered.
DROP TRIGGER service_user_revision ON service_user;
DROP FUNCTION service_user_next_revision();

CREATE TABLE user_change (
    -- The order of writing, which need not be the order of commit.
    id           BIGSERIAL PRIMARY KEY,
    -- NULL until numbered.
    revision     BIGINT UNIQUE,
    -- The associate and login the change was to: as they were before it, for a change that
    -- renamed or removed them.
    associate_id INTEGER NOT NULL,
    login        TEXT    NOT NULL
);
CREATE INDEX user_change_unnumbered ON user_change (id) WHERE revision IS NULL;

-- Numbering goes on from the last revision handed out: a placeholder change of no associate.
INSERT INTO user_change (revision, associate_id, login)
    SELECT revision, 0, '' FROM user_revision WHERE revision > 0;
DROP TABLE user_revision;
DROP TABLE service_user_removed;
ALTER TABLE service_user DROP COLUMN revision;

CREATE FUNCTION service_user_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO user_change (associate_id, login) VALUES (OLD.associate_id, OLD.login);
    END IF;
    -- A new user, and a renamed one, under the new name too.
    IF TG_OP = 'INSERT'
       OR (TG_OP = 'UPDATE' AND (NEW.associate_id <> OLD.associate_id
                                 OR NEW.login_folded <> OLD.login_folded)) THEN
        INSERT INTO user_change (associate_id, login) VALUES (NEW.associate_id, NEW.login);
    END IF;
    RETURN NULL;
END
$$;

-- Not on `updated_at` alone: that is no change a reader needs to see.
CREATE TRIGGER service_user_changed
AFTER INSERT OR DELETE
    OR UPDATE OF associate_id, login, login_folded, password_hash, is_admin, status, message
ON service_user
FOR EACH ROW EXECUTE FUNCTION service_user_log_change();

-- Numbers every change committed and not yet numbered, and returns the latest and the oldest
-- revision in the log. Numberings take turns across nodes (a lock held to commit, for the one
-- short statement), so when this returns, every change committed before it was called is
-- numbered.
CREATE FUNCTION number_user_changes(OUT latest BIGINT, OUT oldest BIGINT)
LANGUAGE plpgsql AS $$
BEGIN
    -- Each statement below sees every change committed before it began, the previous
    -- numbering's included: that numbering's numbers are visible before its lock is let go.
    PERFORM pg_advisory_xact_lock(2, 0);
    UPDATE user_change AS c SET revision = numbered.revision
    FROM (SELECT id,
                 (SELECT coalesce(max(revision), 0) FROM user_change)
                     + row_number() OVER (ORDER BY id) AS revision
          FROM user_change WHERE revision IS NULL) AS numbered
    WHERE c.id = numbered.id;
    SELECT coalesce(max(revision), 0), coalesce(min(revision), 0) INTO latest, oldest
    FROM user_change;
END
$$;
