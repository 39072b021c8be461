-- Rate budgets shared by every node of a cluster (process format section 8): the request
-- windows of one service and token ("4 a second and 50 a minute") live here, so that three
-- nodes with one token together stay under the limits.
--
-- A budget is one row of `rate_budgets`, keyed by the service and a hash of the token (never
-- the token). Its requests are rows of `rate_slots`: when the request was let through, and when
-- its answer came (NULL while it is in flight: the server may count it at any moment, so it
-- counts in every window as if sent now). Every instant is the database's clock, never a
-- node's. A reservation is one call of `rate_reserve`, which locks the budget's row, so the
-- nodes' reservations of one budget are serialized while other budgets go on in parallel.
CREATE TABLE rate_budgets (
    budget           TEXT PRIMARY KEY,
    last_start       TIMESTAMPTZ,
    paused_until     TIMESTAMPTZ,
    exhausted_until  TIMESTAMPTZ,
    exhausted_reason TEXT
);

CREATE TABLE rate_slots (
    slot_id     BIGSERIAL PRIMARY KEY,
    budget      TEXT NOT NULL REFERENCES rate_budgets (budget) ON DELETE CASCADE,
    started_at  TIMESTAMPTZ NOT NULL,
    answered_at TIMESTAMPTZ
);
CREATE INDEX rate_slots_by_budget ON rate_slots (budget, started_at);

-- Reserves a request slot of `p_budget` under every window (`p_limits[i]` requests per
-- `p_pers_ms[i]` ms, each window `p_margin_ms` longer), at least `p_min_interval_ms` after the
-- previous start, unless the budget is paused or exhausted. A slot in flight for longer than
-- `p_in_flight_ms` (its node died mid-call) counts as answered then.
-- Returns one row: the slot id (granted); or the milliseconds until a slot may free (the caller
-- sleeps that long, then asks again); or the reason the budget is exhausted.
CREATE FUNCTION rate_reserve(
    p_budget TEXT,
    p_limits INT[],
    p_pers_ms BIGINT[],
    p_margin_ms BIGINT,
    p_min_interval_ms BIGINT,
    p_in_flight_ms BIGINT
) RETURNS TABLE (r_slot BIGINT, r_wait_ms BIGINT, r_exhausted TEXT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    b rate_budgets%ROWTYPE;
    now_at TIMESTAMPTZ;
    until_at TIMESTAMPTZ;
    freeing TIMESTAMPTZ;
    span INTERVAL;
    ms INTERVAL := INTERVAL '1 millisecond';
    longest INTERVAL;
    in_flight INTERVAL := p_in_flight_ms * INTERVAL '1 millisecond';
    new_slot BIGINT;
BEGIN
    INSERT INTO rate_budgets (budget) VALUES (p_budget) ON CONFLICT (budget) DO NOTHING;
    -- Serializes the reservations of this budget; the statements below see every slot that
    -- the previous holder of the lock committed.
    SELECT * INTO b FROM rate_budgets WHERE rate_budgets.budget = p_budget FOR UPDATE;
    now_at := clock_timestamp();
    IF b.exhausted_until > now_at THEN
        RETURN QUERY SELECT NULL::BIGINT, NULL::BIGINT, coalesce(b.exhausted_reason, 'the request quota is used up');
        RETURN;
    END IF;
    longest := (coalesce((SELECT max(x) FROM unnest(p_pers_ms) AS x), 0) + p_margin_ms) * ms;
    -- Slots that count in no window any more.
    DELETE FROM rate_slots AS s
     WHERE s.budget = p_budget AND coalesce(s.answered_at, s.started_at + in_flight) + longest <= now_at;
    until_at := now_at;
    IF b.paused_until > until_at THEN
        until_at := b.paused_until;
    END IF;
    IF b.last_start + p_min_interval_ms * ms > until_at THEN
        until_at := b.last_start + p_min_interval_ms * ms;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_limits, 1), 0) LOOP
        span := (p_pers_ms[i] + p_margin_ms) * ms;
        -- The window is full when it holds `limit` slots; the oldest of the newest `limit`
        -- frees a place when it leaves the window.
        SELECT e.at + span INTO freeing
          FROM (SELECT CASE
                         WHEN s.answered_at IS NOT NULL THEN s.answered_at
                         WHEN s.started_at + in_flight > now_at THEN now_at
                         ELSE s.started_at + in_flight
                       END AS at
                  FROM rate_slots AS s
                 WHERE s.budget = p_budget) AS e
         WHERE e.at + span > now_at
         ORDER BY e.at DESC
        OFFSET greatest(p_limits[i], 1) - 1
         LIMIT 1;
        IF freeing > until_at THEN
            until_at := freeing;
        END IF;
    END LOOP;
    IF until_at > now_at THEN
        RETURN QUERY SELECT NULL::BIGINT, ceil(extract(epoch FROM until_at - now_at) * 1000)::BIGINT, NULL::TEXT;
        RETURN;
    END IF;
    INSERT INTO rate_slots (budget, started_at) VALUES (p_budget, now_at) RETURNING rate_slots.slot_id INTO new_slot;
    UPDATE rate_budgets SET last_start = now_at WHERE rate_budgets.budget = p_budget;
    RETURN QUERY SELECT new_slot, NULL::BIGINT, NULL::TEXT;
END
$$;
