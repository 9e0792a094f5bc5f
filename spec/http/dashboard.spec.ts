import { expect } from 'chai'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { BrowserContext, Page } from 'playwright-core'
import mqtt from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'
import { TOKEN, setup, until } from './helpers.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Where the spec saves its screenshots (the test output). */
const OUTPUT = fileURLToPath(new URL('../../.tmp/dashboard/', import.meta.url))

/** Throws with how to install Chromium when it is missing (never a skip). */
function requireChromium(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM}. The dashboard spec drives a real headless Chromium: install Debian's package ` +
        '(`apt-get install chromium`, as root; scripts/ensure-system.sh does it) or set CHROMIUM_PATH to a Chromium/Chrome binary.'
    )
  }
}

describe('http – dashboard in headless Chromium', function () {
  this.timeout(90_000)
  const teardown = useTeardown()
  let context: BrowserContext
  let profile: string

  before(async () => {
    requireChromium()
    profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1360, height: 1000 }
    })
    mkdirSync(OUTPUT, { recursive: true })
  })
  after(async () => {
    await context?.close()
    rmSync(profile, { recursive: true, force: true })
  })

  async function open(url: string): Promise<Page> {
    const page = await context.newPage()
    teardown.add(page, (p) => p.close())
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    teardown.defer(() => expect(errors, 'errors in the page').to.deep.equal([]))
    await page.goto(url)
    return page
  }

  it('signs in, sees a client appear when MQTT.js connects, kicks it, publishes from the form, per tenant', async () => {
    const s = await setup(teardown, {
      broker: { backend: new TenantBackend(() => new MemoryBackend()), tenantResolver: byUsernameDomain(), sysInterval: 3600 }
    })
    const page = await open(`${s.http.url}/`)
    // The API needs the token: the page asks for it.
    await page.locator('#login').waitFor({ state: 'visible' })
    await page.fill('#login-token', TOKEN)
    await page.click('#login button[type=submit]')
    await page.locator('#main').waitFor({ state: 'visible' })

    // Clients of tenant acme, plus a subscriber that receives what the form publishes.
    const sensor = await s.connect({ clientId: 'sensor-42', username: 'dev@acme', protocolVersion: 5 })
    const watcher = await s.connect({ clientId: 'watcher', username: 'ops@acme', protocolVersion: 5 })
    await watcher.subscribeAsync('plant/#', { qos: 1 })
    await sensor.publishAsync('plant/line1/temp', '21.7', { retain: true })
    await page.locator('#tenant option[value="acme"]').waitFor({ state: 'attached' })
    await page.selectOption('#tenant', 'acme')
    const row = page.locator('#clients tbody tr[data-client-id="sensor-42"]')
    await row.waitFor()
    expect(await row.locator('td').nth(1).textContent()).to.equal('dev')
    // One process: no node column.
    expect(await row.locator('td.col-node').isVisible()).to.equal(false)
    await until(async () => (await page.textContent('#s-connections')) === '2')

    // Search filters the list.
    await page.fill('#client-search', 'watch')
    await page.locator('#clients tbody tr[data-client-id="sensor-42"]').waitFor({ state: 'detached' })
    await page.fill('#client-search', '')
    await row.waitFor()

    // Publish from the form, with MQTT 5 properties.
    const received = new Promise<{ topic: string; payload: string; contentType: string | undefined }>((resolve) =>
      watcher.once('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), contentType: packet.properties?.contentType }))
    )
    await page.click('[data-tab=publish]')
    await page.fill('#pub-topic', 'plant/line1/cmd')
    await page.fill('#pub-payload', 'calibrate')
    await page.selectOption('#pub-qos', '1')
    await page.fill('#pub-content-type', 'text/plain')
    await page.click('#publish-form button[type=submit]')
    expect(await received).to.deep.equal({ topic: 'plant/line1/cmd', payload: 'calibrate', contentType: 'text/plain' })
    await page.locator('#pub-result', { hasText: 'Published to plant/line1/cmd (1 matching subscriptions)' }).waitFor()

    // Sessions and the retained-message browser.
    await page.click('[data-tab=sessions]')
    await page.locator('#sessions tbody tr', { hasText: 'watcher' }).waitFor()
    await page.click('[data-tab=retained]')
    await page.click('#retained-load')
    await page.locator('#retained tbody tr', { hasText: 'plant/line1/temp' }).waitFor()
    expect(await page.locator('#retained tbody tr', { hasText: 'plant/line1/temp' }).locator('td.payload').textContent()).to.equal('21.7')

    // Charts have drawn (uPlot canvases) and the screenshot is saved with the client list.
    await page.click('[data-tab=clients]')
    await row.waitFor()
    expect(await page.locator('#chart-connections canvas').count()).to.be.greaterThan(0)
    await until(async () => Number(await page.textContent('#s-in')) >= 0)
    await page.screenshot({ path: join(OUTPUT, 'dashboard.png'), fullPage: true })

    // Kick: the client sees DISCONNECT 0x98 and leaves the list.
    const kicked = new Promise<number | undefined>((resolve) => sensor.once('disconnect', (packet) => resolve(packet.reasonCode)))
    page.once('dialog', (dialog) => void dialog.accept())
    await row.locator('button', { hasText: 'Kick' }).click()
    expect(await kicked).to.equal(0x98)
    await row.waitFor({ state: 'detached' })
    expect(s.broker.connectedClients.map((c) => c.clientId)).to.deep.equal(['watcher'])
  })

  it('shows which node serves each client of a Redis cluster', async () => {
    const redis = await startRedisServer()
    teardown.add(redis, (r) => r.dispose())
    const root = randomRoot()
    const nodeA = await startNode(redis.url, root)
    const nodeB = await startNode(redis.url, root)
    const a = teardown.add(new Broker({ backend: nodeA, logger: silentLogger }), (b) => b.close())
    const portA = (await a.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    // The dashboard is B's; the clients connect to A and to B.
    const s = await setup(teardown, { broker: { backend: nodeB } })
    const remote = teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${portA}`, { clientId: 'on-a', reconnectPeriod: 0 }), (c) => c.endAsync(true))
    await s.connect({ clientId: 'on-b' })
    const page = await open(`${s.http.url}/`)
    await page.locator('#login').waitFor({ state: 'visible' })
    await page.fill('#login-token', TOKEN)
    await page.click('#login button[type=submit]')
    const onA = page.locator('#clients tbody tr[data-client-id="on-a"]')
    await onA.waitFor()
    expect(await onA.locator('td.col-node').isVisible()).to.equal(true)
    expect(await onA.locator('td.col-node').textContent()).to.equal(nodeA.nodeId)
    expect(await page.locator('#clients tbody tr[data-client-id="on-b"] td.col-node').textContent()).to.equal(nodeB.nodeId)
    expect(await page.locator('#clients thead th.col-node').isVisible()).to.equal(true)
    expect(await page.textContent('#client-count')).to.equal('2 connected in the cluster')
    await page.screenshot({ path: join(OUTPUT, 'dashboard-cluster.png'), fullPage: true })

    // Kicked from B's dashboard, the client on A leaves.
    const kicked = new Promise<number | undefined>((resolve) => remote.once('close', () => resolve(0)))
    page.once('dialog', (dialog) => void dialog.accept())
    await onA.locator('button', { hasText: 'Kick' }).click()
    await kicked
    await onA.waitFor({ state: 'detached' })
  })
})
