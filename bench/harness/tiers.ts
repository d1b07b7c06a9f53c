/**
 * The after-scenario scan of the shared tiers: every Redis entry (`SCAN` over `<prefix>e:*`) and
 * every PostgreSQL row of the cache table is decoded with the gateway's own envelope decoder and
 * checked, so a partial or failed reply that was stored is found:
 *
 * - the envelope must decode (magic, version, lengths, gzip CRC and length: a truncated value
 *   fails here);
 * - JSON values (search, content, discovery, scope) must parse and must not be an error envelope
 *   (`{"error": …}` or a JSON-RPC `{"jsonrpc", "error"}`);
 * - a content value must be the item of its key, with the corpus' access level, readable by the
 *   key's partition; with `include_content` its body must equal the corpus' body byte for byte
 *   (the simulator generates bodies from the same seed);
 * - a search page may only list items the key's partition may read;
 * - a Markdown value must carry its item's front matter, and equal every other partition's
 *   Markdown of the same item; its body is compared with a fresh conversion of the corpus' HTML
 *   by the gateway's own converter (about 40 ms an item on a busy 2-core machine, so within a
 *   time budget per scan, hot items first; a verified body's hash is remembered across scans).
 *
 * The memory tier lives inside each gateway process and cannot be scanned from outside; what it
 * serves is checked instead on every answer by the load generator's checker.
 */
import { Chunk, Effect, Option, Stream } from "effect"
import { createHash } from "node:crypto"
import { Redis } from "ioredis"
import pg from "pg"
import * as Envelope from "../../src/cache/Envelope.js"
import { htmlToMarkdown } from "../../src/markdown/HtmlToMarkdown.js"
import type { Corpus } from "../../src/simulator/Corpus.js"

export interface TierReport {
  readonly tier: "redis" | "postgres"
  readonly reachable: boolean
  readonly entries: number
  readonly by_namespace: Record<string, number>
  readonly corrupt: number
  readonly problems: Array<{ key: string; problem: string }>
  readonly markdown_verified_by_reference: number
  readonly markdown_consistent_only: number
  readonly content_bodies_verified: number
  /**
   * Every servable (200) entry of a level partition, by {@link copyKey}: when it was stored and
   * until when it may be served stale (epoch ms). Not written to the results.
   */
  readonly copies?: Map<string, { readonly createdAt: number; readonly staleUntil: number }>
}

/**
 * A cached answer's key without its partition's hash: `<namespace>|<level>|<question>`, where the
 * question is what follows the partition in the gateway's key (`<id>:<1|0>:<format>` for content,
 * `<id>` for Markdown, the normalised search for a search). Only level partitions (and the
 * anonymous one) are indexed: the bench's callers share their level's partition.
 */
export const copyKey = (namespace: string, level: string, question: string) => `${namespace}|${level}|${question}`

const copyKeyOf = (key: string): string | undefined => {
  const parts = key.split(":")
  if (parts[1] === "anon") return copyKey(parts[0]!, "anonymous", parts.slice(2).join(":"))
  if (parts[1] === "lvl") return copyKey(parts[0]!, parts[2]!, parts.slice(4).join(":"))
  return undefined
}

const sha = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex")
const utf8 = new TextDecoder("utf-8", { fatal: true })

const canRead = (level: string, access: string) => access === "free" || level === "subscriber" || level === "admin"

/** Memory of verified bodies across scans. */
export const makeVerifier = (corpus: Corpus, simUrl: string) => {
  const expectedMarkdown = new Map<number, string>()
  const expectedBody = new Map<string, string>()
  const markdownBody = (id: number): string => {
    let h = expectedMarkdown.get(id)
    if (h === undefined) {
      const item = corpus.get(id)!
      const chunks = Effect.runSync(Stream.runCollect(
        htmlToMarkdown(Stream.fromIterable(corpus.chunks(item, "html", 65_536)), { baseUrl: `${simUrl}/tutorial/${id}` })
      ))
      h = sha(Chunk.join(chunks, ""))
      expectedMarkdown.set(id, h)
    }
    return h
  }
  const contentBody = (id: number, format: "html" | "markdown"): string => {
    const k = `${id}:${format}`
    let h = expectedBody.get(k)
    if (h === undefined) {
      h = sha(corpus.bodyText(corpus.get(id)!, format))
      expectedBody.set(k, h)
    }
    return h
  }
  return { expectedMarkdown, expectedBody, markdownBody, contentBody }
}
export type Verifier = ReturnType<typeof makeVerifier>

