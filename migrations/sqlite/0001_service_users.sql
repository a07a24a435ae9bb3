-- Service (help-desk) users: who can sign in, and whether tickets are assigned to them.
CREATE TABLE service_user (
    associate_id  INTEGER PRIMARY KEY,
    -- SuperOffice logins are case-insensitive.
    login         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    -- Argon2id PHC string; NULL for a user who cannot sign in with a password.
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    -- EjUserStatus number.
    status        INTEGER NOT NULL CHECK (status IN (0, 1, 2, 3, 4, 5, 127)),
    message       TEXT CHECK (message IS NULL OR length(message) <= 255),
    -- Unix milliseconds of the last change of status or message.
    updated_at    INTEGER NOT NULL
) STRICT;
