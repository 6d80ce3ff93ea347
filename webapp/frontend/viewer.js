// The read-only diagram on case pages (/instances/<id>, /tasks/<id>) and the heatmap on /processes/<key>.
//
// Progressive enhancement of a server-rendered block:
//   <div id="diagram" class="diagram" data-xml-url="..." data-completed="a b" data-active="c"
//        data-incident="d" data-counts='{"c": 3}' data-label-canvas="..." data-msg-error="..." ...>
//     <div class="diagram__toolbar" hidden> zoom buttons (data-zoom="in|out|fit") </div>
//     <div class="diagram__canvas" hidden></div>
//     <ul class="diagram__legend" hidden>...</ul>
//     <p class="diagram__status" hidden></p>
//     ... the text fallback (steps as a list or table) stays visible ...
//   </div>
// Without JavaScript, or when the file cannot be drawn, only the text fallback shows.

import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';

import { existing, fetchText, fit, importDiagram, jsonData, labelCanvas, say, wireZoom, words } from './common.js';

const MARKERS = { completed: 'af-completed', active: 'af-active', incident: 'af-incident' };

export async function showDiagram(root) {
  const data = root.dataset;
  const canvasElement = root.querySelector('.diagram__canvas');
  const status = root.querySelector('.diagram__status');
  if (!canvasElement || !data.xmlUrl) {
    return null;
  }
  canvasElement.hidden = false; // bpmn-js measures its container: show it before drawing
  const viewer = new NavigatedViewer({ container: canvasElement });
  try {
    if (await importDiagram(viewer, await fetchText(data.xmlUrl))) {
      say(status, data.msgAutoLayout, 'info');
    }
  } catch (err) {
    viewer.destroy();
    canvasElement.hidden = true;
    say(status, data.msgError, 'info');
    root.classList.add('diagram--failed');
    return null;
  }
  fit(viewer);
  const svg = labelCanvas(viewer, data.labelCanvas || '', 'img', data.hintId);
  const current = mark(viewer, data);
  if (current) {
    focusOn(viewer, current);
  }
  badges(viewer, jsonData(data.counts, null));
  wireZoom(root, viewer, svg);
  root.querySelectorAll('.diagram__toolbar, .diagram__legend, .diagram__hint').forEach((el) => { el.hidden = false; });
  root.classList.add('diagram--ready');
  root.viewer = viewer; // for tests and the console
  return viewer;
}

/**
 * Completed, active and incident steps as CSS classes on the shapes; an incident wins over active.
 * An expanded sub-process gets only its outline marked, so the steps inside stay readable.
 * Returns the step to show first (the incident, else an active task), or null.
 */
function mark(viewer, data) {
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  const incident = new Set(existing(viewer, words(data.incident)));
  const active = new Set(existing(viewer, words(data.active)).filter((id) => !incident.has(id)));
  const completed = existing(viewer, words(data.completed)).filter((id) => !active.has(id) && !incident.has(id));
  const add = (id, marker) => {
    canvas.addMarker(id, marker);
    if (isContainer(registry.get(id))) {
      canvas.addMarker(id, 'af-container');
    }
  };
  completed.forEach((id) => add(id, MARKERS.completed));
  active.forEach((id) => add(id, MARKERS.active));
  incident.forEach((id) => add(id, MARKERS.incident));
  const first = [...incident, ...active].map((id) => registry.get(id)).find((el) => !isContainer(el) && !el.host);
  return first || null;
}

function isContainer(element) {
  return Boolean(element && element.children && element.children.some((child) => !child.labelTarget));
}

/** A large diagram fitted into the box is unreadably small: zoom in on the current step instead. */
function focusOn(viewer, element) {
  const canvas = viewer.get('canvas');
  if (canvas.zoom() >= 0.6) {
    return;
  }
  const viewbox = canvas.viewbox();
  const scale = 0.9;
  const width = viewbox.outer.width / scale;
  const height = viewbox.outer.height / scale;
  canvas.viewbox({
    x: element.x + element.width / 2 - width / 2,
    y: element.y + element.height / 2 - height / 2,
    width,
    height
  });
}

/** The heatmap: a badge with the number of running instances on each step that has any. */
function badges(viewer, counts) {
  if (!counts) {
    return;
  }
  const overlays = viewer.get('overlays');
  const canvas = viewer.get('canvas');
  existing(viewer, Object.keys(counts)).forEach((id) => {
    const badge = document.createElement('span');
    badge.className = 'af-badge';
    badge.textContent = String(counts[id]);
    badge.setAttribute('aria-hidden', 'true'); // the table beside the diagram says the same in words
    overlays.add(id, 'af-count', { position: { top: -12, right: 12 }, html: badge });
    canvas.addMarker(id, 'af-hot');
  });
}

function init() {
  document.querySelectorAll('[data-bpmn-viewer]').forEach((root) => {
    showDiagram(root);
  });
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}
