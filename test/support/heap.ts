/**
 * Heap probe for the memory specs. Uses the real `gc` when node runs with `--expose-gc`,
 * otherwise turns the flag on at run time and takes `gc` from a fresh V8 context (the flag is
 * read when a context is created), so "retained" figures are measured after a full collection.
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

const gc: () => void = (() => {
  const exposed = (globalThis as { gc?: unknown }).gc
  if (typeof exposed === "function") return exposed as () => void
  setFlagsFromString("--expose-gc")
  return runInNewContext("gc") as () => void
})()

const MB = 1024 * 1024

/** Heap growth over a baseline: `retained` after a full GC at each probe, `sampled` without. */
export interface HeapProbe {
  /** Cheap: records `heapUsed` as it is (garbage included). */
  readonly sample: () => void
  /** Full GC, then records what is still live. */
  readonly collect: () => void
  readonly report: () => { readonly retainedMaxMB: number; readonly sampledMaxMB: number }
}

export const makeHeapProbe = (): HeapProbe => {
  gc()
  const baseline = process.memoryUsage().heapUsed
  let retained = 0
  let sampled = 0
  return {
    sample: () => {
      sampled = Math.max(sampled, process.memoryUsage().heapUsed - baseline)
    },
    collect: () => {
      gc()
      retained = Math.max(retained, process.memoryUsage().heapUsed - baseline)
    },
    report: () => ({
      retainedMaxMB: Math.round((retained / MB) * 10) / 10,
      sampledMaxMB: Math.round((sampled / MB) * 10) / 10
    })
  }
}
