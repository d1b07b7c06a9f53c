/**
 * Cache warming: a configured list of searches and items, loaded from the origin into the
 * cache (anonymous partition) at start and again on a schedule shorter than their fresh TTL, so
 * the hottest answers are refreshed ahead of expiry and never served cold. Bounded concurrency;
 * progress and failures in the logs; a failed item never stops the run. Runs in the background
 * (`forkScoped`): start-up does not wait for it.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Either, Layer, Schedule } from "effect"
import { WarmConfig } from "../Config.js"
import { anonymous } from "../drupal/Credentials.js"
import { CachedContent } from "./CachedContent.js"
import { normalizeSearch } from "./SearchQuery.js"

/** One warming run's outcome. */
export interface WarmReport {
  readonly loaded: number
  readonly failed: number
}

/** Warms the configured searches and items once. */
export const warmOnce = Effect.gen(function*() {
  const config = yield* WarmConfig
  const content = yield* CachedContent
  const jobs = [
    ...config.searches.flatMap((q) => {
      const query = normalizeSearch({ q })
      return Either.isRight(query) ? [content.refreshSearch(query.right, anonymous)] : []
    }),
    ...config.items.map((id) => content.refreshItem(id, anonymous, { includeContent: true, format: "html" }))
  ]
  if (jobs.length === 0) return { loaded: 0, failed: 0 } satisfies WarmReport
  const results = yield* Effect.forEach(jobs, (job) => Effect.either(job), { concurrency: config.concurrency })
  const failed = results.filter(Either.isLeft).length
  const report: WarmReport = { loaded: results.length - failed, failed }
  yield* (failed === 0 ? Effect.logInfo("cache warming done") : Effect.logWarning("cache warming done with failures")).pipe(
    Effect.annotateLogs({ loaded: report.loaded, failed: report.failed })
  )
  return report
})

/** Warming at start and every `CACHE_WARM_INTERVAL_MS`, in the background of the layer's scope. */
export const WarmerLive = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* WarmConfig
    if (config.searches.length === 0 && config.items.length === 0) return
    yield* Effect.logInfo("cache warming scheduled").pipe(
      Effect.annotateLogs({ searches: config.searches.length, items: config.items.length, interval_ms: Duration.toMillis(config.interval) })
    )
    yield* Effect.forkScoped(Effect.repeat(Effect.ignore(warmOnce), Schedule.spaced(config.interval)))
  })
)
