// Draw a pipeline's operator DAG as SVG: layers by longest path from the inputs, edges as curves.
import { svg } from './dom.js'

const W = 170, H = 44, GX = 60, GY = 18

export function dagSvg(graph, states = {}) {
  const names = graph.nodes.map((n) => n.name)
  const parents = Object.fromEntries(names.map((n) => [n, []]))
  for (const e of graph.edges) if (parents[e.to] && names.includes(e.from)) parents[e.to].push(e.from)
  const layer = {}
  const depth = (n, seen = new Set()) => {
    if (layer[n] !== undefined) return layer[n]
    if (seen.has(n)) return 0   // cycles are rejected upstream; never loop here
    seen.add(n)
    layer[n] = parents[n].length ? 1 + Math.max(...parents[n].map((p) => depth(p, seen))) : 0
    return layer[n]
  }
  names.forEach((n) => depth(n))
  const columns = []
  for (const n of names) (columns[layer[n]] ||= []).push(n)
  const pos = {}
  columns.forEach((col, x) => col.forEach((n, y) => { pos[n] = { x: 10 + x * (W + GX), y: 10 + y * (H + GY) } }))
  const width = 20 + Math.max(1, columns.length) * (W + GX) - GX
  const height = 20 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY) - GY

  const root = svg('svg', { class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'operator graph' },
    svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'dag-arrow' }))))
  for (const e of graph.edges) {
    const a = pos[e.from], b = pos[e.to]
    if (!a || !b) continue
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2
    root.append(svg('path', { class: 'dag-edge', d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`, 'marker-end': 'url(#arrow)' }))
  }
  for (const node of graph.nodes) {
    const p = pos[node.name]
    const state = states[node.name]
    const g = svg('g', { class: `dag-node ${state ? `state-${state.toLowerCase()}` : ''}`, 'data-operator': node.name, transform: `translate(${p.x},${p.y})` },
      svg('title', {}, `${node.name}${node.image ? `\n${node.image}${node.tag ? `:${node.tag}` : ''}` : ''}${state ? `\n${state}` : ''}`),
      svg('rect', { width: W, height: H, rx: 8 }),
      svg('text', { x: W / 2, y: node.image ? 18 : 27, 'text-anchor': 'middle', class: 'dag-name' }, clip(node.name, 22)))
    if (node.image) g.append(svg('text', { x: W / 2, y: 34, 'text-anchor': 'middle', class: 'dag-image' }, clip(node.image, 28)))
    root.append(g)
  }
  return root
}

const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s)
