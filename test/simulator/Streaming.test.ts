import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Http from "node:http"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { call, start } from "./support.js"

const MB = 1024 * 1024

v8.setFlagsFromString("--expose-gc")
const gc = vm.runInNewContext("gc") as () => void

interface Raw {
  readonly status: number
  readonly headers: Http.IncomingHttpHeaders
  readonly body: Buffer
  /**
   * Highest live heap (`heapUsed` right after a full GC, sampled every 2 MB received) while the
   * reply streamed in, minus the live heap before the request: what the simulator retains, not
   * the short-lived garbage of the chunks.
   */
  readonly heapGrowth: number
  readonly elapsedMs: number
}

/**
 * POSTs and collects the reply as Buffers (off the V8 heap), sampling the heap on every chunk:
 * the heap growth is then what the simulator (same process) allocates while streaming.
 */
const rawPost = (url: string, body: unknown) =>
  Effect.async<Raw, Error>((resume) => {
    gc()
    const baseline = process.memoryUsage().heapUsed
    let peak = baseline
    const started = Date.now()
    const req = Http.request(`${url}/jsonrpc`, { method: "POST", headers: { "Content-Type": "application/json" } }, (res) => {
      const chunks: Array<Buffer> = []
      let received = 0
      let nextSample = 0
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk)
        received += chunk.length
        if (received >= nextSample) {
          nextSample += 2 * MB
          gc()
          peak = Math.max(peak, process.memoryUsage().heapUsed)
        }
      })
      res.on("end", () =>
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          heapGrowth: peak - baseline,
          elapsedMs: Date.now() - started
        })))
      res.on("error", (e) => resume(Effect.fail(e)))
    })
    req.on("error", (e) => resume(Effect.fail(e)))
    req.end(JSON.stringify(body))
    return Effect.sync(() => req.destroy())
  })

describe("Simulator streaming", () => {
  it.scopedLive("a 50 MB item streams with its Content-Length, parses, has the expected size, and the heap stays bounded", () =>
    Effect.gen(function*() {
      const sim = yield* start({ hugeItemId: 5, hugeItemBytes: 50 * MB })
      const item = sim.corpus.get(5)!
      assert.strictEqual(item.access, "free")
      const raw = yield* rawPost(sim.url, call("content.get_tutorial", { id: 5, format: "html" }))
      assert.strictEqual(raw.status, 200)
      // Drupal builds the reply whole and sends a Content-Length; the simulator measures first.
      assert.isUndefined(raw.headers["transfer-encoding"])
      assert.strictEqual(Number(raw.headers["content-length"]), raw.body.length)
      assert.strictEqual(raw.headers["content-type"], "application/json")
      assert.isBelow(raw.heapGrowth, (50 * MB) / 4, `heap grew by ${raw.heapGrowth} bytes`)
      const reply = JSON.parse(raw.body.toString("utf8"))
      assert.strictEqual(reply.id, 1)
      const content: string = reply.result.content
      assert.isAtLeast(content.length, 50 * MB)
      assert.isBelow(content.length, 50 * MB + 64 * 1024)
      assert.isTrue(content.startsWith("<"))
      assert.isTrue(content.endsWith("Drupalize.Me</p>\n"))
      const stats = yield* sim.stats
      assert.strictEqual(stats.streamed_responses, 1)
      assert.isAtLeast(stats.bytes_sent, 50 * MB)
    }), 120_000) // two generation passes (measure, then write) of 50 MB on a shared 2-core machine

  it.scopedLive("streaming inside a batch keeps order and bounded memory", () =>
    Effect.gen(function*() {
      const sim = yield* start({ hugeItemId: 9, hugeItemBytes: 20 * MB, streamThresholdBytes: 1024 })
      const small = sim.corpus.items.find((i) => i.access === "free" && i.id !== 9)!
      const raw = yield* rawPost(sim.url, [
        call("content.get_tutorial", { id: small.id, format: "markdown" }, "a"),
        call("content.get_tutorial", { id: 9, format: "markdown" }, "b"),
        call("content.search", { query: "views" }, "c"),
        call("content.get_tutorial", { id: small.id, include_content: false }, "d")
      ])
      assert.strictEqual(raw.status, 200)
      assert.strictEqual(Number(raw.headers["content-length"]), raw.body.length)
      assert.isBelow(raw.heapGrowth, (20 * MB) / 4, `heap grew by ${raw.heapGrowth} bytes`)
      const replies = JSON.parse(raw.body.toString("utf8"))
      assert.deepStrictEqual(replies.map((r: { id: string }) => r.id), ["a", "b", "c", "d"])
      assert.strictEqual(replies[0].result.content, sim.corpus.bodyText(small, "markdown"))
      assert.isAbove(replies[1].result.content.length, 15 * MB)
      assert.isTrue(replies[1].result.content.includes("```"))
      assert.isNumber(replies[2].result.total)
      assert.notProperty(replies[3].result, "content")
    }))

  it.scopedLive("html bodies carry the structures a converter must handle", () =>
    Effect.gen(function*() {
      const sim = yield* start({ corpusSize: 300, largeShare: 0 })
      // Read a sample of bodies (a few MB) and check each structure shows up somewhere.
      const html = sim.corpus.items.slice(0, 120).map((i) => sim.corpus.bodyText(i, "html")).join("\n")
      for (
        const pattern of [
          /<h2>/,
          /<h3>/,
          /<h4>/,
          /<strong>/,
          /<em>/,
          /<code>[^<]+<\/code>/,
          /<ul>\n<li>[^]*?<ul>/,
          /<ol>/,
          /<pre><code class="language-php">&lt;\?php/,
          /<pre><code class="language-yaml">/,
          /<pre><code class="language-js">/,
          /<pre><code class="language-bash">/,
          /<pre><code class="language-twig">/,
          /&amp;/,
          /&quot;/,
          /&nbsp;/,
          /&copy;/,
          /<table>\n<thead>/,
          /<tbody>/,
          /<a href="\/tutorial\/\d+">/,
          /<a href="https:\/\//,
          /<img src="\/sites\/default\/files\/[^"]+" alt="[^"]+"/,
          /<script>/,
          /<style>/
        ]
      ) {
        assert.match(html, pattern)
      }
      const md = sim.corpus.items.slice(0, 120).map((i) => sim.corpus.bodyText(i, "markdown")).join("\n")
      // The noise scripts and styles are dropped, entities are plain characters.
      assert.notMatch(md, /<script>window|<script>document|<style>|&nbsp;|&amp;|&copy;/)
      assert.include(md, "\u00a9")
      assert.match(md, /^## /m)
      assert.match(md, /^```php$/m)
      assert.match(md, /^\|( --- \|)+$/m)
      assert.match(md, /!\[[^\]]+\]\(\/sites\/default\/files\//)
    }))
})
