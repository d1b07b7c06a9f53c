/**
 * When the Drupal client coalesces calls into one JSON-RPC batch, and how large a batch may be.
 *
 * A real Drupal serves JSON-RPC from a finite pool of PHP workers; a request pays a bootstrap,
 * then runs its items one after another in that worker (`drupal-jsonrpc.md`, "What a request
 * costs a real Drupal"). Batching saves bootstraps and workers but makes every item of a batch
 * wait for the last one. So:
 *
 * - `off`: every call is its own HTTP request.
 * - `always`: calls that arrive within the batch window are coalesced, up to `batchMaxSize` per
 *   request (the behaviour of earlier versions).
 * - `adaptive` (the default): while fewer than `inFlightThreshold` calls are in flight upstream,
 *   the upstream is assumed to have idle workers and a call goes out on its own at once
 *   (no window, no wait for a neighbour's items). Beyond that, calls are coalesced, and each
 *   coalesced group is cut by two budgets:
 *   - latency: a batch's expected time stays within `latencyFactor` × the time of a single call.
 *     The cap is learned from the replies (moving averages of a single call's time and of a
 *     batch's time per item), so it follows the site's real bootstrap and item costs instead of
 *     a guess. A batch of `n` costs about `bootstrap + n·item`; the cap is the `n` where that
 *     reaches the budget.
 *   - concurrency: a group is never cut into more than `inFlightThreshold` batches. Under a
 *     burst, many small batches would only wait for workers in Drupal's queue (measured with
 *     `bench/batching.ts`: the latency cap alone sent ~47 requests per burst of 400, and its p99
 *     was above `always`'s); beyond that count the batches grow instead.
 *
 * Concurrency: one instance per client; its methods are synchronous, cheap, never throw, and
 * are called from any fiber (JavaScript runs them one at a time).
 *
 * @since 0.2.0
 */

/** The batching modes of `DRUPAL_BATCH`. */
export type BatchMode = "adaptive" | "off" | "always"

/** Options of {@link make}. */
export interface BatchPolicyOptions {
  readonly mode: BatchMode
  /** Largest batch in any mode. */
  readonly batchMaxSize: number
  /** `adaptive`: calls in flight upstream from which further calls are coalesced. */
  readonly inFlightThreshold: number
  /** `adaptive`: a batch may take at most this many times a single call's time. */
  readonly latencyFactor: number
}

/** The live policy of one client. */
export interface BatchPolicy {
  readonly mode: BatchMode
  /**
   * Admits one call: whether it goes through the batching window (else it is sent alone, at
   * once). Every admitted call is counted in flight until {@link BatchPolicy.leave}.
   */
  readonly admit: () => boolean
  /** An admitted call has its answer (any outcome). */
  readonly leave: () => void
  /** Largest batch to send now, for a coalesced group of `groupSize` calls. */
  readonly cap: (groupSize?: number) => number
  /** An upstream request carrying `size` calls finished after `ms`. */
  readonly observe: (size: number, ms: number, ok: boolean) => void
  /** Calls in flight upstream. */
  readonly inFlight: () => number
}

/** Weight of a new sample in the moving averages: about the last ten replies count. */
const ALPHA = 0.1

/** Creates the policy of one client. */
export const make = (options: BatchPolicyOptions): BatchPolicy => {
  let inFlight = 0
  // Moving averages, unset until the first reply of each kind.
  let singleMs: number | undefined
  let perItemMs: number | undefined
  const ewma = (previous: number | undefined, sample: number) =>
    previous === undefined ? sample : previous + ALPHA * (sample - previous)

  const adaptiveCap = (): number => {
    // Until both costs have been measured, batches are as large as `always` makes them: the
    // first replies teach the costs, and the cap then comes down to the budget. (Starting small
    // instead would cut the first burst into many tiny batches.)
    if (singleMs === undefined || perItemMs === undefined) return options.batchMaxSize
    const item = Math.max(perItemMs, 0.05)
    // Rounded, not floored: approached from below, a floored estimate stalls one short of the
    // size whose time meets the budget.
    const n = Math.round((options.latencyFactor * singleMs) / item)
    return Math.max(2, Math.min(options.batchMaxSize, n))
  }

  return {
    mode: options.mode,
    admit: () => {
      const coalesce = options.mode === "always"
        ? true
        : options.mode === "off"
        ? false
        : inFlight >= options.inFlightThreshold
      inFlight++
      return coalesce
    },
    leave: () => {
      inFlight = Math.max(0, inFlight - 1)
    },
    cap: (groupSize = 0) =>
      options.mode === "adaptive"
        ? Math.min(options.batchMaxSize, Math.max(adaptiveCap(), Math.ceil(groupSize / options.inFlightThreshold)))
        : options.mode === "always"
        ? options.batchMaxSize
        : 1,
    observe: (size, ms, ok) => {
      // Failures say nothing about the cost of a call (a refused connection answers at once).
      if (!ok || !Number.isFinite(ms) || ms < 0) return
      if (size <= 1) singleMs = ewma(singleMs, ms)
      else perItemMs = ewma(perItemMs, ms / size)
    },
    inFlight: () => inFlight
  }
}

/** Cuts `items` into consecutive parts of at most `cap` items, as even as possible. */
export const split = <A>(items: ReadonlyArray<A>, cap: number): Array<ReadonlyArray<A>> => {
  if (items.length <= cap) return [items]
  const parts = Math.ceil(items.length / Math.max(1, cap))
  const size = Math.ceil(items.length / parts)
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
