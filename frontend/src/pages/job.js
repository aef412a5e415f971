// One job: summary, operator graph, per-operator timeline, logs, export tasks, payload files.
import { getJSON, getText, HttpError, BASE } from '../api.js'
import { dagSvg } from '../dag.js'
import { badge, bytes, duration, h, time } from '../dom.js'
import { notFound } from './notfound.js'

export async function jobPage(root, [jobId]) {
  let job
  try {
    job = await getJSON(`/jobs/${encodeURIComponent(jobId)}`)
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return notFound(`There is no job with id ${jobId}.`)
    throw err
  }
  const parts = {
    summary: h('div'), graph: h('div', { class: 'graph' }), timeline: h('div', { class: 'timeline' }),
    operators: h('div'), exports: h('div'), files: h('div'),
  }
  const logTitle = h('h3')
  const logText = h('pre', { class: 'log', id: 'log' })
  const logPanel = h('div', { class: 'log-panel', hidden: true }, logTitle, logText)
  let openLog = null

  root.append(h('section', { 'data-page': 'job', 'data-job-id': jobId },
    parts.summary,
    h('h2', {}, 'Operators'), parts.graph,
    h('h2', {}, 'Timeline'), parts.timeline,
    parts.operators, logPanel,
    h('h2', {}, 'Export tasks'), parts.exports,
    h('h2', {}, 'Payload files'), parts.files))

  function draw() {
    document.title = `${job.name} · claractl`
    parts.summary.replaceChildren(
      h('div', { class: 'job-head' },
        h('h1', {}, job.name, ' ', badge(job.state), ' ', badge(job.status)),
        h('a', { class: 'button', href: `/ui/jobs/${job.id}/viewer`, id: 'open-viewer' }, 'Open viewer')),
      h('dl', { class: 'facts' },
        fact('Job id', job.id), fact('Clara id', job.clara_id), fact('Pipeline', job.pipeline),
        fact('Priority', job.priority),
        fact('Source AE', job.source_ae || '–'), fact('Created', time(job.created_at)),
        fact('Started', time(job.started_at)), fact('Stopped', time(job.stopped_at)),
        fact('Duration', duration(job.duration)), job.message ? fact('Message', job.message) : null))
    const states = Object.fromEntries(job.operators.map((o) => [o.name, o.state === 'STOPPED' ? o.status : o.state]))
    parts.graph.replaceChildren(dagSvg(job.graph, states))
    parts.timeline.replaceChildren(...timeline(job))
    parts.operators.replaceChildren(h('table', { class: 'grid', id: 'operators-table' },
      h('thead', {}, h('tr', {}, ['Operator', 'State', 'Status', 'Exit', 'Started', 'Stopped', 'Duration', 'Log'].map((t) => h('th', {}, t)))),
      h('tbody', {}, job.operators.map((o) => h('tr', { 'data-operator': o.name },
        h('td', {}, o.name, o.message ? h('div', { class: 'muted small op-message' }, o.message) : null),
        h('td', {}, badge(o.state)), h('td', {}, badge(o.status)),
        h('td', {}, o.exit_code ?? '–'), h('td', {}, time(o.started_at)), h('td', {}, time(o.stopped_at)),
        h('td', {}, duration(o.duration)),
        h('td', {}, h('button', { class: 'log-button', 'data-operator': o.name, onclick: () => showLog(o.name) }, 'logs')))))))
    parts.exports.replaceChildren(job.export_tasks.length ? exportsTable(job.export_tasks) : h('p', { class: 'muted' }, 'No export tasks.'))
    parts.files.replaceChildren(filesList(job))
  }

  async function showLog(operator) {
    openLog = operator
    logPanel.hidden = false
    logTitle.textContent = `Log of ${operator}`
    try {
      logText.textContent = (await getText(`/jobs/${job.id}/logs/${encodeURIComponent(operator)}`)) || '(empty log)'
      logText.classList.remove('error')
    } catch (err) {
      logText.textContent = err.message
      logText.classList.add('error')
    }
    if (!openLog) return
    logText.scrollTop = logText.scrollHeight
  }

  draw()
  // A running job's bars grow with time even when nothing in the store changes.
  const ticker = setInterval(() => { if (job.state === 'RUNNING') parts.timeline.replaceChildren(...timeline(job)) }, 1000)
  return {
    async refresh(topics) {
      if (!topics.includes('jobs') && !topics.includes('exports')) return
      job = await getJSON(`/jobs/${encodeURIComponent(jobId)}`)
      draw()
      if (openLog) showLog(openLog)
    },
    dispose() { clearInterval(ticker) },
  }
}

