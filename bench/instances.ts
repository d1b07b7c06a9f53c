/**
 * Several instances (issue 9, item 7): three gateway processes sharing Redis and PostgreSQL, the
 * simulator in its own process, a mixed closed-loop load spread over the three.
 *
 * 1. Invalidation under load: a probe item (outside the load's ids) is cached in every
 *    instance's memory, then invalidated on one (the admin route and the signed webhook, in
 *    turn). Each instance is polled by overlapping polls (one every ~3 ms, up to 8 in flight): the
 *    time from the invalidation's answer to the send time of the last poll still answered from
 *    the old memory copy (HIT-MEMORY before the first answer without it) is that instance's
 *    propagation time; the documented bound is 250 ms.
 * 2. A cold key requested on all three at once: the load is paused (the simulator's counters are
 *    global), then `--stampede` concurrent requests per instance for one new item and for one new
 *    search; the simulator's per-method counters must grow by one each.
 * 3. One instance SIGKILLed under load (restarted after the phase): the other two's error rate
 *    and p99 before, during and after.
 *
 *   npm run bench:instances -- [--phase-seconds 10] [--connections 100] [--rounds 12] [--stampede 100]
 *
 * Writes bench/results/instances.json, instances.md and instances.svg; exits non-zero on a crash,
 * an invalidation past the bound, a stampede reaching the origin more than once, or an error
 * answered by a surviving instance.
 */
import { Pool } from "undici"
import { randomUUID } from "node:crypto"
import { deliveryHeaders } from "../src/invalidation/Webhook.js"
import { Records, runLoad, type LoadRequest } from "./harness/load.js"
import { type Gateway, runMain, sleep } from "./harness/processes.js"
import { argNumber, argString, barChart, environment, table, writeResult } from "./harness/report.js"
import { ADMIN_TOKEN, startStack, WEBHOOK_SECRET } from "./harness/stack.js"
import { indexesIn, percentile, summarize, type Window } from "./harness/stats.js"
import { buildCorpus, checkAnswer, type CorpusSettings, makeWorkload } from "./harness/workload.js"

const phaseSeconds = argNumber("phase-seconds", 10)
const connections = argNumber("connections", 100)
const rounds = argNumber("rounds", 12)
const stampede = argNumber("stampede", 100)
const BOUND_MS = 250

const corpusSettings: CorpusSettings = { size: 10_000, seed: 42, largeShare: 0, hugeItemId: 0, hugeItemBytes: 0 }
const SIM_ENV = { SIM_LATENCY: "lognormal", SIM_LATENCY_MEAN_MS: "80", SIM_LATENCY_P99_MS: "250" }
const corpus = buildCorpus(corpusSettings)
/** Probe and stampede ids: free items the load never asks for. */
const reserved = corpus.items.filter((i) => i.access === "free").slice(-200).map((i) => i.id)
const probeIds = reserved.slice(0, 100)
const coldIds = reserved.slice(100)
const workload = makeWorkload(corpus, { ids: 9_000, questions: 2_500, exclude: new Set(reserved) })

