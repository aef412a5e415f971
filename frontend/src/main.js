// Single-page dashboard: a path router under /ui/, one SSE stream, pages that re-fetch on change.
import './style.css'
import { subscribe } from './api.js'
import { jobsPage } from './pages/jobs.js'
import { jobPage } from './pages/job.js'
import { pipelinesPage } from './pages/pipelines.js'
import { platformPage } from './pages/platform.js'
import { auditPage } from './pages/audit.js'
import { viewerPage } from './pages/viewer.js'
import { notFound } from './pages/notfound.js'

const routes = [
  [/^\/ui\/?$/, 'jobs', () => jobsPage],
  [/^\/ui\/jobs\/?$/, 'jobs', () => jobsPage],
  [/^\/ui\/pipelines\/?$/, 'pipelines', () => pipelinesPage],
  [/^\/ui\/platform\/?$/, 'platform', () => platformPage],
  [/^\/ui\/audit\/?$/, 'audit', () => auditPage],
  [/^\/ui\/jobs\/([^/]+)\/viewer\/?$/, 'jobs', () => viewerPage],
  [/^\/ui\/jobs\/([^/]+)\/?$/, 'jobs', () => jobPage],
]

const app = document.getElementById('app')
let current = null

async function route() {
  if (current?.dispose) current.dispose()
  current = null
  const path = location.pathname
  for (const [pattern, nav, page] of routes) {
    const match = path.match(pattern)
    if (!match) continue
    document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === nav))
    app.replaceChildren()
    current = await page()(app, match.slice(1).map(decodeURIComponent), new URLSearchParams(location.search))
    return
  }
  notFound()
}

export function navigate(url) {
  history.pushState(null, '', url)
  route()
}

// In-app links: keep the SSE stream and avoid page reloads.
document.addEventListener('click', (event) => {
  const a = event.target.closest('a')
  if (!a || a.target || a.hasAttribute('download') || event.ctrlKey || event.metaKey || event.shiftKey) return
  const url = new URL(a.href, location.href)
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui/')) return
  event.preventDefault()
  navigate(url.pathname + url.search)
})
window.addEventListener('popstate', route)

const live = document.getElementById('live')
subscribe(
  (topics) => current?.refresh?.(topics),
  (state) => {
    live.textContent = state === 'live' ? '● live' : '○ reconnecting…'
    live.className = `live live-${state}`
    document.body.dataset.live = state
  },
)

route()
