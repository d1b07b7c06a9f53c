/**
 * The hit path: the gateway's memory hits of one hot item against a raw `node:http` server and
 * Varnish serving the same bytes. wrk (one thread by default), interleaved rounds, medians.
 *
 * Processes: redis-server and PostgreSQL (test harness), the simulator, the gateway, a raw
 * node:http server answering the gateway's own captured answers from a `Map`, and two varnishd
 * in front of that raw server: the default VCL (passes requests with `Authorization`) and a VCL
 * that hashes on the token (`harness/varnish.ts` says why it is safe and what it cannot do).
 * Both callers are measured: anonymous and a subscriber's bearer token.
 *
 *   npm run bench:hit-path -- [--rounds 3] [--seconds 5] [--connections 100] [--threads 1]
 *
 * Writes bench/results/hit-path.json, .md and .svg. Exits 1 when the gateway's anonymous memory
 * hits are below 75 % of raw node:http or of a Varnish hit.
 */
import { type PostgresServer, type RedisServer, startPostgres, startRedis } from "../test/support/services.js"
import { findFreePort, runMain, startGateway, startSimulator } from "./harness/processes.js"
import { captureAnswers, startReplay } from "./harness/replay.js"
import { argNumber, environment, table, writeResult } from "./harness/report.js"
import { benchSeconds, fmt, markdownHeader, percentileChart, progress } from "./harness/suite.js"
import { startVarnish, varnishVersion } from "./harness/varnish.js"
import { buildCorpus, type CorpusSettings, simulatorEnv } from "./harness/workload.js"
import { requireTools, runWrk, type WrkResult, wrkVersion, writeRequestList } from "./harness/wrk.js"

const rounds = argNumber("rounds", 3)
const seconds = benchSeconds(5)
const connections = argNumber("connections", 100)
const threads = argNumber("threads", 1)
const corpusSettings: CorpusSettings = { size: 10_000, seed: 42, largeShare: 0, hugeItemId: 0, hugeItemBytes: 0 }