const fact = (k, v) => [h('dt', {}, k), h('dd', {}, v)]

function timeline(job) {
  const ms = (iso) => (iso ? new Date(iso).getTime() : null)
  const now = Date.now()
  const starts = job.operators.map((o) => ms(o.started_at)).filter((v) => v !== null)
  if (!starts.length) return [h('p', { class: 'muted' }, 'No operator has started yet.')]
  const t0 = Math.min(...starts, ms(job.started_at) ?? Infinity)
  const t1 = Math.max(...job.operators.map((o) => ms(o.stopped_at) ?? (o.started_at ? now : 0)), ms(job.stopped_at) ?? 0, t0 + 1)
  const span = t1 - t0
  const rows = job.operators.map((o) => {
    const start = ms(o.started_at)
    const track = h('div', { class: 'track' })
    if (start !== null) {
      const end = ms(o.stopped_at) ?? now
      const left = ((start - t0) / span) * 100
      const width = Math.max(0.6, ((end - start) / span) * 100)
      track.append(h('div', {
        class: `bar state-${(o.state === 'STOPPED' ? o.status : o.state).toLowerCase()}`,
        'data-operator': o.name, style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%` },
        title: `${o.name}\nstart ${time(o.started_at)}\nend ${time(o.stopped_at)}\n${duration(o.duration)}`,
      }))
    }
    return h('div', { class: 'timeline-row', 'data-operator': o.name },
      h('span', { class: 'timeline-label' }, o.name), track,
      h('span', { class: 'timeline-duration' }, start === null ? 'not started' : duration(o.duration)))
  })
  return [...rows, h('div', { class: 'timeline-axis muted small' }, h('span', {}, time(new Date(t0).toISOString())), h('span', {}, `total ${duration(span / 1000)}`))]
}

function exportsTable(tasks) {
  return h('table', { class: 'grid', id: 'exports-table' },
    h('thead', {}, h('tr', {}, ['Agent', 'Destination', 'State', 'Attempts', 'Files', 'Message'].map((t) => h('th', {}, t)))),
    h('tbody', {}, tasks.map((t) => h('tr', { 'data-task-id': t.id },
      h('td', {}, t.agent), h('td', {}, t.destination || '–'), h('td', {}, badge(t.state)), h('td', {}, t.attempts),
      h('td', {}, h('ul', { class: 'files' }, t.files.map((f) => h('li', {}, h('code', {}, f.path), ' ', h('span', { class: 'muted' }, f.status || 'waiting'))))),
      h('td', {}, t.message || '')))))
}

function filesList(job) {
  const { files, truncated, exists } = job.payload_files
  if (!exists) return h('p', { class: 'muted' }, 'The payload has been removed (retention).')
  if (!files.length) return h('p', { class: 'muted' }, 'The payload is empty.')
  return h('div', {},
    h('ul', { class: 'files', id: 'payload-files' }, files.map((f) => h('li', {},
      h('a', { href: `${BASE}/jobs/${job.id}/files/${f.path.split('/').map(encodeURIComponent).join('/')}`, download: '' }, f.path),
      ' ', h('span', { class: 'muted' }, bytes(f.size))))),
    truncated ? h('p', { class: 'muted' }, 'Only the first files are listed.') : null)
}
