/**
 * The retry policy for upstream calls: exponential backoff with **full jitter**, a bound on
 * attempts and a bound on elapsed time, retrying only the failures the caller calls retryable
 * (`isRetryable`; the Drupal client passes its transient-error rule).
 *
 * Defaults ({@link defaults}) and why: the Drupal plan's client retried 3 times from 1 s, which
 * suits a batch importer, not a gateway whose upstream target is < 200 ms p95 and whose callers
 * are LLM tool calls waiting on the answer. We keep the 3 retries but start at **50 ms** (about a
 * fast upstream round trip, enough for a php-fpm worker or a connection pool to free up), double
 * up to a **1 s cap** (a retry later than that is better served stale from cache or failed fast
 * by the circuit breaker), and stop after **5 s** in total so a retried call never outlives a
 * client's patience. With full jitter the expected added wait over 3 retries is
 * (50 + 100 + 200) / 2 = 175 ms, at most 350 ms; the jitter spreads the retries of many callers
 * that failed together (full jitter is the AWS-recommended variant: least total work).
 *
 * Only apply the policy to idempotent calls (reads, discovery): a call that timed out may have
 * run upstream.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Random, Schedule, ScheduleDecision, ScheduleInterval } from "effect"

/** What the per-retry hook is told, once for each retry that is about to be made. */
export interface RetryInfo<E> {
  /** 1 for the first retry (the second attempt), 2 for the next, … */
  readonly retry: number
  /** The jittered delay before that retry. */
  readonly delay: Duration.Duration
  /** The failure that caused it. */
  readonly error: E
}

/** Options of {@link policy}; every field is optional and defaults to {@link defaults}. */
export interface RetryOptions<E = unknown> {
  /** First backoff ceiling; the n-th retry (n from 0) waits random(0, min(cap, base·2^n)). */
  readonly base?: Duration.DurationInput
  /** Upper bound of any single backoff ceiling. */
  readonly cap?: Duration.DurationInput
  /** Attempts in total, the first one included (so `4` = 3 retries). `1` disables retrying. */
  readonly maxAttempts?: number
  /**
   * Bound on elapsed time, measured from the first failure: a retry whose start would fall
   * after it is not made (the policy gives up instead of sleeping into the deadline).
   */
  readonly maxElapsed?: Duration.DurationInput
  /**
   * Which failures are retried. Default: none ({@link retryableByDefault}): only the caller
   * knows which of its failures are transient and whether its call is idempotent. The Drupal
   * client passes its transient-error rule.
   */
  readonly isRetryable?: (error: E) => boolean
  /**
   * Run once per retry, before its delay (wire a retry counter here). Must not fail; it runs on
   * the retrying fiber, so keep it short.
   */
  readonly onRetry?: (info: RetryInfo<E>) => Effect.Effect<void>
}

/**
 * The default `isRetryable`: nothing is retried unless the caller says so. (Whatever the caller's
 * rule, a `CircuitOpenError` should stay unretried: retrying it would defeat the fail-fast.)
 */
export const retryableByDefault = (_error: unknown): boolean => false

/** The default policy values; see the module documentation for why. */
export const defaults = {
  base: Duration.millis(50),
  cap: Duration.seconds(1),
  maxAttempts: 4,
  maxElapsed: Duration.seconds(5)
} as const

interface RetryState {
  /** Retries made so far. */
  readonly retries: number
  /** Clock time of the first failure, once there was one. */
  readonly startedAt: number | undefined
}

/**
 * The retry policy as a `Schedule` whose input is the failure and whose output is the number of
 * retries made so far. Use with `Effect.retry(effect, policy(options))`.
 *
 * Contract:
 * - a failure for which `isRetryable` is false ends the schedule at once (no delay, no hook);
 * - at most `maxAttempts - 1` retries;
 * - the n-th retry (n from 0) waits a whole number of milliseconds drawn uniformly from
 *   [0, min(cap, base·2^n)] using the fiber's `Random` (seed it with `Effect.withRandom` for
 *   reproducible delays) and sleeps on the fiber's `Clock` (so `TestClock` drives it);
 * - no retry starts later than `maxElapsed` after the first failure;
 * - `onRetry` runs exactly once per retry actually scheduled.
 *
 * Each run of the schedule has its own state; one policy value can be shared by any number of
 * concurrent calls. Throws a `RangeError` at construction for a `maxAttempts` that is not an
 * integer >= 1, or a negative or infinite duration.
 */
export const policy = <E = unknown>(options: RetryOptions<E> = {}): Schedule.Schedule<number, E> => {
  const baseMs = Duration.toMillis(options.base ?? defaults.base)
  const capMs = Duration.toMillis(options.cap ?? defaults.cap)
  const maxAttempts = options.maxAttempts ?? defaults.maxAttempts
  const maxElapsedMs = Duration.toMillis(options.maxElapsed ?? defaults.maxElapsed)
  const isRetryable = options.isRetryable ?? retryableByDefault
  const onRetry = options.onRetry
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`Retry maxAttempts must be an integer >= 1, got ${maxAttempts}`)
  }
  if (![baseMs, capMs, maxElapsedMs].every((ms) => Number.isFinite(ms) && ms >= 0)) {
    throw new RangeError("Retry base, cap and maxElapsed must be finite durations >= 0")
  }

  const stop = (state: RetryState) => Effect.succeed([state, state.retries, ScheduleDecision.done] as const)

  return Schedule.makeWithState<RetryState, E, number>(
    { retries: 0, startedAt: undefined },
    (now, error, previous) => {
      const state: RetryState = { retries: previous.retries, startedAt: previous.startedAt ?? now }
      if (!isRetryable(error) || state.retries + 1 >= maxAttempts) return stop(state)
      const ceiling = Math.floor(Math.min(capMs, baseMs * 2 ** state.retries))
      return Effect.flatMap(Random.nextIntBetween(0, ceiling + 1), (delayMs) => {
        if (now - (state.startedAt ?? now) + delayMs > maxElapsedMs) return stop(state)
        const next: RetryState = { retries: state.retries + 1, startedAt: state.startedAt }
        const decision = [next, next.retries, ScheduleDecision.continueWith(ScheduleInterval.after(now + delayMs))] as const
        return onRetry === undefined
          ? Effect.succeed(decision)
          : Effect.as(onRetry({ retry: next.retries, delay: Duration.millis(delayMs), error }), decision)
      })
    }
  )
}

/**
 * `Effect.retry` with {@link policy}, for `pipe`: runs `self`, and on a retryable failure runs
 * it again per the policy; the last failure is the result when the policy gives up. The error
 * type of `self` is kept (`E0` only types the options' callbacks). Interrupting the returned
 * effect interrupts the current attempt or delay.
 *
 * The first attempt runs bare: `Effect.retry` builds its schedule's driver (two `Ref`s and their
 * steps) before the first attempt, which every Drupal call paid although nearly all succeed at
 * once. Here the driver is built on the first failure, which is handed to it as if the retried
 * effect had just failed with it, so the policy sees the same failures in the same order.
 */
export const retry = <E0 = unknown>(options: RetryOptions<E0> = {}) => {
  const schedule = policy<E0>(options)
  return <A, E extends E0, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.catchAll(self, (first) =>
      Effect.suspend(() => {
        let replay = true
        const again = Effect.suspend((): Effect.Effect<A, E, R> => {
          if (!replay) return self
          replay = false
          return Effect.fail(first)
        })
        return Effect.retry(again, schedule)
      }))
}
