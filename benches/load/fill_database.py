#!/usr/bin/env python3
"""Fills a migrated SQLite database of presence for the load scripts (presence_api.sh,
instructions.sh --batch, log_size.sh): Service users 2..COUNT, and with TIMERS set to 1, a tenth with a
timed status that ends tomorrow and a tenth with one planned absence, in force for half of them
and next week for the rest.

    fill_database.py FILE COUNT TIMERS
"""
import sqlite3, sys, time
file, count, timers = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
db = sqlite3.connect(file, isolation_level=None)
db.execute(
    """WITH RECURSIVE n(id) AS (SELECT 2 UNION ALL SELECT id + 1 FROM n WHERE id < ?)
       INSERT INTO service_user (associate_id, login, password_hash, is_admin, status, message, updated_at)
       SELECT id, 'u' || id, NULL, 0, 1, NULL, 0 FROM n""",
    (count,),
)
if timers:
    now = int(time.time() * 1000)
    day = 86_400_000
    db.execute("BEGIN")
    # A tenth with a timed status that ends tomorrow.
    db.execute(
        "UPDATE service_user SET status = 2, message = 'Back tomorrow', until = ? "
        "WHERE associate_id % 10 = 3", (now + day,))
    # A tenth with one planned absence: in force for half of them, next week for the rest.
    db.execute(
        """INSERT INTO absence (associate_id, starts_at, ends_at, message, created_at)
           SELECT associate_id,
                  CASE WHEN associate_id % 20 = 7 THEN ? ELSE ? END,
                  CASE WHEN associate_id % 20 = 7 THEN ? ELSE ? END,
                  'Holiday', ?
           FROM service_user WHERE associate_id % 10 = 7""",
        (now - day, now + 7 * day, now + day, now + 8 * day, now))
    db.execute("COMMIT")
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
