/**
 * The gateway's configuration keys with their defaults, except those of the cache tiers
 * (`cache/CacheConfig.ts`), of telemetry (`telemetry/TelemetryConfig.ts`) and of the built-in
 * simulator (`simulator/SimulatorConfig.ts`), each module beside the code it configures. Where a
 * module has defaults of its own (the circuit breaker, the retry policy), the keys here read
 * them from it rather than copy them. The README's configuration table lists every key; keep
 * them in step.
 *
 * @since 0.1.0
 */
import { Config, ConfigError, Duration, Either, Option, Redacted } from "effect"
import { createHash } from "node:crypto"
import { millis, nonNegativeInt, positiveInt, ratio } from "./ConfigKeys.js"
import { MAX_ACCEPT_HANDLES } from "./http/AcceptHandles.js"
import * as CircuitBreaker from "./resilience/CircuitBreaker.js"
import * as Retry from "./resilience/Retry.js"

/** The Drupal upstream: absent means "start the built-in simulator and use it" (the demo). */
export const DrupalUrl: Config.Config<Option.Option<URL>> = Config.option(Config.url("DRUPAL_URL"))

/** Whether `host` is a loopback address (`localhost`, `127.0.0.0/8`, `::1`). */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/**
 * The address the gateway binds: `HOST`, by default `0.0.0.0` with `DRUPAL_URL` and `127.0.0.1`
 * without it. Without `DRUPAL_URL` the gateway is the demo (the built-in simulator, where
 * `demo-admin-token` is an administrator), so a non-loopback `HOST` is refused unless
 * `DEMO_PUBLIC=true` asks for it explicitly.
 */
export const ListenHost: Config.Config<string> = Config.all({
  host: Config.option(Config.string("HOST")),
  drupal: DrupalUrl,
  demoPublic: Config.boolean("DEMO_PUBLIC").pipe(Config.withDefault(false))
}).pipe(
  Config.mapOrFail(({ demoPublic, drupal, host }) => {
    if (Option.isSome(drupal)) return Either.right(Option.getOrElse(host, () => "0.0.0.0"))
    const chosen = Option.getOrElse(host, () => "127.0.0.1")
    return isLoopback(chosen) || demoPublic
      ? Either.right(chosen)
      : Either.left(ConfigError.InvalidData(
        ["HOST"],
        `HOST=${chosen} is not a loopback address and DRUPAL_URL is unset: the gateway would expose the demo simulator ` +
          "(one of its demo tokens is an administrator) to the network. Set DRUPAL_URL, or DEMO_PUBLIC=true to expose the demo on purpose."
      ))
  })
)

/** Where the gateway listens and how it treats connections. */
export const ServerConfig = Config.all({
  port: Config.port("PORT").pipe(Config.withDefault(8080)),
  host: ListenHost,
  /** Upper bound on draining in-flight requests at shutdown before connections are cut. */
  shutdownTimeout: millis("SHUTDOWN_TIMEOUT_MS", 10_000),
  keepAliveTimeout: millis("HTTP_KEEP_ALIVE_TIMEOUT_MS", 5_000),
  headersTimeout: millis("HTTP_HEADERS_TIMEOUT_MS", 10_000),
  requestTimeout: millis("HTTP_REQUEST_TIMEOUT_MS", 30_000),
  maxBodyBytes: positiveInt("HTTP_MAX_BODY_BYTES", 1024 * 1024),
  /** A response not finished this long after its request arrived is cut (a client that stopped reading). */
  responseTimeout: millis("HTTP_RESPONSE_TIMEOUT_MS", 300_000),
  /** Extra accepting handles on the listening socket (`http/AcceptHandles.ts`): connections accepted per loop turn, minus one. */
  acceptHandles: Config.integer("HTTP_ACCEPT_HANDLES").pipe(
    Config.validate({
      message: `HTTP_ACCEPT_HANDLES must be a whole number from 0 to ${MAX_ACCEPT_HANDLES}`,
      validation: (n) => n >= 0 && n <= MAX_ACCEPT_HANDLES
    }),
    Config.withDefault(64)
  )
})
export type ServerConfig = Config.Config.Success<typeof ServerConfig>

/**
 * Per-client bounds (`limits/ClientLimits.ts`): requests in flight and request rate per client
 * address (an IPv6 client by its /64). A bound of 0 is no bound; `CLIENT_LIMITS=off` lifts both.
 */
