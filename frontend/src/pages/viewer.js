// The 3D viewer of a job: CT volume rendering + three orthogonal planes (NiiVue, WebGL2), the
// segmentation overlaid with per-segment colour and toggles, opacity, CT window/level presets.
import { getJSON, HttpError } from '../api.js'
import { h } from '../dom.js'
import { notFound } from './notfound.js'

// CT presets: [width, level] in Hounsfield units.
export const PRESETS = {
  'Soft tissue': [400, 40],
  Lung: [1500, -600],
  Bone: [1800, 400],
  Brain: [80, 40],
  Liver: [150, 30],
  Abdomen: [350, 50],
}
const hex = (c) => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`
const rgbOf = (x) => [1, 3, 5].map((i) => parseInt(x.slice(i, i + 2), 16))
const SOFTWARE_MAX_DIM = 192
const suffix = (url) => (url.endsWith('.gz') ? '.nii.gz' : '.nii')
const LAYOUTS = { 'Planes + 3D': 'multi', '3D only': 'render', Axial: 'axial', Coronal: 'coronal', Sagittal: 'sagittal' }

export async function viewerPage(root, [jobId], query) {
  document.title = `Viewer · claractl`
  document.body.dataset.viewer = 'loading'
  let info
  try {
    [info] = await Promise.all([getJSON(`/jobs/${encodeURIComponent(jobId)}/viewer`)])
  } catch (err) {
    if (err instanceof HttpError && err.status === 404) return notFound(`There is no job with id ${jobId}.`)
    throw err
  }
  const back = h('a', { href: `/ui/jobs/${jobId}` }, '← job')
  if (!info.series.length) {
    document.body.dataset.viewer = 'empty'
    root.append(h('section', { 'data-page': 'viewer' }, back,
      h('div', { class: 'viewer-message', id: 'viewer-message', role: 'status' }, info.message)))
    return {}
  }

  const canvas = h('canvas', { id: 'viewer-canvas' })
  const status = h('span', { class: 'muted', id: 'viewer-status' }, 'loading volume…')
  const segList = h('ul', { class: 'segments', id: 'segments' })
  const seriesSelect = h('select', { id: 'series-select' }, info.series.map((s, i) => h('option', { value: i }, `${s.key}${s.label_url ? ' (segmented)' : ''}`)))
  const overlayToggle = h('input', { type: 'checkbox', id: 'overlay-toggle', checked: true })
  const opacity = h('input', { type: 'range', id: 'overlay-opacity', min: 0, max: 1, step: 0.05, value: 0.5 })
  const wl = { width: h('input', { type: 'number', id: 'window-width', value: 400 }), level: h('input', { type: 'number', id: 'window-level', value: 40 }) }
  const presetButtons = Object.entries(PRESETS).map(([name, [w, l]]) =>
    h('button', { class: 'preset', 'data-preset': name, onclick: () => setWindow(w, l) }, name))
  const initialView = Object.values(LAYOUTS).includes(query.get('view')) ? query.get('view') : 'multi'
  const layout = h('select', { id: 'layout' }, Object.keys(LAYOUTS).map((k) => h('option', { value: LAYOUTS[k], selected: LAYOUTS[k] === initialView }, k)))

  root.append(h('section', { 'data-page': 'viewer', class: 'viewer' },
    h('aside', { class: 'viewer-controls' },
      back, h('h2', {}, 'Viewer'), status,
      h('label', {}, 'Series ', seriesSelect),
      h('label', {}, 'View ', layout),
      h('h3', {}, 'Window / level'),
      h('div', { class: 'presets' }, presetButtons),
      h('div', { class: 'wl' }, h('label', {}, 'W ', wl.width), h('label', {}, 'L ', wl.level)),
      h('h3', {}, 'Segmentation'),
      h('label', {}, overlayToggle, ' show overlay'),
      h('label', {}, 'opacity ', opacity),
      segList),
    h('div', { class: 'viewer-canvas' }, canvas)))

  const { Niivue, SHOW_RENDER, SLICE_TYPE } = await import('@niivue/niivue')
  const nv = new Niivue({
    backColor: [0, 0, 0, 1], show3Dcrosshair: true, isColorbar: false, dragAndDropEnabled: false,
    multiplanarShowRender: SHOW_RENDER.ALWAYS, loadingText: 'loading', crosshairColor: [0.2, 0.8, 1, 0.8],
  })
  await nv.attachToCanvas(canvas)
  // Without a GPU (SwiftShader, llvmpipe) every texture update of a full CT takes many seconds:
  // ask the server for a volume reduced to SOFTWARE_MAX_DIM voxels per axis, and say so.
  const debugInfo = nv.gl.getExtension('WEBGL_debug_renderer_info')   // RENDERER alone is masked
  const renderer = String(nv.gl.getParameter(debugInfo ? debugInfo.UNMASKED_RENDERER_WEBGL : nv.gl.RENDERER))
  const software = /swiftshader|llvmpipe|softpipe|software/i.test(renderer)
  const sized = (url) => (software ? `${url}?max_dim=${SOFTWARE_MAX_DIM}` : url)
  let hidden = new Set()
  let current = null

  function labelColormap(segments) {
    const cm = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: ['background'] }
    for (const s of segments) {
      cm.R.push(s.color[0]); cm.G.push(s.color[1]); cm.B.push(s.color[2])
      cm.A.push(hidden.has(s.value) ? 0 : 255); cm.I.push(s.value); cm.labels.push(s.name)
    }
    return cm
  }

  // Every updateGLVolume() re-renders the volume textures (costly on a CPU rasteriser, and for
  // big volumes anywhere): each control changes only what it needs, then updates once.
  function setLabelColours() {
    if (nv.volumes.length > 1) nv.volumes[1].setColormapLabel(labelColormap(current.segments))
  }

  function setOverlayOpacity() {
    if (nv.volumes.length > 1) nv.volumes[1].opacity = overlayToggle.checked ? Number(opacity.value) : 0
  }

  function setCalibration() {
    const vol = nv.volumes[0]
    if (!vol) return
    const width = Number(wl.width.value), level = Number(wl.level.value)
    vol.cal_min = level - width / 2
    vol.cal_max = level + width / 2
  }

  function update(...changes) {
    changes.forEach((change) => change())
    nv.updateGLVolume()
    markDrawn()
  }

  // After two frames the canvas shows the change; `data-drawn` tells tests (and nobody else).
  function markDrawn() {
    requestAnimationFrame(() => requestAnimationFrame(() => { document.body.dataset.drawn = String(performance.now()) }))
  }

  function setWindow(width, level) {
    wl.width.value = width; wl.level.value = level
    update(setCalibration)
  }

  function setLayout(mode) {
    const types = { multi: SLICE_TYPE.MULTIPLANAR, render: SLICE_TYPE.RENDER, axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL }
    nv.setSliceType(types[mode])
  }

  async function open(series) {
    document.body.dataset.viewer = 'loading'
    current = series
    hidden = new Set()
    status.textContent = 'loading volume…'
    const volumes = [{ url: sized(series.volume_url), colormap: 'gray', name: `${series.key}-volume${suffix(series.volume_url)}` }]
    if (series.label_url) volumes.push({ url: sized(series.label_url), opacity: Number(opacity.value), name: `${series.key}-label${suffix(series.label_url)}`, colormapLabel: labelColormap(series.segments) })
    try {
      await nv.loadVolumes(volumes)
    } catch (err) {
      status.textContent = `could not load the volume: ${err.message || err}`
      document.body.dataset.viewer = 'error'
      return
    }
    setLayout(layout.value)
    update(setLabelColours, setOverlayOpacity, setCalibration)
    segList.replaceChildren(...(series.segments.length ? series.segments.map((s) => h('li', {},
      h('label', {},
        h('input', { type: 'checkbox', checked: true, 'data-segment': s.value, onchange: (e) => {
          if (e.target.checked) hidden.delete(s.value); else hidden.add(s.value)
          update(setLabelColours)
        } }),
        h('input', { type: 'color', class: 'swatch', 'data-segment-color': s.value, value: hex(s.color), title: 'colour', onchange: (e) => {
          s.color = rgbOf(e.target.value)
          update(setLabelColours)
        } }), ` ${s.name}`)))
      : [h('li', { class: 'muted' }, series.label_url ? 'The label map is empty.' : 'No segmentation for this series.')]))
    const dims = nv.volumes[0].dims
    status.textContent = `${dims[1]}×${dims[2]}×${dims[3]} voxels · ${series.origin}` +
      (software ? ` · no GPU: at most ${SOFTWARE_MAX_DIM} voxels per axis` : '')
    nv.drawScene()
    // Two frames so the canvas holds the drawn image before tests or users look at it.
    requestAnimationFrame(() => requestAnimationFrame(() => { document.body.dataset.viewer = 'ready' }))
  }

  // Right-drag window/levelling in the canvas: keep the W/L fields in step.
  nv.onIntensityChange = (volume) => {
    if (volume !== nv.volumes[0]) return
    wl.width.value = Math.round(volume.cal_max - volume.cal_min)
    wl.level.value = Math.round((volume.cal_max + volume.cal_min) / 2)
  }
  overlayToggle.addEventListener('change', () => update(setOverlayOpacity))
  opacity.addEventListener('change', () => update(setOverlayOpacity))
  seriesSelect.addEventListener('change', () => open(info.series[Number(seriesSelect.value)]))
  layout.addEventListener('change', () => setLayout(layout.value))
  for (const input of [wl.width, wl.level]) input.addEventListener('change', () => update(setCalibration))

  window.__claraViewer = nv   // for debugging from the console
  await open(info.series[0])
  return { dispose() { delete window.__claraViewer } }
}
