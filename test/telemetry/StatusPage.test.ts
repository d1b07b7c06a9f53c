import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Path from "node:path"
import { chromium } from "playwright-core"
import * as Metrics from "../../src/telemetry/Metrics.js"
import * as Prometheus from "../../src/telemetry/Prometheus.js"
import * as ResourceMonitor from "../../src/telemetry/ResourceMonitor.js"
import * as SloMonitor from "../../src/telemetry/SloMonitor.js"
import * as StatusPage from "../../src/telemetry/StatusPage.js"
import { parseStrict, sumOf, valueOf } from "./exposition.js"

const CHROMIUM = "/usr/bin/chromium"
const ARTIFACTS = Path.resolve(import.meta.dirname, "../artifacts")

/** The page's formats, written again independently: what a person should read for a value. */
const expectedText = (value: unknown, format: string | null): string => {
  if (value === null || value === undefined) return "\u2014"
  const n = value as number
  switch (format) {
    case "int":
      return String(Math.round(n))
    case "rate":
      return n.toFixed(1)
    case "ms":
      return `${(n * 1000).toFixed(1)} ms`
    case "pct":
      return `${(n * 100).toFixed(1)} %`
    case "bytes":
      return `${(n / 1048576).toFixed(1)} MiB`
    default:
      return String(value)
  }
}

