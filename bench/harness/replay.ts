/**
 * The ceiling of a mix: a raw `node:http` server (its own process) replaying answers captured
 * from the gateway (same status, same bytes, same content type) for the same paths and callers,
 * so the same wrk request list can be run against both.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Pool } from "undici"
import * as v8 from "node:v8"
import { findFreePort, logDir, spawnManaged, waitForHttp } from "./processes.js"

export interface ReplayKey {
  readonly path: string
  readonly authorization?: string | undefined
}

const keyOf = (k: ReplayKey) => `${k.authorization ?? ""} ${k.path}`

/**
 * Asks the gateway once for every distinct (caller, path) of `requests` (`concurrency` at a time,
 * in order of first appearance, until `budgetMs` has passed) and writes the answers to a file for
 * {@link startReplay}. `covers` tells whether a request's answer was captured.
 */
export const captureAnswers = async (gatewayUrl: string, requests: ReadonlyArray<ReplayKey>, concurrency = 16, budgetMs = Number.POSITIVE_INFINITY) => {
  const distinct = new Map<string, ReplayKey>()
  for (const r of requests) distinct.set(keyOf(r), r)
  const keys = [...distinct.values()]
  const pool = new Pool(gatewayUrl, { connections: concurrency })
  const answers: Array<[string, number, string, Buffer]> = []
  let bytes = 0
  let failed = 0
  let next = 0
  const deadline = performance.now() + budgetMs
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < keys.length && performance.now() < deadline) {
      const k = keys[next++]!
      try {
        const res = await pool.request({
          path: k.path,
          method: "GET",
          headers: k.authorization === undefined ? {} : { authorization: k.authorization },
          signal: AbortSignal.timeout(60_000)
        })
        const body = Buffer.from(await res.body.arrayBuffer())
        bytes += body.length
        answers.push([keyOf(k), res.statusCode, String(res.headers["content-type"] ?? "application/json"), body])
      } catch (error) {
        // An answer not captured (e.g. slower than 60 s) is left out of the replay, and counted.
        failed++
        if (failed <= 3) console.error(`[bench] capture of ${k.path} failed: ${String(error)}`)
      }
    }
  }))
  await pool.destroy()
  const file = path.join(logDir, `replay-${Date.now()}.bin`)
  fs.writeFileSync(file, v8.serialize(answers))
  const captured = new Set(answers.map((a) => a[0]))
  return { file, answers: answers.length, failed, distinct: keys.length, bytes, covers: (r: ReplayKey) => captured.has(keyOf(r)) }
}

const SERVER = `
const http = require("node:http")
const fs = require("node:fs")
const v8 = require("node:v8")
const map = new Map()
for (const [key, status, type, body] of v8.deserialize(fs.readFileSync(process.env.REPLAY_FILE))) {
  map.set(key, { status, headers: { "content-type": type, "content-length": body.length }, body })
}
http.createServer((req, res) => {
  const hit = map.get((req.headers.authorization || "") + " " + req.url)
  if (hit === undefined) { res.writeHead(404, { "content-length": 0 }); res.end(); return }
  res.writeHead(hit.status, hit.headers)
  res.end(hit.body)
}).listen(Number(process.env.PORT), "127.0.0.1")
`

/** The replay server in its own process; ready when it answers. */
export const startReplay = async (file: string) => {
  const port = await findFreePort()
  const proc = spawnManaged(`replay-${port}`, ["-e", SERVER], { REPLAY_FILE: file, PORT: String(port) })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/__replay_probe`, 60_000, () => true)
  return { proc, url }
}
