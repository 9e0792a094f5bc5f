import { AsyncBackend } from '../helpers/async-backend.js'
import { e2eSuite } from './e2e-suite.js'

e2eSuite({ name: 'the in-memory pair', start: () => Promise.resolve(() => Promise.resolve('memory' as const)) })

// The same exchanges with a backend and sessions that answer every call with a promise.
e2eSuite({
  name: 'the in-memory pair, asynchronous backend',
  start: () => Promise.resolve(() => Promise.resolve('memory' as const)),
  backend: () => new AsyncBackend()
})
