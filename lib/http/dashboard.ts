import { existsSync, readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A static file of the dashboard. */
interface Asset {
  type: string
  body: Buffer
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8'
}

/** The folder of the dashboard's files: next to this module (sources) or in lib/ above dist/. */
function dashboardDir(): string {
  const here = dirname(fileURLToPath(import.meta.url))
  for (const candidate of [join(here, 'dashboard'), join(here, '..', '..', '..', 'lib', 'http', 'dashboard')]) {
    if (existsSync(join(candidate, 'index.html'))) return candidate
  }
  throw new Error(`the dashboard files were not found next to ${here}`)
}

/** The dist folder of uPlot (the chart library), resolved from this package's dependencies. */
function uplotDir(): string {
  return dirname(createRequire(import.meta.url).resolve('uplot'))
}

/**
 * The dashboard: plain HTML, CSS and JavaScript files (no build step) plus uPlot's browser build,
 * read at the first request and kept in memory. Paths: `/` (the page) and `/dashboard/<file>`.
 */
export class Dashboard {
  #assets: Map<string, Asset> | undefined = undefined

  /** Reads the files (once). Throws when they are missing, e.g. in a bundle that left them out. */
  #load(): Map<string, Asset> {
    if (this.#assets !== undefined) return this.#assets
    const assets = new Map<string, Asset>()
    const dir = dashboardDir()
    const uplot = uplotDir()
    const files: [string, string][] = [
      ['/', join(dir, 'index.html')],
      ['/dashboard/app.js', join(dir, 'app.js')],
      ['/dashboard/style.css', join(dir, 'style.css')],
      ['/dashboard/uplot.js', join(uplot, 'uPlot.iife.min.js')],
      ['/dashboard/uplot.css', join(uplot, 'uPlot.min.css')]
    ]
    for (const [path, file] of files) {
      const ext = file.slice(file.lastIndexOf('.') + 1)
      assets.set(path, { type: TYPES[ext] ?? 'application/octet-stream', body: readFileSync(file) })
    }
    this.#assets = assets
    return assets
  }

  /** Serves `path` if it is a dashboard file; false otherwise. */
  serve(path: string, response: ServerResponse, head: boolean): boolean {
    const key = path === '/dashboard' || path === '/dashboard/' ? '/' : path
    if (key !== '/' && !key.startsWith('/dashboard/')) return false
    const asset = this.#load().get(key)
    if (asset === undefined) return false
    response.writeHead(200, {
      'content-type': asset.type,
      'content-length': asset.body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
    })
    response.end(head ? undefined : asset.body)
    return true
  }
}
