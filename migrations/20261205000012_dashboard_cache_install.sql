-- no-transaction
-- Switches the change tracking on (see dashboard_cache.install): short lock per table, then the
-- backfill in batches. Alone in its file: a procedure commits only when called outside a transaction.
CALL dashboard_cache.install();
