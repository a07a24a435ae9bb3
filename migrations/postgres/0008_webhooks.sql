-- Webhooks: every change the history shows, POSTed to an administrator's URL, signed the
-- Standard Webhooks way, in order, at least once (src/webhooks/).
--
-- `secret`: the signing key's bytes, kept as they are because signing needs them (shown once,
-- when the webhook is added). `associates`: a JSON array of the associates whose changes it
-- gets, NULL for everyone's. `delivered_through`: every change up to this revision has been
-- delivered, filtered out or given up; it starts at the newest revision when the webhook is
-- added. `attempts` and `failing_since`: the failed attempts of the change after it, and when
-- the first of them was; `next_attempt_at`: when the next may be made. `lease_owner` and
-- `lease_until`: the node delivering it, until when; another node takes it only after that.
CREATE TABLE webhook (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url               TEXT    NOT NULL,
    secret            BYTEA   NOT NULL,
    associates        TEXT,
    created_at        BIGINT  NOT NULL,
    delivered_through BIGINT  NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    failing_since     BIGINT,
    next_attempt_at   BIGINT  NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_until       BIGINT  NOT NULL DEFAULT 0
);

-- The latest attempts of each webhook (the newest 100 are kept), for `webhook deliveries`.
-- `outcome`: delivered, failed (to be tried again), gaveUp (failing for a day: skipped) or
-- expired (the history no longer held the changes: skipped). `status`: the receiver's HTTP
-- status, when it answered; `error`: what went wrong, when something did.
CREATE TABLE webhook_delivery (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id BIGINT  NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
    revision   BIGINT  NOT NULL,
    attempt    INTEGER NOT NULL,
    at         BIGINT  NOT NULL,
    outcome    TEXT    NOT NULL,
    status     INTEGER,
    error      TEXT
);
CREATE INDEX webhook_delivery_by_webhook ON webhook_delivery (webhook_id, id);