export const ClientLimitsConfig = Config.all({
  enabled: Config.literal("on", "off")("CLIENT_LIMITS").pipe(Config.withDefault("on")),
  maxConcurrent: nonNegativeInt("CLIENT_MAX_CONCURRENT", 64),
  ratePerSecond: nonNegativeInt("CLIENT_RATE_PER_SEC", 200),
  burst: positiveInt("CLIENT_RATE_BURST", 400),
  maxClients: positiveInt("CLIENT_MAX_TRACKED", 100_000),
  trustProxyHops: nonNegativeInt("HTTP_TRUST_PROXY_HOPS", 0),
  /** How often the admitted counts are added to the shared windows in Redis (when configured). */
  syncInterval: millis("CLIENT_LIMITS_SYNC_MS", 100, 10)
}).pipe(
  Config.map((c) => ({
    ...c,
    maxConcurrent: c.enabled === "off" ? 0 : c.maxConcurrent,
    ratePerSecond: c.enabled === "off" ? 0 : c.ratePerSecond,
    exemptPaths: ["/health", "/health/live"] as ReadonlyArray<string>
  }))
)
export type ClientLimitsConfig = Config.Config.Success<typeof ClientLimitsConfig>

/** Logging. */
export const LogConfig = Config.all({
  level: Config.literal("trace", "debug", "info", "warning", "error")("LOG_LEVEL").pipe(Config.withDefault("info")),
  format: Config.literal("json", "pretty")("LOG_FORMAT").pipe(Config.withDefault("json"))
})
export type LogConfig = Config.Config.Success<typeof LogConfig>

/** The site's id: 12 hex digits of sha256(site base URL), or `demo` for the built-in simulator. */
export const siteIdOf = (drupalUrl: Option.Option<URL>): string =>
  Option.match(drupalUrl, {
    onNone: () => "demo",
    onSome: (url) => createHash("sha256").update(`${url.origin}${url.pathname.replace(/\/+$/, "")}`).digest("hex").slice(0, 12)
  })

/** `da:<site id>:` (see {@link siteIdOf}). */
export const sitePrefix = (drupalUrl: Option.Option<URL>): string => `da:${siteIdOf(drupalUrl)}:`

/**
 * The site every stored cache entry names (Redis and PostgreSQL): entries of another site read
 * as misses. `CACHE_SITE_ID`, or by default derived from `DRUPAL_URL` (see {@link siteIdOf}).
 */
export const SiteId: Config.Config<string> = Config.all({
  explicit: Config.option(Config.string("CACHE_SITE_ID")),
  drupal: DrupalUrl
}).pipe(Config.map(({ drupal, explicit }) => Option.getOrElse(explicit, () => siteIdOf(drupal))))

/**
 * Prefix of every Redis key (cache entries, tags, leases, webhook ids): `CACHE_REDIS_PREFIX`, or
 * by default one derived from the site (`DRUPAL_URL`'s origin and path), so that gateways of two
 * sites sharing a Redis on the defaults never share entries.
 */
export const RedisPrefix: Config.Config<string> = Config.all({
  explicit: Config.option(Config.string("CACHE_REDIS_PREFIX")),
  drupal: DrupalUrl
}).pipe(Config.map(({ drupal, explicit }) => Option.getOrElse(explicit, () => sitePrefix(drupal))))

/** Redis tier and bus; absent means no Redis. The URL may carry a password, so it is redacted. */
export const RedisConfig = Config.all({
  url: Config.option(Config.redacted("REDIS_URL")),
  connectTimeout: millis("REDIS_CONNECT_TIMEOUT_MS", 2_000),
  commandTimeout: millis("REDIS_COMMAND_TIMEOUT_MS", 250)
})
export type RedisConfig = Config.Config.Success<typeof RedisConfig>

/** PostgreSQL tier; absent means no PostgreSQL. */
export const PostgresConfig = Config.all({
  url: Config.option(Config.redacted("DATABASE_URL")),
  maxConnections: positiveInt("PG_POOL_MAX", 10),
  connectTimeout: millis("PG_CONNECT_TIMEOUT_MS", 2_000),
  idleTimeout: millis("PG_IDLE_TIMEOUT_MS", 30_000)
})
export type PostgresConfig = Config.Config.Success<typeof PostgresConfig>

