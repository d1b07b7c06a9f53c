import { Pool } from "undici"
import { findFreePort, startGateway, startSimulator, runMain } from "./harness/processes.js"
import { simulatorEnv, type CorpusSettings } from "./harness/workload.js"
const corpusSettings: CorpusSettings = { size: 10_000, seed: 42, largeShare: 0, hugeItemId: 0, hugeItemBytes: 0 }
const variant = process.argv[2] ?? "html"
runMain(async () => {
  const sim = await startSimulator({ port: await findFreePort(), env: { ...simulatorEnv(corpusSettings), SIM_COST: "off", SIM_LATENCY: "none" } })
  const gw = await startGateway({ name: "gw", port: await findFreePort(), nodeArgs: ["--cpu-prof", "--cpu-prof-dir=/tmp/mp"], env: { DRUPAL_URL: sim.url } })
  const pool = new Pool(gw.url, { connections: 32 })
  const path = (id: number) => variant === "html" ? `/content/${id}` : variant === "md" ? `/content/${id}?format=markdown` : variant === "search" ? `/search?q=term${id}&limit=10` : `/content/${id}/markdown`
  let next = 1
  const run = async (n: number) => { await Promise.all(Array.from({ length: 32 }, async () => { while (next <= n) { const id = next++; const r = await pool.request({ path: path(id), method: "GET" }); await r.body.text() } })) }
  await run(1000)
  const t = performance.now(); await run(5000); console.error(`4000 misses in ${Math.round(performance.now() - t)} ms`)
  await gw.proc.stop("SIGTERM", 30_000)
  return 0
})
