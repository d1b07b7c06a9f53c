import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import * as GatewayServer from "../../src/http/GatewayServer.js"
import * as Listener from "../../src/listener/Listener.js"
import * as HttpTelemetry from "../../src/telemetry/HttpTelemetry.js"
import * as Prometheus from "../../src/telemetry/Prometheus.js"
import * as SloMonitor from "../../src/telemetry/SloMonitor.js"
import * as StatusPage from "../../src/telemetry/StatusPage.js"
import { parseStrict, valueOf } from "./exposition.js"

const options: GatewayServer.GatewayServerOptions = {
  port: 0,
  host: "127.0.0.1",
  shutdownTimeout: "2 seconds",
  keepAliveTimeout: "5 seconds",
  headersTimeout: "5 seconds",
  requestTimeout: "10 seconds",
  maxBodyBytes: 1024
}

const get = (port: number, path: string) =>
  Effect.promise(() =>
    fetch(`http://127.0.0.1:${port}${path}`).then(async (r) => ({
      status: r.status,
      type: r.headers.get("content-type"),
      body: await r.text()
    }))
  )

describe("HttpTelemetry.layer on the gateway listener", () => {
  it.live("times fast-path and app responses alike, and serves /metrics and /status", () =>
    Effect.gen(function*() {
      const services = yield* Layer.build(
        StatusPage.layerConfig.pipe(
          Layer.provideMerge(
            SloMonitor.layer({
              bucket: "5 seconds",
              buckets: 12,
              latencyP95: "500 millis",
              latencyP99: "1 second",
              errorRate: 0.01,
              minRequests: 100,
              recoveryEvaluations: 2,
              recoveryRatio: 0.9
            })
          )
        )
      )
      const slo = Context.get(services, SloMonitor.SloMonitor)
      const inner: Listener.FastPath = (req, res) => {
        if (req.url !== "/content/cached") return false
        res.writeHead(200, { "content-type": "application/json" })
        res.end("{}")
        return true
      }
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/search", HttpServerResponse.text("results")),
        HttpRouter.get("/content/:id", HttpServerResponse.text("missing", { status: 404 }))
      )
      const fastPath = yield* Layer.build(HttpTelemetry.layer.pipe(Layer.provide(Layer.succeed(Listener.HitPath, inner)), Layer.provide(Layer.succeedContext(services))))
      const context = yield* Layer.build(
        HttpServer.serve(app).pipe(
          Layer.provideMerge(GatewayServer.layer({ ...options, fastPath: Context.get(fastPath, Listener.FastPath) }))
        )
      )
      const port = Context.get(context, Listener.ListenerState).port

      assert.strictEqual((yield* get(port, "/search?q=private-words")).body, "results")
      assert.strictEqual((yield* get(port, "/content/cached")).body, "{}")
      assert.strictEqual((yield* get(port, "/content/9")).status, 404)
      const status = yield* get(port, "/status")
      assert.strictEqual(status.status, 200)
      assert.strictEqual(status.type, StatusPage.htmlContentType)
      const json = yield* get(port, "/status.json")
      assert.strictEqual(json.type, StatusPage.jsonContentType)
      assert.strictEqual((JSON.parse(json.body) as StatusPage.StatusSummary).slo?.minRequests, 100)

      // A response is recorded on its `close` event, which may follow the client's read by a moment.
      yield* Effect.sleep("50 millis")
      const metrics = yield* get(port, "/metrics")
      assert.strictEqual(metrics.type, Prometheus.contentType)
      const families = parseStrict(metrics.body)
      const count = (route: string, status_class: string) =>
        valueOf(families, "accelerator_http_request_duration_seconds_count", { route, status_class })
      assert.strictEqual(count("search", "2xx"), 1)
      assert.strictEqual(count("content", "2xx"), 1)
      assert.strictEqual(count("content", "4xx"), 1)
      assert.strictEqual(count("status", "2xx"), 2)
      assert.notInclude(metrics.body, "private-words")
      // Every response reached the SLO monitor too, /metrics included.
      yield* Effect.sleep("50 millis")
      assert.strictEqual(slo.status().requests, 6)
    }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning)))
})