/** Health probing of dependencies. */
export const HealthConfig = Config.all({
  /** Bound on one dependency probe. */
  probeTimeout: millis("HEALTH_PROBE_TIMEOUT_MS", 1_000),
  /** Probe results are reused for this long so a hard-polled /health never hammers upstream. */
  cacheFor: millis("HEALTH_CACHE_MS", 2_000)
})
export type HealthConfig = Config.Config.Success<typeof HealthConfig>

/** Bearer token for the admin routes; unset disables them. */
export const AdminToken: Config.Config<Option.Option<Redacted.Redacted>> = Config.option(
  Config.redacted("ADMIN_TOKEN")
)

/** The Drupal JSON-RPC client: pool, timeouts, batching, retries and circuit breaker. */
export const DrupalClientConfig = Config.all({
  maxConnections: positiveInt("DRUPAL_MAX_CONNECTIONS", 64),
  streamMaxConnections: positiveInt("DRUPAL_STREAM_MAX_CONNECTIONS", 64),
  streamIdleTimeout: millis("DRUPAL_STREAM_IDLE_TIMEOUT_MS", 10_000),
  connectTimeout: millis("DRUPAL_CONNECT_TIMEOUT_MS", 2_000),
  headersTimeout: millis("DRUPAL_HEADERS_TIMEOUT_MS", 10_000),
  callTimeout: millis("DRUPAL_CALL_TIMEOUT_MS", 30_000),
  keepAliveTimeout: millis("DRUPAL_KEEP_ALIVE_TIMEOUT_MS", 30_000),
  maxReplyBytes: positiveInt("DRUPAL_MAX_REPLY_BYTES", 64 * 1024 * 1024),
  maxGetUrlLength: positiveInt("DRUPAL_GET_MAX_URL", 2_000),
  readMethods: Config.array(Config.string(), "DRUPAL_READ_METHODS").pipe(
    Config.withDefault(["content.search", "content.get_tutorial", "user.access_context"])
  ),
  batchWindow: millis("DRUPAL_BATCH_WINDOW_MS", 2),
  batchMaxSize: positiveInt("DRUPAL_BATCH_MAX_SIZE", 50),
  /** When calls are coalesced into JSON-RPC batches (see `drupal/BatchPolicy.ts`). */
  batch: Config.all({
    mode: Config.literal("adaptive", "off", "always")("DRUPAL_BATCH").pipe(Config.withDefault("adaptive" as const)),
    inFlightThreshold: positiveInt("DRUPAL_BATCH_IN_FLIGHT", 8),
    latencyFactor: Config.number("DRUPAL_BATCH_LATENCY_FACTOR").pipe(
      Config.validate({ message: "must be at least 1", validation: (n) => n >= 1 }),
      Config.withDefault(2)
    )
  }),
  dedupMaxKeys: positiveInt("DRUPAL_DEDUP_MAX_KEYS", 10_000),
  retry: Config.all({
    maxAttempts: positiveInt("DRUPAL_RETRY_MAX_ATTEMPTS", Retry.defaults.maxAttempts),
    base: millis("DRUPAL_RETRY_BASE_MS", Duration.toMillis(Retry.defaults.base)),
    cap: millis("DRUPAL_RETRY_CAP_MS", Duration.toMillis(Retry.defaults.cap)),
    maxElapsed: millis("DRUPAL_RETRY_MAX_ELAPSED_MS", Duration.toMillis(Retry.defaults.maxElapsed))
  }),
  breaker: Config.all({
    consecutiveFailures: positiveInt("DRUPAL_BREAKER_CONSECUTIVE_FAILURES", CircuitBreaker.defaults.consecutiveFailures),
    failureRatio: ratio("DRUPAL_BREAKER_FAILURE_RATIO", CircuitBreaker.defaults.failureRatio),
    minimumCalls: positiveInt("DRUPAL_BREAKER_MINIMUM_CALLS", CircuitBreaker.defaults.minimumCalls),
    window: millis("DRUPAL_BREAKER_WINDOW_MS", Duration.toMillis(CircuitBreaker.defaults.window)),
    cooldown: millis("DRUPAL_BREAKER_COOLDOWN_MS", Duration.toMillis(CircuitBreaker.defaults.cooldown)),
    halfOpenMaxCalls: positiveInt("DRUPAL_BREAKER_HALF_OPEN_CALLS", CircuitBreaker.defaults.halfOpenMaxCalls)
  })
})
export type DrupalClientConfig = Config.Config.Success<typeof DrupalClientConfig>