const levelOfPartition = (parts: ReadonlyArray<string>): string | undefined =>
  parts[1] === "anon" ? "anonymous" : parts[1] === "lvl" ? parts[2] : undefined

interface Pending {
  key: string
  id: number
  bodyHash: string
}

/** Checks decoded entries; Markdown bodies are collected for the budgeted reference check. */
const checkEntries = async (
  tier: "redis" | "postgres",
  raw: Array<{ key: string; value: Buffer }>,
  corpus: Corpus,
  verifier: Verifier,
  budgetMs: number
): Promise<TierReport> => {
  const problems: Array<{ key: string; problem: string }> = []
  const byNs: Record<string, number> = {}
  let corrupt = 0
  let contentVerified = 0
  const markdown: Array<Pending> = []
  const copies = new Map<string, { createdAt: number; staleUntil: number }>()
  const contentBudgetEnd = Date.now() + budgetMs
  for (const { key, value } of raw) {
    const parts = key.split(":")
    const ns = parts[0]!
    byNs[ns] = (byNs[ns] ?? 0) + 1
    const fail = (problem: string) => {
      corrupt++
      if (problems.length < 50) problems.push({ key, problem })
    }
    const decoded = await Effect.runPromise(Envelope.decode(value))
    if (Option.isNone(decoded)) {
      fail("envelope does not decode")
      continue
    }
    if (!decoded.value.contentType.includes("negative=")) {
      const copy = copyKeyOf(key)
      if (copy !== undefined) copies.set(copy, { createdAt: decoded.value.createdAt, staleUntil: decoded.value.staleUntil })
    }
    let text: string
    try {
      text = utf8.decode(decoded.value.value)
    } catch {
      fail("body is not UTF-8")
      continue
    }
    // Negative entries: a not-found, or a denial kept in the partition it was refused to
    // (CACHE_DENIED_MS). A denial of an item the partition may read is a wrong-level entry.
    if (decoded.value.contentType.includes("negative=404")) continue
    if (decoded.value.contentType.includes("negative=403")) {
      const id = Number(ns === "markdown" ? parts[parts.length - 1] : parts[parts.length - 3])
      const item = corpus.get(id)
      const level = levelOfPartition(parts)
      if (!/"code":"forbidden"/.test(text)) fail("a denial entry without the forbidden error")
      else if (item !== undefined && level !== undefined && canRead(level, item.access)) fail(`a denial of a ${item.access} item in a ${level} partition`)
      continue
    }
    if (ns === "markdown") {
      const id = Number(parts[parts.length - 1])
      const item = corpus.get(id)
      const level = levelOfPartition(parts)
      const m = /^---\n[\s\S]*?\nid: (\d+)\n[\s\S]*?\n---\n\n/.exec(text)
      if (item === undefined || m === null || Number(m[1]) !== id) {
        fail("markdown without its item's front matter")
        continue
      }
      if (level !== undefined && !canRead(level, item.access)) fail(`markdown of a ${item.access} item in a ${level} partition`)
      markdown.push({ key, id, bodyHash: sha(text.slice(m[0].length)) })
      continue
    }
    let json: any
    try {
      json = JSON.parse(text)
    } catch {
      fail("JSON value does not parse")
      continue
    }
    if (json !== null && typeof json === "object" && !Array.isArray(json) && json.error !== undefined && json.error !== null) {
      fail("an error envelope was stored")
      continue
    }
    if (ns === "content") {
      const id = Number(parts[parts.length - 3])
      const include = parts[parts.length - 2] === "1"
      const format = parts[parts.length - 1] as "html" | "markdown"
      const level = levelOfPartition(parts)
      const item = corpus.get(id)
      if (decoded.value.contentType.includes("negative=404")) continue
      if (item === undefined || json?.id !== id) {
        fail("content value of another item")
        continue
      }
      if (json.access_level !== item.access) fail("access_level differs from the corpus")
      if (level !== undefined && !canRead(level, item.access)) fail(`a ${item.access} item in a ${level} partition`)
      if (include) {
        if (typeof json.content !== "string") fail("content body missing")
        else if (!item.large && Date.now() < contentBudgetEnd) {
          if (sha(json.content) !== verifier.contentBody(id, format)) fail("content body differs from the corpus")
          else contentVerified++
        }
      }
    } else if (ns === "search") {
      const level = levelOfPartition(parts)
      if (!Array.isArray(json?.results)) fail("search page without results")
      else if (level !== undefined) {
        for (const r of json.results) {
          const item = corpus.get(r?.id)
          if (item === undefined) fail("search lists an unknown item")
          else if (!canRead(level, item.access)) fail(`search of a ${level} partition lists a ${item.access} item`)
        }
      }
    }
  }
  // Markdown: every copy of one item must be identical; then the reference, hot items first.
  const byId = new Map<number, Array<Pending>>()
  for (const p of markdown) byId.set(p.id, [...(byId.get(p.id) ?? []), p])
  let verified = 0
  let consistentOnly = 0
  const ids = [...byId.keys()].sort((a, b) => byId.get(b)!.length - byId.get(a)!.length)
  const end = Date.now() + budgetMs
  for (const id of ids) {
    const copies = byId.get(id)!
    const hashes = new Set(copies.map((c) => c.bodyHash))
    if (hashes.size > 1) {
      for (const c of copies) {
        corrupt++
        if (problems.length < 50) problems.push({ key: c.key, problem: "markdown copies of one item differ" })
      }
      continue
    }
    const known = verifier.expectedMarkdown.get(id)
    if (known !== undefined || Date.now() < end) {
      if (verifier.markdownBody(id) !== copies[0]!.bodyHash) {
        for (const c of copies) {
          corrupt++
          if (problems.length < 50) problems.push({ key: c.key, problem: "markdown differs from a fresh conversion" })
        }
      } else verified += copies.length
    } else consistentOnly += copies.length
  }
  return {
    tier,
    reachable: true,
    entries: raw.length,
    by_namespace: byNs,
    corrupt,
    problems,
    markdown_verified_by_reference: verified,
    markdown_consistent_only: consistentOnly,
    content_bodies_verified: contentVerified,
    copies
  }
}

