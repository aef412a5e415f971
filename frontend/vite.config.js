// Build the dashboard into the Python package, where the render service serves it from /ui/.
import { defineConfig } from 'vite'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root: here,
  base: '/ui/',
  build: {
    outDir: fileURLToPath(new URL('../claractl/platform/render/static/dist', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4000,   // NiiVue is one large chunk, loaded only by the viewer page
  },
})
