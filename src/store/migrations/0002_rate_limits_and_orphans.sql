-- sfwa store, schema 2 (issue "Nothing lost by the primary path").
--
-- Rate-limit refusals (130429, 131056, 131048, 4, 80007) are Meta asking sfwa to slow down, not a
-- verdict on the message: they do not count towards `attempts` (dispatch.max_attempts). They are
-- bounded by time instead: `rate_limited_since` is when the record's current run of refusals began
-- (dispatch.max_rate_limited_wait is measured from it), `rate_limited_count` how many there were
-- (the pair-rate back-off grows with it, as Meta advises 4^n seconds).
ALTER TABLE journal ADD COLUMN rate_limited_since INTEGER;
ALTER TABLE journal ADD COLUMN rate_limited_count INTEGER NOT NULL DEFAULT 0
    CHECK (rate_limited_count >= 0);

-- The orphan scan: claimed rows with no retry time that no send is working on (sfwa stopped
-- between the claim and `sending`). See journal::orphaned_claims.
CREATE INDEX journal_orphaned_claims ON journal (updated_at)
    WHERE state = 'claimed' AND next_attempt_at IS NULL;