/** Method discovery. */
export const DiscoveryConfig = Config.all({
  /** How often every known method set is fetched again and compared. */
  refreshInterval: millis("DISCOVERY_REFRESH_MS", 60_000),
  /** Most caller partitions whose method sets are kept. */
  maxPartitions: positiveInt("DISCOVERY_MAX_PARTITIONS", 256)
})

/** Caller partitions (token → access level mapping). */
export const AccessConfig = Config.all({
  /** How long a token's partition is trusted before Drupal is asked again. */
  ttl: millis("ACCESS_SCOPE_TTL_MS", 60_000),
  /** How long a refused lookup (Drupal answered 401/403 or a JSON-RPC error) is remembered per token fingerprint. */
  failureTtl: millis("AUTH_FAILURE_CACHE_MS", 10_000),
  /** Key of the token fingerprints (HMAC-SHA-256); required with Redis or PostgreSQL (see `access/AccessScope.ts`). */
  fingerprintSecret: Config.option(Config.redacted("FINGERPRINT_SECRET"))
})

const policy = (prefix: string, fresh: number, grace: number) =>
  Config.all({
    fresh: millis(`CACHE_${prefix}_FRESH_MS`, fresh),
    grace: millis(`CACHE_${prefix}_GRACE_MS`, grace)
  })

/** How long each namespace's entries live, and how origin loads are bounded. */
export const CachePolicyConfig = Config.all({
  search: policy("SEARCH", 60_000, 600_000),
  content: policy("CONTENT", 300_000, 3_600_000),
  markdown: policy("MARKDOWN", 300_000, 3_600_000),
  discovery: policy("DISCOVERY", 300_000, 86_400_000),
  /** Relative TTL jitter (0.1 = ±10 %). */
  jitter: Config.number("CACHE_JITTER").pipe(
    Config.validate({ message: "CACHE_JITTER must be in [0, 1)", validation: (n) => n >= 0 && n < 1 }),
    Config.withDefault(0.1)
  ),
  /** How long a not-found answer is kept. */
  negative: millis("CACHE_NEGATIVE_MS", 10_000),
  /** How long a denial (403: this caller's partition may not read the item) is kept, per partition. */
  denied: millis("CACHE_DENIED_MS", 60_000),
  /** After its time, how long a not-found or a denial may still be answered (stale) while it is refreshed in the background. */
  negativeGrace: millis("CACHE_NEGATIVE_GRACE_MS", 300_000),
  /** After this long an origin load answers a stale entry if there is one (namespaces without stale-while-revalidate). */
  softTimeout: millis("CACHE_SOFT_TIMEOUT_MS", 1_000),
  /** An origin load taking longer fails. */
  hardTimeout: millis("CACHE_HARD_TIMEOUT_MS", 35_000),
  /** Largest Markdown document kept in the cache (held gzipped while it streams); larger ones are streamed every time. */
  markdownMaxBytes: positiveInt("CACHE_MARKDOWN_MAX_BYTES", 32 * 1024 * 1024),
  /**
   * A Markdown miss whose upstream reply (JSON bytes) ends within this many bytes is read whole,
   * converted in one step and stored before it is answered; a longer one streams. 0: always stream.
   */
  markdownWholeBelow: nonNegativeInt("MARKDOWN_WHOLE_BELOW_BYTES", 256 * 1024)
})
export type CachePolicyConfig = Config.Config.Success<typeof CachePolicyConfig>

/** The cache's background writer and invalidation memory. */
export const CacheRuntimeConfig = Config.all({
  writeQueueCapacity: positiveInt("CACHE_WRITE_QUEUE_CAPACITY", 10_000),
  /** Bytes of values each remote tier's write queue holds at most (queued or being written). */
  writeQueueMaxBytes: positiveInt("CACHE_WRITE_QUEUE_MAX_BYTES", 256 * 1024 * 1024),
  writeBatchSize: positiveInt("CACHE_WRITE_BATCH_SIZE", 100),
  invalidationMemory: positiveInt("CACHE_INVALIDATION_MEMORY", 10_000),
  /** Cross-instance load lease in Redis: how long a lease lives (0 turns the lease off). */
  leaseTtl: millis("CACHE_LEASE_MS", 5_000),
  /** How long an instance waits for another's load before loading itself. */
  leaseWait: millis("CACHE_LEASE_WAIT_MS", 5_000),
  /** Redis channel / PostgreSQL NOTIFY channel of the invalidation bus. */
  busChannel: Config.string("CACHE_BUS_CHANNEL").pipe(
    Config.validate({ message: "CACHE_BUS_CHANNEL must match [a-z_][a-z0-9_]*", validation: (s) => /^[a-z_][a-z0-9_]{0,62}$/.test(s) }),
    Config.withDefault("accelerator_cache")
  )
})

