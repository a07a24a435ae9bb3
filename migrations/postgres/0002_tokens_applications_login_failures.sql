-- Server-issued secrets, each stored only as the SHA-256 of the secret.

-- SOTicket tickets (kind 1; browser sessions are tickets too) and opaque Bearer access tokens
-- (kind 2).
CREATE TABLE token (
    hash         BYTEA    PRIMARY KEY,
    kind         SMALLINT NOT NULL CHECK (kind IN (1, 2)),
    associate_id INTEGER  NOT NULL REFERENCES service_user (associate_id) ON DELETE CASCADE,
    -- Unix milliseconds; tickets slide this forward as they are used.
    expires_at   BIGINT   NOT NULL,
    created_at   BIGINT   NOT NULL
);

CREATE INDEX token_by_associate ON token (associate_id, kind);

-- Registered applications and their SO-AppToken.
CREATE TABLE application (
    name              TEXT    NOT NULL,
    -- The name in ASCII lower case: names are unique in any case.
    name_folded       TEXT    PRIMARY KEY,
    token_hash        BYTEA   NOT NULL UNIQUE,
    is_partner        BOOLEAN NOT NULL,
    -- Whether a partner application may use the User agent online.
    grants_user_agent BOOLEAN NOT NULL,
    created_at        BIGINT  NOT NULL
);

-- Failed password checks, for locking out password guessing. Kept for any login string, known
-- or not, so a lockout does not reveal whether a login exists. Shared by every node.
CREATE TABLE login_failure (
    -- ASCII lower case, as logins match.
    login     TEXT   NOT NULL,
    failed_at BIGINT NOT NULL
);

CREATE INDEX login_failure_by_login ON login_failure (login, failed_at);
