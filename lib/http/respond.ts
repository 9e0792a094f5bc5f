import type { IncomingMessage, ServerResponse } from 'node:http'

/** An error answered as `{ "error": { "status", "code", "message" } }` with its HTTP status. */
export class HttpError extends Error {
  override name = 'HttpError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
  }
}

/** 400 with `code` "bad_request". */
export function badRequest(message: string): HttpError {
  return new HttpError(400, 'bad_request', message)
}

/** 404 with `code` "not_found". */
export function notFound(message: string): HttpError {
  return new HttpError(404, 'not_found', message)
}

/** Sends `body` as JSON with `status` (no caching: everything here is live). */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, jsonReplacer)
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store'
  })
  response.end(text)
}

/** Sends an `HttpError` (or any error, as 500 without its details) as a JSON error body. */
export function sendError(response: ServerResponse, error: unknown, extraHeaders: Record<string, string> = {}): void {
  const e = error instanceof HttpError ? error : new HttpError(500, 'internal_error', 'internal error')
  if (response.headersSent) {
    response.destroy()
    return
  }
  for (const [name, value] of Object.entries(extraHeaders)) response.setHeader(name, value)
  sendJson(response, e.status, { error: { status: e.status, code: e.code, message: e.message } })
}

/** Buffers in JSON bodies: as text when the bytes are UTF-8, else as `{ base64 }`. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data).toString('base64')
  }
  return value
}

/**
 * Reads a JSON request body of at most `limit` bytes. Rejects with 413 when larger, 415 when the
 * content type is not JSON, 400 when it does not parse or is not an object.
 */
export async function readJson(request: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'] ?? ''
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'unsupported_media_type', 'the body must be application/json')
  const declared = Number(request.headers['content-length'] ?? 0)
  if (declared > limit) throw new HttpError(413, 'payload_too_large', `the body is larger than ${limit} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request) {
    size += (chunk as Buffer).length
    if (size > limit) throw new HttpError(413, 'payload_too_large', `the body is larger than ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (error) {
    throw badRequest(`the body is not valid JSON: ${(error as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('the body must be a JSON object')
  return parsed as Record<string, unknown>
}