/** Cache warming: searches and items loaded at start and on a schedule (anonymous partition). */
export const WarmConfig = Config.all({
  /** Search questions, separated by `;`. */
  searches: Config.string("CACHE_WARM_SEARCHES").pipe(
    Config.withDefault(""),
    Config.map((s) => s.split(";").map((q) => q.trim()).filter((q) => q.length > 0))
  ),
  /** Content ids, separated by `,`. */
  items: Config.string("CACHE_WARM_ITEMS").pipe(
    Config.withDefault(""),
    Config.map((s) => s.split(",").map((x) => x.trim()).filter((x) => /^\d+$/.test(x)).map(Number))
  ),
  interval: millis("CACHE_WARM_INTERVAL_MS", 240_000),
  concurrency: positiveInt("CACHE_WARM_CONCURRENCY", 4)
})

/** Invalidation entry points. */
export const InvalidationConfig = Config.all({
  /** Standard Webhooks secret of the Drupal webhook (`whsec_<base64>`); unset disables the webhook. */
  webhookSecret: Config.option(Config.redacted("WEBHOOK_SECRET")),
  /** Oldest webhook timestamp accepted, either way, in seconds. */
  webhookTolerance: millis("WEBHOOK_TOLERANCE_MS", 300_000)
})

/** Optional OTLP trace export. */
export const TracingConfig = Config.all({
  /** OTLP/HTTP endpoint (traces go to `<endpoint>/v1/traces`); unset: no tracing at all. */
  endpoint: Config.option(Config.url("OTEL_EXPORTER_OTLP_ENDPOINT")),
  serviceName: Config.string("OTEL_SERVICE_NAME").pipe(Config.withDefault("drupal-accelerator")),
  /** Share of requests through the Effect app that are traced (memory hits never are). */
  sampleRatio: Config.number("OTEL_TRACES_SAMPLER_ARG").pipe(
    Config.validate({ message: "OTEL_TRACES_SAMPLER_ARG must be in [0, 1]", validation: (n) => n >= 0 && n <= 1 }),
    Config.withDefault(0.1)
  )
})

/** The MCP endpoint (`/mcp`). */
export const McpConfig = Config.all({
  /**
   * Browser origins allowed to call `/mcp`, besides loopback ones (`localhost`, `127.0.0.1`,
   * `[::1]`, any port). Requests without `Origin` (non-browser clients) are always allowed.
   */
  allowedOrigins: Config.string("MCP_ALLOWED_ORIGINS").pipe(
    Config.withDefault(""),
    Config.map((raw) => raw.split(",").map((origin) => origin.trim().toLowerCase()).filter((origin) => origin.length > 0))
  ),
  /** A tool result larger than this (serialized) is cut at a Markdown boundary, with a cursor to read on. */
  maxResultBytes: positiveInt("MCP_MAX_RESULT_BYTES", 256 * 1024),
  /** Tools per `tools/list` page. */
  pageSize: positiveInt("MCP_PAGE_SIZE", 100),
  /** `ttlMs` hint of `tools/list` and `server/discover` results (2026-07-28). */
  listTtl: millis("MCP_LIST_TTL_MS", 30_000),
  /**
   * Where the tool list comes from: `discovery` (the caller's `/jsonrpc/methods`, translated) or
   * `jsonrpc_mcp` (the site's `GET /mcp/tools/list` as the caller, from the contrib module).
   */
  toolsSource: Config.literal("discovery", "jsonrpc_mcp")("MCP_TOOLS_SOURCE").pipe(Config.withDefault("discovery")),
  /** Bound on one `GET /mcp/tools/list` page from the site (`jsonrpc_mcp` source). */
  sourceTimeout: millis("MCP_TOOLS_SOURCE_TIMEOUT_MS", 10_000)
})
export type McpConfig = Config.Config.Success<typeof McpConfig>
