-- Texts that `[SR_NAME]` references in messages are replaced with, per language. Migrating to
-- this version also loads the project's starter set of presence messages.
CREATE TABLE resource (
    name     TEXT NOT NULL,
    -- ISO 639-1 code of one of the supported languages.
    language TEXT NOT NULL,
    text     TEXT NOT NULL CHECK (text <> ''),
    PRIMARY KEY (name, language)
);
