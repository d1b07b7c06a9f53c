/**
 * The Drupal module in `drupal/` cannot run here (no Drupal): these specs check what can be
 * checked without one. Every PHP file passes `php -l`; every YAML file parses; the info file, the
 * services and the configuration agree with each other and with the classes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { join } from "node:path"
import { MODULE_DIR, moduleFile, moduleFiles, parseYaml, php, type Yaml } from "./support.js"

const PHP_FILES = [
  "drupal_accelerator.api.php",
  "drupal_accelerator.install",
  "drupal_accelerator.module",
  "src/AccessContextBuilder.php",
  "src/AccessPolicy.php",
  "src/InvalidationNotifier.php",
  "src/Plugin/jsonrpc/Method/AccessContext.php",
  "src/Webhook/WebhookDelivery.php"
]

const YAML_FILES = [
  "config/install/drupal_accelerator.settings.yml",
  "config/schema/drupal_accelerator.schema.yml",
  "drupal_accelerator.info.yml",
  "drupal_accelerator.services.yml"
]

const yaml = (path: string) => parseYaml(moduleFile(path), path) as Record<string, any>

describe("the Drupal module (drupal/)", () => {
  it.effect("has its files, and every .php, .module and .install file passes php -l", () =>
    Effect.gen(function*() {
      const files = moduleFiles()
      const phpFiles = files.filter((f) => /\.(php|module|install|inc|theme)$/.test(f))
      for (const expected of PHP_FILES) assert.include(phpFiles, expected)
      assert.isAtLeast(phpFiles.length, PHP_FILES.length)
      for (const file of phpFiles) {
        const run = yield* php(["-d", "display_errors=stderr", "-l", join(MODULE_DIR, file)])
        assert.strictEqual(run.code, 0, `${file}: ${run.stdout}${run.stderr}`)
        assert.include(run.stdout, "No syntax errors detected", file)
      }
    }))

  it.effect("php -l does fail on a syntax error (the check above can fail)", () =>
    Effect.gen(function*() {
      const run = yield* php(["-d", "display_errors=stderr", "-l"], "<?php\nfunction broken( {\n")
      assert.notStrictEqual(run.code, 0)
      assert.include(run.stdout + run.stderr, "syntax error")
    }))

  it("has its YAML files, and every .yml file parses", () => {
    const ymlFiles = moduleFiles().filter((f) => /\.ya?ml$/.test(f))
    for (const expected of YAML_FILES) assert.include(ymlFiles, expected)
    for (const file of ymlFiles) {
      const parsed = yaml(file)
      assert.isObject(parsed, file)
      assert.isAbove(Object.keys(parsed).length, 0, file)
    }
    assert.throws(() => parseYaml("a: 1\n\tb: 2\n"), /tab/)
    assert.throws(() => parseYaml("a:\n  - x\n  y: 1\n"), /expected a sequence item/)
    assert.throws(() => parseYaml("a: b: c\n"), /ambiguous/)
  })

  it("the info file: a module for Drupal ^10 || ^11 that depends on jsonrpc", () => {
    const info = yaml("drupal_accelerator.info.yml")
    assert.strictEqual(info["type"], "module")
    assert.isString(info["name"])
    assert.isString(info["description"])
    assert.strictEqual(info["core_version_requirement"], "^10 || ^11")
    assert.include(info["dependencies"], "jsonrpc:jsonrpc")
    assert.include(info["dependencies"], "drupal:node", "user.node_grants is node's cache context")
  })

  it("every service class is a file under src/ declaring that class (PSR-4)", () => {
    const services = yaml("drupal_accelerator.services.yml")["services"] as Record<string, Record<string, Yaml>>
    const classes = Object.values(services).flatMap((s) => (typeof s["class"] === "string" ? [s["class"]] : []))
    assert.includeMembers(classes, ["Drupal\\drupal_accelerator\\AccessContextBuilder", "Drupal\\drupal_accelerator\\InvalidationNotifier"])
    for (const fqcn of classes) {
      const match = /^Drupal\\drupal_accelerator\\(.+)\\?([A-Za-z0-9_]+)$/.exec(fqcn)
      assert.isNotNull(match, fqcn)
      const relative = `src/${fqcn.slice("Drupal\\drupal_accelerator\\".length).replace(/\\/g, "/")}.php`
      assert.isTrue(existsSync(join(MODULE_DIR, relative)), relative)
      const source = moduleFile(relative)
      const namespace = fqcn.slice(0, fqcn.lastIndexOf("\\"))
      const name = fqcn.slice(fqcn.lastIndexOf("\\") + 1)
      assert.include(source, `namespace ${namespace};`, relative)
      assert.match(source, new RegExp(`\\bclass ${name}\\b`), relative)
    }
    const notifier = services["drupal_accelerator.invalidation_notifier"]!
    assert.deepStrictEqual(notifier["tags"], [{ name: "needs_destruction" }], "deliveries go out when the kernel terminates")
  })

  it("the method plugin: user.access_context, permission `use jsonrpc services`, uncacheable by Drupal", () => {
    const source = moduleFile("src/Plugin/jsonrpc/Method/AccessContext.php")
    assert.include(source, "namespace Drupal\\drupal_accelerator\\Plugin\\jsonrpc\\Method;")
    assert.match(source, /@JsonRpcMethod\(\s*\n\s*\*\s*id = "user\.access_context",/)
    assert.include(source, "access = {\"use jsonrpc services\"}")
    assert.include(source, "extends JsonRpcMethodBase")
    assert.include(source, "'page_cache_kill_switch'")
    assert.include(source, "setCacheMaxAge(0)")
    const builder = moduleFile("src/AccessContextBuilder.php")
    assert.include(builder, "convertTokensToKeys")
    const policy = moduleFile("src/AccessPolicy.php")
    assert.include(policy, "BASE_CONTEXTS = ['user.permissions', 'user.node_grants:view']")
  })

  it("the entity hooks: insert, update and delete", () => {
    const source = moduleFile("drupal_accelerator.module")
    for (const [hook, event] of [["insert", "created"], ["update", "updated"], ["delete", "deleted"]]) {
      assert.match(source, new RegExp(`function drupal_accelerator_entity_${hook}\\(EntityInterface \\$entity\\): void \\{\\n\\s+_drupal_accelerator_changed\\(\\$entity, 'content\\.${event}'\\);`))
    }
  })

  it("every installed setting is described by the schema, with a matching type", () => {
    const schema = yaml("config/schema/drupal_accelerator.schema.yml")
    const settings = yaml("config/install/drupal_accelerator.settings.yml")
    assert.strictEqual(schema["drupal_accelerator.settings"]["type"], "config_object")
    let checked = 0
    const check = (value: Yaml, definition: Record<string, any>, path: string) => {
      assert.isDefined(definition, `${path} has no schema`)
      checked++
      const type = definition["type"]
      if (type === "mapping" || type === "config_object") {
        assert.isTrue(typeof value === "object" && value !== null && !Array.isArray(value), path)
        for (const [key, child] of Object.entries(value as Record<string, Yaml>)) {
          check(child, definition["mapping"]?.[key], `${path}.${key}`)
        }
      } else if (type === "sequence") {
        assert.isArray(value, path)
        for (const [i, item] of (value as ReadonlyArray<Yaml>).entries()) check(item, definition["sequence"], `${path}.${i}`)
      } else if (type === "string") {
        assert.isString(value, path)
      } else if (type === "float") {
        assert.isNumber(value, path)
      } else {
        assert.fail(`${path}: schema type ${type} not checked here`)
      }
    }
    check(settings, schema["drupal_accelerator.settings"], "drupal_accelerator.settings")
    assert.isAtLeast(checked, 15)
  })
})
