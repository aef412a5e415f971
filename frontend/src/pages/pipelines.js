// Pipelines with their operator DAGs.
import { getJSON } from '../api.js'
import { h, time } from '../dom.js'
import { dagSvg } from '../dag.js'

export async function pipelinesPage(root) {
  document.title = 'Pipelines · claractl'
  const list = h('div')
  root.append(h('section', { 'data-page': 'pipelines' }, h('h1', {}, 'Pipelines'), list))
  async function load() {
    const { pipelines } = await getJSON('/overview')
    list.replaceChildren(...(pipelines.length ? pipelines.map((p) => h('article', { class: 'card', 'data-pipeline': p.name },
      h('h2', {}, p.name, ' ', h('span', { class: 'muted small' }, p.owner ? `owned by ${p.owner}` : 'made by hand')),
      h('div', { class: 'graph' }, dagSvg(p.graph)),
      h('p', { class: 'muted small' }, `${p.graph.nodes.length} operators · updated ${time(p.updated_at)}`,
        p.export?.length ? ` · exports via ${p.export.map((e) => e.agent).join(', ')}` : ''),
      h('a', { href: `/ui/?pipeline=${encodeURIComponent(p.name)}` }, 'Jobs of this pipeline')))
      : [h('p', { class: 'muted' }, 'No pipelines yet: claractl apply creates them from the project file.')]))
  }
  await load()
  return { refresh: (topics) => topics.includes('config') && load() }
}
