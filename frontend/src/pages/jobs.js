// Job list: live (SSE), filterable by state, status, pipeline, source AE and text.
import { getJSON } from '../api.js'
import { badge, duration, h, time } from '../dom.js'

const STATES = ['', 'PENDING', 'RUNNING', 'STOPPED']
const STATUSES = ['', 'HEALTHY', 'FAULTED', 'CANCELED', 'EVICTED', 'TERMINATED']

export async function jobsPage(root, _params, query) {
  document.title = 'Jobs · claractl'
  const filters = Object.fromEntries(['state', 'status', 'pipeline', 'source', 'q'].map((k) => [k, query.get(k) || '']))
  const select = (name, options) => h('select', { name, onchange: (e) => update(name, e.target.value) },
    options.map((o) => h('option', { value: o, selected: o === filters[name] }, o || `any ${name}`)))
  const pipelineSelect = select('pipeline', [''])
  const body = h('tbody')
  const count = h('span', { class: 'muted' })
  root.append(
    h('section', { 'data-page': 'jobs' },
      h('h1', {}, 'Jobs ', count),
      h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
        select('state', STATES), select('status', STATUSES), pipelineSelect,
        h('input', { name: 'source', placeholder: 'source AE', value: filters.source, oninput: (e) => update('source', e.target.value) }),
        h('input', { name: 'q', placeholder: 'name or id', value: filters.q, oninput: (e) => update('q', e.target.value) })),
      h('table', { id: 'jobs-table', class: 'grid' },
        h('thead', {}, h('tr', {}, ['Job', 'Pipeline', 'State', 'Status', 'Priority', 'Source AE', 'Created', 'Duration'].map((t) => h('th', {}, t)))),
        body)))

  function update(name, value) {
    filters[name] = value
    const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString()
    history.replaceState(null, '', location.pathname + (qs ? `?${qs}` : ''))
    load()
  }

  let seq = 0
  async function load() {
    const mine = ++seq
    const qs = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString()
    const { jobs } = await getJSON(`/jobs${qs ? `?${qs}` : ''}`)
    if (mine !== seq) return   // a newer request is on its way
    count.textContent = `(${jobs.length})`
    body.replaceChildren(...(jobs.length ? jobs.map(row) : [h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No jobs yet.'))]))
  }

  async function loadPipelines() {
    const { pipelines } = await getJSON('/overview')
    pipelineSelect.replaceChildren(...['', ...pipelines.map((p) => p.name)].map((o) =>
      h('option', { value: o, selected: o === filters.pipeline }, o || 'any pipeline')))
  }

  await Promise.all([load(), loadPipelines()])
  // Running jobs' durations count up between store changes.
  const ticker = setInterval(() => {
    for (const cell of body.querySelectorAll('tr[data-state=RUNNING] td[data-started]')) {
      cell.textContent = duration((Date.now() - new Date(cell.dataset.started).getTime()) / 1000)
    }
  }, 1000)
  return {
    refresh(topics) {
      if (topics.includes('jobs')) load()
      if (topics.includes('config')) loadPipelines()
    },
    dispose() { clearInterval(ticker) },
  }
}

function row(job) {
  return h('tr', { 'data-job-id': job.id, 'data-state': job.state },
    h('td', {}, h('a', { href: `/ui/jobs/${job.id}` }, job.name), h('div', { class: 'muted small' }, job.id.slice(0, 8))),
    h('td', {}, job.pipeline),
    h('td', {}, badge(job.state)),
    h('td', {}, badge(job.status)),
    h('td', {}, job.priority),
    h('td', {}, job.source_ae || '–'),
    h('td', {}, time(job.created_at)),
    h('td', { 'data-started': job.state === 'RUNNING' ? job.started_at : null }, duration(job.duration)))
}
