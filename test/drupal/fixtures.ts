/**
 * A simulator plus a Drupal client pointed at it, for specs of the client and the services
 * above it.
 */
import { Duration, Effect, Layer } from "effect"
import * as Discovery from "../../src/discovery/Discovery.js"
import * as ArgumentValidator from "../../src/discovery/ArgumentValidator.js"
import { DrupalEndpoint } from "../../src/drupal/DrupalEndpoint.js"
import * as DrupalRpc from "../../src/drupal/DrupalRpc.js"
import * as CircuitBreaker from "../../src/resilience/CircuitBreaker.js"
import * as Retry from "../../src/resilience/Retry.js"
import * as Simulator from "../../src/simulator/Simulator.js"

/** Client options for specs: production defaults, with the knobs specs turn. */
export const clientOptions = (url: string, overrides: Partial<DrupalRpc.DrupalRpcOptions> = {}): DrupalRpc.DrupalRpcOptions => ({
  url: new URL(url),
  maxConnections: 16,
  connectTimeout: Duration.seconds(2),
  headersTimeout: Duration.seconds(5),
  callTimeout: Duration.seconds(10),
  keepAliveTimeout: Duration.seconds(10),
  maxReplyBytes: 32 * 1024 * 1024,
  maxGetUrlLength: 2000,
  readMethods: ["content.search", "content.get_tutorial", "user.access_context"],
  batchWindow: Duration.millis(5),
  batchMaxSize: 50,
  dedupMaxKeys: 10_000,
  retry: { ...Retry.defaults, base: Duration.millis(5), cap: Duration.millis(50) },
  breaker: { ...CircuitBreaker.defaults, cooldown: Duration.seconds(30) },
  ...overrides
})

/** A simulator on a free port with a small corpus. */
export const SimulatorTest = (overrides: Partial<Simulator.SimulatorOptions> = {}) =>
  Simulator.layerConfig({ port: 0, corpusSize: 300, seed: 7, largeShare: 0, ...overrides })

/** The simulator and a client pointed at it. */
export const ClientTest = (
  overrides: Partial<DrupalRpc.DrupalRpcOptions> = {},
  simulator: Partial<Simulator.SimulatorOptions> = {}
) =>
  Layer.unwrapEffect(
    Effect.map(Simulator.Simulator, (sim) => DrupalRpc.layer(clientOptions(sim.url, overrides)))
  ).pipe(Layer.provideMerge(SimulatorTest(simulator)))

/** The simulator, a client, and discovery over them (partitioned by credentials). */
export const DiscoveryTest = (refreshInterval: Duration.DurationInput = Duration.hours(1)) =>
  Discovery.layer({
    refreshInterval,
    maxPartitions: 16,
    partitionOf: (credentials) => credentials.fingerprint
  }).pipe(Layer.provide(ArgumentValidator.Default), Layer.provideMerge(ClientTest()))

/** The endpoint of the simulator in context. */
export const EndpointFromSimulator = Layer.effect(
  DrupalEndpoint,
  Effect.map(Simulator.Simulator, (sim) => ({ url: new URL(sim.url), embedded: true }))
)
