/**
 * A circuit breaker for one dependency: the Drupal upstream, or one cache tier. It watches the
 * outcome of the calls that go through it and, when the dependency looks down, fails new calls
 * fast with {@link CircuitOpenError} instead of letting them queue on a dead socket.
 *
 * States:
 * - `closed`: calls run. The breaker opens after `consecutiveFailures` counted failures in a
 *   row, or when at least `minimumCalls` calls finished in the rolling `window` and the share of
 *   counted failures among them reached `failureRatio`.
 * - `open`: calls fail at once with `CircuitOpenError` (the effect is not run) until `cooldown`
 *   has passed since opening.
 * - `half_open`: the first call after the cooldown moves the breaker here; at most
 *   `halfOpenMaxCalls` trial calls run at a time, the rest fail fast. A trial that succeeds
 *   closes the breaker (counters reset); a trial that fails reopens it for another cooldown.
 *
 * Defaults ({@link defaults}) and why: 5 consecutive failures is a clear signal on a gateway
 * that retries (one logical call makes up to 4 attempts, each counted) without tripping on a
 * single blip; 50 % of at least 20 calls over 10 s catches an upstream that fails half the time
 * under load, where successes keep resetting the consecutive count; a 5 s cooldown covers a
 * php-fpm or database restart while the cache serves stale content, yet recovers quickly;
 * 1 trial call probes a recovering upstream without a stampede.
 *
 * No `Effect.Service` here on purpose: a breaker belongs to the adapter that owns the
 * dependency (one per upstream, one per tier), which calls {@link make} in its own `make` and
 * says which of its failures count (`isFailure`). This module knows no particular dependency.
 *
 * @since 0.1.0
 */
import { Cause, Chunk, Data, Duration, Effect, Exit } from "effect"

/**
 * A circuit breaker refused the call without running it. Generic on purpose: the same error is
 * raised by the breaker in front of the Drupal upstream and by the ones in front of cache tiers;
 * `upstream` names which. `retryAfter` is the breaker's estimate of when it will admit a trial
 * call again (never negative). Not transient: retrying it would defeat the fail-fast.
 */
export class CircuitOpenError extends Data.TaggedError("CircuitOpenError")<{
  readonly upstream: string
  readonly retryAfter: Duration.Duration
}> {
  override get message(): string {
    return `Circuit for ${this.upstream} is open; retry after ${Duration.format(this.retryAfter)}`
  }
}

/** The breaker's state, for a gauge (`closed` = 0, `half_open` = 1, `open` = 2 is a good encoding). */
export type State = "closed" | "open" | "half_open"

/** A transition, as told to `onStateChange`. */
export interface StateChange {
  readonly name: string
  readonly from: State
  readonly to: State
  /** Clock time of the transition, in epoch milliseconds. */
  readonly at: number
}

/** Options of {@link make}; everything but `name` defaults to {@link defaults}. */
export interface CircuitBreakerOptions {
  /** What is protected, e.g. `drupal` or `redis`; put in `CircuitOpenError.upstream`. */
  readonly name: string
  /** Counted failures in a row that open the breaker (integer >= 1). */
  readonly consecutiveFailures?: number
  /** Share of counted failures in the window that opens the breaker, in (0, 1]. */
  readonly failureRatio?: number
  /** Calls that must have finished in the window before the ratio is looked at (integer >= 1). */
  readonly minimumCalls?: number
  /** Length of the rolling window (kept as 10 buckets of window/10 each). */
  readonly window?: Duration.DurationInput
  /** Time the breaker stays open before admitting trial calls. */
  readonly cooldown?: Duration.DurationInput
  /** Trial calls allowed to run at the same time in `half_open` (integer >= 1). */
  readonly halfOpenMaxCalls?: number
  /**
   * Which typed failures count against the dependency. Default: every typed failure counts.
   * The owner of the dependency passes its own rule (the Drupal client counts only transient
   * errors: a 404 or an access denied proves the upstream is alive). A failure that does not
   * count is recorded as a success.
   */
  readonly isFailure?: (error: unknown) => boolean
  /**
   * Run on every transition, in transition order, one at a time (under a lock taken only for
   * it): keep it short (set a gauge, log). The call whose outcome or admission made the
   * transition returns only after the hook has run. Its failures and defects are logged and
   * ignored.
   */
  readonly onStateChange?: (change: StateChange) => Effect.Effect<void>
}

/** Default option values; see the module documentation for why. */
export const defaults = {
  consecutiveFailures: 5,
  failureRatio: 0.5,
  minimumCalls: 20,
  window: Duration.seconds(10),
  cooldown: Duration.seconds(5),
  halfOpenMaxCalls: 1
} as const

