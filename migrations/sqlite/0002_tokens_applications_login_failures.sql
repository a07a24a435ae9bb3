-- Server-issued secrets, each stored only as the SHA-256 of the secret.

-- SOTicket tickets (kind 1; browser sessions are tickets too) and opaque Bearer access tokens
-- (kind 2).
CREATE TABLE token (
    hash         BLOB    PRIMARY KEY,
    kind         INTEGER NOT NULL CHECK (kind IN (1, 2)),
    associate_id INTEGER NOT NULL REFERENCES service_user (associate_id) ON DELETE CASCADE,
    -- Unix milliseconds; tickets slide this forward as they are used.
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX token_by_associate ON token (associate_id, kind);

-- Registered applications and their SO-AppToken.
CREATE TABLE application (
    name              TEXT    PRIMARY KEY COLLATE NOCASE,
    token_hash        BLOB    NOT NULL UNIQUE,
    is_partner        INTEGER NOT NULL CHECK (is_partner IN (0, 1)),
    -- Whether a partner application may use the User agent online.
    grants_user_agent INTEGER NOT NULL CHECK (grants_user_agent IN (0, 1)),
    created_at        INTEGER NOT NULL
) STRICT;

-- Failed password checks, for locking out password guessing. Kept for any login string, known
-- or not, so a lockout does not reveal whether a login exists.
CREATE TABLE login_failure (
    login     TEXT    NOT NULL COLLATE NOCASE,
    failed_at INTEGER NOT NULL
) STRICT;

CREATE INDEX login_failure_by_login ON login_failure (login, failed_at);
