/**
 * Where the gateway's time goes under the realistic mix: the same system as `bench/mix.ts` (large
 * items off by default, 256 connections), the gateway started with `node --cpu-prof`, a warm-up, a measured wrk run, then SIGTERM so the profile is written. The
 * profile's self time is summed per function and per area (Effect runtime, our modules, node
 * internals, GC, idle).
 *
 *   npm run bench:profile -- [--seconds 20] [--connections 256] [--corpus no-large|default]
 *
 * Writes bench/results/profile.json and profile.md (the raw .cpuprofile stays in the log
 * directory printed at the end; open it in Chrome DevTools).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { type PostgresServer, type RedisServer, startPostgres, startRedis } from "../test/support/services.js"
import { findFreePort, logDir, runMain, startGateway, startSimulator } from "./harness/processes.js"
import { argNumber, argString, environment, table, writeResult } from "./harness/report.js"
import { benchSeconds, fmt, markdownHeader, progress } from "./harness/suite.js"
import { buildCorpus, type CorpusSettings, makeWorkload, simulatorEnv } from "./harness/workload.js"
import { requireTools, runWrk, wrkVersion, writeRequestList } from "./harness/wrk.js"

const seconds = benchSeconds(20)
const connections = argNumber("connections", 256)
const corpusName = argString("corpus", "no-large")
const settings: CorpusSettings = { size: 10_000, seed: 42, largeShare: corpusName === "default" ? 0.01 : 0, hugeItemId: 0, hugeItemBytes: 0 }
const SIM_LATENCY = { SIM_LATENCY: "lognormal", SIM_LATENCY_MEAN_MS: "80", SIM_LATENCY_P99_MS: "250" }

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly hitCount?: number
}

const areaOf = (url: string, fn: string): string => {
  if (fn === "(garbage collector)") return "garbage collector"
  if (fn === "(idle)") return "idle"
  if (fn === "(program)") return "(program: native, unattributed)"
  if (url.includes("/node_modules/effect/")) return "effect runtime"
  if (url.includes("/node_modules/@effect/")) return "@effect/* packages"
  if (url.includes("/node_modules/")) return `dependency: ${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? "?"}`
  if (url.includes("/src/")) return `src/${url.split("/src/")[1]!.split("/")[0]}`
  if (url.startsWith("node:") || url === "") return "node internals"
  return "other"
}

export const summarizeProfile = (file: string) => {
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as { nodes: Array<ProfileNode>; startTime: number; endTime: number; samples: Array<number> }
  const total = profile.samples.length
  const byFunction = new Map<string, number>()
  const byArea = new Map<string, number>()
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    if (hits === 0) continue
    const { functionName, url, lineNumber } = node.callFrame
    const short = url.replace(/^file:\/\/.*?\/(node_modules|src)\//, "$1/")
    const name = `${functionName || "(anonymous)"} ${short}:${lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + hits)
    const area = areaOf(url, functionName)
    byArea.set(area, (byArea.get(area) ?? 0) + hits)
  }
  const share = (n: number) => Math.round((n / total) * 1000) / 10
  const idle = byArea.get("idle") ?? 0
  return {
    samples: total,
    seconds: Math.round((profile.endTime - profile.startTime) / 1e5) / 10,
    busy_share: share(total - idle),
    areas: [...byArea].sort((a, b) => b[1] - a[1]).map(([area, n]) => ({ area, self_share: share(n) })),
    functions: [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([fn, n]) => ({ function: fn, self_share: share(n) }))
  }
}

const main = async () => {
  requireTools({ wrk: "wrk" })
  const env = environment({ wrk: wrkVersion() })
  const [redis, postgres] = await Promise.all([startRedis(), startPostgres()]) as [RedisServer, PostgresServer]
  const simulator = await startSimulator({ port: await findFreePort(), env: { ...simulatorEnv(settings), ...SIM_LATENCY } })
  const workload = makeWorkload(buildCorpus(settings), { ids: 10_000, questions: 2_500 })
  const list = writeRequestList(Array.from({ length: 60_000 }, (_, i) => ({ path: workload.next().path, authorization: i % 2 === 0 ? undefined : "Bearer demo-subscriber-token" })))
  const profDir = path.join(logDir, "cpu-profile")
  fs.mkdirSync(profDir)
  const gateway = await startGateway({
    name: "gateway-profiled",
    port: await findFreePort(),
    nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profDir}`],
    env: { DRUPAL_URL: simulator.url, REDIS_URL: redis.url, DATABASE_URL: postgres.url }
  })
  const warm = progress("warm-up (profiled too)", seconds)
  await runWrk({ url: gateway.url, requestList: list, connections, seconds }).finally(warm)
  const stop = progress(`measured run, ${connections} connections`, seconds)
  const wrk = await runWrk({ url: gateway.url, requestList: list, connections, seconds }).finally(stop)
  console.error(`[bench]   ${wrk.rps} req/s, p99 ${wrk.p99_ms} ms, statuses ${JSON.stringify(wrk.statuses)}`)
  await gateway.proc.stop("SIGTERM", 30_000)
  const file = fs.readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile")).map((f) => path.join(profDir, f))[0]
  if (file === undefined) throw new Error(`no profile written in ${profDir}`)
  const summary = summarizeProfile(file)
  const markdown = [
    markdownHeader("profile — where the gateway's CPU goes under the realistic mix", env,
      `\`node --cpu-prof\` on the gateway over a warm-up and a measured run (${seconds} s each) of the realistic mix (corpus ${corpusName}, ${connections} connections, wrk 2 threads; setup as in \`mix\`). Measured run: ${fmt(wrk.rps)} req/s, p50 ${wrk.p50_ms} / p99 ${wrk.p99_ms} ms. The gateway was busy (not idle) in ${summary.busy_share} % of ${fmt(summary.samples)} samples over ${summary.seconds} s. Self time per area and per function, as shares of all samples.`),
    table(["area (≥ 0.1 %; all in the JSON)", "self %"], summary.areas.filter((a) => a.self_share >= 0.1).map((a) => [a.area, a.self_share])),
    "",
    table(["function (self time)", "self %"], summary.functions.map((f) => [`\`${f.function}\``, f.self_share])),
    "",
    `Raw profile: ${file} (not committed).`,
    ""
  ].join("\n")
  writeResult("profile", { ...env, settings: { seconds, connections, corpus: corpusName }, wrk, profile: summary }, markdown)
  console.log(markdown)
  return 0
}

runMain(main)
