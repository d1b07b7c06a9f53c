/**
 * The dependency rules of the runtime, checked on every test run (see `test/support/imports.ts`):
 * no import circle in `src/` and `layers/`, and no forbidden import between folders. The first
 * specs plant a circle and forbidden imports in memory, so the check cannot pass by reading nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Imports from "../support/imports.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

describe("import rules: the checker", () => {
  it.effect("finds a circle made of a type-only import, a re-export and an import() type", () =>
    Effect.sync(() => {
      const sources = new Map([
        ["src/a/A.ts", `import type { B } from "../b/B.js"\nexport interface A { readonly b: B }`],
        ["src/b/B.ts", `export { c } from "./C.js"\nexport interface B { readonly n: number }`],
        ["src/b/C.ts", `export const c = (a: import("../a/A.js").A) => a`],
        ["src/d/D.ts", `import { c } from "../b/C.js"\nexport const d = c`]
      ])
      const violations = Imports.check(sources)
      assert.deepStrictEqual(violations, [{ _tag: "Circle", files: ["src/a/A.ts", "src/b/B.ts", "src/b/C.ts"] }])
    }))

  it.effect("finds a module importing itself and a dynamic import() circle", () =>
    Effect.sync(() => {
      const sources = new Map([
        ["src/x/Self.ts", `import * as Self from "./Self.js"\nexport const self = Self`],
        ["src/y/P.ts", `export const p = () => import("./Q.js")`],
        ["src/y/Q.ts", `import { p } from "./P.js"\nexport const q = p`]
      ])
      const circles = Imports.check(sources).filter((v) => v._tag === "Circle")
      assert.strictEqual(circles.length, 2)
    }))

  it.effect("finds forbidden imports: cache, resilience, concurrency, markdown → drupal/http; telemetry → http", () =>
    Effect.sync(() => {
      const sources = new Map([
        ["src/drupal/DrupalError.ts", `export class E {}`],
        ["src/http/GatewayServer.ts", `export type FastPath = () => boolean`],
        ["src/cache/RedisTier.ts", `import type { E } from "../drupal/DrupalError.js"\nexport type T = E`],
        ["src/resilience/Retry.ts", `import { E } from "../drupal/DrupalError.js"\nexport const r = E`],
        ["src/concurrency/Release.ts", `import type { FastPath } from "../http/GatewayServer.js"\nexport type R = FastPath`],
        ["src/markdown/Md.ts", `export type M = import("../http/GatewayServer.js").FastPath`],
        ["src/telemetry/HttpTelemetry.ts", `import type { FastPath } from "../http/GatewayServer.js"\nexport type H = FastPath`],
        // Allowed: the client may depend on resilience, telemetry on drupal.
        ["src/telemetry/Metrics.ts", `import type { E } from "../drupal/DrupalError.js"\nexport type M = E`]
      ])
      const forbidden = Imports.check(sources).flatMap((v) => (v._tag === "Forbidden" ? [`${v.from} -> ${v.to}`] : []))
      assert.deepStrictEqual(forbidden.sort(), [
        "src/cache/RedisTier.ts -> src/drupal/DrupalError.ts",
        "src/concurrency/Release.ts -> src/http/GatewayServer.ts",
        "src/markdown/Md.ts -> src/http/GatewayServer.ts",
        "src/resilience/Retry.ts -> src/drupal/DrupalError.ts",
        "src/telemetry/HttpTelemetry.ts -> src/http/GatewayServer.ts"
      ])
    }))

  it.effect("reads the real tree: every module of src/ and layers/, with their imports", () =>
    Effect.sync(() => {
      const sources = Imports.readSources(root, ["src", "layers"])
      assert.isTrue(sources.has("layers/Gateway.ts"))
      assert.isTrue(sources.has("src/simulator/Simulator.ts"))
      assert.isTrue(sources.has("src/cache/TieredCache.ts"))
      const edges = Imports.edgesOf(sources)
      // Edges across folders are seen: the launcher → layers, layers → src, a type-only import.
      const has = (from: string, to: string) => edges.some((e) => e.from === from && e.to === to)
      assert.isTrue(has("src/main.ts", "layers/Gateway.ts"))
      assert.isTrue(has("layers/Cache.ts", "src/cache/CacheStack.ts"))
      assert.isTrue(has("src/cache/TieredCache.ts", "src/cache/Envelope.ts"), "a type-only import")
      assert.isAbove(edges.length, sources.size)
    }))
})

describe("import rules: src/ and layers/", () => {
  it.effect("no import circle and no forbidden import", () =>
    Effect.sync(() => {
      const violations = Imports.check(Imports.readSources(root, ["src", "layers"]))
      assert.deepStrictEqual(violations.map(Imports.describe), [])
    }))
})