/** A circuit breaker built by {@link make}. */
export interface CircuitBreaker {
  readonly name: string
  /**
   * Runs `self` through the breaker. When the breaker admits the call, `self` runs unchanged and
   * its outcome is recorded: success, or a failure that does not count → success; a counted
   * failure or a defect → failure; interruption only → nothing (a half-open trial slot is
   * released). When it does not, fails with `CircuitOpenError` without running `self`.
   * Concurrency-safe: admission and recording are atomic; the outcome of a call admitted
   * before a transition is ignored after it.
   */
  readonly withBreaker: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpenError, R>
  /**
   * The current state. `open` stays `open` after the cooldown until the next call moves it to
   * `half_open` (transitions happen on calls, not on timers).
   */
  readonly state: Effect.Effect<State>
}

interface Bucket {
  /** Start of the bucket's slot in epoch ms; a bucket whose slot has passed is stale. */
  readonly start: number
  readonly calls: number
  readonly failures: number
}

interface Internal {
  readonly state: State
  /** Bumped on every transition; outcomes of calls admitted in an older generation are dropped. */
  readonly generation: number
  readonly consecutive: number
  readonly buckets: ReadonlyArray<Bucket>
  readonly openedAt: number
  readonly trialsInFlight: number
}

interface Permit {
  readonly generation: number
  readonly trial: boolean
}

type Outcome = "success" | "failure" | "ignored"

const BUCKETS = 10

const emptyBuckets: ReadonlyArray<Bucket> = Array.from({ length: BUCKETS }, () => ({ start: -1, calls: 0, failures: 0 }))

const defaultIsFailure = (_error: unknown): boolean => true

const positiveInteger = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`CircuitBreaker ${name} must be an integer >= 1, got ${value}`)
  return value
}

/**
 * Builds a breaker, closed. The effect dies with a `RangeError` for out-of-range options (a
 * programming error, found at startup). Time comes from the `Clock` of the calling fiber, so `TestClock`
 * drives cooldowns and the window in tests. Memory is constant (10 window buckets).
 */