const CALLERS = [
  { name: "anonymous", authorization: undefined },
  { name: "subscriber", authorization: "Bearer demo-subscriber-token" }
] as const
const CONTENDERS = ["raw node:http", "gateway", "varnish default", "varnish token-hash"] as const
type Contender = (typeof CONTENDERS)[number]

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const main = async () => {
  requireTools({ wrk: "wrk", varnishd: "varnish" })
  const varnish = varnishVersion()
  const env = environment({ wrk: wrkVersion(), varnish })
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]) as [RedisServer, PostgresServer]
  const simulator = await startSimulator({ port: await findFreePort(), env: simulatorEnv(corpusSettings) })
  const gateway = await startGateway({
    name: "gateway",
    port: await findFreePort(),
    env: { DRUPAL_URL: simulator.url, REDIS_URL: redis.url, DATABASE_URL: postgres.url }
  })
  // A free item of typical size, full body.
  const item = buildCorpus(corpusSettings).items.find((i) => i.access === "free" && !i.large)!
  const path = `/content/${item.id}`
  const keys = CALLERS.map((c) => ({ path, authorization: c.authorization }))
  await captureAnswers(gateway.url, keys, 1) // loads and caches
  const captured = await captureAnswers(gateway.url, keys, 1)
  const raw = await startReplay(captured.file)
  const varnishDefault = await startVarnish("default", Number(new URL(raw.url).port))
  const varnishToken = await startVarnish("token", Number(new URL(raw.url).port))
  const urls: Record<Contender, string> = {
    "raw node:http": raw.url,
    gateway: gateway.url,
    "varnish default": varnishDefault.url,
    "varnish token-hash": varnishToken.url
  }
  console.error(`[bench] ${path}: ${captured.bytes / 2} bytes per answer; raw at ${raw.url}, varnish at ${varnishDefault.url} / ${varnishToken.url}`)

  const lists = Object.fromEntries(CALLERS.map((c) => [c.name, writeRequestList([{ path, authorization: c.authorization }])]))
  const results: Record<string, Array<WrkResult>> = {}
  // JIT warm-up of every contender (and Varnish's first fetch).
  for (const c of CALLERS) for (const k of CONTENDERS) await runWrk({ url: urls[k], requestList: lists[c.name]!, connections, seconds: 1, threads })
  for (let round = 1; round <= rounds; round++) {
    for (const c of CALLERS) {
      for (const k of CONTENDERS) {
        const label = `round ${round}/${rounds} ${c.name} ${k}`
        const stop = progress(label, seconds)
        const r = await runWrk({ url: urls[k], requestList: lists[c.name]!, connections, seconds, threads }).finally(stop)
        console.error(`[bench]   ${label}: ${r.rps} req/s, p99 ${r.p99_ms} ms, statuses ${JSON.stringify(r.statuses)}, x-cache ${JSON.stringify(r.cache)}`)
        ;(results[`${c.name}|${k}`] ??= []).push(r)
      }
    }
  }
  await Promise.all([varnishDefault.stop(), varnishToken.stop()])

  const summary = Object.fromEntries(Object.entries(results).map(([key, rs]) => [key, {
    rps: median(rs.map((r) => r.rps)),
    p50_ms: median(rs.map((r) => r.p50_ms)),
    p90_ms: median(rs.map((r) => r.p90_ms)),
    p99_ms: median(rs.map((r) => r.p99_ms)),
    max_ms: median(rs.map((r) => r.max_ms)),
    non_200: rs.reduce((n, r) => n + Object.entries(r.statuses).filter(([s]) => s !== "200").reduce((m, [, x]) => m + x, 0), 0),
    socket_errors: rs.reduce((n, r) => n + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout, 0),
    cache: rs[rs.length - 1]!.cache
  }]))
  const s = (caller: string, k: Contender) => summary[`${caller}|${k}`]!
  const ratios = Object.fromEntries(CALLERS.map((c) => [c.name, Object.fromEntries(CONTENDERS.filter((k) => k !== "gateway").map((k) => [k, Math.round((s(c.name, "gateway").rps / s(c.name, k).rps) * 1000) / 1000]))]))
  const anon = ratios.anonymous!
  const verdicts = [
    { target: "anonymous memory hit ≥ 75 % of raw node:http", value: anon["raw node:http"]!, met: anon["raw node:http"]! >= 0.75 },
    { target: "anonymous memory hit ≥ 75 % of a Varnish hit (default VCL)", value: anon["varnish default"]!, met: anon["varnish default"]! >= 0.75 },
    { target: "subscriber memory hit ≥ 75 % of a Varnish hit (token-hash VCL)", value: ratios.subscriber!["varnish token-hash"]!, met: ratios.subscriber!["varnish token-hash"]! >= 0.75 }
  ]
  const markdown = [
    markdownHeader("hit-path — memory hits against raw node:http and Varnish", env,
      `\`GET ${path}\` (${fmt(captured.bytes / 2)} bytes, a free item, full body) answered from the gateway's memory tier, by a raw node:http server from a \`Map\` (the gateway's captured bytes), and by Varnish ${varnish} in front of that raw server. wrk ${threads} thread(s), ${connections} connections, ${seconds} s per run, ${rounds} interleaved rounds, medians. "varnish default" passes requests carrying \`Authorization\` to the backend (so the subscriber rows measure a Varnish pass); "varnish token-hash" caches them under URL + token.`),
    table(["target", "gateway / contender", "met"], verdicts.map((v) => [v.target, `${fmt(v.value * 100, 1)} %`, v.met ? "yes" : "**no**"])),
    "",
    table(["caller", "server", "req/s (median)", "p50 ms", "p90 ms", "p99 ms", "gateway / this", "non-200", "X-Cache (last round)"],
      CALLERS.flatMap((c) => CONTENDERS.map((k) => {
        const x = s(c.name, k)
        return [c.name, k, fmt(x.rps), fmt(x.p50_ms, 2), fmt(x.p90_ms, 2), fmt(x.p99_ms, 2), k === "gateway" ? "—" : `${fmt(ratios[c.name]![k]! * 100, 1)} %`, x.non_200 + x.socket_errors, JSON.stringify(x.cache)]
      }))),
    ""
  ].join("\n")
  const svg = percentileChart(`hit path: latency percentiles (wrk, ${connections} connections, medians of ${rounds})`,
    CALLERS.flatMap((c) => CONTENDERS.map((k) => ({ label: `${c.name} ${k}`, ...s(c.name, k) }))))
  writeResult("hit-path", { ...env, settings: { path, body_bytes: captured.bytes / 2, rounds, seconds, connections, threads }, verdicts, ratios, summary, rounds: results }, markdown, svg)
  console.log(markdown)
  return verdicts.every((v) => v.met) ? 0 : 1
}

runMain(main)
