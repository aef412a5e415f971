// The audit trail: associations, studies received, jobs, exports, API writes — newest first,
// filterable, live (the "audit" topic), with older events a click away.
import { getJSON } from '../api.js'
import { badge, h, time } from '../dom.js'

const KINDS = ['', 'association', 'study', 'job', 'export', 'api']
const PAGE = 200

export async function auditPage(root, _params, query) {
  document.title = 'Audit trail · claractl'
  const filters = Object.fromEntries(['kind', 'actor', 'study_uid', 'job_id'].map((k) => [k, query.get(k) || '']))
  filters.failures = query.get('failures') === 'true'
  const body = h('tbody')
  const more = h('button', { type: 'button', id: 'audit-older', hidden: true, onclick: () => load(true) }, 'Older events')
  const input = (name, placeholder) => h('input', { name, placeholder, value: filters[name], oninput: (e) => update(name, e.target.value) })
  root.append(
    h('section', { 'data-page': 'audit' },
      h('h1', {}, 'Audit trail'),
      h('p', { class: 'muted' }, 'Who did what, from where, with which outcome. Patients appear by Patient ID only.'),
      h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
        h('select', { name: 'kind', onchange: (e) => update('kind', e.target.value) },
          KINDS.map((k) => h('option', { value: k, selected: k === filters.kind }, k || 'any kind'))),
        input('actor', 'actor (calling AE, api …)'), input('study_uid', 'Study Instance UID'), input('job_id', 'job id'),
        h('label', {}, h('input', { type: 'checkbox', name: 'failures', checked: filters.failures,
          onchange: (e) => update('failures', e.target.checked) }), ' failures only')),
      h('table', { id: 'audit-table', class: 'grid' },
        h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Action', 'Outcome', 'Actor', 'From', 'Target', 'Details'].map((t) => h('th', {}, t)))),
        body),
      more))

  function update(name, value) {
    filters[name] = value
    const qs = params().toString()
    history.replaceState(null, '', location.pathname + (qs ? `?${qs}` : ''))
    load()
  }

  function params(extra = {}) {
    return new URLSearchParams(Object.entries({ ...filters, ...extra }).filter(([, v]) => v !== '' && v !== false))
  }

  let oldest = null
  let seq = 0
  async function load(older = false) {
    const mine = ++seq
    const { events } = await getJSON(`/audit?${params({ limit: PAGE, ...(older && oldest ? { before_id: oldest } : {}) })}`)
    if (mine !== seq) return
    const rows = events.map(row)
    if (older) body.append(...rows)
    else body.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 8, class: 'empty' }, 'No audit events.'))]))
    if (events.length) oldest = events[events.length - 1].id
    more.hidden = events.length < PAGE
  }

  await load()
  return { refresh: (topics) => topics.includes('audit') && load() }
}

function row(e) {
  const d = e.detail || {}
  const details = [
    e.study_uid && `study ${e.study_uid}${d.instances ? ` (${d.instances} instances)` : ''}`,
    e.patient_id && `patient ${e.patient_id}`,
    e.job_id && h('a', { href: `/ui/jobs/${e.job_id}` }, `job ${e.job_id.slice(0, 8)}`),
    d.status && `status ${d.status}`, d.tls && `TLS ${d.tls}`, d.reason && `reason: ${d.reason}`,
  ].filter(Boolean)
  return h('tr', { 'data-event-id': e.id, 'data-kind': e.kind, 'data-outcome': e.outcome },
    h('td', {}, time(e.at)), h('td', {}, e.kind), h('td', {}, e.action),
    h('td', {}, badge(e.outcome_text, e.outcome === 0 ? 'healthy' : e.outcome === 4 ? 'pending' : 'faulted')),
    h('td', {}, e.actor || '–'), h('td', {}, e.source || '–'), h('td', {}, e.target || '–'),
    h('td', { class: 'small' }, ...details.flatMap((x, i) => (i ? ['; ', x] : [x]))))
}
