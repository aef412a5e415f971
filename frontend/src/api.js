// JSON from the render back end. The session cookie (set by ?token=) travels with same-origin fetches.

export const BASE = '/api/v1/render'

export class HttpError extends Error {
  constructor(status, detail) {
    super(detail)
    this.status = status
  }
}

export async function getJSON(path) {
  const response = await fetch(BASE + path, { credentials: 'same-origin', headers: { Accept: 'application/json' } })
  if (!response.ok) {
    let detail = response.statusText
    try { detail = (await response.json()).detail || detail } catch { /* not JSON */ }
    throw new HttpError(response.status, detail)
  }
  return response.json()
}

export async function getText(path) {
  const response = await fetch(BASE + path, { credentials: 'same-origin' })
  const text = await response.text()
  if (!response.ok) {
    let detail = text
    try { detail = JSON.parse(text).detail || text } catch { /* plain */ }
    throw new HttpError(response.status, detail)
  }
  return text
}

// One EventSource for the whole page; listeners get the list of changed topics.
export function subscribe(onChange, onState) {
  let source
  const open = () => {
    source = new EventSource(BASE + '/events', { withCredentials: true })
    source.addEventListener('hello', () => onState('live'))
    source.addEventListener('change', (e) => onChange(JSON.parse(e.data).topics))
    source.onerror = () => onState('reconnecting')   // EventSource retries by itself
  }
  open()
  return () => source.close()
}
