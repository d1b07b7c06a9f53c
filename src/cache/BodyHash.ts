/**
 * The hash of a cached body: SHA-256 of its bytes, base64url, first 27 characters (160 bits).
 * It is the body's `ETag` (see `http/Representation`), so every instance that holds the same
 * bytes gives the same tag.
 *
 * Computed once per body and kept with it in a `WeakMap` (it lives as long as the body). The
 * Redis and PostgreSQL envelopes carry it (`Envelope`), and a decoded body gets it back with
 * {@link remember}: a body read from a remote tier is never hashed again (SHA-256 of a 30 MB
 * item costs ~18 ms of CPU, on every request of an item too large for the memory tier).
 *
 * @since 0.3.0
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"

/** Characters of a body hash: 27 base64url characters, 160 bits. */
export const HASH_LENGTH = 27

/** Bodies longer than this are hashed in steps of this size by {@link prepare}. */
export const HASH_STEP_BYTES = 1024 * 1024

const HASH_SHAPE = /^[A-Za-z0-9_-]{27}$/

const hashes = new WeakMap<Uint8Array, string>()

const digest = (hash: ReturnType<typeof createHash>): string => hash.digest("base64url").slice(0, HASH_LENGTH)

/** The hash of `body`: the kept one, or computed now (synchronously) and kept. */
export const hashOf = (body: Uint8Array): string => {
  let hash = hashes.get(body)
  if (hash === undefined) {
    hash = digest(createHash("sha256").update(body))
    hashes.set(body, hash)
  }
  return hash
}

/** The hash kept for `body`, if it has one; never computes. */
export const known = (body: Uint8Array): string | undefined => hashes.get(body)

/** Whether `hash` has the shape of a body hash (27 base64url characters). */
export const isHash = (hash: unknown): hash is string => typeof hash === "string" && HASH_SHAPE.test(hash)

/**
 * Keeps `hash` as the hash of `body`, as read from an envelope that carried it with the body.
 * A value without the shape of a hash is ignored (the body is hashed when asked).
 */
export const remember = (body: Uint8Array, hash: unknown): void => {
  if (isHash(hash) && !hashes.has(body)) hashes.set(body, hash)
}

/** Bodies being hashed in steps: a second `prepare` of the same body waits for the first. */
const preparing = new WeakMap<Uint8Array, Promise<void>>()

const hashInSteps = (body: Uint8Array): Promise<void> =>
  new Promise<void>((resolve) => {
    const hash = createHash("sha256")
    let offset = 0
    const step = () => {
      const end = Math.min(body.byteLength, offset + HASH_STEP_BYTES)
      hash.update(body.subarray(offset, end))
      offset = end
      // A macrotask between steps: timers and I/O run (see `afterPendingIo`).
      if (offset < body.byteLength) return void setImmediate(step)
      if (!hashes.has(body)) hashes.set(body, digest(hash))
      preparing.delete(body)
      resolve()
    }
    step()
  })

/**
 * Computes the hash of `body` ahead of {@link hashOf}, which hashes synchronously: a body over
 * {@link HASH_STEP_BYTES} (tens of MB) is hashed a step at a time, the event loop running between
 * steps (SHA-256 of 30 MB held it ~18 ms in one call). Smaller bodies, and bodies already hashed,
 * cost nothing here. Concurrent calls for one body (a load's answer and its remote write) share
 * one hashing; interrupting a caller does not stop it (a few dozen steps at most).
 */
export const prepare = (body: Uint8Array): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (body.byteLength <= HASH_STEP_BYTES || hashes.has(body)) return Effect.void
    let running = preparing.get(body)
    if (running === undefined) {
      running = hashInSteps(body)
      preparing.set(body, running)
    }
    const shared = running
    return Effect.promise(() => shared)
  })
