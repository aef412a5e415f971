import { h } from '../dom.js'

export function notFound(what) {
  document.title = 'Not found · claractl'
  document.getElementById('app').replaceChildren(
    h('section', { class: 'notfound', 'data-page': 'not-found' },
      h('h1', {}, '404 — not found'),
      h('p', {}, what || `There is no page at ${location.pathname}.`),
      h('p', {}, h('a', { href: '/ui/' }, 'Back to the job list'))))
}
