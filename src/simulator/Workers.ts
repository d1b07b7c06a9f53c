/**
 * What a request costs a real Drupal: a finite pool of PHP workers (PHP-FPM). Each HTTP request
 * waits for a worker, first in first out; once it has one it pays a bootstrap (kernel, container,
 * routing, authentication: log-normal with a given mean and 99th percentile) and then runs its
 * items one after another in that worker, each paying its own cost (a search more than an entity
 * load). A batch of n items therefore holds one worker for bootstrap + n item costs. When every
 * worker is busy requests queue; beyond `queueMax` waiting requests the site answers 503 (the
 * FPM listen backlog is full).
 *
 * Time is real time (`setTimeout`): the simulator is a separate server, not an Effect program.
 * Bootstrap draws come from a PRNG seeded with `seed`.
 *
 * @since 0.1.0
 */
import { lognormalParams } from "./Faults.js"
import { makeRng, normal } from "./Random.js"

/** The cost model. */
export interface CostConfig {
  /** `false`: requests cost nothing and never queue (fast unit specs). */
  readonly enabled: boolean
  /** PHP workers serving requests at once. */
  readonly workers: number
  /** Requests that may wait for a worker; one more is answered 503 at once. */
  readonly queueMax: number
  /** Mean of the log-normal bootstrap, in ms. */
  readonly bootstrapMeanMs: number
  /** 99th percentile of the bootstrap, in ms. */
  readonly bootstrapP99Ms: number
  /** Cost of one executed item (an entity load and render), in ms. */
  readonly itemMs: number
  /** Cost of one executed `content.search` item, in ms. */
  readonly searchMs: number
  /** Seed of the bootstrap draws. */
  readonly seed: number
}

/**
 * The model's defaults: 16 workers (PHP-FPM pools run 8–64 per server), 256 waiting requests
 * (a common `listen.backlog`-sized bound, ~16 full rounds of the pool), a 30 ms mean / 120 ms p99
 * uncached bootstrap, 5 ms per item and 25 ms per search.
 */
export const defaultCost: CostConfig = {
  enabled: true,
  workers: 16,
  queueMax: 256,
  bootstrapMeanMs: 30,
  bootstrapP99Ms: 120,
  itemMs: 5,
  searchMs: 25,
  seed: 1
}

/** A worker held by one request. */
export interface Lease {
  /** Time spent waiting for the worker, in ms. */
  readonly queuedMs: number
  /** Gives the worker back (idempotent); adds the time it was held to `busyMs`. */
  readonly release: () => void
}

/** The pool of one simulator. Used from the event loop only. */
export interface WorkerPool {
  readonly config: CostConfig
  /**
   * Waits for a worker, first in first out. `undefined` at once when `queueMax` requests are
   * already waiting (the caller answers 503). With the model disabled, resolves at once.
   */
  readonly acquire: () => Promise<Lease | undefined>
  /** One bootstrap draw, in ms (0 when disabled). */
  readonly bootstrapMs: () => number
  /** The cost of running these method ids one after another, in ms (0 when disabled). */
  readonly itemsMs: (methods: ReadonlyArray<string>) => number
  /** Workers held now. */
  readonly busy: () => number
  /** Requests waiting now. */
  readonly waiting: () => number
}

/** Callbacks for statistics. */
export interface WorkerPoolHooks {
  readonly onQueued: (ms: number) => void
  readonly onReleased: (busyMs: number) => void
}

/** A pool with `config`. */
export const makeWorkerPool = (config: CostConfig, hooks: WorkerPoolHooks): WorkerPool => {
  const rng = makeRng(config.seed)
  const { mu, sigma } = lognormalParams(config.bootstrapMeanMs, config.bootstrapP99Ms)
  let busy = 0
  // Waiters in arrival order; bounded by `queueMax`.
  const queue: Array<() => void> = []

  const lease = (queuedMs: number): Lease => {
    const since = performance.now()
    let released = false
    hooks.onQueued(queuedMs)
    return {
      queuedMs,
      release: () => {
        if (released) return
        released = true
        hooks.onReleased(performance.now() - since)
        const next = queue.shift()
        if (next !== undefined) next()
        else busy--
      }
    }
  }

  const free: Lease = { queuedMs: 0, release: () => {} }

  return {
    config,
    acquire: () => {
      if (!config.enabled) return Promise.resolve(free)
      if (busy < config.workers) {
        busy++
        return Promise.resolve(lease(0))
      }
      if (queue.length >= config.queueMax) return Promise.resolve(undefined)
      const enqueued = performance.now()
      // The worker passes straight from the releasing request to this one (busy stays).
      return new Promise((resolve) => queue.push(() => resolve(lease(performance.now() - enqueued))))
    },
    bootstrapMs: () =>
      !config.enabled || config.bootstrapMeanMs <= 0
        ? 0
        : Math.min(600_000, Math.exp(mu + sigma * normal(rng))),
    itemsMs: (methods) =>
      config.enabled ? methods.reduce((ms, m) => ms + (m === "content.search" ? config.searchMs : config.itemMs), 0) : 0,
    busy: () => busy,
    waiting: () => queue.length
  }
}
