//! Rate budgets on PostgreSQL: one statement per reservation (the `rate_reserve` function of
//! migration 0003, which locks the budget's row), instants on the database's clock.

use std::time::Duration;

use sqlx::{PgPool, Row};

use crate::StoreError;
use crate::rate::{RateHold, RateLimits, Reservation};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) async fn reserve(pool: &PgPool, budget: &str, limits: &RateLimits) -> Result<Reservation, StoreError> {
    let (counts, pers): (Vec<i32>, Vec<i64>) = limits
        .windows
        .iter()
        .filter(|(limit, per)| *limit > 0 && !per.is_zero())
        .map(|(limit, per)| (i32::try_from(*limit).unwrap_or(i32::MAX), millis(*per)))
        .unzip();
    let row = sqlx::query("SELECT r_slot, r_wait_ms, r_exhausted FROM rate_reserve($1, $2, $3, $4, $5, $6)")
        .bind(budget)
        .bind(&counts)
        .bind(&pers)
        .bind(millis(limits.margin))
        .bind(millis(limits.min_interval))
        .bind(millis(limits.in_flight_cap))
        .fetch_one(pool)
        .await?;
    let slot: Option<i64> = row.try_get("r_slot")?;
    let wait: Option<i64> = row.try_get("r_wait_ms")?;
    let exhausted: Option<String> = row.try_get("r_exhausted")?;
    Ok(match (slot, exhausted) {
        (Some(slot), _) => Reservation::Granted(slot),
        (None, Some(reason)) => Reservation::Exhausted(reason),
        (None, None) => Reservation::Wait(Duration::from_millis(u64::try_from(wait.unwrap_or(1)).unwrap_or(1).max(1))),
    })
}

pub(crate) async fn finish(pool: &PgPool, budget: &str, slot: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE rate_slots SET answered_at = greatest(started_at, clock_timestamp()) \
         WHERE slot_id = $1 AND budget = $2 AND answered_at IS NULL",
    )
    .bind(slot)
    .bind(budget)
    .execute(pool)
    .await?;
    Ok(())
}

pub(crate) async fn hold(pool: &PgPool, budget: &str, hold: &RateHold) -> Result<(), StoreError> {
    let query = match hold {
        RateHold::Pause(d) => sqlx::query(
            "INSERT INTO rate_budgets (budget, paused_until) \
             VALUES ($1, clock_timestamp() + $2 * INTERVAL '1 millisecond') \
             ON CONFLICT (budget) DO UPDATE SET paused_until = greatest(rate_budgets.paused_until, EXCLUDED.paused_until)",
        )
        .bind(budget)
        .bind(millis(*d)),
        RateHold::Exhaust(d, reason) => sqlx::query(
            "INSERT INTO rate_budgets (budget, exhausted_until, exhausted_reason) \
             VALUES ($1, clock_timestamp() + $2 * INTERVAL '1 millisecond', $3) \
             ON CONFLICT (budget) DO UPDATE SET exhausted_until = EXCLUDED.exhausted_until, \
             exhausted_reason = EXCLUDED.exhausted_reason",
        )
        .bind(budget)
        .bind(millis(*d))
        .bind(crate::model::text(reason)),
    };
    query.execute(pool).await?;
    Ok(())
}