const main = async () => {
  const stack = await startStack({ corpus: corpusSettings, simulatorEnv: SIM_ENV, gatewayEnv: {} })
  const gateways: Array<Gateway> = await Promise.all(["gateway-a", "gateway-b", "gateway-c"].map((name) => stack.addGateway(name)))
  const epoch = Date.now()
  const check = (req: LoadRequest, body: string) => checkAnswer(corpus, req.kind, req.id, req.caller.level, body)
  const pools = gateways.map((g) => new Pool(g.url, { connections: 8 }))
  const get = async (i: number, path: string, headers: Record<string, string> = {}) => {
    const sent = performance.now()
    const res = await pools[i]!.request({ path, method: "GET", headers, signal: AbortSignal.timeout(10_000) })
    const body = await res.body.text()
    return { sent, status: res.statusCode, cache: String(res.headers["x-cache"] ?? ""), body }
  }

  const startLoad = (records: Records) =>
    runLoad({
      targets: () => gateways.map((g) => g.url),
      connections,
      next: () => workload.next(),
      maxSeconds: 600,
      maxRequests: 5_000_000,
      requestTimeoutMs: 15_000,
      check,
      epoch,
      records
    })

  // ------------------------------------------------------------------ 1. invalidation under load
  console.error(`[bench] warm-up ${phaseSeconds} s over three instances`)
  const loadRecords = new Records()
  let load = startLoad(loadRecords)
  await sleep(phaseSeconds * 1000)
  const invalidations: Array<{ round: number; via: string; on: string; id: number; answer_ms: number; propagation_ms: Array<number | null>; from_send_ms: Array<number | null> }> = []
  for (let round = 0; round < rounds; round++) {
    const id = probeIds[round]!
    const path = `/content/${id}`
    // Cached in every instance's memory (the hit path needs two requests: load, then hit).
    for (let i = 0; i < 3; i++) {
      for (let attempt = 0; attempt < 20; attempt++) {
        const r = await get(i, path)
        if (r.cache === "HIT-MEMORY") break
      }
    }
    const on = round % 3
    const via = round % 2 === 0 ? "admin" : "webhook"
    const t0 = performance.now()
    // Every instance is polled from the moment the invalidation is sent, by overlapping polls (a
    // new one every ~3 ms, up to 8 in flight), so a slow answer under load does not hide the
    // moments after it. A poll answered from the old memory copy proves the copy was still served
    // to a request sent at that poll's send time; the last such send time is what the bound is
    // about. Polling stops once an answer without the old copy came and every poll returned.
    let answered: number | undefined
    const polls = [0, 1, 2].map(async (i): Promise<{ lastOld: number | null; firstGone: number } | null> => {
      const until = t0 + 10_000
      const hits: Array<number> = []
      let firstGone = Number.POSITIVE_INFINITY
      let inFlight = 0
      const pending: Array<Promise<void>> = []
      while (firstGone === Number.POSITIVE_INFINITY && performance.now() < until) {
        if (inFlight < 8) {
          inFlight++
          pending.push(get(i, path).then((r) => {
            if (r.cache === "HIT-MEMORY") hits.push(r.sent)
            else firstGone = Math.min(firstGone, r.sent)
          }, () => {}).finally(() => inFlight--))
        }
        await sleep(3)
      }
      await Promise.all(pending)
      if (firstGone === Number.POSITIVE_INFINITY) return null
      // The first miss reloads the item: a hit on a poll sent after it may be the new copy.
      const old = hits.filter((sent) => sent < firstGone)
      return { lastOld: old.length === 0 ? null : Math.max(...old), firstGone }
    })
    let answer: Response
    if (via === "admin") {
      answer = await fetch(`${gateways[on]!.url}/admin/invalidate`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ tags: [`item:${id}`] })
      })
    } else {
      const body = JSON.stringify({ event: "content.updated", ids: [id] })
      const ts = Math.floor(Date.now() / 1000)
      answer = await fetch(`${gateways[on]!.url}/webhooks/drupal`, {
        method: "POST",
        headers: { "content-type": "application/json", ...deliveryHeaders(WEBHOOK_SECRET, `msg_${randomUUID()}`, ts, body) },
        body
      })
    }
    await answer.arrayBuffer()
    const t1 = performance.now()
    if (answer.status >= 300) throw new Error(`${via} invalidation answered ${answer.status}`)
    answered = t1
    const seen = await Promise.all(polls)
    const r1 = (x: number) => Math.round(x * 10) / 10
    // After the answer (the documented bound): how long after it a request sent still got the old
    // copy; 0 when no request sent after the answer did.
    const propagation = seen.map((x) => (x === null ? null : x.lastOld === null ? 0 : r1(Math.max(0, x.lastOld - answered!))))
    const fromSend = seen.map((x) => (x === null ? null : r1((x.lastOld ?? t0) - t0)))
    invalidations.push({ round, via, on: gateways[on]!.name, id, answer_ms: r1(t1 - t0), propagation_ms: propagation, from_send_ms: fromSend })
    console.error(`[bench] invalidation ${round + 1}/${rounds} via ${via} on ${gateways[on]!.name}: answered in ${Math.round(t1 - t0)} ms; old copy last served to a poll sent ${fromSend.join(" / ")} ms after the send, ${propagation.join(" / ")} ms after the answer`)
  }
  await load.stop()
  const loadDuringInvalidation = summarize(loadRecords, indexesIn(loadRecords, 0, Date.now() - epoch), (Date.now() - epoch) / 1000)

  // ------------------------------------------------------------------ 2. cold key on all three at once
  await sleep(500)
  const stampedes: Array<{ what: string; requests: number; statuses: Record<string, number>; distinct_bodies: number; origin_calls: number }> = []
  const fire = async (what: string, path: string, method: string) => {
    const before = await stack.simStats()
    const results = await Promise.all(
      [0, 1, 2].flatMap((i) => Array.from({ length: stampede }, () => get(i, path).catch(() => ({ status: 0, body: "", cache: "", sent: 0 }))))
    )
    await sleep(300)
    const after = await stack.simStats()
    const statuses: Record<string, number> = {}
    for (const r of results) statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1
    const calls = (after.methods?.[method] ?? 0) - (before.methods?.[method] ?? 0)
    stampedes.push({ what, requests: results.length, statuses, distinct_bodies: new Set(results.map((r) => r.body)).size, origin_calls: calls })
    console.error(`[bench] cold ${what}: ${results.length} concurrent requests over 3 instances → ${calls} origin ${method} call(s); statuses ${JSON.stringify(statuses)}`)
  }
  for (let k = 0; k < 3; k++) {
    await fire(`/content/${coldIds[k]}`, `/content/${coldIds[k]}`, "content.get_tutorial")
    const q = `cold stampede question ${k} ${Date.now()}`
    await fire(`/search?q=${q.replace(/ /g, "+")}`, `/search?q=${encodeURIComponent(q)}`, "content.search")
  }

  // ------------------------------------------------------------------ 3. one instance killed under load
  console.error(`[bench] kill test: before ${phaseSeconds} s, gateway-c SIGKILLed for ${phaseSeconds} s, restarted, after ${phaseSeconds} s`)
  const killRecords = new Records()
  load = startLoad(killRecords)
  const k0 = Date.now() - epoch
  await sleep(phaseSeconds * 1000)
  const kStart = Date.now() - epoch
  const victim = gateways[2]!
  await victim.proc.stop("SIGKILL")
  await sleep(phaseSeconds * 1000)
  gateways[2] = await stack.addGateway("gateway-c", victim.port)
  const kEnd = Date.now() - epoch
  await sleep(phaseSeconds * 1000)
  const kDone = Date.now() - epoch
  await load.stop()
  const perInstance = (target: number) => ({
    before: summarize(killRecords, indexesIn(killRecords, k0, kStart, (i) => killRecords.target[i] === target), (kStart - k0) / 1000),
    during: summarize(killRecords, indexesIn(killRecords, kStart, kEnd, (i) => killRecords.target[i] === target), (kEnd - kStart) / 1000),
    after: summarize(killRecords, indexesIn(killRecords, kEnd, kDone, (i) => killRecords.target[i] === target), (kDone - kEnd) / 1000)
  })
  const kill = { "gateway-a": perInstance(0), "gateway-b": perInstance(1), "gateway-c (killed)": perInstance(2) }
  for (const p of pools) await p.destroy()

  // ------------------------------------------------------------------ verdict and results
  const crashes = gateways.concat([victim]).filter((g) => g.proc.unexpectedExit !== undefined).map((g) => ({ name: g.name, exit: g.proc.unexpectedExit, log: g.proc.logTail(40) }))
  const allProp = invalidations.flatMap((r) => r.propagation_ms)
  const measured = allProp.filter((x): x is number => x !== null)
  const violations: Record<string, number> = {}
  for (const rec of [loadRecords, killRecords]) for (const v of rec.violation) if (v !== undefined) violations[v] = (violations[v] ?? 0) + 1
  const survivorsErrors = kill["gateway-a"].during.errors + kill["gateway-b"].during.errors + kill["gateway-a"].after.errors + kill["gateway-b"].after.errors
  const failures = [
    ...crashes.map((c) => `${c.name} crashed (${JSON.stringify(c.exit)})`),
    ...(allProp.some((x) => x === null || x > BOUND_MS) ? [`invalidation past the ${BOUND_MS} ms bound in ${allProp.filter((x) => x === null || x > BOUND_MS).length} of ${allProp.length} instance-rounds`] : []),
    ...stampedes.filter((s) => s.origin_calls !== 1).map((s) => `cold ${s.what} reached the origin ${s.origin_calls} times`),
    ...Object.entries(violations).map(([v, n]) => `${n} ${v} answers`),
    ...(survivorsErrors > 0 ? [`${survivorsErrors} errors on the surviving instances while one was down`] : [])
  ]
  const env = environment()
  const invalidationSummary = {
    bound_ms: BOUND_MS,
    instance_rounds: allProp.length,
    p50_ms: percentile(measured, 50),
    p99_ms: percentile(measured, 99),
    max_ms: measured.length ? Math.max(...measured) : null,
    not_seen_within_10s: allProp.filter((x) => x === null).length
  }
  const record = {
    ...env,
    settings: { phase_seconds: phaseSeconds, connections, rounds, stampede_per_instance: stampede, corpus: corpusSettings, simulator: SIM_ENV, redis: stack.redis.version, postgres: stack.postgres.version },
    verdict: failures.length === 0 ? "pass" : "fail",
    failures,
    crashes,
    invalidation: { summary: invalidationSummary, load_meanwhile: loadDuringInvalidation, rounds: invalidations },
    stampedes,
    kill
  }
  const w = (x: Window) => `${x.p99_ms ?? "—"} ms, ${x.errors} errors / ${x.requests}`
  const md = [
    "# instances — three gateways sharing Redis and PostgreSQL",
    "",
    `\`${env.command}\` on ${env.date} (commit ${env.commit}); ${env.machine.cpus} × ${env.machine.cpu}, Node ${env.versions.node}, effect ${env.versions.effect}, redis-server ${stack.redis.version}, PostgreSQL ${stack.postgres.version}.`,
    `Machine: ${env.machine.shared} (load average ${env.machine.load_average_at_start.join(", ")} at start).`,
    "",
    `Three gateway processes (default settings), the simulator in its own process (log-normal latency, mean 80 ms, p99 250 ms), ${connections} closed-loop connections spread over the three.`,
    "",
    `**Verdict: ${record.verdict}**${failures.length === 0 ? "" : ` — ${failures.join("; ")}`}`,
    "",
    "## Invalidation under load",
    "",
    `${rounds} rounds, alternately \`POST /admin/invalidate\` and the signed webhook, on each instance in turn, while the load ran (${loadDuringInvalidation.rps} req/s, p99 ${loadDuringInvalidation.p99_ms} ms). Every instance is polled from the moment the invalidation is sent, by overlapping polls (a new one every ~3 ms, up to 8 in flight, so one slow answer under load hides nothing), until an answer without the old memory copy came and every poll returned. The propagation measured against the bound is the time from the invalidation's answer to the send time of the last poll still answered from the old copy (0 when no poll sent after the answer got it): requests sent later than that never saw the old value. p50 ${invalidationSummary.p50_ms} ms, p99 ${invalidationSummary.p99_ms} ms, max ${invalidationSummary.max_ms} ms over ${allProp.length} instance-rounds (bound ${BOUND_MS} ms; ${invalidationSummary.not_seen_within_10s} not seen within 10 s).`,
    "",
    table(["round", "via", "on", "answer ms", "old copy last served on a / b / c (poll sent, ms after the send)", "ms after the answer"], invalidations.map((r) => [r.round + 1, r.via, r.on, r.answer_ms, r.from_send_ms.join(" / "), r.propagation_ms.join(" / ")])),
    "",
    "## A cold key on all three at once",
    "",
    `${stampede} concurrent requests per instance (${stampede * 3} in all), load paused so the simulator's counters are ours:`,
    "",
    table(["question", "requests", "statuses", "distinct bodies", "origin calls"], stampedes.map((s) => [s.what, s.requests, JSON.stringify(s.statuses), s.distinct_bodies, s.origin_calls])),
    "",
    "## One instance killed under load",
    "",
    table(["instance", "before (p99, errors)", "during", "after"], Object.entries(kill).map(([name, k]) => [name, w(k.before), w(k.during), w(k.after)])),
    "",
    "The killed instance's own errors are the requests it had in flight when it was killed (counted by their start, in \"before\") and, during its absence, the load generator's connections to it (refused); the others must not notice.",
    "",
    "![p99 per instance and phase](instances.svg)",
    ""
  ].join("\n")
  const svg = barChart({
    title: "instances: p99 per instance while gateway-c is killed",
    groups: Object.keys(kill),
    series: [
      { name: "p99 before", color: "#4a90d9", values: Object.values(kill).map((k) => k.before.p99_ms) },
      { name: "p99 during", color: "#d9534f", values: Object.values(kill).map((k) => k.during.p99_ms) },
      { name: "p99 after", color: "#5cb85c", values: Object.values(kill).map((k) => k.after.p99_ms) }
    ]
  })
  writeResult(argString("name", "instances"), record, md, svg)
  console.log(md)
  return failures.length === 0 ? 0 : 1
}

runMain(main)