export const make = (options: CircuitBreakerOptions): Effect.Effect<CircuitBreaker> =>
  Effect.suspend(() => {
    const name = options.name
    const consecutiveFailures = positiveInteger("consecutiveFailures", options.consecutiveFailures ?? defaults.consecutiveFailures)
    const minimumCalls = positiveInteger("minimumCalls", options.minimumCalls ?? defaults.minimumCalls)
    const halfOpenMaxCalls = positiveInteger("halfOpenMaxCalls", options.halfOpenMaxCalls ?? defaults.halfOpenMaxCalls)
    const failureRatio = options.failureRatio ?? defaults.failureRatio
    if (!(failureRatio > 0 && failureRatio <= 1)) {
      throw new RangeError(`CircuitBreaker failureRatio must be in (0, 1], got ${failureRatio}`)
    }
    const windowMs = Duration.toMillis(options.window ?? defaults.window)
    const cooldownMs = Duration.toMillis(options.cooldown ?? defaults.cooldown)
    if (!(windowMs > 0 && Number.isFinite(windowMs) && cooldownMs >= 0 && Number.isFinite(cooldownMs))) {
      throw new RangeError("CircuitBreaker window must be > 0 and cooldown >= 0, both finite")
    }
    const bucketMs = windowMs / BUCKETS
    const isFailure = options.isFailure ?? defaultIsFailure
    const onStateChange = options.onStateChange

    const initial: Internal = {
      state: "closed",
      generation: 0,
      consecutive: 0,
      buckets: emptyBuckets,
      openedAt: 0,
      trialsInFlight: 0
    }

    const transition = (s: Internal, to: State, now: number): Internal => ({
      state: to,
      generation: s.generation + 1,
      consecutive: 0,
      buckets: emptyBuckets,
      openedAt: to === "open" ? now : s.openedAt,
      trialsInFlight: 0
    })

    const record = (buckets: ReadonlyArray<Bucket>, now: number, failed: boolean): ReadonlyArray<Bucket> => {
      const slot = Math.floor(now / bucketMs)
      const index = slot % BUCKETS
      const start = slot * bucketMs
      return buckets.map((bucket, i) => {
        if (i !== index) return bucket
        const current = bucket.start === start ? bucket : { start, calls: 0, failures: 0 }
        return { start, calls: current.calls + 1, failures: current.failures + (failed ? 1 : 0) }
      })
    }

    const ratioTripped = (buckets: ReadonlyArray<Bucket>, now: number): boolean => {
      let calls = 0
      let failures = 0
      for (const bucket of buckets) {
        if (bucket.start > now - windowMs) {
          calls += bucket.calls
          failures += bucket.failures
        }
      }
      return calls >= minimumCalls && failures / calls >= failureRatio
    }

    type Step<B> = readonly [B, Internal, State | undefined]

    const admit = (s: Internal, now: number): Step<Permit | CircuitOpenError> => {
      switch (s.state) {
        case "closed":
          return [{ generation: s.generation, trial: false }, s, undefined]
        case "open": {
          const reopensAt = s.openedAt + cooldownMs
          if (now < reopensAt) {
            return [new CircuitOpenError({ upstream: name, retryAfter: Duration.millis(reopensAt - now) }), s, undefined]
          }
          const next = { ...transition(s, "half_open", now), trialsInFlight: 1 }
          return [{ generation: next.generation, trial: true }, next, "half_open"]
        }
        case "half_open":
          if (s.trialsInFlight < halfOpenMaxCalls) {
            return [{ generation: s.generation, trial: true }, { ...s, trialsInFlight: s.trialsInFlight + 1 }, undefined]
          }
          return [new CircuitOpenError({ upstream: name, retryAfter: Duration.millis(cooldownMs) }), s, undefined]
      }
    }

    const settle = (s: Internal, permit: Permit, outcome: Outcome, now: number): Step<void> => {
      if (permit.generation !== s.generation) return [undefined, s, undefined]
      if (s.state === "half_open" && permit.trial) {
        switch (outcome) {
          case "success":
            return [undefined, transition(s, "closed", now), "closed"]
          case "failure":
            return [undefined, transition(s, "open", now), "open"]
          case "ignored":
            return [undefined, { ...s, trialsInFlight: Math.max(0, s.trialsInFlight - 1) }, undefined]
        }
      }
      if (s.state !== "closed" || outcome === "ignored") return [undefined, s, undefined]
      const failed = outcome === "failure"
      const next: Internal = {
        ...s,
        consecutive: failed ? s.consecutive + 1 : 0,
        buckets: record(s.buckets, now, failed)
      }
      if (failed && (next.consecutive >= consecutiveFailures || ratioTripped(next.buckets, now))) {
        return [undefined, transition(next, "open", now), "open"]
      }
      return [undefined, next, undefined]
    }

    const classify = <A, E>(exit: Exit.Exit<A, E>): Outcome => {
      if (Exit.isSuccess(exit)) return "success"
      const cause = exit.cause
      if (Cause.isInterruptedOnly(cause)) return "ignored"
      if (Chunk.some(Cause.failures(cause), isFailure)) return "failure"
      if (Cause.isDie(cause)) return "failure"
      return "success"
    }

    return Effect.gen(function*() {
      // The state is a plain variable: every step reads and writes it in one synchronous block,
      // which is atomic in JavaScript, so admission and recording take no lock. Only the
      // transitions' hook runs under a lock, so that hooks see transitions one at a time, in order.
      let current = initial
      const lock = yield* Effect.makeSemaphore(1)
      const changes: Array<StateChange> = []

      const notify = (change: StateChange): Effect.Effect<void> =>
        onStateChange === undefined
          ? Effect.void
          : onStateChange(change).pipe(
            Effect.catchAllCause((cause) => Effect.logWarning("CircuitBreaker onStateChange failed", cause))
          )

      /** Tells the hook every transition not told yet, oldest first; one teller at a time. */
      const drain: Effect.Effect<void> = lock.withPermits(1)(
        Effect.suspend(function loop(): Effect.Effect<void> {
          const change = changes.shift()
          return change === undefined ? Effect.void : Effect.zipRight(notify(change), Effect.suspend(loop))
        })
      )

      /**
       * Reads the state, steps it and writes it in one synchronous block; a transition is queued
       * for the hook, which has been told by the time the returned effect ends.
       */
      const step = <B>(f: (s: Internal, now: number) => Step<B>): Effect.Effect<B> =>
        Effect.clockWith((clock) => {
          const now = clock.unsafeCurrentTimeMillis()
          const s = current
          const [result, next, changedTo] = f(s, now)
          current = next
          if (changedTo === undefined) return Effect.succeed(result)
          if (onStateChange !== undefined) changes.push({ name, from: s.state, to: changedTo, at: now })
          return Effect.as(drain, result)
        })

      const withBreaker = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpenError, R> =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(step(admit), (admitted): Effect.Effect<A, E | CircuitOpenError, R> =>
            admitted instanceof CircuitOpenError
              ? Effect.fail(admitted)
              : restore(self).pipe(
                Effect.onExit((exit) => step((s, now) => settle(s, admitted, classify(exit), now)))
              ))
        )

      return {
        name,
        withBreaker,
        state: Effect.sync(() => current.state)
      } satisfies CircuitBreaker
    })
  })
