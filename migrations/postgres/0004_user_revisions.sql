-- Every change to a Service user gets the next revision number, so that a node keeping users in
-- memory can ask what changed since the revision its copy reflects: a change made through any
-- node becomes visible on every node's next request. A trigger, not the program, numbers the
-- changes, so no writer can forget to.
CREATE TABLE user_revision (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    revision BIGINT   NOT NULL
);
INSERT INTO user_revision (id, revision) VALUES (1, 0);

ALTER TABLE service_user ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
CREATE INDEX service_user_by_revision ON service_user (revision);

-- Logins that were removed or renamed, and when: what a copy kept by login must forget. One row
-- per login, so the table stays as small as the set of logins ever used.
CREATE TABLE service_user_removed (
    login_folded TEXT    PRIMARY KEY,
    login        TEXT    NOT NULL,
    associate_id INTEGER NOT NULL,
    revision     BIGINT  NOT NULL
);
CREATE INDEX service_user_removed_by_revision ON service_user_removed (revision);

CREATE FUNCTION service_user_next_revision() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    next_revision BIGINT;
BEGIN
    -- The row lock this takes is held until commit, so a second writer waits here and
    -- revisions become visible in the order they were handed out: a reader that has seen
    -- revision n has seen every change up to n.
    UPDATE user_revision SET revision = revision + 1 RETURNING revision INTO next_revision;
    IF TG_OP = 'DELETE'
       OR (TG_OP = 'UPDATE' AND (OLD.login_folded <> NEW.login_folded
                                 OR OLD.associate_id <> NEW.associate_id)) THEN
        INSERT INTO service_user_removed (login_folded, login, associate_id, revision)
        VALUES (OLD.login_folded, OLD.login, OLD.associate_id, next_revision)
        ON CONFLICT (login_folded) DO UPDATE
            SET login = excluded.login,
                associate_id = excluded.associate_id,
                revision = excluded.revision;
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.revision := next_revision;
    RETURN NEW;
END
$$;

-- Not on `revision` or `updated_at` alone: those are no change a reader needs to see.
CREATE TRIGGER service_user_revision
BEFORE INSERT OR DELETE
    OR UPDATE OF associate_id, login, login_folded, password_hash, is_admin, status, message
ON service_user
FOR EACH ROW EXECUTE FUNCTION service_user_next_revision();
