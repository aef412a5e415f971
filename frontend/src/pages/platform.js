// Configuration the platform runs with: AE titles, DICOM sources and destinations, models.
import { getJSON } from '../api.js'
import { badge, h } from '../dom.js'

export async function platformPage(root) {
  document.title = 'Platform · claractl'
  const body = h('div')
  root.append(h('section', { 'data-page': 'platform' }, h('h1', {}, 'Platform'), body))
  async function load() {
    const o = await getJSON('/overview')
    body.replaceChildren(
      h('h2', {}, 'AE titles'),
      table('ae-titles', ['AE title', 'Pipelines', 'Group by', 'Timeout', 'Priority', 'Owner'], o.ae_titles, (a) =>
        [a.ae_title, a.pipelines.join(', '), a.group_by, `${a.timeout} s`, a.priority, a.owner || '–']),
      h('h2', {}, 'Sources'),
      table('sources', ['Name', 'AE title', 'Host', 'Owner'], o.sources, (s) => [s.name, s.ae_title, s.host, s.owner || '–']),
      h('h2', {}, 'Destinations'),
      table('destinations', ['Name', 'AE title', 'Host', 'Port', 'Owner'], o.destinations, (d) => [d.name, d.ae_title, d.host, d.port, d.owner || '–']),
      h('h2', {}, 'Models'),
      table('models', ['Name', 'State', 'Digest', 'Versions', 'Platform', 'Message'], o.models, (m) =>
        [m.name, badge(m.loaded ? 'loaded' : m.state.toLowerCase(), m.state), h('code', { title: m.digest }, m.digest.slice(0, 19) + '…'),
          (m.versions || []).join(', ') || '–', m.platform || '–', m.message || '']))
  }
  await load()
  return { refresh: (topics) => topics.includes('config') && load() }
}

function table(id, headers, rows, cells) {
  if (!rows.length) return h('p', { class: 'muted', id }, 'None configured.')
  return h('table', { class: 'grid', id },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cells(r).map((c) => h('td', {}, c))))))
}
