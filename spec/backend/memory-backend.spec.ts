import { backendConformance } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'

backendConformance('MemoryBackend', () => new MemoryBackend({ maxQueuedMessages: 5, maxRetainedMessages: 8 }), {
  sharedSubscriptions: true,
  maxQueuedMessages: 5,
  maxRetainedMessages: 8
})
