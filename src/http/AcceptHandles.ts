/**
 * More than one connection accepted per event-loop turn. libuv accepts one connection per
 * listening handle per loop turn (since libuv 1.45), so a burst of new connections at a busy
 * gateway (a load balancer failing over, a fleet of clients reconnecting, a load generator
 * opening its pool) is accepted one per turn, each turn as long as the requests it serves: the
 * last of 256 connections waited seconds while the ones already accepted were answered in
 * milliseconds. Node 20 has no `SO_REUSEPORT`, so the gateway gives its listening socket more
 * handles instead: extra descriptors of the same socket, each with its own libuv handle, all
 * feeding the one HTTP server. A turn then accepts up to one connection per handle.
 *
 * The descriptors are made by the kernel: the listening handle is sent once over IPC to a
 * short-lived helper process (`node -e`), which sends it back `count` times; each copy arrives
 * as a new descriptor of the same socket. The helper never listens or accepts (it holds the raw
 * handle only) and exits once it has sent the copies. Making them is bounded by
 * {@link SETUP_TIMEOUT_MS}; when it fails (no child processes allowed, a platform without
 * descriptor passing) the gateway runs with its one handle and logs why.
 *
 * Cost: one descriptor per handle, and nothing per request on a kept-alive connection. When a
 * connection arrives every handle is woken, and all but one find nothing to accept (one syscall
 * each, in libuv, no JavaScript); taking waiting connections in batches saves more than that
 * costs: a plain `node:http` server answering one request per connection (wrk, `Connection:
 * close`, 32 connections) took 11.5 k and 7.7 k connections/s with 64 extra handles against
 * 9.6 k and 6.8 k with none, at 91 and 137 µs of CPU per connection against 110 and 156.
 *
 * @since 0.4.0
 */
import { spawn } from "node:child_process"
import * as Net from "node:net"

/** Longest time the helper may take to hand the copies back. */
export const SETUP_TIMEOUT_MS = 5_000

/** At most this many extra handles. */
export const MAX_ACCEPT_HANDLES = 256

// The helper: sends the raw handle it received back `count` times, then leaves (node holds the
// disconnect until every queued handle has been taken).
const HELPER = `process.on("message", (m, handle) => {
  for (let i = 0; i < m.count; i++) process.send("copy", handle)
  process.send("done")
  process.disconnect()
})`

/**
 * Extra accepting handles on `server`'s listening socket: `count` servers, each forwarding its
 * connections to `server` as `server`'s own. Rejects when they could not be made (nothing is
 * left open then). Close them with {@link closeAll} before or with `server`.
 */
export const open = (server: Net.Server, count: number): Promise<ReadonlyArray<Net.Server>> =>
  new Promise((resolve, reject) => {
    const wanted = Math.min(Math.max(0, Math.floor(count)), MAX_ACCEPT_HANDLES)
    // The listening socket's libuv handle (node's `_handle`; a cluster worker or a closed server has none).
    const handle = (server as unknown as { readonly _handle?: object | null })._handle
    if (wanted === 0) return resolve([])
    if (handle === undefined || handle === null) return reject(new Error("the server has no listening handle of its own"))
    const made: Array<Net.Server> = []
    let settled = false
    const child = spawn(process.execPath, ["-e", HELPER], { stdio: ["ignore", "ignore", "ignore", "ipc"], env: {} })
    const finish = (error?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.removeAllListeners("message")
      if (error === undefined && made.length === wanted) return resolve(made)
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      closeAll(made)
      reject(error ?? new Error(`${made.length} of ${wanted} handles came back`))
    }
    const timer = setTimeout(() => finish(new Error(`no answer from the helper process within ${SETUP_TIMEOUT_MS} ms`)), SETUP_TIMEOUT_MS)
    child.once("error", (error) => finish(error))
    // Every message sent before the helper let go of the channel has been read by then.
    child.once("disconnect", () => finish(new Error("the helper process left before sending every copy")))
    child.on("message", (message: unknown, copy: unknown) => {
      if (message === "done") return finish()
      if (message !== "copy" || copy === undefined) return
      const extra = new Net.Server()
      extra.on("connection", (socket: Net.Socket) => server.emit("connection", socket))
      // A failure of one extra handle only loses that handle; the server's own keeps accepting.
      extra.on("error", () => extra.close())
      extra.listen(copy as Net.ListenOptions)
      made.push(extra)
    })
    child.send({ count: wanted }, handle as Net.Server, (error) => {
      if (error !== null && error !== undefined) finish(error)
    })
  })

/** Closes extra handles (stops their accepting; connections they handed on are the server's). */
export const closeAll = (handles: ReadonlyArray<Net.Server>): void => {
  for (const h of handles) {
    if (h.listening) h.close()
  }
}
