-- Service (help-desk) users: who can sign in, and whether tickets are assigned to them.
CREATE TABLE service_user (
    associate_id  INTEGER  PRIMARY KEY,
    login         TEXT     NOT NULL,
    -- The login in ASCII lower case, as SQLite's NOCASE folds it: logins match in any case,
    -- the same way on both backends.
    login_folded  TEXT     NOT NULL UNIQUE,
    -- Argon2id PHC string; NULL for a user who cannot sign in with a password.
    password_hash TEXT,
    is_admin      BOOLEAN  NOT NULL DEFAULT FALSE,
    -- EjUserStatus number.
    status        SMALLINT NOT NULL CHECK (status IN (0, 1, 2, 3, 4, 5, 127)),
    message       TEXT CHECK (message IS NULL OR char_length(message) <= 255),
    -- Unix milliseconds of the last change of status or message.
    updated_at    BIGINT   NOT NULL
);
