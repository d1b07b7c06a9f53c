/**
 * The version of a discovered method set: a SHA-256 over a canonical JSON form, so two
 * discovery answers that differ only in member order (object keys, method order, param order)
 * have the same version, and any change to a method id, usage, param or param schema changes it.
 * {@link diff} says which methods changed between two sets.
 *
 * @since 0.1.0
 */
import { canonicalJson } from "../drupal/JsonRpc.js"
import { createHash } from "node:crypto"
import type { MethodInfo } from "./DiscoveryDocument.js"

export { canonicalJson }

const byKey = <A>(key: (a: A) => string) => (a: A, b: A): number => {
  const x = key(a)
  const y = key(b)
  return x < y ? -1 : x > y ? 1 : 0
}

/** The canonical form of one method: params sorted by name, so param order does not matter. */
const canonicalMethod = (method: MethodInfo): string =>
  canonicalJson({ ...method, params: [...method.params].sort(byKey((param) => param.name)) })

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/**
 * The version of a method set: lowercase hex SHA-256 (64 characters) of the canonical JSON
 * array of its methods sorted by id (each method canonical as above). Pure and deterministic;
 * order-insensitive; an empty set has a fixed fingerprint.
 */
export const fingerprint = (methods: ReadonlyArray<MethodInfo>): string =>
  sha256(`[${[...methods].sort(byKey((method) => method.id)).map(canonicalMethod).join(",")}]`)

/** The method ids that differ between two sets; each list sorted, disjoint from the others. */
export interface MethodSetDiff {
  /** In the new set only. */
  readonly added: ReadonlyArray<string>
  /** In the old set only. */
  readonly removed: ReadonlyArray<string>
  /** In both, with a different usage, params or param schemas. */
  readonly changed: ReadonlyArray<string>
}

const index = (methods: ReadonlyArray<MethodInfo>): Map<string, string> =>
  new Map(methods.map((method) => [method.id, canonicalMethod(method)]))

/**
 * Compares two method sets by id. A method counts as changed when its canonical form differs
 * (param order alone is not a change). When a set holds the same id twice, the last one wins.
 * Linear in the sizes of both sets (plus sorting the ids).
 */
export const diff = (previous: ReadonlyArray<MethodInfo>, next: ReadonlyArray<MethodInfo>): MethodSetDiff => {
  const before = index(previous)
  const after = index(next)
  const added: Array<string> = []
  const changed: Array<string> = []
  for (const [id, form] of after) {
    const old = before.get(id)
    if (old === undefined) added.push(id)
    else if (old !== form) changed.push(id)
  }
  const removed = [...before.keys()].filter((id) => !after.has(id))
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() }
}

/** `true` when the two sets have the same fingerprint-relevant content. */
export const isEmptyDiff = (d: MethodSetDiff): boolean =>
  d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0