const unreachable = (tier: "redis" | "postgres", error: unknown): TierReport => ({
  tier,
  reachable: false,
  entries: 0,
  by_namespace: {},
  corrupt: 0,
  problems: [{ key: "", problem: `not scanned: ${error instanceof Error ? error.message : String(error)}` }],
  markdown_verified_by_reference: 0,
  markdown_consistent_only: 0,
  content_bodies_verified: 0
})

export const scanRedis = async (url: string, prefix: string, corpus: Corpus, verifier: Verifier, budgetMs = 5_000, maxEntries = 50_000): Promise<TierReport> => {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 2_000, enableOfflineQueue: false })
  redis.on("error", () => {})
  try {
    await redis.connect()
    const raw: Array<{ key: string; value: Buffer }> = []
    let cursor = "0"
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}e:*`, "COUNT", 500)
      cursor = next
      if (keys.length > 0) {
        const values = await redis.mgetBuffer(...keys)
        keys.forEach((k, i) => {
          const v = values[i]
          if (v !== null && v !== undefined) raw.push({ key: k.slice(prefix.length + 2), value: v })
        })
      }
    } while (cursor !== "0" && raw.length < maxEntries)
    return await checkEntries("redis", raw, corpus, verifier, budgetMs)
  } catch (error) {
    return unreachable("redis", error)
  } finally {
    redis.disconnect()
  }
}

export const scanPostgres = async (url: string, table: string, corpus: Corpus, verifier: Verifier, budgetMs = 5_000, maxEntries = 50_000): Promise<TierReport> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 })
  client.on("error", () => {})
  try {
    await client.connect()
    const res = await client.query<{ key: string; value: Buffer }>(`SELECT key, value FROM ${table} WHERE stale_until > now() LIMIT ${maxEntries}`)
    return await checkEntries("postgres", res.rows, corpus, verifier, budgetMs)
  } catch (error) {
    return unreachable("postgres", error)
  } finally {
    await client.end().catch(() => {})
  }
}
