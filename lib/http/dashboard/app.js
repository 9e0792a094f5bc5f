/* The broker dashboard: plain browser JavaScript, no build step. Talks to /api/v1 of the same origin. */
/* global document, location, sessionStorage, setTimeout, clearTimeout, setInterval, fetch, btoa, uPlot, window, Option, confirm */
'use strict'
;(function () {
  const $ = (id) => document.getElementById(id)
  const base = location.pathname.replace(/\/(dashboard\/?)?$/, '')
  const state = { tenant: '', tab: 'clients', auth: sessionStorage.getItem('mqtt-dashboard-auth') || '', last: null, session: null }
  const HISTORY = 120
  const series = { t: [], connections: [], in: [], out: [] }

  function toast(text) {
    const el = $('toast')
    el.textContent = text
    el.hidden = false
    clearTimeout(toast.timer)
    toast.timer = setTimeout(() => (el.hidden = true), 3000)
  }

  async function api(method, path, body) {
    const headers = {}
    if (state.auth) headers.authorization = state.auth
    if (body !== undefined) headers['content-type'] = 'application/json'
    const response = await fetch(base + '/api/v1' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const data = await response.json().catch(() => ({}))
    if (response.status === 401 || response.status === 403) {
      showLogin(data.error ? data.error.message : 'credentials required')
      throw new Error('unauthorized')
    }
    if (!response.ok) throw new Error(data.error ? data.error.message : response.statusText)
    return data
  }

  function tenantQuery(prefix) {
    return state.tenant ? (prefix || '?') + 'tenant=' + encodeURIComponent(state.tenant) : ''
  }

  function showLogin(reason) {
    $('login').hidden = false
    $('main').hidden = true
    $('login-reason').textContent = reason
  }

  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const token = $('login-token').value.trim()
    const user = $('login-user').value
    state.auth = token ? 'Bearer ' + token : 'Basic ' + btoa(user + ':' + $('login-password').value)
    sessionStorage.setItem('mqtt-dashboard-auth', state.auth)
    $('login').hidden = true
    $('main').hidden = false
    $('logout').hidden = false
    refresh()
  })
  $('logout').addEventListener('click', () => {
    sessionStorage.removeItem('mqtt-dashboard-auth')
    state.auth = ''
    location.reload()
  })
  if (state.auth) $('logout').hidden = false

  function cell(row, text, className) {
    const td = document.createElement('td')
    td.textContent = text == null ? '' : String(text)
    td.title = td.textContent
    if (className) td.className = className
    row.appendChild(td)
    return td
  }
  function button(row, label, className, onClick) {
    const td = document.createElement('td')
    const b = document.createElement('button')
    b.textContent = label
    b.className = className
    b.addEventListener('click', onClick)
    td.appendChild(b)
    row.appendChild(td)
    return b
  }
  function fill(tbody, items, columns, render) {
    tbody.textContent = ''
    if (items.length === 0) {
      const row = tbody.insertRow()
      row.className = 'empty'
      const td = cell(row, 'Nothing here yet')
      td.colSpan = columns
      return
    }
    for (const item of items) render(tbody.insertRow(), item)
  }
  function ago(iso) {
    if (!iso) return ''
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
    return s < 60 ? s + ' s ago' : s < 3600 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'
  }

  // ---- charts -------------------------------------------------------------------------------
  function chart(el, label, lines) {
    const opts = {
      width: el.clientWidth || 560,
      height: 200,
      legend: { live: false },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max * 1.15))] } },
      axes: [{ stroke: '#6b7585', grid: { stroke: '#eef1f5' } }, { stroke: '#6b7585', grid: { stroke: '#eef1f5' }, size: 50 }],
      series: [{}].concat(lines.map(([name, color]) => ({ label: name, stroke: color, width: 2, fill: color + '18', points: { show: false } })))
    }
    return new uPlot(opts, [[], ...lines.map(() => [])], el)
  }
  const charts = {
    connections: chart($('chart-connections'), 'Connections', [['connections', '#2f6fed']]),
    messages: chart($('chart-messages'), 'Messages', [['in', '#1f9d55'], ['out', '#e08a1e']])
  }
  window.addEventListener('resize', () => {
    for (const [name, c] of Object.entries(charts)) c.setSize({ width: $('chart-' + name).clientWidth, height: 200 })
  })

  function push(key, value) {
    series[key].push(value)
    if (series[key].length > HISTORY) series[key].shift()
  }

  // ---- overview (every second) ----------------------------------------------------------------
  async function overview() {
    const data = await api('GET', '/overview')
    const row = data.tenants.find((t) => (t.tenant || '') === state.tenant) || { connections: 0 }
    const received = row.messages_received != null ? row.messages_received : data.messages_received
    const sent = row.messages_sent != null ? row.messages_sent : data.messages_sent
    const now = Date.now() / 1000
    let rateIn = 0
    let rateOut = 0
    if (state.last && state.last.tenant === state.tenant) {
      const dt = Math.max(0.001, now - state.last.t)
      rateIn = Math.max(0, (received - state.last.received) / dt)
      rateOut = Math.max(0, (sent - state.last.sent) / dt)
    }
    state.last = { t: now, received, sent, tenant: state.tenant }
    push('t', now)
    push('connections', row.connections)
    push('in', rateIn)
    push('out', rateOut)
    charts.connections.setData([series.t, series.connections])
    charts.messages.setData([series.t, series.in, series.out])
    $('s-connections').textContent = row.connections
    $('s-in').textContent = rateIn.toFixed(rateIn < 10 ? 1 : 0)
    $('s-out').textContent = rateOut.toFixed(rateOut < 10 ? 1 : 0)
    $('s-sessions').textContent = row.sessions != null ? row.sessions : '–'
    $('s-subscriptions').textContent = row.subscriptions != null ? row.subscriptions : '–'
    $('s-retained').textContent = row.retained != null ? row.retained : '–'
    const status = $('status')
    status.textContent = data.backend_up ? 'backend up' : 'backend down'
    status.className = 'pill ' + (data.backend_up ? 'ok' : 'bad')
    const select = $('tenant')
    const known = new Set([...select.options].map((o) => o.value))
    for (const t of data.tenants) {
      const value = t.tenant || ''
      if (!known.has(value)) select.add(new Option(value, value))
    }
  }

  // ---- tabs -----------------------------------------------------------------------------------
  async function clients() {
    const search = $('client-search').value.trim()
    const data = await api('GET', '/clients?limit=200' + (search ? '&search=' + encodeURIComponent(search) : '') + '&tenant=' + encodeURIComponent(state.tenant))
    $('client-count').textContent = data.total + ' connected' + (data.scope === 'cluster' ? ' in the cluster' : '')
    // With a shared backend the list is the whole cluster's: show which node serves each client.
    $('clients').classList.toggle('cluster', data.scope === 'cluster')
    fill($('clients').tBodies[0], data.items.filter((c) => (c.tenant || '') === state.tenant), 8, (row, c) => {
      row.dataset.clientId = c.client_id
      cell(row, c.client_id)
      cell(row, c.username)
      cell(row, c.listener || c.transport)
      cell(row, c.remote_address)
      cell(row, c.node, 'col-node')
      cell(row, c.protocol_level === 5 ? '5.0' : c.protocol_level === 4 ? '3.1.1' : '3.1')
      cell(row, ago(c.connected_at))
      button(row, 'Kick', 'danger', async () => {
        if (!confirm('Disconnect ' + c.client_id + '?')) return
        try {
          await api('DELETE', '/clients/' + encodeURIComponent(c.client_id) + tenantQuery())
          toast('Disconnected ' + c.client_id)
          refresh()
        } catch (error) {
          toast(error.message)
        }
      })
    })
  }

  async function sessions() {
    const search = $('session-search').value.trim()
    let data
    try {
      data = await api('GET', '/sessions?limit=200' + (search ? '&search=' + encodeURIComponent(search) : '') + tenantQuery('&'))
    } catch (error) {
      $('session-count').textContent = error.message
      return
    }
    $('session-count').textContent = data.total + ' sessions'
    fill($('sessions').tBodies[0], data.items, 7, (row, s) => {
      cell(row, s.client_id)
      cell(row, s.connected ? 'connected' : 'away')
      cell(row, s.expiry_interval >= 4294967295 ? 'never' : s.expiry_interval + ' s')
      cell(row, s.subscriptions)
      cell(row, s.queued)
      cell(row, s.inflight)
      const td = button(row, 'Subscriptions', 'secondary', () => showSession(s.client_id)).parentElement
      const del = document.createElement('button')
      del.textContent = 'Delete'
      del.className = 'danger'
      del.style.marginLeft = '6px'
      del.addEventListener('click', async () => {
        if (!confirm('Delete the session of ' + s.client_id + '?')) return
        try {
          await api('DELETE', '/sessions/' + encodeURIComponent(s.client_id) + tenantQuery())
          toast('Deleted ' + s.client_id)
          if (state.session === s.client_id) $('session-detail').hidden = true
          refresh()
        } catch (error) {
          toast(error.message)
        }
      })
      td.appendChild(del)
    })
    if (state.session) showSession(state.session)
  }

  async function showSession(clientId) {
    state.session = clientId
    let data
    try {
      data = await api('GET', '/sessions/' + encodeURIComponent(clientId) + '/subscriptions' + tenantQuery())
    } catch {
      $('session-detail').hidden = true
      state.session = null
      return
    }
    $('session-detail').hidden = false
    $('detail-id').textContent = clientId
    fill($('subscriptions').tBodies[0], data.items, 3, (row, s) => {
      cell(row, s.topic_filter)
      cell(row, s.qos)
      button(row, 'Remove', 'danger', async () => {
        await api('DELETE', '/sessions/' + encodeURIComponent(clientId) + '/subscriptions?topic_filter=' + encodeURIComponent(s.topic_filter) + tenantQuery('&')).catch((e) => toast(e.message))
        showSession(clientId)
      })
    })
  }
  $('subscribe-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    try {
      await api('POST', '/sessions/' + encodeURIComponent(state.session) + '/subscriptions' + tenantQuery(), { topic_filter: $('sub-filter').value, qos: Number($('sub-qos').value) })
      $('sub-filter').value = ''
      showSession(state.session)
    } catch (error) {
      toast(error.message)
    }
  })

  async function retained() {
    let data
    try {
      data = await api('GET', '/retained?limit=500&filter=' + encodeURIComponent($('retained-filter').value || '#') + tenantQuery('&'))
    } catch (error) {
      $('retained-count').textContent = error.message
      return
    }
    $('retained-count').textContent = data.items.length + ' messages'
    fill($('retained').tBodies[0], data.items, 5, (row, m) => {
      cell(row, m.topic)
      cell(row, m.payload != null ? m.payload : '(binary) ' + m.payload_base64, 'payload')
      cell(row, m.qos)
      cell(row, m.size + ' B')
      button(row, 'Delete', 'danger', async () => {
        const path = m.topic.split('/').map(encodeURIComponent).join('/')
        await api('DELETE', '/retained/' + path + tenantQuery()).catch((e) => toast(e.message))
        retained()
      })
    })
  }
  $('retained-load').addEventListener('click', retained)

  $('publish-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const properties = {}
    if ($('pub-content-type').value) properties.content_type = $('pub-content-type').value
    if ($('pub-expiry').value !== '') properties.message_expiry_interval = Number($('pub-expiry').value)
    const pairs = $('pub-user-props').value.split(',').map((s) => s.trim()).filter(Boolean)
    if (pairs.length > 0) properties.user_properties = pairs.map((p) => [p.split('=')[0].trim(), p.slice(p.indexOf('=') + 1).trim()])
    const body = { topic: $('pub-topic').value, payload: $('pub-payload').value, qos: Number($('pub-qos').value), retain: $('pub-retain').checked }
    if (Object.keys(properties).length > 0) body.properties = properties
    if (state.tenant) body.tenant = state.tenant
    try {
      const result = await api('POST', '/publish', body)
      $('pub-result').textContent = 'Published to ' + result.topic + (result.matched != null ? ' (' + result.matched + ' matching subscriptions)' : '')
    } catch (error) {
      $('pub-result').textContent = 'Refused: ' + error.message
    }
  })

  const loaders = { clients, sessions, retained, publish: async () => undefined }
  for (const tab of document.querySelectorAll('[role=tab]')) {
    tab.addEventListener('click', () => {
      state.tab = tab.dataset.tab
      for (const t of document.querySelectorAll('[role=tab]')) t.setAttribute('aria-selected', String(t === tab))
      for (const name of Object.keys(loaders)) $('tab-' + name).hidden = name !== state.tab
      loaders[state.tab]().catch(() => undefined)
    })
  }
  $('tenant').addEventListener('change', () => {
    state.tenant = $('tenant').value
    state.session = null
    // The charts show one tenant: start their history again.
    for (const key of Object.keys(series)) series[key].length = 0
    state.last = null
    $('session-detail').hidden = true
    refresh()
  })
  $('client-search').addEventListener('input', () => clients().catch(() => undefined))
  $('session-search').addEventListener('input', () => sessions().catch(() => undefined))

  let ticks = 0
  async function refresh() {
    try {
      await overview()
      if (state.tab !== 'retained' || ticks % 5 === 0) await loaders[state.tab]()
    } catch {
      // shown by api() (sign-in) or on the next tick
    }
  }
  refresh()
  setInterval(() => {
    ticks++
    if (!$('main').hidden) refresh()
  }, 1000)
})()