const at = (obj: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>((o, k) => (o === null || o === undefined ? null : (o as Record<string, unknown>)[k]), obj)

interface Shown {
  readonly summary: unknown
  readonly fields: ReadonlyArray<{ readonly key: string; readonly format: string | null; readonly text: string }>
  readonly byId: Readonly<Record<string, string>>
  readonly sparkRps: string
  readonly sparkP99: string
  readonly error: string
}

/**
 * Runs in the page (as source text: the project compiles without DOM types). Returns what the
 * page shows and the summary it showed.
 */
const readPage = `(() => ({
  summary: window.__statusSummary,
  fields: [...document.querySelectorAll("[data-key]")].map((el) => ({
    key: el.getAttribute("data-key"),
    format: el.getAttribute("data-format"),
    text: el.textContent || ""
  })),
  byId: Object.fromEntries([...document.querySelectorAll("[id]")].map((el) => [el.id, el.textContent || ""])),
  sparkRps: document.querySelector("#spark-rps polyline")?.getAttribute("points") || "",
  sparkP99: document.querySelector("#spark-p99 polyline")?.getAttribute("points") || "",
  error: document.getElementById("error")?.textContent || ""
}))()`

/** The tiny server of the spec: `/status`, `/status.json` from the status page, `/metrics` from Prometheus. */
const serve = (page: StatusPage.StatusPage) =>
  Effect.acquireRelease(
    Effect.async<Http.Server>((resume) => {
      const server = Http.createServer((req, res) => {
        if (page.handle(req, res)) return
        if (req.url === "/metrics") return Prometheus.handle(req, res)
        res.writeHead(404)
        res.end()
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** A workload through the same helpers the gateway uses. */
const workload = (slo: SloMonitor.SloMonitor, round: number) => {
  const routes = ["search", "content", "rpc", "methods"] as const
  for (let i = 0; i < 120 + round * 60; i++) {
    const route = routes[i % routes.length]!
    const status = i % 50 === 0 ? 503 : i % 7 === 0 ? 404 : 200
    const seconds = 0.002 + (i % 20) * 0.004 + (i % 97 === 0 ? 0.6 : 0)
    Metrics.recordHttp(route, status, seconds)
    slo.record(seconds, status)
  }
  for (let i = 0; i < 90 + round * 10; i++) Metrics.recordCacheLookup("memory", i % 9 === 0 ? "miss" : "hit")
  for (let i = 0; i < 12; i++) Metrics.recordCacheLookup("redis", i % 3 === 0 ? "miss" : "hit")
  for (let i = 0; i < 5; i++) Metrics.recordCacheLookup("postgres", i === 0 ? "stale" : "hit")
  for (let i = 0; i < 4 + round; i++) Metrics.recordOriginLoad(true)
}

describe("status page", () => {
  it.live("shows in a real browser the same numbers as /metrics and the summary", () =>
    Effect.gen(function*() {
      const slo = yield* SloMonitor.make({
        bucket: "1 second",
        buckets: 30,
        latencyP95: "500 millis",
        latencyP99: "1 second",
        errorRate: 0.05,
        minRequests: 20,
        recoveryEvaluations: 2,
        recoveryRatio: 0.9
      })
      // Samples once now and not again during the test, so its gauges stay put while compared.
      yield* ResourceMonitor.make({ interval: "1 minute" })
      // Samples enough to cover the whole 60 s window at 150 ms: the workload below stays inside
      // the rate window however long the browser takes to start on a busy machine.
      const page = yield* StatusPage.make({ interval: "150 millis", samples: 400, window: "60 seconds", slo })
      Metrics.setUpstreamPool({ connected: 12, free: 5, pending: 1, running: 7 })
      Metrics.setPgPool({ total: 6, idle: 4, waiting: 0 })
      Metrics.setRedisConnected(true)
      Metrics.setCircuitState("drupal", "closed")
      Metrics.setCircuitState("redis", "open")
      Metrics.setMemoryUsage(3 * 1048576, 4200)
      // A few rounds of traffic between samples, so rates and sparklines have a shape.
      for (let round = 0; round < 4; round++) {
        workload(slo, round)
        yield* Effect.sleep("200 millis")
      }
      yield* Effect.sleep("1100 millis")

      const server = yield* serve(page)
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

      yield* Effect.promise(() => Fs.access(CHROMIUM)).pipe(
        Effect.orElse(() => Effect.dieMessage(`${CHROMIUM} is missing: run test/support/prepare.sh as root`))
      )
      // launch() gives every browser a fresh temporary profile (user data dir), removed on close.
      const browser = yield* Effect.acquireRelease(
        Effect.promise(() =>
          chromium.launch({
            executablePath: CHROMIUM,
            args: [
              "--headless",
              "--no-sandbox",
              "--disable-gpu",
              "--disable-quic",
              "--no-first-run",
              "--disable-background-networking",
              "--disable-component-update",
              "--disable-sync"
            ]
          })
        ),
        (b) => Effect.promise(() => b.close()).pipe(Effect.timeoutOption("10 seconds"))
      )
      const tab = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 900 } }))
      const response = yield* Effect.promise(() => tab.goto(`${base}/status`))
      assert.strictEqual(response?.status(), 200)
      assert.strictEqual(response?.headers()["content-type"], StatusPage.htmlContentType)
      // Two refreshes: the page polls by itself.
      yield* Effect.promise(() =>
        tab.waitForFunction("Number(document.body.dataset.updates || '0') >= 2", undefined, { timeout: 15_000 })
      )

      // What the page shows and the summary it showed, read in one go (rendering is synchronous).
      const shown = yield* Effect.promise(() => tab.evaluate(readPage) as Promise<Shown>)
      const summary = shown.summary as StatusPage.StatusSummary
      assert.strictEqual(shown.error, "")

      // 1. Every field on the page is its summary value, formatted.
      assert.isAtLeast(shown.fields.length, 30)
      for (const field of shown.fields) {
        assert.strictEqual(field.text, expectedText(at(summary, field.key), field.format), field.key)
      }

      // 2. The summary's figures are the ones /metrics exposes.
      const metricsText = yield* Effect.promise(() => fetch(`${base}/metrics`).then((r) => r.text()))
      const families = parseStrict(metricsText)
      const requests = sumOf(families, "accelerator_http_request_duration_seconds_count")
      assert.strictEqual(summary.http.requestsTotal, requests)
      assert.strictEqual(shown.byId["requests-total"], String(requests))
      assert.strictEqual(
        summary.http.errorsTotal,
        sumOf(families, "accelerator_http_request_duration_seconds_count", { status_class: "5xx" })
      )
      for (const tier of summary.cache.tiers) {
        for (const outcome of Metrics.lookupOutcomes) {
          assert.strictEqual(
            tier[outcome],
            valueOf(families, "accelerator_cache_lookups_total", { tier: tier.tier, outcome }),
            `${tier.tier}/${outcome}`
          )
        }
        assert.strictEqual(shown.byId[`hits-${tier.tier}`], String(tier.hit))
      }
      const originTotal = sumOf(families, "accelerator_cache_origin_loads_total")
      assert.strictEqual(shown.byId["origin-total"], String(originTotal))
      assert.strictEqual(shown.byId["upstream-open"], String(valueOf(families, "accelerator_upstream_connections", { state: "open" })))
      assert.strictEqual(shown.byId["upstream-busy"], String(valueOf(families, "accelerator_upstream_connections", { state: "busy" })))
      assert.strictEqual(shown.byId["pg-total"], String(valueOf(families, "accelerator_pg_pool_connections", { state: "total" })))
      assert.strictEqual(shown.byId["redis"], "true")
      assert.strictEqual(valueOf(families, "accelerator_circuit_state", { circuit: "redis" }), 2)
      assert.strictEqual(shown.byId["circuit-redis"], "open")
      assert.strictEqual(shown.byId["circuit-drupal"], "closed")
      assert.strictEqual(summary.process.heapUsedBytes, valueOf(families, "accelerator_process_heap_used_bytes"))
      assert.strictEqual(summary.process.residentMemoryBytes, valueOf(families, "accelerator_process_resident_memory_bytes"))

      // 3. And they are the workload's: 4 rounds of 120 + 60·r requests, memory hit ratio 8/9-ish.
      assert.strictEqual(requests, 120 + 180 + 240 + 300)
      assert.strictEqual(originTotal, 4 + 5 + 6 + 7)
      const memory = summary.cache.tiers.find((t) => t.tier === "memory")!
      assert.strictEqual(shown.byId["hit-ratio-memory"], `${((memory.hit / (memory.hit + memory.miss)) * 100).toFixed(1)} %`)
      assert.isNotNull(summary.http.requestsPerSecond)
      assert.isTrue(summary.http.requestsPerSecond! > 0)
      assert.isNotNull(summary.http.p99Seconds)
      assert.strictEqual(shown.byId["slo-state"], summary.slo!.state)
      assert.isAtLeast(summary.history.length, 5)
      assert.isAtLeast(shown.sparkRps.split(" ").length, 5)
      assert.isAtLeast(shown.sparkP99.split(" ").length, 5)

      // 4. The JSON endpoint serves the same shape directly.
      const direct = yield* Effect.promise(() => fetch(`${base}/status.json`).then((r) => r.json() as Promise<StatusPage.StatusSummary>))
      assert.strictEqual(direct.http.requestsTotal, requests)

      yield* Effect.promise(() => Fs.mkdir(ARTIFACTS, { recursive: true }))
      yield* Effect.promise(() => tab.screenshot({ path: Path.join(ARTIFACTS, "status.png"), fullPage: true }))
      const png = yield* Effect.promise(() => Fs.stat(Path.join(ARTIFACTS, "status.png")))
      assert.isTrue(png.size > 10_000)
    }).pipe(Effect.scoped), 60_000)
})
