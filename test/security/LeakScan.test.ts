/**
 * The leak scan: a workload with every demo credential (bearer tokens and Basic passwords, plus
 * an unknown token) through a gateway process with Redis and PostgreSQL, then every log line,
 * the metrics and status pages, every Redis key and value and every PostgreSQL row of the cache
 * are searched for the credentials and for their plain hashes (sha256 of the token and of the
 * header, hex and base64/base64url, whole and cut to 128 bits). Compressed values are inflated
 * before they are searched. Only keyed fingerprints (HMAC under FINGERPRINT_SECRET) may appear.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis as IORedis } from "ioredis"
import { createHash } from "node:crypto"
import { gunzipSync } from "node:zlib"
import pg from "pg"
import { inject } from "vitest"
import { DEMO_BASIC_AUTH, DEMO_TOKENS } from "../../src/simulator/Users.js"
import { startGatewayProcess } from "../e2e/gatewayProcess.js"

const run = `leak${process.pid}_${Date.now().toString(36)}`
const UNKNOWN = "unknown-token-7f3a9c"

const headers: ReadonlyArray<string> = [
  ...Object.values(DEMO_TOKENS).map((t) => `Bearer ${t}`),
  `Bearer ${UNKNOWN}`,
  ...Object.values(DEMO_BASIC_AUTH).map(({ user, password }) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`)
]

/** What must never appear: the secrets, and their plain (unkeyed) hashes in the usual spellings. */
const needles = (): ReadonlyArray<string> => {
  const secrets = [
    ...Object.values(DEMO_TOKENS),
    UNKNOWN,
    ...Object.values(DEMO_BASIC_AUTH).map(({ user, password }) => `${user}:${password}`),
    ...headers
  ]
  const out = new Set<string>()
  for (const secret of secrets) {
    if (secret.length >= 12) out.add(secret)
    const digest = createHash("sha256").update(secret).digest()
    for (const bytes of [digest, digest.subarray(0, 16)]) {
      out.add(bytes.toString("hex"))
      out.add(bytes.toString("base64").replace(/=+$/, ""))
      out.add(bytes.toString("base64url"))
    }
  }
  // Basic headers' base64 parts (short passwords are not searched as plain text: "free" is a word).
  for (const h of headers) if (h.startsWith("Basic ")) out.add(h.slice(6))
  return [...out]
}

/** A stored value as text: gzip inflated, else the bytes as latin1. */
const textOf = (bytes: Buffer): string => {
  if (bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes).toString("utf8")
    } catch {
      return bytes.toString("latin1")
    }
  }
  return bytes.toString("latin1")
}

describe("leak scan", () => {
  it.scopedLive("no credential and no plain hash of one in logs, metrics, Redis or PostgreSQL", () =>
    Effect.gen(function*() {
      const redisUrl = inject("redisUrl")
      const databaseUrl = inject("databaseUrl")
      const prefix = `${run}:`
      const table = run
      const gateway = yield* startGatewayProcess({
        LOG_LEVEL: "debug",
        REDIS_URL: redisUrl,
        DATABASE_URL: databaseUrl,
        CACHE_REDIS_PREFIX: prefix,
        CACHE_PG_TABLE: table,
        FINGERPRINT_SECRET: "leak-scan-fingerprint-secret-0123456789",
        ADMIN_TOKEN: "leak-scan-admin"
      })
      const base = `http://127.0.0.1:${gateway.port}`
      const paths = ["/search?q=drupal", "/content/3", "/content/4?include_content=false", "/content/5/markdown", "/methods", "/tools"]
      let answered = 0
      yield* Effect.promise(async () => {
        for (const authorization of headers) {
          for (const path of paths) {
            const res = await fetch(base + path, { headers: { authorization } })
            await res.arrayBuffer()
            answered++
          }
          const rpc = await fetch(`${base}/rpc/content.search`, {
            method: "POST",
            headers: { authorization, "content-type": "application/json" },
            body: JSON.stringify({ q: "views" })
          })
          await rpc.arrayBuffer()
          const mcp = await fetch(`${base}/mcp`, {
            method: "POST",
            headers: { authorization, "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25" },
            body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
          })
          await mcp.arrayBuffer()
        }
        // Let the write-behind queue reach Redis and PostgreSQL.
        await new Promise((r) => setTimeout(r, 1_500))
      })
      assert.strictEqual(answered, headers.length * paths.length)

      const haystacks: Array<readonly [string, string]> = []
      haystacks.push(["logs", gateway.lines.join("\n")])
      for (const page of ["/metrics", "/status.json"]) {
        haystacks.push([page, yield* Effect.promise(() => fetch(base + page).then((r) => r.text()))])
      }
      const redis = new IORedis(redisUrl)
      const keys = yield* Effect.promise(() => redis.keys(`${prefix}*`))
      for (const key of keys) {
        const type = yield* Effect.promise(() => redis.type(key))
        const value = type === "string" ? yield* Effect.promise(() => redis.getBuffer(key)) : undefined
        const members = type === "set" ? yield* Effect.promise(() => redis.smembers(key)) : []
        haystacks.push([`redis ${key}`, `${key}\n${value === undefined || value === null ? "" : textOf(value)}\n${members.join("\n")}`])
      }
      redis.disconnect()
      const client = new pg.Client({ connectionString: databaseUrl })
      yield* Effect.promise(() => client.connect())
      const rows = yield* Effect.promise(() => client.query(`SELECT * FROM public."${table}"`))
      yield* Effect.promise(() => client.end())
      for (const row of rows.rows as Array<Record<string, unknown>>) {
        haystacks.push([
          `postgres ${String(row["key"])}`,
          Object.values(row).map((v) => (Buffer.isBuffer(v) ? textOf(v) : JSON.stringify(v))).join("\n")
        ])
      }

      // The scan is not empty: entries of several partitions were written and logged.
      assert.isAbove(keys.length, 10, "Redis holds the workload's entries")
      assert.isAbove(rows.rows.length, 5, "PostgreSQL holds the workload's entries")
      assert.isAtLeast(gateway.lines.length, 5, "the gateway logged")
      assert.isTrue(keys.some((k) => k.includes("scope")), "partition lookups were stored")

      const found: Array<string> = []
      for (const needle of needles()) {
        for (const [where, text] of haystacks) {
          if (text.includes(needle)) found.push(`${where}: ${needle}`)
        }
      }
      assert.deepStrictEqual(found.slice(0, 20), [])
    }), 120_000)
})
