/**
 * Reading a configuration file: YAML or JSON (JSON is read as YAML 1.2, so both keep their node
 * positions), validated against `CONFIG_SCHEMA` by ajv. Every problem is reported with its
 * `file:line:col`, the key and what was expected: ajv's `instancePath` is mapped back to the YAML
 * node it came from.
 */
import { readFile } from 'node:fs/promises'
import { Ajv } from 'ajv'
import type { ErrorObject } from 'ajv'
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml'
import type { Document, Node } from 'yaml'
import { ConfigError, formatKey } from './errors.js'
import type { ConfigIssue, ConfigPath } from './errors.js'
import { CONFIG_SCHEMA } from './schema.js'
import type { BrokerConfig } from './schema.js'

/** Answers the place (`file:line:col`, `--flag`, `ENV_VAR`) of a key of the configuration. */
export type Locate = (path: ConfigPath) => string

/** A configuration file read and parsed (not yet validated). */
export interface ConfigSource {
  /** The file's contents as plain data (an empty file: `{}`). */
  data: unknown
  /** Where each value is in the file. */
  locate: Locate
  /** Where each key is in the file (unknown keys are reported there). */
  locateKey: Locate
}

const ajv = new Ajv({ allErrors: true, verbose: true, discriminator: true, strict: true, strictRequired: false })
const validateSchema = ajv.compile(CONFIG_SCHEMA)

/** The YAML node at `path`, or the deepest existing node on the way; `key: true` → the key node of the last step. */
function nodeAt(doc: Document, path: ConfigPath, key = false): Node | undefined {
  let node: unknown = doc.contents
  for (let i = 0; i < path.length; i++) {
    const part = path[i]!
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(part))
      if (pair === undefined) return node
      if (key && i === path.length - 1 && isScalar(pair.key)) return pair.key
      if (pair.value === null || pair.value === undefined) return isScalar(pair.key) ? pair.key : node
      node = pair.value
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part]
      if (item === undefined) return node
      node = item
    } else {
      break
    }
  }
  return (node as Node | null) ?? undefined
}

/** Parses `text` (YAML or JSON) read from `file`. Throws `ConfigError` for a syntax error. */
export function parseConfig(text: string, file: string): ConfigSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true })
  const place = (offset: number | undefined): string => {
    if (offset === undefined) return file
    const { line, col } = lineCounter.linePos(offset)
    return `${file}:${line}:${col}`
  }
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((error) => ({
        place: place(error.pos[0]),
        key: '',
        // yaml appends " at line L, column C:" and a snippet; the place says it already.
        message: `syntax error: ${error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, '').trim()}`
      }))
    )
  }
  const data: unknown = doc.toJS() ?? {}
  return {
    data,
    locate: (path) => place(nodeAt(doc, path)?.range?.[0]),
    locateKey: (path) => place(nodeAt(doc, path, true)?.range?.[0])
  }
}

/** Reads and parses a configuration file. Throws `ConfigError` (unreadable file, syntax error). */
export async function readConfigFile(file: string): Promise<ConfigSource> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message
    throw new ConfigError([{ place: file, key: '', message: `cannot read the configuration file: ${reason}` }])
  }
  return parseConfig(text, file)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a map'
  if (typeof value === 'string') return JSON.stringify(value)
  return String(value)
}

const TYPE_NAMES: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'a map of keys',
  array: 'a list'
}

/** One ajv error as the path it is about and what was expected. */
function explain(error: ErrorObject): { path: ConfigPath; message: string; atKey: boolean } {
  const path: (string | number)[] = error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
  const schema = (error.parentSchema ?? {}) as Record<string, unknown>
  const got = describe(error.data)
  switch (error.keyword) {
    case 'additionalProperties': {
      const extra = String((error.params as { additionalProperty: string }).additionalProperty)
      const known = Object.keys((schema.properties ?? {}) as object)
      return { path: [...path, extra], atKey: true, message: `unknown key${known.length > 0 ? ` (expected one of: ${known.join(', ')})` : ''}` }
    }
    case 'required': {
      const missing = (error.params as { missingProperty: string }).missingProperty
      return { path, atKey: false, message: `missing key "${missing}"` }
    }
    case 'type': {
      const types = ([] as string[]).concat(schema.type as string | string[])
      return { path, atKey: false, message: `expected ${types.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}, got ${got}` }
    }
    case 'minimum':
    case 'maximum': {
      const what = schema.type === 'integer' ? 'an integer' : 'a number'
      const bounds =
        schema.maximum !== undefined && schema.maximum !== Number.MAX_SAFE_INTEGER
          ? `from ${String(schema.minimum)} to ${String(schema.maximum)}`
          : `of at least ${String(schema.minimum)}`
      return { path, atKey: false, message: `expected ${what} ${bounds}, got ${got}` }
    }
    case 'enum':
      return { path, atKey: false, message: `expected one of: ${(schema.enum as unknown[]).map(String).join(', ')}, got ${got}` }
    case 'pattern':
      return { path, atKey: false, message: `expected ${String(schema.description ?? `a string matching ${String(schema.pattern)}`)}, got ${got}` }
    case 'minLength':
      return { path, atKey: false, message: 'must not be empty' }
    case 'minItems':
      return { path, atKey: false, message: `expected at least ${String(schema.minItems)} entry` }
    case 'discriminator': {
      const params = error.params as { error: string; tag: string }
      return {
        path: [...path, params.tag],
        atKey: false,
        message: params.error === 'tag' ? `missing or not a string: expected one of tcp, tls, ws, wss, unix` : `expected one of: tcp, tls, ws, wss, unix, got ${describe((error.data as Record<string, unknown>)[params.tag])}`
      }
    }
    default:
      return { path, atKey: false, message: error.message ?? 'invalid' }
  }
}

/**
 * Validates plain configuration data against the schema. `locate` names the place of a path
 * (`locateKey`: the place of the key itself, for unknown keys). Answers the issues (empty: valid).
 */
export function schemaIssues(data: unknown, locate: Locate, locateKey: Locate = locate): ConfigIssue[] {
  if (validateSchema(data)) return []
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  for (const error of validateSchema.errors ?? []) {
    // The discriminator already names the one branch that matters; its oneOf echo adds nothing.
    if (error.keyword === 'oneOf') continue
    const { path, message, atKey } = explain(error)
    const issue = { place: atKey ? locateKey(path) : locate(path), key: formatKey(path), message }
    const id = `${issue.place}|${issue.key}|${issue.message}`
    if (seen.has(id)) continue
    seen.add(id)
    issues.push(issue)
  }
  return issues
}

/** Parses and validates `text` from `file`: the configuration, or `ConfigError` with every issue. */
export function loadConfigText(text: string, file: string): BrokerConfig {
  const source = parseConfig(text, file)
  const issues = schemaIssues(source.data, source.locate, source.locateKey)
  if (issues.length > 0) throw new ConfigError(issues)
  return source.data as BrokerConfig
}
